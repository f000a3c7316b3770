# 23: provisioning 10 000 grants to 10 000 roles, one call each (sourced by
# bench/run's run_script_case).
#
# Case 16 with one role per company, as the README's advice has it: company n
# to role bench_uNNNNN, each role's first grant, each call its own
# transaction.  Every call also gives its role this database's mark (SELECT
# on a column of moment.grantees), so the figure shows whether a grant still
# costs the same when 10 000 roles hold marks: with one ACL holding every
# mark, a call rewrote a list of all the roles granted before it, and 10 000
# calls took 26.6 s, growing from 1.6 to 3.6 ms a call.  The script prints
# the time of each thousand calls; the last thousand against the first is
# the growth (1.0 is flat).  Runs last among the tenants cases: it leaves
# the bench_t roles without grants.

"${PSQL[@]}" -d tenants >/dev/null <<ROLES
SELECT format('CREATE ROLE %I NOLOGIN', 'bench_u' || lpad(i::text, 5, '0'))
  FROM generate_series(1, $TENANT_COMPANIES) i
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_u' || lpad(i::text, 5, '0')) \gexec
ROLES
tenants_reset_grants
{
	echo "SELECT pg_read_file('/proc/self/schedstat') AS s0, extract(epoch FROM clock_timestamp()) AS t0 \gset"
	echo "\o /dev/null"
	awk -v n="$TENANT_COMPANIES" 'BEGIN {
		for (i = 1; i <= n; i++) {
			printf "SELECT moment.grant_company(%ct%05d%c, %cbench_u%05d%c);\n", 39, i, 39, 39, i, 39
			if (i % 1000 == 0)
				print "SELECT extract(epoch FROM clock_timestamp()) AS t" i / 1000 " \\gset"
		}
	}'
	echo "\o"
	echo "SELECT (split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - split_part(:'s0', ' ', 1)::bigint) / 1e6;"
	# the clock at the start and after each thousand calls, a line each
	for k in $(seq 0 $((TENANT_COMPANIES / 1000))); do echo "\echo :t$k"; done
} >"$WORK/grants-roles.sql"
t0=$(now)
"${PSQL[@]}" -At -v ON_ERROR_STOP=1 -d tenants -f "$WORK/grants-roles.sql" >"$WORK/grants-roles.out"
t1=$(now)
secs_taken=$(elapsed "$t0" "$t1")
cpu=$(sed -n 1p "$WORK/grants-roles.out")
marks=$(sql tenants "SELECT count(*) FROM pg_roles r WHERE r.rolname LIKE 'bench\_u%' AND moment_internal.holds_mark(r.oid)")
[ "$marks" = "$TENANT_COMPANIES" ] || { echo "expected $TENANT_COMPANIES marked roles, found $marks" >&2; exit 1; }
longest=$(sql tenants "SELECT max(cardinality(a.attacl)) FROM pg_attribute a WHERE a.attrelid = 'moment.grantees'::regclass AND a.attnum > 0")
thousands=$(sed -n '2,$p' "$WORK/grants-roles.out" | awk 'NR > 1 { printf "%s%.2f", (NR > 2 ? " " : ""), $1 - prev } { prev = $1 }')
growth=$(awk -v t="$thousands" 'BEGIN { n = split(t, a, " "); printf "%.2f", a[n] / a[1] }')
echo "each thousand calls (s): $thousands"
echo "NOTE $marks roles granted one company each (their marks: at most $longest roles in one column's ACL) in ${secs_taken} s wall, $(fmt "$cpu" 0) ms backend CPU: $(awk -v s="$secs_taken" -v n="$marks" 'BEGIN { printf "%.2f", 1000 * s / n }') ms a call; the last thousand calls took ${growth}x the first"
echo "RESULT $(awk -v s="$secs_taken" 'BEGIN { printf "%.0f", 1000 * s }') $(fmt "$cpu" 0) - - $secs_taken - -"
