-- 17 baseline: as bench_many (1 000 companies), the get of case 02 always on the same company
-- first transaction of the connection, not measured (bench/run: "warm"): one get on each
-- company, so that the backend has them cached as a long-lived pooled backend would
\if :warm
BEGIN;
SELECT set_config('role', 'bench_many', true);
SELECT count(g.o)
  FROM generate_series(1, :tenant_many) c,
       LATERAL (SELECT set_config('moment.company', 't' || lpad(c::text, 5, '0'), true) AS code) s,
       LATERAL (SELECT moment.get('timeRecords', c * 10, 'base+project.name+project.customer.name+userAccount.name') AS o
                 WHERE s.code IS NOT NULL) g;
COMMIT;
\set warm 0
\endif
\set c :tenant_fixed
\set id :c * 10 + random(0, :tenant_records - 1)
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_many', true), set_config('moment.company', 't' || lpad(:c::text, 5, '0'), true);
SELECT moment.get('timeRecords', :id, 'base+project.name+project.customer.name+userAccount.name');
COMMIT;
\endpipeline
