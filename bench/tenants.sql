-- bench/tenants.sql: the many-tenants database of the issue 16 cases (loaded by bench/run).
--
--   psql -v companies=10000 -v roles=1000 -v records=4 -d tenants -f bench/tenants.sql
--
-- :companies companies t00001, t00002, ... with id n, each with one user account,
-- customer and project (id n) and :records time records with ids n * 10 + 0..:records-1
-- (so a pgbench script finds a record of company c without a query); :roles NOLOGIN
-- roles bench_t0001, ... (granted later, by the measured provisioning cases), and
-- bench_many / bench_one (granted 1 000 companies / one company by bench/run).
-- No grant is made here.  Roles are cluster-wide: they exist once per bench cluster.

\set ON_ERROR_STOP on
SET client_min_messages = warning;
-- the rows are consistent by construction: no per-row foreign key checks
SET session_replication_role = replica;

INSERT INTO moment.companies (id, code, name)
SELECT n, 't' || lpad(n::text, 5, '0'), 'Tenant ' || n FROM generate_series(1, :companies) n;
INSERT INTO moment.user_accounts (company_id, id, name, email)
SELECT n, n, 'User ' || n, 'user' || n || '@example.com' FROM generate_series(1, :companies) n;
INSERT INTO moment.customers (company_id, id, customer_number, name)
SELECT n, n, 'C' || n, 'Customer ' || n FROM generate_series(1, :companies) n;
INSERT INTO moment.projects (company_id, id, customer_id, project_number, name)
SELECT n, n, n, 'P' || n, 'Project ' || n FROM generate_series(1, :companies) n;
INSERT INTO moment.time_records (company_id, id, project_id, user_account_id, time_record_date, minutes, description)
SELECT n, n * 10 + j, n, n, date '2024-03-01' + j, 15 * (1 + j), 'Tenant record ' || j
  FROM generate_series(1, :companies) n, generate_series(0, :records - 1) j;

RESET session_replication_role;
SELECT setval(pg_get_serial_sequence('moment.' || t, 'id'), (SELECT max(id) FROM moment.companies) * 10 + 10)
  FROM unnest(ARRAY['companies', 'user_accounts', 'customers', 'projects', 'time_records']) t \g /dev/null

SELECT format('CREATE ROLE %I NOLOGIN', 'bench_t' || lpad(i::text, 4, '0')) FROM generate_series(1, :roles) i
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'bench_t' || lpad(i::text, 4, '0')) \gexec

VACUUM ANALYZE;
