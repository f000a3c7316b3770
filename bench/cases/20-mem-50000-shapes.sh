# 20: a backend's memory after 50 000 distinct request shapes in one statement
# (sourced by bench/run's run_script_case).
#
# One statement calls moment.list 50 000 times, each with another order_by (4 of the
# 13 sortable time record fields other than id, each .asc or .desc: 50 000 distinct
# statements, each memoized and prepared), on a one-row filter so that the call itself
# is cheap.  A fresh backend is warmed (moment's caches loaded, one listing run), its
# peak RSS reset (echo 5 > /proc/PID/clear_refs); after the statement the growth of
# VmHWM minus the growth of RssShmem (shared buffers touched) is the peak private
# memory, compared with moment.plan_cache_size + 20 MB (the target of issue 10).  The
# memory contexts' total (pg_backend_memory_contexts) before and after, and the cache's
# own counters, are noted too.

shapes=50000
fields="'projectId', 'userAccountId', 'projectMembershipId', 'projectExtensionId', 'taskId', 'timeRecordDate', 'minutes', 'description', 'internalNote', 'billable', 'approved', 'createdAt', 'updatedAt'"
status() { # the /proc/self/status fields, in kB, as psql variables NAME_SUFFIX
	for f in VmRSS VmHWM RssAnon RssShmem; do
		echo "SELECT (regexp_match(pg_read_file('/proc/self/status'), '$f:\\s+(\\d+)'))[1]::bigint AS ${f,,}_$1 \\gset"
	done
	echo "SELECT sum(total_bytes) / 1024 AS ctx_$1 FROM pg_backend_memory_contexts \\gset"
}
out=$(PGOPTIONS="-c moment.company=$BENCH_CODE" "${PSQL[@]}" -At -d bench 2>&1 <<SQL
SELECT pg_backend_pid() AS pid \gset
\setenv BPID :pid
SET client_min_messages = error;
SELECT pg_column_size(moment.list('timeRecords', 'base', '{"id": $TR_LO}', order_by => 'minutes.desc')) \g /dev/null
SELECT plans_prepared AS prepared0, plans_evicted AS evicted0 FROM moment.cache_stats() \gset
\! echo 5 > /proc/\$BPID/clear_refs
$(status 0)
SELECT pg_read_file('/proc/self/schedstat') AS s0, clock_timestamp() AS t0 \gset
WITH f(name, i) AS (SELECT * FROM unnest(ARRAY[$fields]) WITH ORDINALITY),
     d(dir) AS (VALUES ('.asc'), ('.desc')),
     o(order_by) AS (SELECT a.name || da.dir || ',' || b.name || db.dir || ',' || c.name || dc.dir || ',' || e.name || de.dir
                       FROM f a, f b, f c, f e, d da, d db, d dc, d de
                      WHERE b.i <> a.i AND c.i NOT IN (a.i, b.i) AND e.i NOT IN (a.i, b.i, c.i)
                      LIMIT $shapes)
SELECT count(moment.list('timeRecords', 'base', '{"id": $TR_LO}', order_by => o.order_by)), count(DISTINCT o.order_by) FROM o \g /dev/null
SELECT extract(epoch FROM clock_timestamp() - :'t0') * 1000 AS ms,
       (split_part(pg_read_file('/proc/self/schedstat'), ' ', 1)::bigint - split_part(:'s0', ' ', 1)::bigint) / 1e6 AS cpu \gset
$(status 1)
SELECT :ms, :cpu, :vmrss_0, :vmrss_1, :vmhwm_1, :rssanon_0, :rssanon_1, :rssshmem_0, :rssshmem_1, :ctx_0, :ctx_1,
       s.plans_prepared - :prepared0, s.plans_evicted - :evicted0, s.cached_plans, s.cached_bytes / 1024,
       current_setting('moment.plan_cache_size'), pg_size_bytes(current_setting('moment.plan_cache_size')) / 1024
  FROM moment.cache_stats() s;
SQL
) || { echo "$out" >&2; exit 1; }
read -r ms cpu rss0 rss1 hwm1 anon0 anon1 shm0 shm1 ctx0 ctx1 prepared evicted cached cached_kb setting budget_kb <<<"$(tail -1 <<<"$out" | tr '|' ' ')"
mb() { awk -v k="$1" 'BEGIN { printf "%.1f", k / 1024 }'; }
peak_kb=$((hwm1 - rss0))
shm_kb=$((shm1 - shm0))
private_kb=$((peak_kb - shm_kb))
echo "NOTE $shapes distinct order_by shapes in one statement: $(fmt "$ms" 0) ms ($(awk -v m="$ms" -v n=$shapes 'BEGIN { printf "%.3f", m / n }') ms a call), $prepared plans prepared, $evicted evicted, $cached kept ($(mb "$cached_kb") MB counted; moment.plan_cache_size = $setting)"
echo "NOTE peak RSS +$(mb $peak_kb) MB of which shared buffers +$(mb $shm_kb) MB: peak private +$(mb $private_kb) MB (target <= $(mb "$budget_kb") + 20 MB); after the statement: RssAnon $(mb "$anon0") -> $(mb "$anon1") MB, memory contexts $(mb "$ctx0") -> $(mb "$ctx1") MB"
echo "RESULT $(fmt "$ms" 0) $(fmt "$cpu" 0) - - $(mb $private_kb) - -"
