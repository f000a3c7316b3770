# 15: moment.grant_company provisioning inside one transaction, 2 000 calls against 200
# (sourced by bench/run's run_script_case; see there for the RESULT line).
#
# From the state before provisioning (no grant in the tenants database), one psql
# session sends BEGIN, N lines "SELECT moment.grant_company('tNNNNN', 'bench_tRRRR');"
# (company n to role (n - 1) % 1000 + 1: with 2 000 calls every role gets a first
# grant and then a second one) and ROLLBACK; the time is that of the calls (from
# before BEGIN to after the last call, on the server's clock), and the backend's CPU
# time over the same span (/proc/self/schedstat).  Rounds alternate the order; VACUUM
# between runs clears what the rolled-back runs left.  Linear is 10x.

tenants_reset_grants
grant_file() { # grant_file N -> a psql script timing N calls in one transaction
	{
		echo "SELECT pg_read_file('/proc/self/schedstat') AS s0, clock_timestamp() AS t0 \gset"
		echo "BEGIN;"
		awk -v n="$1" -v roles="$TENANT_ROLES" 'BEGIN {
			for (i = 1; i <= n; i++)
				printf "SELECT moment.grant_company(%ct%05d%c, %cbench_t%04d%c);\n", 39, i, 39, 39, 1 + (i - 1) % roles, 39 }'
		echo "SELECT round(extract(epoch FROM clock_timestamp() - :'t0') * 1000, 1),"
		echo "       round((split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - split_part(:'s0', ' ', 1)::bigint) / 1e6, 1);"
		echo "ROLLBACK;"
	} >"$WORK/grants-$1.sql"
}
grant_file 200
grant_file 2000
grant_run() { # grant_run N -> "ms cpu_ms"
	"${PSQL[@]}" -At -F ' ' -d tenants -f "$WORK/grants-$1.sql" | tail -1
	sql tenants "VACUUM moment.company_grants, pg_catalog.pg_auth_members" >/dev/null
}
grant_run 200 >/dev/null	# warm-up
rows=""
for r in $(seq 1 "$rounds"); do
	if [ $((r % 2)) = 1 ]; then
		small=$(grant_run 200)
		big=$(grant_run 2000)
	else
		big=$(grant_run 2000)
		small=$(grant_run 200)
	fi
	echo "round $r: 200 calls $small, 2000 calls $big (ms, cpu ms)"
	rows+="$small $big"$'\n'
done
col() { printf '%s' "$rows" | awk -v c="$1" 'NF { print $c }' | median; }
ratio=$(printf '%s' "$rows" | awk 'NF { printf "%.6f\n", $3 / $1 }' | median)
cpu_ratio=$(printf '%s' "$rows" | awk 'NF { printf "%.6f\n", $4 / $2 }' | median)
per_rounds=$(printf '%s' "$rows" | awk 'NF { printf "%s%.1f", sep, $3 / $1; sep = " " }')
echo "NOTE 2 000 calls $(fmt "$(col 3)" 0) ms ($(fmt "$(col 3)" 0 | awk '{ printf "%.2f", $1 / 2000 }') ms a call), 200 calls $(fmt "$(col 1)" 0) ms ($(fmt "$(col 1)" 0 | awk '{ printf "%.2f", $1 / 200 }') ms a call): $(fmt "$ratio" 1)x the time (cpu $(fmt "$cpu_ratio" 1)x; linear is 10x)"
echo "RESULT $(fmt "$(col 3)" 0) $(fmt "$(col 4)" 0) $(fmt "$(col 1)" 0) $(fmt "$(col 2)" 0) $(fmt "$ratio" 2) $(fmt "$cpu_ratio" 2) $per_rounds"
