-- security: what a role sharing the server with moment cannot do (issue 10,
-- items 1, 4, 5, 6, 7, 8 and the read-only LOCK): attach moment's trigger
-- functions to its own tables, slip its operators into moment's statements,
-- fool the administrator checks with pg_temp objects, hand a table it owns
-- to register_entity, pass a grant through NOINHERIT or through the rows a
-- dropped role left, lift its own cap, call internal helpers, or block
-- another tenant with a read-only grant.
--
-- Companies: cloudware (1), rival (2).  Roles (cluster-wide, dropped at the end):
--   regress_moment_sec_tenant    cloudware, writable
--   regress_moment_sec_reader    cloudware, read-only
--   regress_moment_sec_mallory   no grant; CREATE on schema public
--   regress_moment_sec_eve       cloudware, writable; owns schema regress_moment_evil
--   regress_moment_sec_staff     cloudware, writable (a group role)
--   regress_moment_sec_noinherit NOINHERIT member of regress_moment_sec_staff
--   regress_moment_sec_newbie    starts with a grant row a dropped role left
\set ECHO none
SET client_min_messages = warning;
TRUNCATE moment.companies, moment.company_grants, moment.user_accounts, moment.customers,
	moment.projects, moment.offers, moment.time_records, moment.project_extensions,
	moment.project_memberships, moment.tasks RESTART IDENTITY CASCADE;
RESET moment.company;
RESET moment.default_limit;

-- The result of a statement, or its SQLSTATE and message.
CREATE FUNCTION pg_temp.try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	result text;
BEGIN
	IF sql ~* '^\s*(set|reset|lock|create)\s' THEN
		EXECUTE sql;
		RETURN 'ok';
	END IF;
	EXECUTE sql INTO result;
	RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END
$$;
GRANT EXECUTE ON FUNCTION pg_temp.try(text) TO PUBLIC;

DROP ROLE IF EXISTS regress_moment_sec_tenant, regress_moment_sec_reader, regress_moment_sec_mallory,
	regress_moment_sec_eve, regress_moment_sec_staff, regress_moment_sec_noinherit, regress_moment_sec_newbie;
CREATE ROLE regress_moment_sec_tenant;
CREATE ROLE regress_moment_sec_reader;
CREATE ROLE regress_moment_sec_mallory;
CREATE ROLE regress_moment_sec_eve;
CREATE ROLE regress_moment_sec_staff;
CREATE ROLE regress_moment_sec_noinherit NOINHERIT IN ROLE regress_moment_sec_staff;
CREATE ROLE regress_moment_sec_newbie;

INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), ('rival', 'Rival AB');
INSERT INTO moment.customers (company_id, name) VALUES
	(1, 'Fjord Consulting'), (1, 'Aurora Energy'), (2, 'SECRET-B customer');
INSERT INTO moment.user_accounts (company_id, name) VALUES (1, 'Ola'), (2, 'SECRET-B user');
INSERT INTO moment.projects (company_id, customer_id, name) VALUES (1, 1, 'Website'), (2, 3, 'SECRET-B project');
INSERT INTO moment.project_extensions (company_id, project_id, name) VALUES (1, 1, 'Design'), (2, 2, 'SECRET-B activity');
INSERT INTO moment.time_records (company_id, project_id, user_account_id, project_extension_id, time_record_date, minutes, description)
	VALUES (1, 1, 1, 1, '2024-01-02', 60, 'Kick-off'), (2, 2, 2, 2, '2024-01-02', 480, 'SECRET-B work');

SELECT moment.grant_company('cloudware', 'regress_moment_sec_tenant');
SELECT moment.grant_company('cloudware', 'regress_moment_sec_reader', false);
SELECT moment.grant_company('cloudware', 'regress_moment_sec_eve');
SELECT moment.grant_company('cloudware', 'regress_moment_sec_staff');

-- a user table with varchar columns: pg_catalog has no =(varchar, varchar),
-- so an operator of that exact signature in a schema of the path wins
-- against pg_catalog's =(text, text) in any statement written with a bare "="
CREATE TABLE public.regress_labels (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	code varchar(20),
	title varchar,
	PRIMARY KEY (company_id, id)
);
SELECT moment.register_entity('regressLabels', 'public.regress_labels');
INSERT INTO public.regress_labels (company_id, code, title) VALUES
	(1, 'a', 'Alpha'), (1, 'b', 'Beta'), (1, 'c', 'Gamma'), (2, 'a', 'SECRET-B label');

-- what a hijacked operator leaves behind
CREATE TABLE public.regress_hijack_log (who text NOT NULL, what text NOT NULL);
GRANT INSERT ON public.regress_hijack_log TO PUBLIC;
RESET client_min_messages;
\set ECHO all

--
-- 1. moment's trigger functions are not PUBLIC's, and check what they write.
-- (0.1.0: a role with only the default TEMP right attached set_updated_at to
-- a temp table with a text updated_at and crashed the server with an UPDATE)
--
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'moment'::regnamespace AND p.prorettype = 'trigger'::regtype
 ORDER BY p.proname;
SET ROLE regress_moment_sec_mallory;
CREATE TEMP TABLE regress_stamped (id int, updated_at text);
SELECT pg_temp.try($$ CREATE TRIGGER stamp BEFORE UPDATE ON regress_stamped FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at() $$);
SELECT pg_temp.try($$ CREATE TRIGGER lock BEFORE UPDATE ON regress_stamped FOR EACH STATEMENT EXECUTE FUNCTION moment.time_lock_check() $$);
SELECT pg_temp.try($$ CREATE TRIGGER defaults BEFORE INSERT ON regress_stamped FOR EACH ROW EXECUTE FUNCTION moment.time_record_defaults() $$);
INSERT INTO regress_stamped VALUES (1, 'text');
UPDATE regress_stamped SET id = 2 RETURNING id, updated_at;
DROP TABLE regress_stamped;
RESET ROLE;
-- attached by a superuser, each trigger function refuses what it cannot handle
CREATE TEMP TABLE regress_stamped_text (id int, updated_at text);
CREATE TRIGGER stamp BEFORE UPDATE ON regress_stamped_text FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
INSERT INTO regress_stamped_text VALUES (1, 'text');
SELECT pg_temp.try($$ UPDATE regress_stamped_text SET id = 2 RETURNING updated_at $$);
CREATE TEMP TABLE regress_stamped_none (id int);
CREATE TRIGGER stamp BEFORE UPDATE ON regress_stamped_none FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
INSERT INTO regress_stamped_none VALUES (1);
SELECT pg_temp.try($$ UPDATE regress_stamped_none SET id = 2 RETURNING id $$);
CREATE TEMP TABLE regress_stamped_ts (id int, updated_at timestamp);
CREATE TRIGGER stamp BEFORE UPDATE ON regress_stamped_ts FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
INSERT INTO regress_stamped_ts VALUES (1, 'epoch');
SELECT pg_temp.try($$ UPDATE regress_stamped_ts SET id = 2 RETURNING updated_at > 'epoch' $$);
-- a domain's constraint holds for the timestamp written
CREATE DOMAIN pg_temp.regress_old_stamp AS timestamptz CHECK (VALUE < '2000-01-01');
CREATE TEMP TABLE regress_stamped_domain (id int, updated_at pg_temp.regress_old_stamp);
CREATE TRIGGER stamp BEFORE UPDATE ON regress_stamped_domain FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
INSERT INTO regress_stamped_domain VALUES (1, '1999-12-31');
SELECT pg_temp.try($$ UPDATE regress_stamped_domain SET id = 2 RETURNING updated_at $$);
-- wrong event or level
CREATE TRIGGER stamp_after AFTER UPDATE ON regress_stamped_ts FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
SELECT pg_temp.try($$ UPDATE regress_stamped_ts SET id = 3 RETURNING id $$);
-- the time record triggers work on moment.time_records only
CREATE TEMP TABLE regress_records (LIKE moment.time_records INCLUDING DEFAULTS);
CREATE TRIGGER lock AFTER INSERT ON regress_records REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION moment.time_lock_check();
SELECT pg_temp.try($$ INSERT INTO regress_records (company_id, id, project_id, user_account_id, time_record_date, minutes) VALUES (1, 1, 1, 1, '2024-01-01', 1) RETURNING id $$);
CREATE TEMP TABLE regress_records_bare (company_id bigint, project_membership_id bigint);
CREATE TRIGGER defaults BEFORE INSERT ON regress_records_bare FOR EACH ROW EXECUTE FUNCTION moment.time_record_defaults();
SELECT pg_temp.try($$ INSERT INTO regress_records_bare VALUES (1, NULL) RETURNING company_id $$);
DROP TABLE regress_stamped_text, regress_stamped_none, regress_stamped_ts, regress_stamped_domain,
	regress_records, regress_records_bare;

--
-- 4. Operator hijacking.  A role with CREATE on public defines operators of
-- the exact signatures of varchar comparisons; a superuser's listings with
-- filters on varchar fields must not call them (0.1.0 wrote bare operators).
--
GRANT CREATE ON SCHEMA public TO regress_moment_sec_mallory;
SET ROLE regress_moment_sec_mallory;
CREATE FUNCTION public.regress_evil_cmp(varchar, varchar) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.regress_hijack_log VALUES (current_user, 'varchar operator');
	RETURN true;
END $$;
CREATE OPERATOR public.= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
CREATE OPERATOR public.<> (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
CREATE OPERATOR public.< (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
CREATE OPERATOR public.<= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
CREATE OPERATOR public.> (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
CREATE OPERATOR public.>= (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
CREATE OPERATOR public.~~ (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
CREATE OPERATOR public.~~* (LEFTARG = varchar, RIGHTARG = varchar, FUNCTION = public.regress_evil_cmp);
RESET ROLE;
-- the trap works on a bare "=" (this is what a generated statement must never write)
SELECT 'a'::varchar = 'b'::varchar AS bare_equals_is_hijacked;
SELECT who, what FROM public.regress_hijack_log;
TRUNCATE public.regress_hijack_log;
SET search_path = public, pg_catalog;
SET moment.company = 'cloudware';
SELECT moment.list('regressLabels', 'code', '{"code": "a"}') AS eq;
SELECT moment.list('regressLabels', 'code', '{"code": {"neq": "a"}}') AS neq;
SELECT moment.list('regressLabels', 'code', '{"code": {"lt": "b", "gte": "a"}}') AS lt_gte;
SELECT moment.list('regressLabels', 'code', '{"code": {"gt": "b", "lte": "c"}}') AS gt_lte;
SELECT moment.list('regressLabels', 'code', '{"code": {"like": "a%"}, "title": {"ilike": "al%"}}') AS likes;
SELECT moment.list('regressLabels', 'code', '{"code": ["a", "c"]}') AS in_array;
SELECT moment.list('regressLabels', 'code', '{"code": {"in": ["b"]}}', 'title.desc') AS in_op;
SELECT moment.get('regressLabels', 1, 'code+title') AS get;
SELECT count(*) AS rows FROM moment.rows('regressLabels', 'code', '{"title": "Beta"}');
SELECT count(*) AS typed FROM moment.list_regress_labels('{"title": "Beta"}');
SELECT status, response FROM moment.api('GET', '/regressLabels?code=a&code=b&sort=title,desc');
SELECT moment.update('regressLabels', 2, '{"title": "Beta"}', 'title') AS update;
SELECT moment.batch('regressLabels', '{"update": {"2": {"title": "Beta"}, "3": {"title": "Gamma"}}}', 'title') AS batch;
SELECT count(*) AS nothing_ran FROM public.regress_hijack_log;
RESET search_path;

-- A schema first in the search path, before pg_catalog, holding =(bigint,
-- bigint) and =(text, text) that say yes to everything: company_id = $1
-- would match every company (0.1.0: only row-level security stopped it, and
-- a superuser has none).
CREATE SCHEMA regress_moment_evil AUTHORIZATION regress_moment_sec_eve;
SET ROLE regress_moment_sec_eve;
CREATE FUNCTION regress_moment_evil.yes8(bigint, bigint) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.regress_hijack_log VALUES (current_user, 'bigint operator');
	RETURN true;
END $$;
CREATE FUNCTION regress_moment_evil.yest(text, text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
	INSERT INTO public.regress_hijack_log VALUES (current_user, 'text operator');
	RETURN true;
END $$;
CREATE OPERATOR regress_moment_evil.= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_moment_evil.yes8);
CREATE OPERATOR regress_moment_evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = regress_moment_evil.yest);
CREATE OPERATOR regress_moment_evil.<= (LEFTARG = bigint, RIGHTARG = bigint, FUNCTION = regress_moment_evil.yes8);
CREATE FUNCTION regress_moment_evil.count() RETURNS bigint LANGUAGE sql AS 'SELECT 424242::bigint';
CREATE FUNCTION regress_moment_evil.sum(integer) RETURNS bigint LANGUAGE sql AS 'SELECT 424242::bigint';
GRANT USAGE ON SCHEMA regress_moment_evil TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA regress_moment_evil TO PUBLIC;
RESET ROLE;
TRUNCATE public.regress_hijack_log;
-- the tenant itself, with its own schema first
SET ROLE regress_moment_sec_eve;
SET search_path = regress_moment_evil, pg_catalog, public;
SET moment.company = 'cloudware';
SELECT moment.list('customers', 'name+metadata.count', '{"name": "Fjord Consulting"}') AS customers;
SELECT moment.get('customers', 3) AS other_company_id;
SELECT moment.list('timeRecords', 'description+metadata.summary') AS records;
SELECT moment.list('projectExtensions', 'name+metadata.summary') AS activities;
SELECT pg_catalog.count(*) AS rows FROM moment.rows('customers', 'name', '{"id": 3}');
SELECT string_agg(name, ', ') AS typed FROM moment.list_customers();
SELECT status, response -> 'content' AS content FROM moment.api('GET', '/customers?name=SECRET-B%20customer');
SELECT project_name, minutes FROM moment.hours_report('2024-01-01', '2024-12-31');
SELECT moment.update('customers', 1, '{"email": "post@fjord.no"}', 'name+email') AS update;
SELECT pg_temp.try($$ SELECT moment.update('customers', 3, '{"name": "hijacked"}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', 3) $$);
-- the same path for a superuser, who has no row-level security to fall back on
RESET ROLE;
SET search_path = regress_moment_evil, pg_catalog, public;
SELECT moment.list('customers', 'name+metadata.count') AS superuser_customers;
SELECT moment.list('projectExtensions', 'name+metadata.summary') AS superuser_activities;
SELECT project_name, minutes FROM moment.project_registered_hours('2024-01-01', '2024-12-31');
RESET search_path;
SELECT count(*) AS nothing_ran FROM public.regress_hijack_log;
SELECT name FROM moment.customers WHERE company_id = 2;

-- pg_temp objects named like catalogs do not fool the administrator checks
-- (0.1.0: a temp pg_roles view made require_admin() pass)
SET ROLE regress_moment_sec_eve;
CREATE TEMP VIEW pg_roles AS
	SELECT r.rolname, true AS rolsuper, r.oid FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
CREATE TEMP VIEW pg_extension AS
	SELECT 'moment'::name AS extname, r.oid AS extowner FROM pg_catalog.pg_roles r WHERE r.rolname = current_user;
SELECT pg_temp.try($$ SELECT moment_internal.require_admin() $$);
SELECT pg_temp.try($$ SELECT moment.grant_company('rival', current_user) $$);
SELECT pg_temp.try($$ SELECT moment.register_entity('hack', 'public.regress_hijack_log') $$);
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT moment.list('customers') $$);
DROP VIEW pg_temp.pg_roles, pg_temp.pg_extension;
RESET ROLE;
-- nor an administrator's own pg_temp: register_entity reads the real catalogs
-- (0.1.0: a temp pg_class left a dangling entity that broke every later grant)
CREATE TEMP TABLE pg_class (oid oid, relname name, relkind "char", relowner oid, relnamespace oid);
CREATE TEMP TABLE pg_attribute (attrelid oid, attname name, atttypid oid, attnum int2, attisdropped bool);
CREATE TEMP TABLE pg_policy (polrelid oid, polname name);
CREATE TEMP TABLE pg_namespace (oid oid, nspname name);
CREATE TABLE public.regress_notes (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	body text,
	PRIMARY KEY (company_id, id)
);
INSERT INTO pg_temp.pg_class SELECT 'public.regress_notes'::regclass, 'regress_notes', 'v', 0, 0;
SELECT moment.register_entity('regressNotes', 'public.regress_notes');
DROP TABLE pg_temp.pg_class, pg_temp.pg_attribute, pg_temp.pg_policy, pg_temp.pg_namespace;
SELECT name, table_name FROM moment.entities WHERE name = 'regressNotes';
SELECT polname FROM pg_policy WHERE polrelid = 'public.regress_notes'::regclass ORDER BY polname;
SELECT 'moment.list_regress_notes(jsonb, text, boolean)'::regprocedure AS typed_listing;
SELECT moment.grant_company('rival', 'regress_moment_sec_newbie');
SELECT moment.revoke_company('rival', 'regress_moment_sec_newbie');
SELECT moment.create('regressNotes', '{"body": "noted"}', 'body') AS create;
RESET moment.company;

--
-- 5. register_entity takes only tables of the extension owner or a
-- superuser, forces row-level security, and its policies replace whatever
-- policies of their names the table had (0.1.0 kept a USING (true) one)
--
CREATE TABLE public.regress_owned (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	secret text,
	PRIMARY KEY (company_id, id)
);
ALTER TABLE public.regress_owned OWNER TO regress_moment_sec_mallory;
SELECT pg_temp.try($$ SELECT moment.register_entity('regressOwned', 'public.regress_owned') $$);
SELECT count(*) AS registered FROM moment.entities WHERE name = 'regressOwned';
DROP TABLE public.regress_owned;

CREATE TABLE public.regress_open (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	secret text,
	PRIMARY KEY (company_id, id)
);
ALTER TABLE public.regress_open ENABLE ROW LEVEL SECURITY;
CREATE POLICY moment_tenant_read ON public.regress_open FOR SELECT USING (true);
CREATE POLICY moment_tenant_insert ON public.regress_open FOR INSERT WITH CHECK (true);
CREATE POLICY moment_tenant_update ON public.regress_open FOR UPDATE USING (true);
CREATE POLICY moment_tenant_delete ON public.regress_open FOR DELETE USING (true);
INSERT INTO public.regress_open (company_id, secret) VALUES (1, 'cloudware note'), (2, 'SECRET-B note');
SELECT moment.register_entity('regressOpen', 'public.regress_open');
SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = 'public.regress_open'::regclass;
SELECT policyname, cmd, qual, with_check FROM pg_policies
 WHERE schemaname = 'public' AND tablename = 'regress_open' ORDER BY policyname;
SET ROLE regress_moment_sec_tenant;
SET moment.company = 'cloudware';
SELECT string_agg(secret, ', ') AS direct_sql FROM public.regress_open;
SELECT pg_temp.try($$ UPDATE public.regress_open SET secret = 'hijacked' WHERE company_id = 2 RETURNING secret $$);
SELECT pg_temp.try($$ INSERT INTO public.regress_open (company_id, secret) VALUES (2, 'planted') RETURNING secret $$);
RESET ROLE;
-- a table whose owner changes after registration stops serving (55000)
ALTER TABLE public.regress_open OWNER TO regress_moment_sec_mallory;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.list('regressOpen') $$);
ALTER TABLE public.regress_open OWNER TO CURRENT_USER;
SELECT moment.list('regressOpen', 'secret') AS owner_restored;
RESET moment.company;

--
-- 6. Grants follow table-privilege semantics: a NOINHERIT member does not
-- have its group's grant until it SET ROLEs (0.1.0: is_member_of_role); the
-- grant rows a dropped role left do not pass to a new role (reusing its oid)
--
SET ROLE regress_moment_sec_noinherit;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.get('customers', 1, 'name') $$);
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name') $$);
SELECT pg_temp.try($$ SELECT status::text FROM moment.api('GET', '/customers') $$);
SELECT left(pg_temp.try($$ SELECT count(*) FROM moment.customers $$), 11) AS direct_sql;
SET ROLE regress_moment_sec_staff;
SELECT pg_temp.try($$ SELECT moment.get('customers', 1, 'name') $$);
RESET ROLE;
-- granted directly, a NOINHERIT role has the company, and the privileges
-- (it cannot use its group roles'), until the grant is revoked
SELECT moment.grant_company('cloudware', 'regress_moment_sec_noinherit');
SET ROLE regress_moment_sec_noinherit;
SELECT pg_temp.try($$ SELECT moment.get('customers', 1, 'name') $$);
SELECT pg_temp.try($$ SELECT count(*) > 0 FROM moment.customers $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"email": "noinherit@example.com"}', 'email') $$);
RESET ROLE;
SELECT moment.revoke_company('cloudware', 'regress_moment_sec_noinherit');
SELECT has_table_privilege('regress_moment_sec_noinherit', 'moment.customers', 'SELECT') AS still_has_select;
SET ROLE regress_moment_sec_noinherit;
SELECT pg_temp.try($$ SELECT moment.get('customers', 1, 'name') $$);
RESET ROLE;
-- a row for rival whose role oid now belongs to regress_moment_sec_newbie,
-- as if a dropped role had held it
INSERT INTO moment.company_grants (company_id, role, writable) VALUES (2, 'regress_moment_sec_newbie', true);
SET ROLE regress_moment_sec_newbie;
SET moment.company = 'rival';
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name') $$);
RESET ROLE;
-- granting the new role a company clears what the old role left
SELECT moment.grant_company('cloudware', 'regress_moment_sec_newbie', false);
SELECT c.code, g.writable FROM moment.company_grants g JOIN moment.companies c ON c.id = g.company_id
 WHERE g.role = 'regress_moment_sec_newbie'::regrole ORDER BY c.code;
SET ROLE regress_moment_sec_newbie;
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.customers $$);
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name') $$);
RESET ROLE;
RESET moment.company;

--
-- 7. The cap without no_limit is least(default_limit, max_limit): a role
-- cannot lift it past the superuser's max_limit, and the hint says so
--
SET moment.max_limit = 2;
SET ROLE regress_moment_sec_tenant;
SET moment.company = 'cloudware';
SET moment.default_limit = 10;
SELECT moment.list('regressLabels', 'code') AS list;
SELECT moment.list('regressLabels', 'code', size => 10) -> 'page' AS page;
SELECT r ->> 'code' AS code FROM moment.rows('regressLabels', 'code') r;
SELECT count(*) AS typed FROM moment.list_regress_labels();
SELECT count(*) AS no_limit FROM moment.rows('regressLabels', 'code', no_limit => true);
SELECT pg_temp.try($$ SET moment.max_limit = 30000 $$);
RESET moment.default_limit;
RESET ROLE;
RESET moment.max_limit;
RESET moment.company;

--
-- 8. What PUBLIC may execute: the API of the contract, and in
-- moment_internal the row-level security helpers' administrator check.
-- Everything else (camel_case, cache_stats, the helpers behind
-- register_entity and grant_company, triggers) is for the administrator.
--
SELECT n.nspname, p.proname
  FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE n.nspname IN ('moment', 'moment_internal') AND has_function_privilege('public', p.oid, 'EXECUTE')
 ORDER BY 1, 2;
-- the row-level security helpers: granted roles only, and PARALLEL RESTRICTED
-- so that tenants' direct reads may still use parallel plans
SELECT p.proname, p.proparallel, has_function_privilege('public', p.oid, 'EXECUTE') AS public_may_execute,
	   has_function_privilege('moment_read', p.oid, 'EXECUTE') AS moment_read_may_execute
  FROM pg_proc p
 WHERE p.pronamespace = 'moment_internal'::regnamespace
 ORDER BY p.proname;
SET ROLE regress_moment_sec_mallory;
SELECT pg_temp.try($$ SELECT moment.camel_case('a_b') $$);
SELECT pg_temp.try($$ SELECT plans_prepared FROM moment.cache_stats() $$);
SELECT pg_temp.try($$ SELECT moment_internal.current_company_id() $$);
SELECT pg_temp.try($$ SELECT moment_internal.company_visible(1) $$);
SELECT pg_temp.try($$ SELECT moment.sync_group_roles(0) $$);
-- describe and check_include need a granted company in force
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.describe('customers') ->> 'entity' $$);
SELECT pg_temp.try($$ SELECT moment.check_include('customers', 'name') $$);
RESET moment.company;
SELECT pg_temp.try($$ SELECT moment.describe('customers') ->> 'entity' $$);
SET ROLE regress_moment_sec_reader;
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.describe('customers') ->> 'entity' $$);
SELECT pg_temp.try($$ SELECT moment.check_include('customers', 'name+metadata.count') $$);
RESET ROLE;
RESET moment.company;

--
-- A read-only grant cannot block another tenant: no LOCK above ACCESS SHARE
-- (which conflicts with nothing but ACCESS EXCLUSIVE), no row locks.  A
-- writable grant can LOCK the shared tables (the README says so).
--
SET ROLE regress_moment_sec_reader;
SET moment.company = 'cloudware';
BEGIN;
SELECT pg_temp.try($$ LOCK TABLE moment.customers IN ACCESS SHARE MODE $$);
SELECT pg_temp.try($$ LOCK TABLE moment.customers IN ROW SHARE MODE $$);
SELECT pg_temp.try($$ LOCK TABLE moment.customers IN ROW EXCLUSIVE MODE $$);
SELECT pg_temp.try($$ LOCK TABLE moment.customers IN SHARE MODE $$);
SELECT pg_temp.try($$ LOCK TABLE moment.time_records IN ACCESS EXCLUSIVE MODE $$);
SELECT pg_temp.try($$ SELECT name FROM moment.customers WHERE id = 1 FOR KEY SHARE $$);
SELECT pg_temp.try($$ SELECT name FROM moment.customers WHERE id = 1 FOR UPDATE $$);
SELECT pg_temp.try($$ SELECT pg_catalog.string_agg(mode, ', ' ORDER BY mode) FROM pg_locks
					   WHERE pid = pg_backend_pid() AND relation = 'moment.customers'::regclass $$);
ROLLBACK;
SET ROLE regress_moment_sec_tenant;
BEGIN;
SELECT pg_temp.try($$ LOCK TABLE moment.customers IN SHARE MODE $$);
ROLLBACK;
RESET ROLE;
RESET moment.company;

-- clean up: tables, schemas, grants, roles (cluster-wide)
DROP TABLE public.regress_labels, public.regress_notes, public.regress_open, public.regress_hijack_log;
SELECT name FROM moment.entities WHERE name LIKE 'regress%';
DROP OWNED BY regress_moment_sec_mallory, regress_moment_sec_eve CASCADE;
REVOKE CREATE ON SCHEMA public FROM regress_moment_sec_mallory;
SELECT count(*) AS revoked
  FROM (SELECT moment.revoke_company(c.code, g.role::name)
		  FROM moment.company_grants g JOIN moment.companies c ON c.id = g.company_id) r;
DROP ROLE regress_moment_sec_tenant, regress_moment_sec_reader, regress_moment_sec_mallory,
	regress_moment_sec_eve, regress_moment_sec_noinherit, regress_moment_sec_staff, regress_moment_sec_newbie;
