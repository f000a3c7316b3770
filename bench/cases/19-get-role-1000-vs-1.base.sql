-- 19 baseline: the get of case 02 as bench_one, a role that holds one company
\set c :tenant_fixed
\set id :c * 10 + random(0, :tenant_records - 1)
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_one', true), set_config('moment.company', 't' || lpad(:c::text, 5, '0'), true);
SELECT moment.get('timeRecords', :id, 'base+project.name+project.customer.name+userAccount.name');
COMMIT;
\endpipeline
