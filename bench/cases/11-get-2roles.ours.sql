-- 11 ours: moment.get of case 02, as PostgREST runs it for two web roles in turn.
-- One prepared statement for both roles, as PostgREST (prepared statements on) runs a request:
-- pgbench keeps variables per client, so :turn alternates 1, 2, 1, ... (bench/run passes -D turn=1).
\set turn 3 - :turn
\set id random(:tr_lo, :tr_hi)
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_web' || :turn, true);
SELECT moment.get('timeRecords', :id, 'base+project.name+project.customer.name+userAccount.name');
COMMIT;
\endpipeline
