-- 19 ours: the same get on the same company as bench_many, a role that holds 1 000 companies
\set c :tenant_fixed
\set id :c * 10 + random(0, :tenant_records - 1)
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_many', true), set_config('moment.company', 't' || lpad(:c::text, 5, '0'), true);
SELECT moment.get('timeRecords', :id, 'base+project.name+project.customer.name+userAccount.name');
COMMIT;
\endpipeline
