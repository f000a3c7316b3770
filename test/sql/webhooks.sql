-- webhooks: what is queued, and who may do what (contract section 16).
--
-- No background worker runs here (moment is not preloaded), so every
-- delivery stays pending and the queue can be read as it was written.
-- test/t/050_webhooks.pl delivers them to a real receiver.
--
-- Company A is "cloudware", company B is "rival".  Roles (dropped at the end):
--   regress_wh_a      cloudware, writable
--   regress_wh_read   cloudware, read-only
--   regress_wh_b      rival, writable
\set ECHO none
SET client_min_messages = warning;
TRUNCATE moment.companies, moment.company_grants, moment.user_accounts, moment.customers,
	moment.projects, moment.offers, moment.time_records, moment.project_extensions,
	moment.project_memberships, moment.tasks, moment.webhooks, moment.webhook_deliveries
	RESTART IDENTITY CASCADE;
RESET moment.company;

CREATE FUNCTION pg_temp.try(sql text) RETURNS text
LANGUAGE plpgsql AS $$
DECLARE
	result text;
BEGIN
	IF sql ~* '^\s*(set|reset|alter|drop|insert|update|delete)\s' THEN
		EXECUTE sql;
		RETURN 'ok';
	END IF;
	EXECUTE sql INTO result;
	RETURN 'ok: ' || coalesce(result, 'NULL');
EXCEPTION WHEN OTHERS THEN
	RETURN 'ERROR ' || SQLSTATE || ': ' || SQLERRM;
END
$$;

-- The deliveries queued since the last call, in id order.
CREATE TABLE pg_temp.seen (id bigint);
GRANT ALL ON pg_temp.seen TO PUBLIC;
CREATE FUNCTION pg_temp.queued() RETURNS TABLE (delivery bigint, webhook bigint, event text, body jsonb)
LANGUAGE plpgsql AS $$
DECLARE
	last_seen bigint := (SELECT coalesce(max(s.id), 0) FROM pg_temp.seen s);
BEGIN
	INSERT INTO pg_temp.seen SELECT d.id FROM moment.webhook_deliveries d WHERE d.id > last_seen;
	RETURN QUERY SELECT d.id, d.webhook_id, d.event, d.body FROM moment.webhook_deliveries d
				  WHERE d.id > last_seen ORDER BY d.id;
END
$$;

DROP ROLE IF EXISTS regress_wh_a, regress_wh_read, regress_wh_b;
CREATE ROLE regress_wh_a;
CREATE ROLE regress_wh_read;
CREATE ROLE regress_wh_b;
INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), ('rival', 'Rival AB');
SELECT moment.grant_company('cloudware', 'regress_wh_a');
SELECT moment.grant_company('cloudware', 'regress_wh_read', false);
SELECT moment.grant_company('rival', 'regress_wh_b');
-- what a superuser would put in postgresql.conf
SET moment.webhook_allowed_hosts = 'hooks.example.com, 127.0.0.1 ,[::1]';
RESET client_min_messages;
\set ECHO all

--
-- 1. create_webhook: its arguments, and who may call it
--
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT moment.create_webhook('invoices', 'https://hooks.example.com/x') $$);
SELECT pg_temp.try($$ SELECT moment.create_webhook(NULL, 'https://hooks.example.com/x') $$);
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x', '{CREATE}') $$);
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x', '{}') $$);
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x', NULL) $$);
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x', '{UPDATE,NULL}') $$);
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x', '{update}') $$);
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x', secret => '') $$);
-- URLs: http or https, optional port, no user info, an allowed host as written
SELECT url, pg_temp.try(format('SELECT moment.create_webhook(%L, %L)', 'customers', url)) AS result
  FROM unnest(ARRAY[
	NULL,
	'',
	'hooks.example.com/x',
	'ftp://hooks.example.com/x',
	'file:///etc/passwd',
	'gopher://127.0.0.1:6379/_FLUSHALL',
	'http://user@hooks.example.com/x',
	'http://user:password@hooks.example.com/x',
	'http://evil.example.com@hooks.example.com/x',
	'http://hooks.example.com@evil.example.com/x',
	'http:///x',
	'http://:80/x',
	'http://hooks.example.com:/x',
	'http://hooks.example.com:0/x',
	'http://hooks.example.com:65536/x',
	'http://hooks.example.com:123456/x',
	'http://hooks.example.com:8o/x',
	'http://hooks.example.com x/',
	'http://hooks.example.com\@evil.example.com/',
	'http://hooks.example.com%2eevil.example.com/',
	'http://hooks.exämple.com/',
	'http://[::1/x',
	'http://[::g]/x',
	'http://evil.example.com/x',
	'http://hooks.example.com.evil.example.com/x',
	'http://localhost/x',
	'http://127.0.0.2/x',
	'http://2130706433/x',
	'http://[::2]/x'
  ]) AS url;
-- allowed: the host compared case-insensitively, with or without a port, path, query
SELECT url, pg_temp.try(format('SELECT moment.create_webhook(%L, %L)', 'customers', url)) AS result
  FROM unnest(ARRAY[
	'https://hooks.example.com',
	'HTTPS://HOOKS.Example.COM:8443/moment?company=cloudware',
	'http://127.0.0.1:8080/x',
	'http://[::1]:8080/x',
	'http://hooks.example.com/a#@evil.example.com'
  ]) AS url;
SELECT id, entity, url, events, secret FROM moment.webhooks ORDER BY id;
-- an empty allow-list allows nothing
SET moment.webhook_allowed_hosts = '';
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x') $$);
RESET moment.webhook_allowed_hosts;
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x') $$);
SET moment.webhook_allowed_hosts = 'hooks.example.com, 127.0.0.1 ,[::1]';
-- no company, a read-only grant, no grant; and the settings are a superuser's
RESET moment.company;
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x') $$);
SET moment.company = 'cloudware';
SET ROLE regress_wh_read;
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x') $$);
SELECT pg_temp.try($$ SET moment.webhook_allowed_hosts = 'evil.example.com' $$);
SET ROLE regress_wh_b;
SELECT pg_temp.try($$ SELECT moment.create_webhook('customers', 'https://hooks.example.com/x') $$);
RESET ROLE;
-- direct writes: company roles have no write privilege; a superuser's
-- writes pass the allow-list too
SET ROLE regress_wh_a;
SELECT pg_temp.try($$ INSERT INTO moment.webhooks (company_id, entity, url) VALUES (1, 'customers', 'https://hooks.example.com/x') $$);
SELECT pg_temp.try($$ UPDATE moment.webhooks SET url = 'https://evil.example.com/' $$);
SELECT pg_temp.try($$ DELETE FROM moment.webhooks $$);
SELECT pg_temp.try($$ UPDATE moment.webhook_deliveries SET state = 'done' $$);
RESET ROLE;
SELECT pg_temp.try($$ INSERT INTO moment.webhooks (company_id, entity, url) VALUES (1, 'customers', 'https://evil.example.com/x') $$);
SELECT pg_temp.try($$ UPDATE moment.webhooks SET url = 'https://user@hooks.example.com/' WHERE id = 1 $$);
SELECT pg_temp.try($$ INSERT INTO moment.webhooks (company_id, entity, url, events) VALUES (1, 'customers', 'https://hooks.example.com/x', '{CREATE}') $$);
DELETE FROM moment.webhooks;

--
-- 2. Bodies: one delivery per changed row and matching webhook, built from
--    the new row (the old row for DELETE): id, the number field, and
--    {id, number} of each relation, null when there is none
--
SET ROLE regress_wh_a;
SELECT e.name, moment.create_webhook(e.name, 'https://hooks.example.com/' || e.name, secret => 'hush')
  FROM unnest(ARRAY['userAccounts', 'customers', 'projects', 'offers', 'timeRecords', 'projectExtensions',
					'projectMemberships', 'tasks']) AS e(name);
SELECT id, entity, events, secret FROM moment.webhooks ORDER BY id;
-- through the REST router
SELECT status FROM moment.api('POST', '/userAccounts', '{"name": "Ada"}');
SELECT status FROM moment.api('POST', '/customers', '{"name": "Fjord", "customerNumber": "10001"}');
SELECT status FROM moment.api('POST', '/projects', '{"name": "Web", "customerId": 1, "projectNumber": "P1"}');
SELECT status FROM moment.api('POST', '/offers', '{"name": "Offer", "customerId": 1, "offerNumber": "O1", "currencyCode": "NOK"}');
SELECT status FROM moment.api('POST', '/projectExtensions', '{"name": "Design", "projectId": 1, "projectExtensionNumber": "A1"}');
SELECT status FROM moment.api('POST', '/tasks', '{"name": "Sketch", "projectExtensionId": 1, "taskNumber": "T1"}');
SELECT status FROM moment.api('POST', '/projectMemberships', '{"projectId": 1, "userAccountId": 1}');
SELECT status FROM moment.api('POST', '/timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-03-01", "minutes": 60, "taskId": 1}');
SELECT * FROM pg_temp.queued();
SELECT status FROM moment.api('PATCH', '/offers/1', '{"projectId": 1, "offerState": "readyToSend"}');
SELECT status FROM moment.api('PUT', '/timeRecords/1', '{"minutes": 90}');
SELECT status FROM moment.api('DELETE', '/timeRecords/1');
SELECT * FROM pg_temp.queued();
-- the SQL functions and a batch: N changes give N deliveries, in the batch's order
SELECT moment.create('customers', '{"name": "Aurora"}') ->> 'id' AS customer;
SELECT moment.update('customers', 2, '{"customerNumber": "10002"}') ->> 'id' AS customer;
SELECT moment.create('projects', '{"name": "Doomed", "customerId": 2, "projectNumber": "P2"}') ->> 'id' AS project;
SELECT moment.batch('projects', '{"create": [{"name": "B1", "customerId": 2}, {"name": "B2", "customerId": 1, "projectNumber": "P3"}],
	"update": {"1": {"projectNumber": "P1b"}}, "delete": [2]}') ->> 'createOrderIntact' AS batch;
SELECT * FROM pg_temp.queued();
SELECT moment.create('customers', '{"name": "Gone", "customerNumber": "G"}') ->> 'id' AS customer;
SELECT moment.delete('customers', 3) AS customer;
SELECT * FROM pg_temp.queued();
-- direct SQL, several rows per statement: one delivery per row, in the order of the changes
INSERT INTO moment.customers (company_id, name, customer_number) VALUES (1, 'C3', '3'), (1, 'C4', '4'), (1, 'C5', NULL);
UPDATE moment.customers SET email = 'x@example.com' WHERE name IN ('C4', 'C5');
DELETE FROM moment.customers WHERE name IN ('C3', 'C5');
UPDATE moment.customers SET email = NULL WHERE false;
SELECT * FROM pg_temp.queued();
-- another company's changes go to its own webhooks only (it has none)
SET ROLE regress_wh_b;
SET moment.company = 'rival';
SELECT moment.create('customers', '{"name": "SECRET-B"}') ->> 'name' AS customer;
SET ROLE regress_wh_a;
SET moment.company = 'cloudware';
SELECT * FROM pg_temp.queued();
-- events: a webhook gets the events it names; two webhooks each get their own
SELECT moment.create_webhook('customers', 'https://hooks.example.com/deletes', '{DELETE,DELETE}') AS deletes_only;
SELECT events FROM moment.webhooks WHERE url LIKE '%deletes';
SELECT moment.create('customers', '{"name": "C6"}') ->> 'id' AS customer;
SELECT moment.delete('customers', id) AS customer FROM moment.customers WHERE name = 'C6';
SELECT * FROM pg_temp.queued();

--
-- 3. Rolled back: nothing is sent
--
BEGIN;
SELECT moment.create('customers', '{"name": "rolled back"}') ->> 'name' AS customer;
SELECT count(*) AS queued_inside FROM moment.webhook_deliveries d JOIN moment.customers c
    ON c.name = 'rolled back' AND d.body #>> '{customer,id}' = c.id::text;
ROLLBACK;
BEGIN;
SELECT moment.create('customers', '{"name": "kept", "customerNumber": "K"}') ->> 'name' AS customer;
SAVEPOINT s;
SELECT moment.create('customers', '{"name": "undone"}') ->> 'name' AS customer;
UPDATE moment.customers SET customer_number = 'undone' WHERE name = 'kept';
ROLLBACK TO SAVEPOINT s;
COMMIT;
SELECT status FROM moment.api('POST', '/customers/batch', '{"create": [{"name": "ok"}, {"name": null}]}');
SELECT * FROM pg_temp.queued();
-- changes copied under session_replication_role = replica (a company moved
-- by the router) queue nothing
RESET ROLE;
SET session_replication_role = replica;
INSERT INTO moment.customers (company_id, name) VALUES (1, 'copied');
RESET session_replication_role;
SELECT * FROM pg_temp.queued();
-- nor do rows a COPY FROM loads (a restore: pg_restore -j may load the
-- webhooks before the tables they watch), while an INSERT right after does
COPY moment.customers (company_id, name) FROM PROGRAM $$printf '1\trestored 1\n1\trestored 2\n'$$;
SELECT count(*) AS loaded FROM moment.customers WHERE name LIKE 'restored %';
SELECT * FROM pg_temp.queued();
INSERT INTO moment.customers (company_id, name) VALUES (1, 'inserted after the load');
SELECT event, (body #>> '{customer,id}')::bigint = (SELECT id FROM moment.customers WHERE name = 'inserted after the load') AS that_customer
  FROM pg_temp.queued();

--
-- 4. A registered entity: its singular, number field and relations
--
-- zones: a partitioned table, whose numbers are read by a query, not an index
CREATE TABLE public.regress_zones (
	company_id bigint NOT NULL,
	id bigint NOT NULL,
	zone_number integer,
	PRIMARY KEY (company_id, id)
) PARTITION BY LIST (company_id);
CREATE TABLE public.regress_zones_1 PARTITION OF public.regress_zones FOR VALUES IN (1);
CREATE TABLE public.regress_zones_2 PARTITION OF public.regress_zones FOR VALUES IN (2);
SELECT moment.register_entity('zones', 'public.regress_zones');
CREATE TABLE public.regress_gadgets (
	company_id bigint NOT NULL,
	id bigint GENERATED BY DEFAULT AS IDENTITY,
	gadget_number text,
	customer_id bigint,
	project_id bigint,
	zone_id integer,
	PRIMARY KEY (company_id, id),
	FOREIGN KEY (company_id, customer_id) REFERENCES moment.customers (company_id, id),
	FOREIGN KEY (company_id, project_id) REFERENCES moment.projects (company_id, id),
	FOREIGN KEY (company_id, zone_id) REFERENCES public.regress_zones (company_id, id)
);
SELECT moment.register_entity('gadgets', 'public.regress_gadgets');
SELECT tgname, tgtype FROM pg_trigger WHERE tgrelid = 'public.regress_gadgets'::regclass AND NOT tgisinternal ORDER BY tgname;
SET ROLE regress_wh_a;
SELECT moment.create_webhook('gadgets', 'http://127.0.0.1:8080/gadgets', '{CREATE_NEW}') AS gadget_webhook;
SELECT moment.create_webhook('zones', 'http://127.0.0.1:8080/zones') AS zone_webhook;
RESET ROLE;
INSERT INTO public.regress_zones (company_id, id, zone_number) VALUES (1, 7, 70);
SET ROLE regress_wh_a;
SELECT moment.create('gadgets', '{"gadgetNumber": "G1", "customerId": 1}') ->> 'id' AS gadget;
SELECT moment.create('gadgets', '{"gadgetNumber": "G2", "customerId": 1, "projectId": 1, "zoneId": 7}') ->> 'id' AS gadget;
SELECT * FROM pg_temp.queued();
RESET ROLE;

--
-- 5. Tenancy: B's roles neither see nor change A's webhooks and deliveries
--
SET ROLE regress_wh_b;
SET moment.company = 'rival';
SELECT count(*) AS webhooks_seen FROM moment.webhooks;
SELECT count(*) AS deliveries_seen FROM moment.webhook_deliveries;
SELECT pg_temp.try($$ SELECT moment.drop_webhook(1) $$);
SELECT pg_temp.try($$ SELECT moment.redeliver(1) $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.webhooks WHERE company_id = 1 $$);
SET moment.company = 'cloudware';
SELECT pg_temp.try($$ SELECT count(*) FROM moment.webhooks $$);
SELECT pg_temp.try($$ SELECT moment.drop_webhook(1) $$);
SELECT pg_temp.try($$ SELECT moment.redeliver(1) $$);
-- A's read-only role reads A's, and changes nothing
SET ROLE regress_wh_read;
SELECT count(*) AS webhooks_seen, count(DISTINCT company_id) AS companies FROM moment.webhooks;
SELECT count(*) AS deliveries_seen FROM moment.webhook_deliveries;
SELECT pg_temp.try($$ SELECT moment.drop_webhook(1) $$);
SELECT pg_temp.try($$ SELECT moment.redeliver(1) $$);
RESET ROLE;

--
-- 6. drop_webhook cancels pending deliveries and keeps them; redeliver
--    makes any delivery pending again, same id, attempts reset
--
SET ROLE regress_wh_a;
SELECT pg_temp.try($$ SELECT moment.drop_webhook(NULL) $$);
SELECT pg_temp.try($$ SELECT moment.drop_webhook(999) $$);
SELECT state, count(*) FROM moment.webhook_deliveries WHERE webhook_id = 9 GROUP BY 1;
SELECT moment.drop_webhook(9) AS dropped;
SELECT pg_temp.try($$ SELECT moment.drop_webhook(9) $$);
SELECT state, last_error, count(*) FROM moment.webhook_deliveries WHERE webhook_id = 9 GROUP BY 1, 2;
SELECT count(*) AS customer_webhooks FROM moment.webhooks WHERE entity = 'customers';
RESET ROLE;
UPDATE moment.webhook_deliveries SET state = 'failed', attempts = 8, last_status = 500, next_attempt_at = NULL WHERE id = 1;
SET ROLE regress_wh_a;
SELECT moment.redeliver(1) AS redelivered;
SELECT id, state, attempts, last_status, next_attempt_at IS NOT NULL AS due FROM moment.webhook_deliveries WHERE id = 1;
SELECT pg_temp.try($$ SELECT moment.redeliver(NULL) $$);
SELECT pg_temp.try($$ SELECT moment.redeliver(999999) $$);
-- a redelivered delivery of a dropped webhook is pending until the worker fails it
SELECT moment.redeliver(min(id)) AS redelivered FROM moment.webhook_deliveries WHERE webhook_id = 9;
SELECT state, count(*) FROM moment.webhook_deliveries WHERE webhook_id = 9 GROUP BY 1 ORDER BY 1;
RESET ROLE;

--
-- 7. The catalog: grants, policies, triggers on every entity table
--
SELECT c.relname, c.relrowsecurity, c.relforcerowsecurity, array_agg(p.polname ORDER BY p.polname) AS policies,
	   has_table_privilege('moment_read', c.oid, 'SELECT') AS read,
	   has_table_privilege('moment_write', c.oid, 'INSERT') OR has_table_privilege('moment_write', c.oid, 'UPDATE')
	   OR has_table_privilege('moment_write', c.oid, 'DELETE') AS write
  FROM pg_class c LEFT JOIN pg_policy p ON p.polrelid = c.oid
 WHERE c.oid IN ('moment.webhooks'::regclass, 'moment.webhook_deliveries'::regclass)
 GROUP BY c.relname, c.relrowsecurity, c.relforcerowsecurity, c.oid ORDER BY c.relname;
SELECT e.name, string_agg(t.tgname || ':' || t.tgenabled::text, ', ' ORDER BY t.tgname) AS triggers
  FROM moment.entities e LEFT JOIN pg_trigger t ON t.tgrelid = e.table_name AND t.tgname LIKE 'moment_webhook_%'
 GROUP BY e.name ORDER BY e.name;
SELECT p.proname, has_function_privilege('public', p.oid, 'EXECUTE') AS public_execute, p.prosecdef
  FROM pg_proc p WHERE p.pronamespace = 'moment'::regnamespace
   AND p.proname IN ('create_webhook', 'drop_webhook', 'redeliver', 'webhook_queue', 'webhook_check', 'enable_webhooks')
 ORDER BY p.proname;

-- clean up: the registered tables, the roles
DROP TABLE public.regress_gadgets, public.regress_zones;
SELECT count(*) AS gadget_webhooks FROM moment.webhooks WHERE entity = 'gadgets';
SELECT count(*) AS revoked
  FROM (SELECT moment.revoke_company(c.code, g.role::name)
		  FROM moment.company_grants g JOIN moment.companies c ON c.id = g.company_id) r;
DROP OWNED BY regress_wh_a, regress_wh_read, regress_wh_b;
DROP ROLE regress_wh_a, regress_wh_read, regress_wh_b;
