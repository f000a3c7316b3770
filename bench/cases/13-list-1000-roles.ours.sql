-- 13 ours: case 04's moment.list (a memoized shape after the first call), run by two web roles in turn.
-- One prepared statement for both roles, as PostgREST (prepared statements on) runs a request:
-- pgbench keeps variables per client, so :turn alternates 1, 2, 1, ... (bench/run passes -D turn=1).
\set turn 3 - :turn
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_web' || :turn, true);
SELECT moment.list('timeRecords', 'base+project.name', '{"timeRecordDate": {"gte": "@@list_from@@", "lt": "@@list_to@@"}}');
COMMIT;
\endpipeline
