-- robustness: what 0.1.0 got wrong on a server in daily use (issue 10):
-- an entity whose table lost its id (item 2), caches thrown away by every
-- ANALYZE or new company (item 12), one transaction id per batch (item 13),
-- cancels raised as errors (item 14), and the smaller defects: read-only
-- createdAt/updatedAt, a computed createOrderIntact, customer.base with its id.
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
	EXECUTE sql INTO result;
	RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END
$$;

-- This backend's cache counters, as differences from the last call.
CREATE TEMP TABLE regress_stats AS SELECT * FROM moment.cache_stats();
CREATE FUNCTION pg_temp.stats_delta() RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	now_stats record;
	before record;
	result text;
BEGIN
	SELECT * INTO now_stats FROM moment.cache_stats();
	SELECT * INTO before FROM regress_stats;
	result := format('registry builds +%s, plans prepared +%s, cached plans %s',
					 now_stats.registry_builds - before.registry_builds,
					 now_stats.plans_prepared - before.plans_prepared,
					 CASE WHEN now_stats.cached_plans >= before.cached_plans THEN 'kept' ELSE 'dropped' END);
	DELETE FROM regress_stats;
	INSERT INTO regress_stats SELECT * FROM moment.cache_stats();
	RETURN result;
END
$$;

INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS');
INSERT INTO moment.user_accounts (company_id, name) VALUES (1, 'Ola');
INSERT INTO moment.customers (company_id, customer_number, name) VALUES (1, 'C001', 'Fjord Consulting'), (1, 'C002', 'Aurora Energy');
INSERT INTO moment.projects (company_id, customer_id, project_number, name) VALUES (1, 1, 'P001', 'Website');

CREATE TABLE public.regress_gizmos (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	name text,
	PRIMARY KEY (company_id, id)
);
CREATE TABLE public.regress_gears (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	regress_gizmo_id bigint,
	label text,
	PRIMARY KEY (company_id, id),
	FOREIGN KEY (company_id, regress_gizmo_id) REFERENCES public.regress_gizmos (company_id, id)
);
CREATE TABLE public.regress_loose (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	name text,
	PRIMARY KEY (company_id, id)
);
SELECT moment.register_entity('regressGizmos', 'public.regress_gizmos');
SELECT moment.register_entity('regressGears', 'public.regress_gears');
SELECT moment.register_entity('regressLoose', 'public.regress_loose');
SET moment.company = 'cloudware';
SELECT moment.create('regressGizmos', '{"name": "g1"}');
SELECT moment.create('regressGears', '{"label": "gear", "regressGizmoId": 1}');
SELECT moment.create('regressLoose', '{"name": "l1"}');
RESET client_min_messages;
\set ECHO all

--
-- 2. An entity whose table no longer has its id (renamed, dropped, retyped)
-- answers every request, and every relation to it, with 55000; it never
-- crashes (0.1.0 kept a NULL id field and crashed on the next get/list)
--
SELECT moment.get('regressGears', 1, 'label+regressGizmo.name') AS before;
ALTER TABLE public.regress_gizmos RENAME COLUMN id TO gizmo_key;
SELECT pg_temp.try($$ SELECT moment.get('regressGizmos', 1) $$);
SELECT pg_temp.try($$ SELECT moment.list('regressGizmos') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.rows('regressGizmos') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_regress_gizmos() $$);
SELECT pg_temp.try($$ SELECT moment.create('regressGizmos', '{"name": "g2"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('regressGizmos', 1, '{"name": "g2"}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('regressGizmos', 1) $$);
SELECT pg_temp.try($$ SELECT moment.batch('regressGizmos', '{"create": [{"name": "g2"}]}') $$);
SELECT pg_temp.try($$ SELECT moment.check_include('regressGizmos', 'name') $$);
SELECT status, response ->> 'error' AS error, response ->> 'error_type' AS type FROM moment.api('GET', '/regressGizmos/1');
SELECT status, response ->> 'error_type' AS type FROM moment.api('GET', '/regressGizmos');
-- through a relation: in an include, a filter, an order
SELECT pg_temp.try($$ SELECT moment.get('regressGears', 1, 'label+regressGizmo.name') $$);
SELECT pg_temp.try($$ SELECT moment.get('regressGears', 1, 'regressGizmo.base') $$);
SELECT pg_temp.try($$ SELECT moment.list('regressGears', 'label', '{"regressGizmo.name": "g1"}') $$);
SELECT pg_temp.try($$ SELECT moment.list('regressGears', 'label', '{}', 'regressGizmo.name') $$);
SELECT pg_temp.try($$ SELECT moment.create('regressGears', '{"label": "x"}', 'label+regressGizmo.name') $$);
-- (the default representation names the related objects that can be named)
SELECT status, response FROM moment.api('GET', '/regressGears/1');
-- what does not touch it still works
SELECT moment.get('regressGears', 1, 'label') AS gear_alone;
SELECT moment.list('regressGears', 'label+regressGizmoId') -> 'content' AS gears;
SELECT moment.describe('regressGears') -> 'relations' AS relations;
SELECT moment.get('customers', 1, 'name') AS other_entities;
ALTER TABLE public.regress_gizmos RENAME COLUMN gizmo_key TO id;
SELECT moment.get('regressGears', 1, 'label+regressGizmo.name') AS renamed_back;
-- an id that is no integer any more
ALTER TABLE public.regress_loose ALTER COLUMN id DROP DEFAULT, ALTER COLUMN id TYPE text;
SELECT pg_temp.try($$ SELECT moment.list('regressLoose') $$);
SELECT pg_temp.try($$ SELECT moment.get('regressLoose', 1) $$);
-- no id at all, then no company_id
ALTER TABLE public.regress_loose DROP COLUMN id;
SELECT pg_temp.try($$ SELECT moment.list('regressLoose') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_regress_loose() $$);
ALTER TABLE public.regress_loose ADD COLUMN id bigint NOT NULL DEFAULT 7, DROP COLUMN company_id;
SELECT pg_temp.try($$ SELECT moment.list('regressLoose') $$);
SELECT pg_temp.try($$ SELECT moment.get('regressLoose', 7) $$);
DROP TABLE public.regress_loose;
SELECT pg_temp.try($$ SELECT moment.list('regressLoose') $$);

--
-- 12. Invalidation per entity: an ANALYZE, or a new company, neither
-- rebuilds the registry nor drops prepared plans (0.1.0 rebuilt the whole
-- registry and dropped every plan on any relcache message of a watched table)
--
SELECT moment.get('customers', 1, 'name+customerNumber') AS customer,
	   moment.list('projects', 'name+customer.name', '{"name": "Website"}') -> 'content' AS projects,
	   moment.get('regressGears', 1, 'label+regressGizmo.name') AS gear;
SELECT pg_temp.stats_delta() IS NOT NULL AS warmed_up;
ANALYZE moment.customers;
ANALYZE moment.projects;
ANALYZE public.regress_gizmos;
INSERT INTO moment.companies (code, name) VALUES ('newcomer', 'Newcomer AS');
UPDATE moment.companies SET name = 'Newcomer ASA' WHERE code = 'newcomer';
VACUUM moment.projects;
SELECT moment.get('customers', 1, 'name+customerNumber') AS customer,
	   moment.list('projects', 'name+customer.name', '{"name": "Website"}') -> 'content' AS projects,
	   moment.get('regressGears', 1, 'label+regressGizmo.name') AS gear;
SELECT pg_temp.stats_delta() AS after_analyze_and_new_company;
-- the new company is there at once
SET moment.company = 'newcomer';
SELECT moment.list('customers') AS newcomer_customers;
SET moment.company = 'cloudware';
SELECT pg_temp.stats_delta() AS new_company_used;
-- a change of the catalog does rebuild (once), a change of one table reloads that table only
SELECT moment.define_part('customers', 'regressProbe', ARRAY['name']);
SELECT moment.get('customers', 1, 'regressProbe') AS new_part;
SELECT pg_temp.stats_delta() ~ '^registry builds \+[12],' AS catalog_change_rebuilds;
ALTER TABLE public.regress_gizmos ADD COLUMN color text DEFAULT 'red';
SELECT moment.get('regressGears', 1, 'label+regressGizmo.color') AS new_column;
SELECT moment.get('customers', 1, 'name+customerNumber') AS customer;
SELECT pg_temp.stats_delta() ~ '^registry builds \+0,' AS table_change_no_rebuild;

--
-- 10. A plan evicted while it runs is freed only when its execution ends: a
-- trigger's own requests fill a tiny plan cache while the outer create,
-- batch or update is still executing its statement
--
CREATE TABLE public.regress_evictors (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	name text,
	PRIMARY KEY (company_id, id)
);
SELECT moment.register_entity('regressEvictors', 'public.regress_evictors');
CREATE FUNCTION public.regress_evict() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	FOR i IN 1..24 LOOP
		PERFORM moment.list('timeRecords',
			(SELECT string_agg(x, '+') FROM unnest(ARRAY['minutes', 'description', 'projectId', 'taskId', 'billable'])
					WITH ORDINALITY AS u(x, n) WHERE (i >> (n::int - 1)) & 1 = 1));
	END LOOP;
	RETURN NEW;
END $$;
CREATE TRIGGER regress_evict BEFORE INSERT OR UPDATE ON public.regress_evictors
	FOR EACH ROW EXECUTE FUNCTION public.regress_evict();
SET moment.plan_cache_size = '256kB';
SELECT moment.create('regressEvictors', '{"name": "a"}', 'name') AS create;
SELECT moment.batch('regressEvictors', '{"create": [{"name": "b"}, {"name": "c"}], "update": {"1": {"name": "a2"}}}', 'name') AS batch;
SELECT moment.update('regressEvictors', 1, '{"name": "a3"}', 'name') AS update;
SELECT status, response FROM moment.api('PATCH', '/regressEvictors/2/include/name', '{"name": "b2"}');
SELECT plans_evicted > 0 AS evicted, cached_bytes <= 256 * 1024 AS within_budget FROM moment.cache_stats();
RESET moment.plan_cache_size;
DROP TABLE public.regress_evictors;
DROP FUNCTION public.regress_evict();

--
-- 13. A batch takes one transaction id, however many runs it has: runs are
-- not applied in subtransactions (0.1.0: one XID per set-based run; 1 000
-- updates in runs of two used 503)
--
INSERT INTO moment.customers (company_id, name)
	SELECT 1, 'Batch ' || g FROM generate_series(1, 40) g;
BEGIN;
SELECT jsonb_array_length(moment.batch('customers', jsonb_build_object(
		'create', jsonb_build_array(jsonb_build_object('name', 'New 1'), jsonb_build_object('name', 'New 2')),
		'update', (SELECT jsonb_object_agg(c.id, CASE WHEN (c.rn - 1) / 2 % 2 = 0
						THEN jsonb_build_object('email', 'e' || c.id || '@example.com')
						ELSE jsonb_build_object('customerState', 'potential') END)
					 FROM (SELECT id, row_number() OVER (ORDER BY id) AS rn FROM moment.customers
							WHERE name LIKE 'Batch %' AND id % 4 <> 0) c),
		'delete', (SELECT jsonb_agg(id) FROM moment.customers WHERE name LIKE 'Batch %' AND id % 4 = 0)),
	'id') -> 'updated') AS updated;
-- (the batch runs in one subtransaction of its own: one XID for all its runs)
SELECT count(*) AS rows_written, count(DISTINCT xmin::text) AS transaction_ids
  FROM moment.customers WHERE name LIKE 'Batch %' OR name LIKE 'New %';
SELECT count(*) AS deleted FROM generate_series(1, 40) g
 WHERE NOT EXISTS (SELECT FROM moment.customers c WHERE c.name = 'Batch ' || g);
ROLLBACK;
DELETE FROM moment.customers WHERE name LIKE 'Batch %';

--
-- 14. A cancel (statement_timeout) stops batch and api as it stops any
-- statement: never replayed row by row, never turned into a status
--
CREATE FUNCTION public.regress_slow() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	PERFORM pg_catalog.pg_sleep(0.2);
	RETURN NEW;
END $$;
CREATE TRIGGER regress_slow BEFORE INSERT ON public.regress_gears FOR EACH ROW EXECUTE FUNCTION public.regress_slow();
-- (the CONTEXT names the user's trigger, never the statements moment generates)
SET statement_timeout = '50ms';
SELECT moment.batch('regressGears', '{"create": [{"label": "a"}, {"label": "b"}]}');
SELECT * FROM moment.api('POST', '/regressGears/batch', '{"create": [{"label": "a"}, {"label": "b"}]}');
SELECT * FROM moment.api('POST', '/regressGears', '{"label": "a"}');
SELECT moment.create('regressGears', '{"label": "a"}');
RESET statement_timeout;
SELECT count(*) AS gears FROM public.regress_gears;
DROP TRIGGER regress_slow ON public.regress_gears;
DROP FUNCTION public.regress_slow();

--
-- createdAt and updatedAt are read-only (428C9), and describe says so
--
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "createdAt": "2020-01-01T00:00:00Z"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"updatedAt": "2020-01-01T00:00:00Z"}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"update": {"1": {"createdAt": "2020-01-01T00:00:00Z"}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('projects', '{"create": [{"name": "X", "customerId": 1, "updatedAt": "2020-01-01T00:00:00Z"}]}') $$);
SELECT status, response ->> 'error_type' AS type FROM moment.api('PATCH', '/timeRecords/1', '{"createdAt": "2020-01-01T00:00:00Z"}');
SELECT f ->> 'name' AS field, f -> 'readOnly' AS read_only, f -> 'writable' AS writable
  FROM jsonb_array_elements(moment.describe('customers') -> 'fields') f
 WHERE f ->> 'name' IN ('id', 'name', 'createdAt', 'updatedAt');
SELECT count(*) AS untouched FROM moment.customers WHERE created_at > '2021-01-01' AND updated_at > '2021-01-01';

--
-- createOrderIntact says whether the created ids follow the request's order
-- (0.1.0 always said true): here ids come from a descending sequence
--
CREATE SEQUENCE public.regress_countdown INCREMENT BY -1 START 1000 MAXVALUE 1000;
CREATE TABLE public.regress_countdown_rows (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigint NOT NULL DEFAULT nextval('public.regress_countdown'),
	name text,
	PRIMARY KEY (company_id, id)
);
SELECT moment.register_entity('regressCountdown', 'public.regress_countdown_rows');
-- created comes back in request order all the same (the contract's order)
SELECT b -> 'createOrderIntact' AS intact,
	   (SELECT string_agg(o ->> 'name', ', ' ORDER BY (o ->> 'id')::int) FROM jsonb_array_elements(b -> 'created') o) AS by_id,
	   (SELECT string_agg(o ->> 'name', ', ' ORDER BY n) FROM jsonb_array_elements(b -> 'created') WITH ORDINALITY AS c(o, n)) AS as_returned
  FROM moment.batch('regressCountdown', '{"create": [{"name": "first"}, {"name": "second"}, {"name": "third"}]}', 'name') b;
SELECT moment.batch('regressCountdown', '{"create": [{"name": "alone"}]}', 'name') -> 'createOrderIntact' AS one_create;
SELECT moment.batch('customers', '{"create": [{"name": "A"}, {"name": "B"}]}', 'name') -> 'createOrderIntact' AS ascending;
DELETE FROM moment.customers WHERE name IN ('A', 'B');

--
-- customer.base on a related object includes the related id (customerId)
--
SELECT moment.get('projects', 1, 'name+customer.base') AS project;
SELECT moment.list('projects', 'customer.base') -> 'content' AS projects;

-- clean up
RESET moment.company;
DROP TABLE public.regress_gears, public.regress_gizmos, public.regress_countdown_rows;
DROP SEQUENCE public.regress_countdown;
SELECT name FROM moment.entities WHERE name LIKE 'regress%';
SELECT count(*) AS parts_left FROM moment.parts WHERE name = 'regressProbe';
DELETE FROM moment.parts WHERE name = 'regressProbe';
