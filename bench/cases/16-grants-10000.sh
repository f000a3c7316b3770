# 16: provisioning 10 000 grants one call each (sourced by bench/run's run_script_case).
#
# From the state before provisioning, one psql session sends 10 000 lines
# "SELECT moment.grant_company('tNNNNN', 'bench_tRRRR');" (company n to role
# (n - 1) % 1000 + 1: 1 000 roles of 10 companies each), each its own transaction,
# committed.  The figure is the wall-clock time of the whole file (client round trips
# included), and the backend's CPU time.  One run: the grants it makes are the state
# the get cases 17-19 run in.

tenants_reset_grants
{
	echo "SELECT pg_read_file('/proc/self/schedstat') AS s0 \gset"
	awk -v n="$TENANT_COMPANIES" -v roles="$TENANT_ROLES" 'BEGIN {
		for (i = 1; i <= n; i++)
			printf "SELECT moment.grant_company(%ct%05d%c, %cbench_t%04d%c);\n", 39, i, 39, 39, 1 + (i - 1) % roles, 39 }'
	echo "SELECT (split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - split_part(:'s0', ' ', 1)::bigint) / 1e6;"
} >"$WORK/grants-all.sql"
t0=$(now)
cpu=$("${PSQL[@]}" -At -d tenants -f "$WORK/grants-all.sql" | tail -1)
t1=$(now)
secs_taken=$(elapsed "$t0" "$t1")
grants=$(sql tenants "SELECT count(*) FROM moment.company_grants")
roles_in=$(sql tenants "SELECT count(*) FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.member
                         WHERE m.roleid = 'moment_write'::regrole AND r.rolname LIKE 'bench\_t%'")
[ "$grants" = "$TENANT_COMPANIES" ] || { echo "expected $TENANT_COMPANIES grants, found $grants" >&2; exit 1; }
echo "NOTE $grants grants ($roles_in roles made members of moment_write) in ${secs_taken} s wall, $(fmt "$cpu" 0) ms backend CPU: $(awk -v s="$secs_taken" -v n="$grants" 'BEGIN { printf "%.2f", 1000 * s / n }') ms a call"
echo "RESULT $(awk -v s="$secs_taken" 'BEGIN { printf "%.0f", 1000 * s }') $(fmt "$cpu" 0) - - $secs_taken - -"
