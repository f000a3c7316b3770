-- 18 ours: as the superuser, the same get on another of the 10 000 companies every call
-- first transaction of the connection, not measured (bench/run: "warm"): one get on each
-- company, so that the backend has them cached as a long-lived pooled backend would
\if :warm
BEGIN;
SELECT count(g.o)
  FROM generate_series(1, :tenant_companies) c,
       LATERAL (SELECT set_config('moment.company', 't' || lpad(c::text, 5, '0'), true) AS code) s,
       LATERAL (SELECT moment.get('timeRecords', c * 10, 'base+project.name+project.customer.name+userAccount.name') AS o
                 WHERE s.code IS NOT NULL) g;
COMMIT;
\set warm 0
\endif
\set c random(1, :tenant_companies)
\set id :c * 10 + random(0, :tenant_records - 1)
\startpipeline
BEGIN;
SELECT set_config('moment.company', 't' || lpad(:c::text, 5, '0'), true);
SELECT moment.get('timeRecords', :id, 'base+project.name+project.customer.name+userAccount.name');
COMMIT;
\endpipeline
