-- tenancy: a request works on one company, which the role must be granted;
-- nothing of another company is ever seen or changed, through any API
-- function, the REST router, or direct SQL on the tables (row-level security).
--
-- Company A is "cloudware", company B is "rival"; every row of B has a name
-- (or description) starting with SECRET-B.  Roles (cluster-wide, dropped at
-- the end):
--   regress_moment_a1      cloudware, writable, granted directly
--   regress_moment_grp     cloudware, read-only (a group role)
--   regress_moment_a2      member of regress_moment_grp
--   regress_moment_a3      member of regress_moment_grp2, itself a member of regress_moment_grp
--   regress_moment_b1      rival, writable
--   regress_moment_mix     rival writable, cloudware read-only
--   regress_moment_revoked cloudware, granted and then revoked
--   regress_moment_nobody  no grant
\set ECHO none
SET client_min_messages = warning;
TRUNCATE moment.companies, moment.company_grants, moment.user_accounts, moment.customers,
	moment.projects, moment.offers, moment.time_records RESTART IDENTITY CASCADE;
RESET moment.company;
RESET moment.default_limit;

-- The result of a statement, or its SQLSTATE and message.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	result text;
BEGIN
	IF sql ~* '^\s*(set|reset|alter|drop)\s' THEN
		EXECUTE sql;
		RETURN 'ok';
	END IF;
	EXECUTE sql INTO result;
	RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The names (or descriptions) of a listing's content, in order.
CREATE FUNCTION pg_temp.names(document jsonb) RETURNS text
LANGUAGE sql AS $$
	SELECT coalesce(string_agg(coalesce(o ->> 'name', o ->> 'description', o ->> 'id'), ', ' ORDER BY n), '(none)')
	  FROM jsonb_array_elements(document -> 'content') WITH ORDINALITY AS c(o, n)
$$;

DROP ROLE IF EXISTS regress_moment_a1, regress_moment_a2, regress_moment_a3, regress_moment_grp,
	regress_moment_grp2, regress_moment_b1, regress_moment_mix, regress_moment_revoked, regress_moment_nobody;
CREATE ROLE regress_moment_a1;
CREATE ROLE regress_moment_grp;
CREATE ROLE regress_moment_a2 IN ROLE regress_moment_grp;
CREATE ROLE regress_moment_grp2 IN ROLE regress_moment_grp;
CREATE ROLE regress_moment_a3 IN ROLE regress_moment_grp2;
CREATE ROLE regress_moment_b1;
CREATE ROLE regress_moment_mix;
CREATE ROLE regress_moment_revoked;
CREATE ROLE regress_moment_nobody;

INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), ('rival', 'Rival AB');

INSERT INTO moment.user_accounts (company_id, name) VALUES (1, 'Ola Nordmann'), (2, 'SECRET-B user');
INSERT INTO moment.customers (company_id, name, customer_number) VALUES
	(1, 'Fjord Consulting', 'C001'), (1, 'Aurora Energy', 'C002'), (2, 'SECRET-B customer', 'C001');
INSERT INTO moment.projects (company_id, customer_id, name) VALUES (1, 1, 'Website'), (2, 3, 'SECRET-B project');
INSERT INTO moment.offers (company_id, customer_id, project_id, name, currency_code, total_sum) VALUES
	(1, 1, 1, 'Website offer', 'NOK', 1000), (2, 3, 2, 'SECRET-B offer', 'NOK', 99999);
INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date, minutes, description) VALUES
	(1, 1, 1, '2024-01-02', 60, 'Kick-off'), (2, 2, 2, '2024-01-02', 480, 'SECRET-B work');
-- Twins: rows of B with the same ids as rows of A.  Ids are unique per table
-- when they come from the sequences, but keys are (company_id, id): a join
-- or lookup that forgot the company would find these.
INSERT INTO moment.customers (company_id, id, name) VALUES (2, 1, 'SECRET-B twin customer');
INSERT INTO moment.projects (company_id, id, customer_id, name) VALUES (2, 1, 1, 'SECRET-B twin project');
INSERT INTO moment.user_accounts (company_id, id, name) VALUES (2, 1, 'SECRET-B twin user');
INSERT INTO moment.time_records (company_id, id, project_id, user_account_id, time_record_date, minutes, description)
	VALUES (2, 1, 1, 1, '2024-01-02', 1440, 'SECRET-B twin work');

SELECT moment.grant_company('cloudware', 'regress_moment_a1');
SELECT moment.grant_company('cloudware', 'regress_moment_grp', false);
SELECT moment.grant_company('rival', 'regress_moment_b1');
SELECT moment.grant_company('rival', 'regress_moment_mix');
SELECT moment.grant_company('cloudware', 'regress_moment_mix', false);
SELECT moment.grant_company('cloudware', 'regress_moment_revoked');
RESET client_min_messages;
\set ECHO all

--
-- 1. A role granted company A reads A and only A, through every function
--
SET ROLE regress_moment_a1;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.get('customers', 1, 'name+customerNumber') $$);
SELECT pg_temp.try($$ SELECT moment.get('customers', 3) $$);
-- relations join on (company_id, id): A's project 1 has A's customer 1, not B's twin
SELECT pg_temp.try($$ SELECT moment.get('projects', 1, 'name+customer.name') $$);
SELECT pg_temp.try($$ SELECT moment.get('projects', 2) $$);
SELECT pg_temp.try($$ SELECT moment.get('timeRecords', 1, 'description+project.name+project.customer.name+userAccount.name+metadata.summary') $$);
SELECT pg_temp.try($$ SELECT moment.get('timeRecords', 2) $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 2, 'name+metadata.overviewPage') $$);
-- listings: content and every aggregate cover A's rows only
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('userAccounts')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('projects')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('offers')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('timeRecords', 'description')) $$);
SELECT pg_temp.try($$ SELECT moment.list('customers', 'metadata.count', page => 0, size => 10) - 'content' $$);
SELECT pg_temp.try($$ SELECT moment.list('offers', 'metadata.overviewPage+metadata.sums') -> 'metadata' $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'metadata.summary+metadata.count') -> 'metadata' $$);
SELECT pg_temp.try($$ SELECT moment.list('projects', 'name+customer.name') -> 'content' $$);
-- filters on B's ids, names and relations find nothing of B
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers', 'name', '{"id": [1, 2, 3]}')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers', 'name', '{"name": {"like": "SECRET%"}}')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('projects', 'name', '{"customer.name": {"like": "SECRET%"}}')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('timeRecords', 'description', '{"project.customer.name": {"isNull": false}}')) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('timeRecords', 'description', '{"minutes": {"gte": 100}}')) $$);
-- rows and the typed listings
SELECT pg_temp.try($$ SELECT string_agg(r ->> 'name', ', ') FROM moment.rows('customers') r $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.rows('customers', 'name', '{"id": 3}') $$);
SELECT pg_temp.try($$ SELECT string_agg(company_id || ':' || name, ', ') FROM moment.list_customers() $$);
SELECT pg_temp.try($$ SELECT string_agg(company_id || ':' || name, ', ') FROM moment.list_projects() $$);
SELECT pg_temp.try($$ SELECT string_agg(company_id || ':' || name, ', ') FROM moment.list_offers() $$);
SELECT pg_temp.try($$ SELECT string_agg(company_id || ':' || description, ', ') FROM moment.list_time_records() $$);
SELECT pg_temp.try($$ SELECT string_agg(company_id || ':' || name, ', ') FROM moment.list_user_accounts() $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_customers('{"name": "SECRET-B customer"}') $$);
-- the router, with and without the company prefix
SELECT pg_temp.try($$ SELECT status || ' ' || pg_temp.names(response) FROM moment.api('GET', '/customers') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || pg_temp.names(response) FROM moment.api('GET', '/api/1.0/companies/cloudware/customers') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/api/1.0/companies/cloudware/customers/3') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'name') FROM moment.api('GET', '/api/1.0/companies/cloudware/customers/1') $$);
-- direct SQL: row-level security shows the company in force only
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers WHERE company_id = 2 $$);
SELECT pg_temp.try($$ SELECT string_agg(description, ', ' ORDER BY id) FROM moment.time_records $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.user_accounts $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.projects $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.offers $$);
-- the companies table shows the granted companies only
SELECT pg_temp.try($$ SELECT string_agg(code, ', ' ORDER BY id) FROM moment.companies $$);

--
-- 2. Selecting a company that is not granted is 42501, on every path; a
-- company that does not exist looks the same (its existence is not revealed)
--
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT moment.get('customers', 3) $$);
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.rows('customers') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_customers() $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 3, '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', 3) $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"delete": [3]}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/customers') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('DELETE', '/customers/3') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers WHERE company_id = 2 $$);
SELECT pg_temp.try($$ INSERT INTO moment.customers (company_id, name) VALUES (2, 'X') RETURNING name $$);
SET moment.company = 'nosuchcompany';
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
-- the prefix of the router selects the company too, and only for the request
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/api/1.0/companies/rival/customers') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/api/1.0/companies/rival/customers/3') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/api/1.0/companies/rival/customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/api/1.0/companies/rival/customers/batch', '{"create": [{"name": "X"}]}') $$);
SELECT current_setting('moment.company') AS company_after_router;
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT status || ' ' || pg_temp.names(response) FROM moment.api('GET', '/api/1.0/companies/cloudware/customers') $$);
SELECT current_setting('moment.company') AS company_after_router;
SET moment.company = 'cloudware';

--
-- 3. Writes of a writable role change its own company only
--
-- (ids drawn from the sequences are left out of the output: failed inserts use some up)
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "Polar Retail"}', 'name+customerState') - 'id' $$);
-- update and delete of B's rows, or B's twin ids, find A's rows or nothing (P0002)
SELECT pg_temp.try($$ SELECT moment.update('customers', 3, '{"name": "hijacked"}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', 3) $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"email": "post@fjord.no"}', 'name+email') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "Short-lived"}', 'name') - 'id' $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', c.id) = c.id FROM moment.customers c WHERE c.name = 'Short-lived' $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"update": {"3": {"name": "hijacked"}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"create": [{"name": "Batch one"}], "delete": [3]}') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers WHERE name = 'Batch one' $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('PUT', '/customers/3', '{"name": "hijacked"}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('DELETE', '/customers/3') $$);
-- a foreign key cannot point at another company's row: 23503
SELECT pg_temp.try($$ SELECT moment.create('projects', '{"name": "X", "customerId": 3}') $$);
SELECT pg_temp.try($$ SELECT moment.update('projects', 1, '{"customerId": 3}') $$);
SELECT pg_temp.try($$ SELECT moment.create('offers', '{"name": "X", "customerId": 1, "projectId": 2, "currencyCode": "NOK"}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 2, "userAccountId": 1, "timeRecordDate": "2024-01-05", "minutes": 5}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 2, "timeRecordDate": "2024-01-05", "minutes": 5}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('projects', '{"create": [{"name": "ok", "customerId": 1}, {"name": "X", "customerId": 3}]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('projects', '{"update": {"1": {"customerId": 3}}}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/projects', '{"name": "X", "customerId": 3}') $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.projects $$);
-- the company cannot be named in a body (428C9), a filter, an order or an include (42703)
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"create": [{"name": "X", "companyId": 2}]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"update": {"1": {"companyId": 2}}}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/customers', '{"name": "X", "companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('PATCH', '/customers/1', '{"companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "company_id": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name', '{"companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name', '{"company_id": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.list('projects', 'name', '{"customer.companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name', '{}', 'companyId') $$);
SELECT pg_temp.try($$ SELECT moment.get('customers', 1, 'companyId') $$);
SELECT pg_temp.try($$ SELECT moment.get('projects', 1, 'customer.companyId') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_customers('{"companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/customers?companyId=2') $$);
-- direct SQL: row-level security refuses rows of B, and B's rows are out of reach
SELECT pg_temp.try($$ INSERT INTO moment.customers (company_id, name) VALUES (2, 'X') RETURNING name $$);
SELECT pg_temp.try($$ UPDATE moment.customers SET company_id = 2 WHERE id = 1 RETURNING name $$);
SELECT pg_temp.try($$ WITH u AS (UPDATE moment.customers SET name = 'hijacked' WHERE company_id = 2 RETURNING 1) SELECT count(*) FROM u $$);
SELECT pg_temp.try($$ WITH d AS (DELETE FROM moment.time_records WHERE description LIKE 'SECRET%' RETURNING 1) SELECT count(*) FROM d $$);
SELECT pg_temp.try($$ INSERT INTO moment.customers (company_id, name) VALUES (1, 'Direct AS') RETURNING name $$);
SELECT pg_temp.try($$ DELETE FROM moment.customers WHERE name = 'Direct AS' RETURNING name $$);
RESET ROLE;

--
-- 4. A read-only grant (A2 through its group) reads, and every write path is 42501
--
SET ROLE regress_moment_a2;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.get('customers', 1) $$);
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT string_agg(r ->> 'name', ', ') FROM moment.rows('customers') r $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ') FROM moment.list_customers() $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT status || ' ' || pg_temp.names(response) FROM moment.api('GET', '/customers') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', 2) $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"create": [{"name": "X"}]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"update": {"1": {"name": "X"}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"delete": [2]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('PUT', '/customers/1', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('PATCH', '/customers/1', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('DELETE', '/customers/2') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/customers/batch', '{"delete": [2]}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/api/1.0/companies/cloudware/customers/batch', '{"create": [{"name": "X"}]}') $$);
SELECT pg_temp.try($$ INSERT INTO moment.customers (company_id, name) VALUES (1, 'X') RETURNING name $$);
SELECT pg_temp.try($$ UPDATE moment.customers SET name = 'X' WHERE id = 1 RETURNING name $$);
SELECT pg_temp.try($$ DELETE FROM moment.customers WHERE id = 2 RETURNING name $$);
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
RESET ROLE;
-- membership counts through nested groups, with the same read-only grant
SET ROLE regress_moment_a3;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/customers', '{"name": "X"}') $$);
RESET ROLE;

-- A role writable on B and read-only on A has write privileges on the
-- tables, but still cannot write A, through the API or directly
SET ROLE regress_moment_mix;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"create": [{"name": "X"}]}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ INSERT INTO moment.customers (company_id, name) VALUES (1, 'X') RETURNING name $$);
SELECT pg_temp.try($$ UPDATE moment.customers SET name = 'X' WHERE id = 1 RETURNING name $$);
SELECT pg_temp.try($$ DELETE FROM moment.customers WHERE id = 2 RETURNING name $$);
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "SECRET-B new"}', 'name') - 'id' $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.customers $$);
RESET ROLE;

-- B1 sees B only, A's row 1 is not B's twin 1
SET ROLE regress_moment_b1;
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT moment.get('projects', 1, 'name+customer.name') $$);
SELECT pg_temp.try($$ SELECT moment.get('timeRecords', 1, 'description+project.name+project.customer.name+userAccount.name') $$);
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
RESET ROLE;

--
-- 5. A role without a grant: 42501 everywhere, and no rows directly
--
SET ROLE regress_moment_nobody;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.get('customers', 1) $$);
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.rows('customers') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_customers() $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_time_records() $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', 2) $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"create": [{"name": "X"}]}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/customers') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/api/1.0/companies/cloudware/customers/1') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('POST', '/customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.time_records $$);
SELECT pg_temp.try($$ INSERT INTO moment.customers (company_id, name) VALUES (1, 'X') RETURNING name $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.companies $$);
RESET ROLE;

-- A revoked grant stops working at once, in the same session, directly too
SET ROLE regress_moment_revoked;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
RESET ROLE;
SELECT moment.revoke_company('cloudware', 'regress_moment_revoked');
SET ROLE regress_moment_revoked;
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
SELECT pg_temp.try($$ INSERT INTO moment.customers (company_id, name) VALUES (1, 'X') RETURNING name $$);
RESET ROLE;

-- No company in force: 22023, for the functions and for direct SQL
RESET moment.company;
SET ROLE regress_moment_a1;
SELECT pg_temp.try($$ SELECT moment.get('customers', 1) $$);
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/customers') $$);
RESET ROLE;

--
-- 6. PostgREST's way: SET LOCAL role and the JWT claims, moment.company unset
--
BEGIN;
SELECT set_config('role', 'regress_moment_a1', true) AS role,
	   set_config('request.jwt.claims', '{"role": "regress_moment_a1", "company": "cloudware"}', true) IS NOT NULL AS claims;
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT moment.get('customers', 3) $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "Via PostgREST"}', 'name') - 'id' $$);
SELECT pg_temp.try($$ SELECT string_agg(name, ', ' ORDER BY id) FROM moment.customers $$);
COMMIT;
-- the claims were local to that transaction
SET ROLE regress_moment_a1;
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
RESET ROLE;
BEGIN;
SELECT set_config('role', 'regress_moment_a1', true) AS role,
	   set_config('request.jwt.claims', '{"role": "regress_moment_a1", "company": "rival"}', true) IS NOT NULL AS claims;
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('GET', '/customers') $$);
COMMIT;
BEGIN;
SELECT set_config('role', 'regress_moment_a2', true) AS role,
	   set_config('request.jwt.claims', '{"role": "regress_moment_a2", "company": "cloudware"}', true) IS NOT NULL AS claims;
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"delete": [2]}') $$);
SELECT pg_temp.try($$ SELECT status || ' ' || (response ->> 'error_type') FROM moment.api('DELETE', '/customers/2') $$);
COMMIT;
BEGIN;
SELECT set_config('role', 'regress_moment_a1', true) AS role,
	   set_config('request.jwt.claims', '{"role": "regress_moment_a1"}', true) IS NOT NULL AS claims;
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
COMMIT;
-- moment.company, when set, wins over the claims
SET moment.company = 'cloudware';
BEGIN;
SELECT set_config('role', 'regress_moment_a1', true) AS role,
	   set_config('request.jwt.claims', '{"role": "regress_moment_a1", "company": "rival"}', true) IS NOT NULL AS claims;
SELECT pg_temp.try($$ SELECT pg_temp.names(moment.list('customers')) $$);
COMMIT;
RESET moment.company;

--
-- 7. No widening through settings or administration functions
--
SET ROLE regress_moment_a1;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SET moment.max_limit = 30000 $$);
SELECT pg_temp.try($$ SET moment.max_batch_size = 1000000 $$);
SELECT pg_temp.try($$ SET moment.default_limit = 30001 $$);
SELECT pg_temp.try($$ SELECT set_config('moment.default_limit', '1000000', false) $$);
SELECT pg_temp.try($$ SELECT set_config('moment.company', 'rival', true) || ' ' || moment.list('customers')::text $$);
SELECT pg_temp.try($$ SELECT moment.grant_company('rival', 'regress_moment_a1') $$);
SELECT pg_temp.try($$ SELECT moment.revoke_company('cloudware', 'regress_moment_mix') $$);
SELECT pg_temp.try($$ SELECT moment.register_entity('hack', 'moment.customers') $$);
SELECT pg_temp.try($$ SELECT moment.define_part('customers', 'hack', ARRAY['name']) $$);
SELECT pg_temp.try($$ SELECT moment.define_metadata('customers', 'hack', 'n', '(SELECT count(*) FROM moment.customers)') $$);
SELECT pg_temp.try($$ SELECT moment.enable_tenant_security('moment.customers') $$);
SELECT pg_temp.try($$ INSERT INTO moment.company_grants VALUES (2, 'regress_moment_a1', true) RETURNING 1 $$);
SELECT pg_temp.try($$ UPDATE moment.company_grants SET company_id = 2 RETURNING 1 $$);
SELECT pg_temp.try($$ INSERT INTO moment.companies (code, name) VALUES ('mine', 'Mine') RETURNING code $$);
SELECT pg_temp.try($$ UPDATE moment.companies SET code = 'rival2' WHERE code = 'rival' RETURNING code $$);
SELECT pg_temp.try($$ INSERT INTO moment.metadata (entity, set_name, key, expression) VALUES ('customers', 'hack', 'n', 'count(*)') RETURNING 1 $$);
SELECT pg_temp.try($$ UPDATE moment.parts SET fields = NULL WHERE entity = 'customers' RETURNING 1 $$);
SELECT pg_temp.try($$ DELETE FROM moment.entities RETURNING 1 $$);
SELECT pg_temp.try($$ ALTER TABLE moment.customers DISABLE ROW LEVEL SECURITY $$);
SELECT pg_temp.try($$ DROP POLICY moment_tenant_read ON moment.customers $$);
RESET ROLE;
-- even given EXECUTE, the administration functions refuse a role that is
-- neither a superuser nor the extension owner
GRANT EXECUTE ON FUNCTION moment.grant_company(text, name, boolean), moment.register_entity(text, regclass),
	moment.define_metadata(text, text, text, text, integer) TO regress_moment_a1;
SET ROLE regress_moment_a1;
SELECT pg_temp.try($$ SELECT moment.grant_company('rival', 'regress_moment_a1') $$);
SELECT pg_temp.try($$ SELECT moment.register_entity('hack', 'moment.customers') $$);
SELECT pg_temp.try($$ SELECT moment.define_metadata('customers', 'hack', 'n', '(SELECT count(*) FROM moment.customers)') $$);
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
RESET ROLE;
REVOKE EXECUTE ON FUNCTION moment.grant_company(text, name, boolean), moment.register_entity(text, regclass),
	moment.define_metadata(text, text, text, text, integer) FROM regress_moment_a1;

--
-- 8. A superuser may use any company; B's rows came through untouched
--
SET moment.company = 'rival';
SELECT pg_temp.names(moment.list('customers')) AS customers_of_rival;
SELECT company_id, name, email FROM moment.customers ORDER BY company_id, name;
SELECT company_id, id, name, customer_id FROM moment.projects ORDER BY company_id, id;
SELECT company_id, id, description, minutes FROM moment.time_records ORDER BY company_id, id;
SELECT count(*) AS metadata_rows FROM moment.metadata WHERE set_name = 'hack';
SELECT count(*) AS grants FROM moment.company_grants;
RESET moment.company;

--
-- 9. This database's marks of the roles with grants: SELECT on one column of
--    moment.grantees each (m000..m255 by the oid), never on the table, so that
--    no ACL grows with the number of roles granted (with one ACL holding every
--    mark, each first grant rewrote a list of all the roles before it: 10 000
--    roles took 26.6 s to provision, a call growing from 1.6 to 3.6 ms)
--
SELECT count(*) AS mark_columns FROM pg_attribute a
 WHERE a.attrelid = 'moment.grantees'::regclass AND a.attnum > 0 AND NOT a.attisdropped;
DO $$ BEGIN FOR i IN 1..40 LOOP EXECUTE format('CREATE ROLE %I', 'regress_moment_mk' || i); END LOOP; END $$;
-- Provisioning reads by key only: grant_company and revoke_company make no
-- seq scan of companies, company_grants, pg_auth_members or pg_shdepend,
-- whatever the statistics (a seq scan per call of a table that grows with the
-- grants makes provisioning quadratic).  Two were found: a role name of type
-- name passed its collation ("C") to company_code, and a comparison in "C"
-- cannot use the index on code (in the default collation); and the
-- statistics of pg_auth_members and pg_shdepend, far behind during a burst of
-- grants, had each call scan them (here: costs that make a seq scan look
-- free, as statistics of tables far smaller than they are do).
CREATE FUNCTION pg_temp.seq_scans() RETURNS jsonb LANGUAGE sql AS $$
	SELECT pg_catalog.pg_stat_clear_snapshot();
	SELECT pg_catalog.jsonb_object_agg(s.relname, s.seq_scan) FROM pg_catalog.pg_stat_all_tables s
	 WHERE (s.schemaname, s.relname) IN (('moment', 'companies'), ('moment', 'company_grants'),
										 ('pg_catalog', 'pg_auth_members'), ('pg_catalog', 'pg_shdepend'))
$$;
CREATE FUNCTION pg_temp.seq_scans_since(before jsonb) RETURNS jsonb LANGUAGE sql AS $$
	SELECT pg_catalog.jsonb_object_agg(n.key, n.value::bigint - (before ->> n.key)::bigint)
	  FROM pg_catalog.jsonb_each_text(pg_temp.seq_scans()) n
$$;
SET seq_page_cost = 0;
SET cpu_tuple_cost = 0;
SET cpu_operator_cost = 0;
DISCARD PLANS;  -- the plans of this session's earlier calls were made with normal costs
SELECT pg_catalog.pg_stat_force_next_flush();
SELECT pg_temp.seq_scans() AS scans_before \gset
SELECT count(moment.grant_company('cloudware', r.rolname)) AS granted
  FROM pg_catalog.pg_roles r WHERE r.rolname LIKE 'regress\_moment\_mk%';
SELECT pg_catalog.pg_stat_force_next_flush();
SELECT pg_temp.seq_scans_since(:'scans_before') AS seq_scans_of_40_grants;
RESET seq_page_cost;
RESET cpu_tuple_cost;
RESET cpu_operator_cost;
SELECT NOT EXISTS (SELECT FROM aclexplode(c.relacl) e WHERE e.grantee <> c.relowner) AS no_mark_on_the_table
  FROM pg_class c WHERE c.oid = 'moment.grantees'::regclass;
SELECT count(*) AS marked_on_their_column
  FROM pg_roles r
  JOIN pg_attribute a ON a.attrelid = 'moment.grantees'::regclass AND a.attname = moment_internal.mark_column(r.oid)
 WHERE r.rolname LIKE 'regress\_moment\_mk%'
   AND EXISTS (SELECT FROM aclexplode(a.attacl) e WHERE e.grantee = r.oid AND e.privilege_type = 'SELECT')
   AND moment_internal.holds_mark(r.oid);
SELECT max(cardinality(a.attacl)) <= 3 AS short_acls
  FROM pg_attribute a WHERE a.attrelid = 'moment.grantees'::regclass AND a.attnum > 0;
-- and revoke_company
SET seq_page_cost = 0;
SET cpu_tuple_cost = 0;
SET cpu_operator_cost = 0;
DISCARD PLANS;  -- the plans of this session's earlier calls were made with normal costs
SELECT pg_catalog.pg_stat_force_next_flush();
SELECT pg_temp.seq_scans() AS scans_before \gset
SELECT count(moment.revoke_company('cloudware', r.rolname)) AS revoked
  FROM pg_catalog.pg_roles r WHERE r.rolname LIKE 'regress\_moment\_mk%';
SELECT pg_catalog.pg_stat_force_next_flush();
SELECT pg_temp.seq_scans_since(:'scans_before') AS seq_scans_of_40_revokes;
RESET seq_page_cost;
RESET cpu_tuple_cost;
RESET cpu_operator_cost;
SELECT count(*) AS marks_left
  FROM pg_roles r WHERE r.rolname LIKE 'regress\_moment\_mk%' AND moment_internal.holds_mark(r.oid);
-- with their marks gone, nothing of this database keeps them
DO $$ BEGIN FOR i IN 1..40 LOOP EXECUTE format('DROP ROLE %I', 'regress_moment_mk' || i); END LOOP; END $$;

-- roles are cluster-wide: drop them
SELECT count(*) AS revoked
  FROM (SELECT moment.revoke_company(c.code, g.role::name)
		  FROM moment.company_grants g JOIN moment.companies c ON c.id = g.company_id) r;
SELECT count(*) AS grants_left FROM moment.company_grants;
DROP OWNED BY regress_moment_a1, regress_moment_a2, regress_moment_a3, regress_moment_grp, regress_moment_grp2,
	regress_moment_b1, regress_moment_mix, regress_moment_revoked, regress_moment_nobody;
DROP ROLE regress_moment_a1, regress_moment_a2, regress_moment_a3, regress_moment_grp, regress_moment_grp2,
	regress_moment_b1, regress_moment_mix, regress_moment_revoked, regress_moment_nobody;
