-- moment 0.1.0 -> 0.2.0, in place (ALTER EXTENSION moment UPDATE).
-- complain if script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION moment UPDATE TO '0.2.0'" to load this file. \quit

-- Gives the same catalog as a fresh CREATE EXTENSION moment of 0.2.0, keeps
-- every row, registered entity, part, metadata set and grant (grants move to
-- the moment_read / moment_write group roles).  test/t/030_upgrade.pl
-- compares the two.

------------------------------------------------------------------------------
-- The schemas: moment becomes a member of the extension
------------------------------------------------------------------------------

-- 0.1.0 granted each company role USAGE on schema moment; the group roles
-- carry it now.  Revoked before the schema joins the extension, so that its
-- initial privileges are those of a fresh install.
DO $do$
DECLARE
	grantee name;
BEGIN
	FOR grantee IN
		SELECT DISTINCT r.rolname FROM moment.company_grants g
		  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) g.role::pg_catalog.oid
	LOOP
		EXECUTE pg_catalog.format('REVOKE USAGE ON SCHEMA moment FROM %I', grantee);
	END LOOP;
END
$do$;

-- The extension object lives in pg_catalog (as pg_cron's does) and owns
-- schema "moment", so that DROP EXTENSION drops the schema with everything in
-- it.  An extension cannot own the schema it is installed in, so whatever
-- schema CREATE EXTENSION picked (a restore of a 0.1.0 dump names "moment")
-- is replaced by pg_catalog, and an existing empty "moment" schema is adopted.
DO $do$
DECLARE
	ext oid := (SELECT e.oid FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'moment');
BEGIN
	DELETE FROM pg_catalog.pg_depend d
	 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
	   AND d.objid OPERATOR(pg_catalog.=) ext
	   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_namespace'::pg_catalog.regclass
	   AND d.deptype OPERATOR(pg_catalog.=) 'n';
	UPDATE pg_catalog.pg_extension e SET extnamespace = 'pg_catalog'::pg_catalog.regnamespace
	 WHERE e.oid OPERATOR(pg_catalog.=) ext;
	IF pg_catalog.to_regnamespace('moment') IS NULL THEN
		CREATE SCHEMA moment;
	ELSE
		ALTER EXTENSION moment ADD SCHEMA moment;
	END IF;
END
$do$;

COMMENT ON SCHEMA moment IS
'Moment''s business API: the entity tables, the registry, and the API functions (get, list, rows, list_*, create, update, delete, batch, api, ...).';

-- Helpers that row-level security policies call: tenant roles must be able to
-- execute them, but they are not part of the API (PostgREST exposes schema
-- moment, not this one).
CREATE SCHEMA moment_internal;

COMMENT ON SCHEMA moment_internal IS
'Internal helpers of extension moment (row-level security, the administrator check). Not an API.';
GRANT USAGE ON SCHEMA moment_internal TO PUBLIC;
------------------------------------------------------------------------------
-- Group roles holding the table privileges
------------------------------------------------------------------------------

-- moment.grant_company makes a role a member of moment_read (read-only
-- grants) or moment_write (writable grants), instead of adding it to the ACL
-- of every table and sequence.  Roles are cluster-wide: a second database
-- with moment uses the same two roles.  DROP EXTENSION leaves them (DROP ROLE
-- them when no database uses moment any more).
DO $do$
BEGIN
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) 'moment_read') THEN
		CREATE ROLE moment_read NOLOGIN;
	END IF;
	IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) 'moment_write') THEN
		CREATE ROLE moment_write NOLOGIN;
	END IF;
	IF NOT pg_catalog.pg_has_role('moment_write', 'moment_read', 'MEMBER') THEN
		GRANT moment_read TO moment_write;
	END IF;
END
$do$;

GRANT USAGE ON SCHEMA moment TO PUBLIC;
------------------------------------------------------------------------------
-- Internal helpers: the row-level security functions and the administrator
-- check move to schema moment_internal (not exposed through PostgREST)
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION moment.version()
RETURNS text
AS 'MODULE_PATHNAME', 'moment_version'
LANGUAGE C STABLE PARALLEL SAFE;

COMMENT ON FUNCTION moment.version() IS
'The version of the loaded moment C library, e.g. 0.2.0.';

ALTER FUNCTION moment.current_company_id(boolean) SET SCHEMA moment_internal;
ALTER FUNCTION moment.company_visible(bigint) SET SCHEMA moment_internal;
ALTER FUNCTION moment.require_admin() SET SCHEMA moment_internal;

CREATE OR REPLACE FUNCTION moment_internal.current_company_id(for_write boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moment_current_company_id'
LANGUAGE C STABLE PARALLEL RESTRICTED;

COMMENT ON FUNCTION moment_internal.current_company_id(boolean) IS
'The id of the company in force (moment.company, else the "company" claim of request.jwt.claims), for row-level security. Raises 22023 when none is in force, 42501 when the current role is not granted it (or, with for_write, granted it read-only).';

CREATE OR REPLACE FUNCTION moment_internal.company_visible(company_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'moment_company_visible'
LANGUAGE C STABLE PARALLEL RESTRICTED;

COMMENT ON FUNCTION moment_internal.company_visible(bigint) IS
'Whether the current role is granted the company (directly or through a role whose privileges it has): the row-level security of moment.companies.';

REVOKE EXECUTE ON FUNCTION moment_internal.current_company_id(boolean), moment_internal.company_visible(bigint) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION moment_internal.current_company_id(boolean), moment_internal.company_visible(bigint) TO moment_read;
GRANT EXECUTE ON FUNCTION moment_internal.current_company_id(boolean), moment_internal.company_visible(bigint) TO moment_read;

COMMENT ON FUNCTION moment.catalog_changed() IS
'Trigger (ENABLE ALWAYS, so it also fires for replication and restores): invalidates the per-backend registry or tenant caches of every session when a catalog table changes.';

COMMENT ON FUNCTION moment.set_updated_at() IS
'Trigger: sets updated_at (a timestamptz column) to the transaction''s start time on every update.';

-- its row has three more columns
DROP FUNCTION moment.cache_stats();
CREATE FUNCTION moment.cache_stats(OUT cached_plans bigint, OUT plans_prepared bigint, OUT registry_builds bigint,
								   OUT cached_bytes bigint, OUT plans_evicted bigint, OUT cached_companies bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'moment_cache_stats'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.cache_stats() IS
'This session''s caches: prepared plans kept, plans prepared since the session began, registry (re)builds, the bytes kept for plans and statement texts (bounded by moment.plan_cache_size), plans evicted, and companies cached. A request shape seen before prepares nothing.';

------------------------------------------------------------------------------
-- Companies, grants, the registry
------------------------------------------------------------------------------

CREATE INDEX company_grants_role_idx ON moment.company_grants (role);

COMMENT ON TABLE moment.company_grants IS
'Which roles may use which company (and every role that has their privileges), and whether they may write. Maintained by moment.grant_company / moment.revoke_company, which also make the role a member of moment_read or moment_write and give it SELECT on its column of moment.grantees; a row counts only while its role holds that.';

-- The mark of the roles holding grants in this database: grant_company gives
-- them SELECT on one column of this table (which holds nothing), revoke_company
-- takes it with their last grant.  A grant row counts only while its role
-- holds it: unlike membership of the cluster's group roles it is this
-- database's, it goes with DROP OWNED BY, keeps DROP ROLE from dropping a role
-- with grants, and pg_dump keeps it.  A role's mark is on column
-- moment_internal.mark_column(oid), one of 256, so that each column's ACL
-- holds a 256th of the roles: a grant rewrites one short ACL, not a list of
-- every role with grants (with 10 000 roles one ACL made provisioning
-- quadratic).
DO $do$
BEGIN
	EXECUTE 'CREATE TABLE moment.grantees ('
		|| (SELECT pg_catalog.string_agg(pg_catalog.format('m%s boolean', pg_catalog.lpad(i::pg_catalog.text, 3, '0')), ', ' ORDER BY i)
			  FROM pg_catalog.generate_series(0, 255) i)
		|| ')';
END
$do$;
REVOKE ALL ON moment.grantees FROM PUBLIC;

-- The column of moment.grantees that holds a role's mark.
CREATE FUNCTION moment_internal.mark_column(grantee oid)
RETURNS name
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT ('m' OPERATOR(pg_catalog.||) pg_catalog.lpad((grantee::pg_catalog.int8 OPERATOR(pg_catalog.%) 256)::pg_catalog.text, 3, '0'))::pg_catalog.name
$$;

REVOKE EXECUTE ON FUNCTION moment_internal.mark_column(oid) FROM PUBLIC;

COMMENT ON FUNCTION moment_internal.mark_column(oid) IS
'The column of moment.grantees whose SELECT privilege marks a role with company grants in this database: m000 to m255, by the role''s oid.';

-- Whether a role holds the mark itself (not through a role it is a member of):
-- SELECT on its column granted by the table's owner, as GRANT records it for
-- the owner and for superusers.
CREATE FUNCTION moment_internal.holds_mark(grantee oid)
RETURNS boolean
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT coalesce(pg_catalog.aclcontains(a.attacl, pg_catalog.makeaclitem(grantee, c.relowner, 'SELECT', false)), false)
	  FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
	 WHERE c.oid OPERATOR(pg_catalog.=) 'moment.grantees'::pg_catalog.regclass::pg_catalog.oid
	   AND a.attname OPERATOR(pg_catalog.=) moment_internal.mark_column(grantee)
$$;

REVOKE EXECUTE ON FUNCTION moment_internal.holds_mark(oid) FROM PUBLIC;

COMMENT ON FUNCTION moment_internal.holds_mark(oid) IS
'Whether a role holds this database''s mark of a role with company grants, SELECT on its column of moment.grantees, itself.';

COMMENT ON TABLE moment.grantees IS
'Holds no rows. Its column privileges mark the roles holding company grants in this database: moment.grant_company gives a role SELECT on its column (moment_internal.mark_column), moment.revoke_company takes it with the role''s last grant; a grant row counts only while its role holds it.';

COMMENT ON TABLE moment.entities IS
'Registered entities: JSON name -> table, and the date field that fromDate/toDate filter on. Fields and relations are derived from the table itself (columns, foreign keys on (company_id, x_id)). Built-in rows are recreated by CREATE EXTENSION; change a built-in entity''s settings in moment.entity_settings.';

CREATE TABLE moment.entity_settings (
	entity text NOT NULL REFERENCES moment.entities (name) ON DELETE CASCADE ON UPDATE CASCADE,
	date_field text,
	CONSTRAINT entity_settings_pkey PRIMARY KEY (entity)
);

COMMENT ON TABLE moment.entity_settings IS
'Users'' settings of entities, over those in moment.entities (a row here wins, NULL included): kept by pg_dump and upgrades, also for built-in entities. Written by moment.set_date_field.';
-- A user's part or metadata key (builtin false) may now sit beside the
-- built-in one of its name.
ALTER TABLE moment.parts DROP CONSTRAINT parts_pkey, ADD CONSTRAINT parts_pkey PRIMARY KEY (entity, name, builtin);
ALTER TABLE moment.metadata DROP CONSTRAINT metadata_pkey, ADD CONSTRAINT metadata_pkey PRIMARY KEY (entity, set_name, key, builtin);

COMMENT ON TABLE moment.parts IS
'Named groups of fields ("parts") usable in include specs. fields holds field names or relation paths (customer.name); NULL means every field of the entity. A user''s row (builtin false) replaces the built-in part of the same name.';

COMMENT ON TABLE moment.metadata IS
'Metadata sets (metadata.NAME in an include spec): each row is one output key and an aggregate SQL expression over the entity''s table, aliased t (evaluated with search_path pg_catalog, pg_temp). A user''s row (builtin false) replaces the built-in key of the same set. Written only by the extension owner.';

-- Statement triggers did not fire under session_replication_role = replica:
-- row and TRUNCATE triggers, ENABLE ALWAYS, instead.
DROP TRIGGER entities_changed ON moment.entities;
DROP TRIGGER parts_changed ON moment.parts;
DROP TRIGGER metadata_changed ON moment.metadata;
DROP TRIGGER companies_changed ON moment.companies;
DROP TRIGGER company_grants_changed ON moment.company_grants;
CREATE TRIGGER entities_changed AFTER INSERT OR UPDATE OR DELETE ON moment.entities
	FOR EACH ROW EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER entity_settings_changed AFTER INSERT OR UPDATE OR DELETE ON moment.entity_settings
	FOR EACH ROW EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER parts_changed AFTER INSERT OR UPDATE OR DELETE ON moment.parts
	FOR EACH ROW EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER metadata_changed AFTER INSERT OR UPDATE OR DELETE ON moment.metadata
	FOR EACH ROW EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER companies_changed AFTER INSERT OR UPDATE OR DELETE ON moment.companies
	FOR EACH ROW EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER company_grants_changed AFTER INSERT OR UPDATE OR DELETE ON moment.company_grants
	FOR EACH ROW EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER entities_truncated AFTER TRUNCATE ON moment.entities
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER entity_settings_truncated AFTER TRUNCATE ON moment.entity_settings
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER parts_truncated AFTER TRUNCATE ON moment.parts
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER metadata_truncated AFTER TRUNCATE ON moment.metadata
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER companies_truncated AFTER TRUNCATE ON moment.companies
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER company_grants_truncated AFTER TRUNCATE ON moment.company_grants
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
ALTER TABLE moment.entities ENABLE ALWAYS TRIGGER entities_changed, ENABLE ALWAYS TRIGGER entities_truncated;
ALTER TABLE moment.entity_settings ENABLE ALWAYS TRIGGER entity_settings_changed, ENABLE ALWAYS TRIGGER entity_settings_truncated;
ALTER TABLE moment.parts ENABLE ALWAYS TRIGGER parts_changed, ENABLE ALWAYS TRIGGER parts_truncated;
ALTER TABLE moment.metadata ENABLE ALWAYS TRIGGER metadata_changed, ENABLE ALWAYS TRIGGER metadata_truncated;
ALTER TABLE moment.companies ENABLE ALWAYS TRIGGER companies_changed, ENABLE ALWAYS TRIGGER companies_truncated;
ALTER TABLE moment.company_grants ENABLE ALWAYS TRIGGER company_grants_changed, ENABLE ALWAYS TRIGGER company_grants_truncated;

CREATE OR REPLACE FUNCTION moment.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF pg_catalog.to_regclass('moment.entities') IS NOT NULL THEN
		DELETE FROM moment.entities e
		 USING pg_catalog.pg_event_trigger_dropped_objects() d
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.objsubid OPERATOR(pg_catalog.=) 0
		   AND d.objid OPERATOR(pg_catalog.=) e.table_name::pg_catalog.oid;
	END IF;
END
$$;

COMMENT ON FUNCTION moment.forget_dropped_tables() IS
'Event trigger: unregisters entities whose table was dropped.';

REVOKE SELECT ON moment.entities, moment.parts, moment.metadata FROM PUBLIC;
GRANT SELECT ON moment.entities, moment.entity_settings, moment.parts, moment.metadata TO moment_read;
GRANT SELECT ON moment.companies TO moment_read;
GRANT SELECT ON moment.companies TO moment_read;

------------------------------------------------------------------------------
-- Entity tables: the time lock, activities, memberships, tasks
------------------------------------------------------------------------------

ALTER TABLE moment.user_accounts ADD COLUMN time_lock_date date;

-- A project's activities.  (company_id, id, project_id) is unique so that a
-- time record's (activity, project) pair can be a foreign key.
CREATE SEQUENCE moment.project_extensions_id_seq;
CREATE TABLE moment.project_extensions (
	company_id bigint NOT NULL,
	id bigint NOT NULL DEFAULT pg_catalog.nextval('moment.project_extensions_id_seq'::pg_catalog.regclass),
	project_id bigint NOT NULL,
	project_extension_number text,
	name text NOT NULL,
	project_extension_state text NOT NULL DEFAULT 'open',
	billable boolean NOT NULL DEFAULT true,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT project_extensions_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT project_extensions_project_key UNIQUE (company_id, id, project_id),
	CONSTRAINT project_extensions_project_fkey FOREIGN KEY (company_id, project_id)
		REFERENCES moment.projects (company_id, id),
	CONSTRAINT project_extensions_project_extension_state_check
		CHECK (project_extension_state OPERATOR(pg_catalog.=) ANY (ARRAY['open', 'closed']))
);
ALTER SEQUENCE moment.project_extensions_id_seq OWNED BY moment.project_extensions.id;
CREATE INDEX project_extensions_project_idx ON moment.project_extensions (company_id, project_id);

-- A user's role on a project.
CREATE SEQUENCE moment.project_memberships_id_seq;
CREATE TABLE moment.project_memberships (
	company_id bigint NOT NULL,
	id bigint NOT NULL DEFAULT pg_catalog.nextval('moment.project_memberships_id_seq'::pg_catalog.regclass),
	project_id bigint NOT NULL,
	user_account_id bigint NOT NULL,
	project_membership_state text NOT NULL DEFAULT 'active',
	project_membership_role_name text NOT NULL DEFAULT 'Default',
	hourly_rate numeric(14,2),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT project_memberships_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT project_memberships_member_key UNIQUE (company_id, id, project_id, user_account_id),
	CONSTRAINT project_memberships_role_key UNIQUE (company_id, project_id, user_account_id, project_membership_role_name),
	CONSTRAINT project_memberships_project_fkey FOREIGN KEY (company_id, project_id)
		REFERENCES moment.projects (company_id, id),
	CONSTRAINT project_memberships_user_account_fkey FOREIGN KEY (company_id, user_account_id)
		REFERENCES moment.user_accounts (company_id, id),
	CONSTRAINT project_memberships_project_membership_state_check
		CHECK (project_membership_state OPERATOR(pg_catalog.=) ANY (ARRAY['active', 'inactive']))
);
ALTER SEQUENCE moment.project_memberships_id_seq OWNED BY moment.project_memberships.id;
CREATE INDEX project_memberships_user_account_idx ON moment.project_memberships (company_id, user_account_id);
CREATE INDEX project_memberships_project_idx ON moment.project_memberships (company_id, project_id);

CREATE SEQUENCE moment.tasks_id_seq;
CREATE TABLE moment.tasks (
	company_id bigint NOT NULL,
	id bigint NOT NULL DEFAULT pg_catalog.nextval('moment.tasks_id_seq'::pg_catalog.regclass),
	project_extension_id bigint NOT NULL,
	task_number text,
	name text NOT NULL,
	task_state text NOT NULL DEFAULT 'open',
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	updated_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT tasks_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT tasks_project_extension_key UNIQUE (company_id, id, project_extension_id),
	CONSTRAINT tasks_project_extension_fkey FOREIGN KEY (company_id, project_extension_id)
		REFERENCES moment.project_extensions (company_id, id),
	CONSTRAINT tasks_task_state_check
		CHECK (task_state OPERATOR(pg_catalog.=) ANY (ARRAY['open', 'closed']))
);
ALTER SEQUENCE moment.tasks_id_seq OWNED BY moment.tasks.id;
CREATE INDEX tasks_project_extension_idx ON moment.tasks (company_id, project_extension_id);
ALTER TABLE moment.time_records ADD COLUMN project_extension_id bigint, ADD COLUMN task_id bigint;
-- an activity of the record's project, a task of the record's activity, a
-- membership of the record's user on the record's project
ALTER TABLE moment.time_records
	ADD CONSTRAINT time_records_project_extension_fkey FOREIGN KEY (company_id, project_extension_id, project_id)
		REFERENCES moment.project_extensions (company_id, id, project_id),
	ADD CONSTRAINT time_records_task_fkey FOREIGN KEY (company_id, task_id, project_extension_id)
		REFERENCES moment.tasks (company_id, id, project_extension_id),
	ADD CONSTRAINT time_records_task_check CHECK (task_id IS NULL OR project_extension_id IS NOT NULL);
-- NOT VALID: time records of 0.1.0 held any number here; new and changed rows are checked
ALTER TABLE moment.time_records
	ADD CONSTRAINT time_records_project_membership_fkey FOREIGN KEY (company_id, project_membership_id, project_id, user_account_id)
		REFERENCES moment.project_memberships (company_id, id, project_id, user_account_id) NOT VALID;
CREATE INDEX time_records_project_extension_idx ON moment.time_records (company_id, project_extension_id)
	WHERE project_extension_id IS NOT NULL;
CREATE INDEX time_records_task_idx ON moment.time_records (company_id, task_id) WHERE task_id IS NOT NULL;
CREATE INDEX time_records_project_membership_idx ON moment.time_records (company_id, project_membership_id)
	WHERE project_membership_id IS NOT NULL;
CREATE TRIGGER project_extensions_updated_at BEFORE UPDATE ON moment.project_extensions
	FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
CREATE TRIGGER project_memberships_updated_at BEFORE UPDATE ON moment.project_memberships
	FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
CREATE TRIGGER tasks_updated_at BEFORE UPDATE ON moment.tasks
	FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
-- Time records: the membership filled in when the user has exactly one
-- active role on the project, the activity taken from the task; and the
-- time lock of section 10, for every way a row can change.
CREATE FUNCTION moment.time_record_defaults()
RETURNS trigger
AS 'MODULE_PATHNAME', 'moment_time_record_defaults'
LANGUAGE C;

COMMENT ON FUNCTION moment.time_record_defaults() IS
'Trigger on moment.time_records: with no membership given, fills in the user''s one active membership on the project (23514 when there are several); with a task but no activity, fills in the task''s activity.';

CREATE FUNCTION moment.time_lock_check()
RETURNS trigger
AS 'MODULE_PATHNAME', 'moment_time_lock_check'
LANGUAGE C;

COMMENT ON FUNCTION moment.time_lock_check() IS
'Statement trigger on moment.time_records: refuses (42501) creating, changing from or to, or deleting a time record dated on or before its user''s time lock date.';

CREATE TRIGGER time_records_defaults BEFORE INSERT OR UPDATE ON moment.time_records
	FOR EACH ROW
	WHEN (NEW.project_membership_id IS NULL OR (NEW.task_id IS NOT NULL AND NEW.project_extension_id IS NULL))
	EXECUTE FUNCTION moment.time_record_defaults();
CREATE TRIGGER time_records_lock_insert AFTER INSERT ON moment.time_records
	REFERENCING NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION moment.time_lock_check();
CREATE TRIGGER time_records_lock_update AFTER UPDATE ON moment.time_records
	REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
	FOR EACH STATEMENT EXECUTE FUNCTION moment.time_lock_check();
CREATE TRIGGER time_records_lock_delete AFTER DELETE ON moment.time_records
	REFERENCING OLD TABLE AS old_rows
	FOR EACH STATEMENT EXECUTE FUNCTION moment.time_lock_check();
COMMENT ON TABLE moment.user_accounts IS 'Entity userAccounts: the people who record time. time_lock_date locks their time records dated on or before it.';
COMMENT ON TABLE moment.customers IS 'Entity customers.';
COMMENT ON TABLE moment.projects IS 'Entity projects: work done for a customer.';
COMMENT ON TABLE moment.offers IS 'Entity offers: priced proposals to a customer, in any currency (exchange_rate to the company currency).';
COMMENT ON TABLE moment.project_extensions IS 'Entity projectExtensions: a project''s activities.';
COMMENT ON TABLE moment.project_memberships IS 'Entity projectMemberships: a user''s role on a project (one membership per project, user and role name).';
COMMENT ON TABLE moment.tasks IS 'Entity tasks: the tasks of an activity.';
COMMENT ON TABLE moment.time_records IS 'Entity timeRecords: minutes a user spent on a project (an activity, a task) on a date.';

------------------------------------------------------------------------------
-- Administration
------------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION moment_internal.require_admin()
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles r
				    WHERE r.rolname OPERATOR(pg_catalog.=) current_user AND r.rolsuper)
	   AND current_user::pg_catalog.regrole::pg_catalog.oid OPERATOR(pg_catalog.<>)
		   (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'moment')
	THEN
		RAISE EXCEPTION 'permission denied: only a superuser or the owner of extension moment may do this'
			USING ERRCODE = '42501';
	END IF;
END
$$;

COMMENT ON FUNCTION moment_internal.require_admin() IS
'Raises 42501 unless the current role is a superuser or the owner of extension moment (every administration function calls it, so any role may).';

CREATE OR REPLACE FUNCTION moment.enable_tenant_security(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	policy text;
BEGIN
	PERFORM moment_internal.require_admin();
	EXECUTE pg_catalog.format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY', tbl);
	-- our policies, whatever policies of these names said before
	FOR policy IN
		SELECT p.polname FROM pg_catalog.pg_policy p
		 WHERE p.polrelid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid
		   AND p.polname OPERATOR(pg_catalog.=) ANY (ARRAY['moment_tenant_read', 'moment_tenant_insert', 'moment_tenant_update', 'moment_tenant_delete']::pg_catalog.name[])
	LOOP
		EXECUTE pg_catalog.format('DROP POLICY %I ON %s', policy, tbl);
	END LOOP;
	EXECUTE pg_catalog.format('CREATE POLICY moment_tenant_read ON %s FOR SELECT '
				   'USING (company_id OPERATOR(pg_catalog.=) (SELECT moment_internal.current_company_id()))', tbl);
	EXECUTE pg_catalog.format('CREATE POLICY moment_tenant_insert ON %s FOR INSERT '
				   'WITH CHECK (company_id OPERATOR(pg_catalog.=) (SELECT moment_internal.current_company_id(true)))', tbl);
	EXECUTE pg_catalog.format('CREATE POLICY moment_tenant_update ON %s FOR UPDATE '
				   'USING (company_id OPERATOR(pg_catalog.=) (SELECT moment_internal.current_company_id(true))) '
				   'WITH CHECK (company_id OPERATOR(pg_catalog.=) (SELECT moment_internal.current_company_id(true)))', tbl);
	EXECUTE pg_catalog.format('CREATE POLICY moment_tenant_delete ON %s FOR DELETE '
				   'USING (company_id OPERATOR(pg_catalog.=) (SELECT moment_internal.current_company_id(true)))', tbl);
END
$$;

COMMENT ON FUNCTION moment.enable_tenant_security(regclass) IS
'Enables and forces row-level security on an entity table with policies limiting every role to the company in force (writes only with a writable grant). Called by register_entity.';

CREATE OR REPLACE FUNCTION moment.grant_entity_privileges(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	seq regclass;
	grantee record;
BEGIN
	PERFORM moment_internal.require_admin();
	EXECUTE pg_catalog.format('GRANT SELECT ON %s TO moment_read', tbl);
	EXECUTE pg_catalog.format('GRANT INSERT, UPDATE, DELETE ON %s TO moment_write', tbl);
	FOR seq IN
		SELECT DISTINCT s.oid::pg_catalog.regclass
		  FROM pg_catalog.pg_depend d
		  JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid AND s.relkind OPERATOR(pg_catalog.=) 'S'
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid
	LOOP
		EXECUTE pg_catalog.format('GRANT USAGE ON SEQUENCE %s TO moment_write', seq);
	END LOOP;
	-- NOINHERIT grantees hold the privileges directly
	FOR grantee IN
		SELECT g.role::pg_catalog.oid AS role, pg_catalog.bool_or(g.writable) AS writable
		  FROM moment.company_grants g JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) g.role::pg_catalog.oid
		 WHERE NOT r.rolinherit GROUP BY g.role
	LOOP
		PERFORM moment.set_direct_privileges(grantee.role, true, grantee.writable, tbl);
	END LOOP;
END
$$;

COMMENT ON FUNCTION moment.grant_entity_privileges(regclass) IS
'Grants SELECT on an entity table to moment_read, INSERT, UPDATE and DELETE and its sequences to moment_write. Called by register_entity.';

CREATE OR REPLACE FUNCTION moment.adopt_typed_listing(listing regprocedure, tbl regclass)
RETURNS void
AS 'MODULE_PATHNAME', 'moment_adopt_typed_listing'
LANGUAGE C STRICT;

COMMENT ON FUNCTION moment.adopt_typed_listing(regprocedure, regclass) IS
'Makes a typed listing (a function of moment_list_typed returning SETOF the table) dropped automatically with its table. Called by register_entity.';

CREATE OR REPLACE FUNCTION moment.register_entity(name text, tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	existing regclass;
	id_type regtype;
	company_type regtype;
	table_owner oid;
	date_columns text[];
	listing text;
BEGIN
	PERFORM moment_internal.require_admin();
	IF name IS NULL OR tbl IS NULL THEN
		RAISE EXCEPTION 'entity name and table must not be null' USING ERRCODE = '22023';
	END IF;
	IF name OPERATOR(pg_catalog.!~) '^[a-z][A-Za-z0-9]*$' THEN
		RAISE EXCEPTION 'invalid entity name "%"', name
			USING ERRCODE = '22023', HINT = 'Entity names are lowerCamelCase: a lower-case letter followed by letters and digits.';
	END IF;
	IF (SELECT c.relkind FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid)
	   OPERATOR(pg_catalog.<>) ALL (ARRAY['r', 'p']::pg_catalog."char"[]) THEN
		RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
	END IF;
	-- The owner's triggers run as every tenant and the owner bypasses row-level
	-- security unless forced: only tables the extension owner (or a superuser) owns.
	SELECT c.relowner INTO table_owner FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid;
	IF table_owner OPERATOR(pg_catalog.<>) (SELECT e.extowner FROM pg_catalog.pg_extension e WHERE e.extname OPERATOR(pg_catalog.=) 'moment')
	   AND NOT (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) table_owner) THEN
		RAISE EXCEPTION 'table % is owned by role %, not by the owner of extension moment or a superuser', tbl, table_owner::pg_catalog.regrole
			USING ERRCODE = '42501',
				  HINT = 'ALTER TABLE ... OWNER TO the extension owner first: the owner of an entity table could read every company''s rows.';
	END IF;
	SELECT a.atttypid::pg_catalog.regtype INTO company_type FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid AND a.attname OPERATOR(pg_catalog.=) 'company_id'
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	IF company_type IS NULL THEN
		RAISE EXCEPTION 'table % has no column company_id', tbl
			USING ERRCODE = '42703', HINT = 'An entity table needs a company_id column (the tenant key) and an id column.';
	END IF;
	IF company_type OPERATOR(pg_catalog.<>) ALL (ARRAY['bigint', 'integer']::pg_catalog.regtype[]) THEN
		RAISE EXCEPTION 'column company_id of table % must be bigint, not %', tbl, company_type USING ERRCODE = '42804';
	END IF;
	SELECT a.atttypid::pg_catalog.regtype INTO id_type FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid AND a.attname OPERATOR(pg_catalog.=) 'id'
	   AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped;
	IF id_type IS NULL THEN
		RAISE EXCEPTION 'table % has no column id', tbl
			USING ERRCODE = '42703', HINT = 'An entity table needs a company_id column (the tenant key) and an id column.';
	END IF;
	IF id_type OPERATOR(pg_catalog.<>) ALL (ARRAY['bigint', 'integer', 'smallint']::pg_catalog.regtype[]) THEN
		RAISE EXCEPTION 'column id of table % must be an integer, not %', tbl, id_type USING ERRCODE = '42804';
	END IF;

	SELECT e.table_name INTO existing FROM moment.entities e WHERE e.name OPERATOR(pg_catalog.=) register_entity.name;
	IF existing IS NOT NULL THEN
		IF existing OPERATOR(pg_catalog.=) tbl THEN
			RETURN;
		END IF;
		RAISE EXCEPTION 'entity "%" is already registered for table %', name, existing USING ERRCODE = '42710';
	END IF;
	IF EXISTS (SELECT 1 FROM moment.entities e WHERE e.table_name OPERATOR(pg_catalog.=) tbl) THEN
		RAISE EXCEPTION 'table % is already registered as another entity', tbl USING ERRCODE = '42710';
	END IF;

	-- The date field for fromDate/toDate: the table's only date column, if it has exactly one.
	SELECT pg_catalog.array_agg(a.attname::pg_catalog.text ORDER BY a.attnum) INTO date_columns FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
	   AND a.atttypid OPERATOR(pg_catalog.=) 'pg_catalog.date'::pg_catalog.regtype;

	INSERT INTO moment.entities (name, table_name, date_field)
	VALUES (name, tbl,
			CASE WHEN pg_catalog.cardinality(date_columns) OPERATOR(pg_catalog.=) 1 THEN moment.camel_case(date_columns[1]) END);
	INSERT INTO moment.parts (entity, name, fields) VALUES (name, 'base', NULL);
	INSERT INTO moment.metadata (entity, set_name, key, expression) VALUES (name, 'count', 'count', 'pg_catalog.count(*)');
	PERFORM moment.enable_tenant_security(tbl);
	PERFORM moment.grant_entity_privileges(tbl);
	-- the webhook outbox; absent only while the extension's own script registers the built-in entities
	IF pg_catalog.to_regprocedure('moment.enable_webhooks(pg_catalog.regclass)') IS NOT NULL THEN PERFORM moment.enable_webhooks(tbl); END IF;

	-- a typed listing for reporting tools, unless a function of that name exists
	listing := 'list_' OPERATOR(pg_catalog.||) (SELECT c.relname FROM pg_catalog.pg_class c WHERE c.oid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid);
	IF NOT EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
				    WHERE p.pronamespace OPERATOR(pg_catalog.=) 'moment'::pg_catalog.regnamespace
					  AND p.proname OPERATOR(pg_catalog.=) listing) THEN
		EXECUTE pg_catalog.format('CREATE FUNCTION moment.%I(filter jsonb DEFAULT ''{}'', order_by text DEFAULT NULL, '
								  'no_limit boolean DEFAULT false) RETURNS SETOF %s '
								  'AS %L, ''moment_list_typed'' LANGUAGE C STABLE',
								  listing, tbl, '$libdir/moment');
		EXECUTE pg_catalog.format('COMMENT ON FUNCTION moment.%I(jsonb, text, boolean) IS %L', listing,
								  pg_catalog.format('Typed rows of entity %s for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap.', name));
		PERFORM moment.adopt_typed_listing(pg_catalog.format('moment.%I(jsonb, text, boolean)', listing)::pg_catalog.regprocedure, tbl);
	END IF;
END
$$;

COMMENT ON FUNCTION moment.register_entity(text, regclass) IS
'Exposes a table (with company_id and id columns, owned by the extension owner or a superuser) as an entity: fields are its columns in lowerCamelCase, relations its foreign keys on (company_id, x_id), a base part with every field, metadata.count, forced row-level security by company, privileges for moment_read and moment_write, and a typed listing moment.list_<table>.';

CREATE OR REPLACE FUNCTION moment.define_part(entity text, name text, fields text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_internal.require_admin();
	INSERT INTO moment.parts AS p (entity, name, fields, builtin) VALUES (entity, name, fields, false)
	ON CONFLICT ON CONSTRAINT parts_pkey DO UPDATE SET fields = excluded.fields;
	-- resolve it now, so a bad field list fails here rather than in a request
	PERFORM moment.check_include(entity, name);
END
$$;

COMMENT ON FUNCTION moment.define_part(text, text, text[]) IS
'Defines (or redefines) a named part of an entity: a list of field names and relation paths usable in include specs. Defining a built-in part''s name replaces it (and pg_dump keeps the change).';

CREATE OR REPLACE FUNCTION moment.define_metadata(entity text, set_name text, key text, expression text, "position" integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_internal.require_admin();
	INSERT INTO moment.metadata AS m (entity, set_name, key, expression, position, builtin)
	VALUES (entity, set_name, key, expression, position, false)
	ON CONFLICT ON CONSTRAINT metadata_pkey DO UPDATE SET expression = excluded.expression, position = excluded.position;
	PERFORM moment.check_include(entity, 'metadata.' OPERATOR(pg_catalog.||) set_name);
END
$$;

COMMENT ON FUNCTION moment.define_metadata(text, text, text, text, integer) IS
'Defines one aggregate of a metadata set: key and an aggregate SQL expression over the entity''s table aliased t (owner-written, like a view definition; evaluated with search_path pg_catalog, pg_temp). Defining a built-in key replaces it.';

CREATE OR REPLACE FUNCTION moment.set_date_field(entity text, field text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_internal.require_admin();
	IF NOT EXISTS (SELECT 1 FROM moment.entities e WHERE e.name OPERATOR(pg_catalog.=) set_date_field.entity) THEN
		RAISE EXCEPTION 'unknown entity "%"', entity USING ERRCODE = '42P01';
	END IF;
	IF field IS NOT NULL AND NOT EXISTS (
		SELECT 1 FROM moment.entities e
		  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) e.table_name::pg_catalog.oid
		 WHERE e.name OPERATOR(pg_catalog.=) set_date_field.entity AND a.attnum OPERATOR(pg_catalog.>) 0 AND NOT a.attisdropped
		   AND moment.camel_case(a.attname::pg_catalog.text) OPERATOR(pg_catalog.=) field
		   AND a.atttypid OPERATOR(pg_catalog.=) ANY (ARRAY['pg_catalog.date', 'pg_catalog.timestamp', 'pg_catalog.timestamptz']::pg_catalog.regtype[])) THEN
		RAISE EXCEPTION 'entity % has no date field "%"', entity, field
			USING ERRCODE = '42703', HINT = 'The date field is a field of type date, timestamp or timestamptz.';
	END IF;
	INSERT INTO moment.entity_settings AS s (entity, date_field) VALUES (entity, field)
	ON CONFLICT ON CONSTRAINT entity_settings_pkey DO UPDATE SET date_field = excluded.date_field;
END
$$;

COMMENT ON FUNCTION moment.set_date_field(text, text) IS
'Sets the field that fromDate/toDate filter on for an entity (NULL: none). Kept by pg_dump and upgrades, also for built-in entities.';

-- grant_company, revoke_company and sync_group_roles look up rows by key
-- only (a company by code, a role's grants, memberships, shared dependencies),
-- and plan with seq scans off: during a burst of provisioning the statistics
-- of pg_auth_members and pg_shdepend can be far behind (autovacuum off or not
-- yet run), and a seq scan of them per call made 10 000 grants quadratic.
CREATE OR REPLACE FUNCTION moment.grant_company(company_code text, role name, writable boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
	company bigint;
	grantee oid;
	groups oid[] := ARRAY[pg_catalog.to_regrole('moment_read')::pg_catalog.oid, pg_catalog.to_regrole('moment_write')::pg_catalog.oid];
BEGIN
	PERFORM moment_internal.require_admin();
	IF company_code IS NULL OR role IS NULL OR writable IS NULL THEN
		RAISE EXCEPTION 'company_code, role and writable must not be null' USING ERRCODE = '22023';
	END IF;
	-- (in the default collation: a call with a role of type name, whose
	-- collation is "C", passes its collation to company_code, and a comparison
	-- in "C" cannot use the index on code: a scan of every company per call)
	SELECT c.id INTO company FROM moment.companies c
	 WHERE c.code OPERATOR(pg_catalog.=) (company_code COLLATE pg_catalog."default");
	IF company IS NULL THEN
		RAISE EXCEPTION 'company "%" does not exist', company_code USING ERRCODE = '22023';
	END IF;
	-- the role's exact name, as PostgreSQL's own functions taking a role name do
	grantee := pg_catalog.to_regrole(pg_catalog.quote_ident(grant_company.role))::pg_catalog.oid;
	IF grantee IS NULL THEN
		RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = '42704';
	END IF;
	IF grantee OPERATOR(pg_catalog.=) ANY (groups) THEN
		RAISE EXCEPTION 'role "%" is one of moment''s own group roles', role USING ERRCODE = '22023';
	END IF;
	-- A role without this database's mark (SELECT on its column of
	-- moment.grantees) holds no grant here: rows left by a dropped role whose
	-- oid was reused must not pass to the new role.
	IF NOT moment_internal.holds_mark(grantee) THEN
		DELETE FROM moment.company_grants g WHERE g.role OPERATOR(pg_catalog.=) grantee::pg_catalog.regrole;
	END IF;
	INSERT INTO moment.company_grants AS g (company_id, role, writable) VALUES (company, grantee::pg_catalog.regrole, writable)
	ON CONFLICT ON CONSTRAINT company_grants_pkey DO UPDATE SET writable = excluded.writable;
	PERFORM moment.sync_group_roles(grantee);
END
$$;

COMMENT ON FUNCTION moment.grant_company(text, name, boolean) IS
'Lets a role (and every role that has its privileges) use a company, read-only or read-write; makes it a member of moment_read or moment_write, which hold the table and sequence privileges. Superuser or extension owner only.';

-- A NOINHERIT role does not use its group roles' privileges (PostgreSQL's
-- own semantics, which the grant check follows too): it gets the table and
-- sequence privileges directly instead.
CREATE FUNCTION moment.set_direct_privileges(grantee oid, readable boolean, writable boolean, tbl regclass DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	role_name name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) grantee);
	object record;
BEGIN
	PERFORM moment_internal.require_admin();
	IF role_name IS NULL THEN
		RETURN;
	END IF;
	IF tbl IS NULL THEN
		EXECUTE pg_catalog.format(CASE WHEN readable OR writable THEN 'GRANT SELECT ON moment.companies TO %I'
								  ELSE 'REVOKE SELECT ON moment.companies FROM %I' END, role_name);
		EXECUTE pg_catalog.format(CASE WHEN readable OR writable
								  THEN 'GRANT EXECUTE ON FUNCTION moment_internal.current_company_id(boolean), moment_internal.company_visible(bigint) TO %I'
								  ELSE 'REVOKE EXECUTE ON FUNCTION moment_internal.current_company_id(boolean), moment_internal.company_visible(bigint) FROM %I' END,
								  role_name);
	END IF;
	FOR object IN SELECT e.table_name FROM moment.entities e
				   WHERE tbl IS NULL OR e.table_name OPERATOR(pg_catalog.=) tbl ORDER BY e.name LOOP
		EXECUTE pg_catalog.format(CASE WHEN readable OR writable THEN 'GRANT SELECT ON %s TO %I'
								  ELSE 'REVOKE SELECT ON %s FROM %I' END, object.table_name, role_name);
		EXECUTE pg_catalog.format(CASE WHEN writable THEN 'GRANT INSERT, UPDATE, DELETE ON %s TO %I'
								  ELSE 'REVOKE INSERT, UPDATE, DELETE ON %s FROM %I' END, object.table_name, role_name);
	END LOOP;
	FOR object IN
		SELECT DISTINCT s.oid::pg_catalog.regclass AS seq
		  FROM moment.entities e
		  JOIN pg_catalog.pg_depend d ON d.refobjid OPERATOR(pg_catalog.=) e.table_name::pg_catalog.oid
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		  JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid AND s.relkind OPERATOR(pg_catalog.=) 'S'
		 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND (tbl IS NULL OR e.table_name OPERATOR(pg_catalog.=) tbl)
	LOOP
		EXECUTE pg_catalog.format(CASE WHEN writable THEN 'GRANT USAGE ON SEQUENCE %s TO %I'
								  ELSE 'REVOKE USAGE ON SEQUENCE %s FROM %I' END, object.seq, role_name);
	END LOOP;
END
$$;

COMMENT ON FUNCTION moment.set_direct_privileges(oid, boolean, boolean, regclass) IS
'Grants (or revokes) a NOINHERIT role the privileges moment_read and moment_write would give it, on every entity table or on one.';

CREATE OR REPLACE FUNCTION moment.sync_group_roles(grantee oid)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
	role_name name := (SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) grantee);
	wants_write boolean;
	wants_read boolean;
	group_role name;
	wanted boolean;
	marked boolean;
	needed_elsewhere boolean;
BEGIN
	PERFORM moment_internal.require_admin();
	IF role_name IS NULL THEN
		RETURN;
	END IF;
	SELECT pg_catalog.bool_or(g.writable), pg_catalog.bool_or(NOT g.writable) INTO wants_write, wants_read
	  FROM moment.company_grants g WHERE g.role OPERATOR(pg_catalog.=) grantee::pg_catalog.regrole;
	wants_read := coalesce(wants_read, false) AND NOT coalesce(wants_write, false);
	wants_write := coalesce(wants_write, false);
	-- The mark: a grant row counts only while its role holds it (the grant
	-- check reads its column's ACL), so the rows of a dropped role are inert
	-- even for a new role reusing its oid, and DROP ROLE wants the role's
	-- grants revoked first (or DROP OWNED BY), as for any privilege.
	marked := moment_internal.holds_mark(grantee);
	IF (wants_read OR wants_write) AND NOT marked THEN
		EXECUTE pg_catalog.format('GRANT SELECT (%I) ON moment.grantees TO %I', moment_internal.mark_column(grantee), role_name);
	ELSIF NOT (wants_read OR wants_write) AND marked THEN
		EXECUTE pg_catalog.format('REVOKE SELECT (%I) ON moment.grantees FROM %I', moment_internal.mark_column(grantee), role_name);
	END IF;
	-- The group roles are the cluster's, grants each database's: a role that
	-- holds a privilege in another database (there, the mark of its grants)
	-- may need its memberships there, and keeps them.  Row-level security and
	-- the grant check keep it out of every company it holds no grant for.
	needed_elsewhere := EXISTS (
		SELECT 1 FROM pg_catalog.pg_shdepend d
		 WHERE d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_authid'::pg_catalog.regclass
		   AND d.refobjid OPERATOR(pg_catalog.=) grantee
		   AND d.deptype OPERATOR(pg_catalog.=) 'a'
		   AND d.dbid OPERATOR(pg_catalog.<>) 0
		   AND d.dbid OPERATOR(pg_catalog.<>) (SELECT db.oid FROM pg_catalog.pg_database db
											  WHERE db.datname OPERATOR(pg_catalog.=) pg_catalog.current_database()));
	FOREACH group_role IN ARRAY ARRAY['moment_read', 'moment_write']::pg_catalog.name[] LOOP
		wanted := CASE WHEN group_role OPERATOR(pg_catalog.=) 'moment_write' THEN wants_write ELSE wants_read END;
		IF EXISTS (SELECT 1 FROM pg_catalog.pg_auth_members m
				    WHERE m.member OPERATOR(pg_catalog.=) grantee
					  AND m.roleid OPERATOR(pg_catalog.=) pg_catalog.to_regrole(group_role)::pg_catalog.oid) THEN
			IF NOT wanted AND NOT needed_elsewhere THEN
				EXECUTE pg_catalog.format('REVOKE %I FROM %I', group_role, role_name);
			END IF;
		ELSIF wanted THEN
			EXECUTE pg_catalog.format('GRANT %I TO %I', group_role, role_name);
		END IF;
	END LOOP;
	IF NOT (SELECT r.rolinherit FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) grantee) THEN
		PERFORM moment.set_direct_privileges(grantee, wants_read, wants_write);
	END IF;
END
$$;

COMMENT ON FUNCTION moment.sync_group_roles(oid) IS
'Gives a role with grants in this database SELECT on its column of moment.grantees (the mark that makes its grant rows count) and takes it from one without; puts it in moment_write (a writable grant), moment_read (only read-only grants) or neither (no grant), keeping the memberships of a role that holds privileges in another database (the group roles are the cluster''s, grants each database''s).';

CREATE OR REPLACE FUNCTION moment.revoke_company(company_code text, role name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
SET enable_seqscan = off
AS $$
DECLARE
	grantee oid := pg_catalog.to_regrole(pg_catalog.quote_ident(revoke_company.role))::pg_catalog.oid;
BEGIN
	PERFORM moment_internal.require_admin();
	IF grantee IS NULL THEN
		RETURN;
	END IF;
	DELETE FROM moment.company_grants g
	 USING moment.companies c
	 WHERE c.id OPERATOR(pg_catalog.=) g.company_id AND c.code OPERATOR(pg_catalog.=) (company_code COLLATE pg_catalog."default")
	   AND g.role OPERATOR(pg_catalog.=) grantee::pg_catalog.regrole;
	PERFORM moment.sync_group_roles(grantee);
END
$$;

COMMENT ON FUNCTION moment.revoke_company(text, name) IS
'Takes a company away from a role; with its last grant (or last writable grant) the role leaves moment_read (or moment_write), and with them the table privileges, and SELECT on its column of moment.grantees (a role holding privileges in another database keeps its memberships: the group roles are the cluster''s, grants each database''s). Takes effect for the next statement of every session.';

ALTER FUNCTION moment.camel_case(text) PARALLEL SAFE;

COMMENT ON FUNCTION moment.check_include(text, text) IS
'Resolves an include spec for an entity and prepares the statement it needs, raising what a request would (42703, 42601, 54000, ...); true when it is sound. Needs a granted company in force (or an administrator).';

COMMENT ON FUNCTION moment.describe(text) IS
'What an entity offers: its table, fields (with SQL types, JSON types, whether required, writable or read-only), relations, parts (expanded) and metadata sets. A part or metadata set that no longer resolves shows {"error": ...} instead of its keys. Needs a granted company in force (or an administrator).';

REVOKE EXECUTE ON FUNCTION moment.register_entity(text, regclass), moment.define_part(text, text, text[]),
	moment.define_metadata(text, text, text, text, integer), moment.set_date_field(text, text),
	moment.grant_company(text, name, boolean), moment.revoke_company(text, name), moment.sync_group_roles(oid),
	moment.set_direct_privileges(oid, boolean, boolean, regclass),
	moment.enable_tenant_security(regclass), moment.grant_entity_privileges(regclass),
	moment.adopt_typed_listing(regprocedure, regclass), moment.camel_case(text),
	moment.cache_stats(), moment.catalog_changed(), moment.set_updated_at(), moment.forget_dropped_tables(),
	moment.time_record_defaults(), moment.time_lock_check()
	FROM PUBLIC;

CREATE FUNCTION moment.list_project_extensions(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.project_extensions
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;
CREATE FUNCTION moment.list_project_memberships(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.project_memberships
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;
CREATE FUNCTION moment.list_tasks(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.tasks
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;
COMMENT ON FUNCTION moment.list_project_extensions(jsonb, text, boolean) IS
'Typed activity rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';
COMMENT ON FUNCTION moment.list_project_memberships(jsonb, text, boolean) IS
'Typed project membership rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';
COMMENT ON FUNCTION moment.list_tasks(jsonb, text, boolean) IS
'Typed task rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';

------------------------------------------------------------------------------
-- The new built-in entities, and every entity under the 0.2.0 rules
------------------------------------------------------------------------------

SELECT moment.register_entity('projectExtensions', 'moment.project_extensions');
SELECT moment.register_entity('projectMemberships', 'moment.project_memberships');
SELECT moment.register_entity('tasks', 'moment.tasks');
UPDATE moment.entities SET builtin = true
 WHERE name OPERATOR(pg_catalog.=) ANY (ARRAY['projectExtensions', 'projectMemberships', 'tasks']);

-- forced row-level security with our own policies, and the group roles' privileges
SELECT moment.enable_tenant_security(e.table_name), moment.grant_entity_privileges(e.table_name)
  FROM moment.entities e ORDER BY e.name;

-- a typed listing for each user-registered table, as register_entity makes
-- now; they belong to the user, not to the extension
DO $do$
DECLARE
	entity record;
	listing text;
BEGIN
	FOR entity IN SELECT e.name, e.table_name, c.relname FROM moment.entities e
				   JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) e.table_name::pg_catalog.oid
				  WHERE NOT e.builtin ORDER BY e.name
	LOOP
		listing := 'list_' OPERATOR(pg_catalog.||) entity.relname;
		CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_proc p
							   WHERE p.pronamespace OPERATOR(pg_catalog.=) 'moment'::pg_catalog.regnamespace
								 AND p.proname OPERATOR(pg_catalog.=) listing);
		EXECUTE pg_catalog.format('CREATE FUNCTION moment.%I(filter jsonb DEFAULT ''{}'', order_by text DEFAULT NULL, '
								  'no_limit boolean DEFAULT false) RETURNS SETOF %s '
								  'AS %L, ''moment_list_typed'' LANGUAGE C STABLE',
								  listing, entity.table_name, '$libdir/moment');
		EXECUTE pg_catalog.format('COMMENT ON FUNCTION moment.%I(jsonb, text, boolean) IS %L', listing,
								  pg_catalog.format('Typed rows of entity %s for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap.', entity.name));
		PERFORM moment.adopt_typed_listing(pg_catalog.format('moment.%I(jsonb, text, boolean)', listing)::pg_catalog.regprocedure,
										   entity.table_name);
		EXECUTE pg_catalog.format('ALTER EXTENSION moment DROP FUNCTION moment.%I(jsonb, text, boolean)', listing);
	END LOOP;
END
$do$;

------------------------------------------------------------------------------
-- Grants move to the group roles
------------------------------------------------------------------------------

-- the rows of roles dropped since (0.1.0 left them behind)
DELETE FROM moment.company_grants g
 WHERE NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.oid OPERATOR(pg_catalog.=) g.role::pg_catalog.oid);

DO $do$
DECLARE
	grantee record;
	object record;
BEGIN
	FOR grantee IN
		SELECT DISTINCT r.oid, r.rolname FROM moment.company_grants g
		  JOIN pg_catalog.pg_roles r ON r.oid OPERATOR(pg_catalog.=) g.role::pg_catalog.oid
		 ORDER BY r.rolname
	LOOP
		-- what 0.1.0's grant_company granted directly
		EXECUTE pg_catalog.format('REVOKE SELECT ON moment.companies FROM %I', grantee.rolname);
		FOR object IN SELECT e.table_name FROM moment.entities e ORDER BY e.name LOOP
			EXECUTE pg_catalog.format('REVOKE SELECT, INSERT, UPDATE, DELETE ON %s FROM %I', object.table_name, grantee.rolname);
		END LOOP;
		FOR object IN
			SELECT DISTINCT s.oid::pg_catalog.regclass AS seq
			  FROM moment.entities e
			  JOIN pg_catalog.pg_depend d ON d.refobjid OPERATOR(pg_catalog.=) e.table_name::pg_catalog.oid
			   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
			  JOIN pg_catalog.pg_class s ON s.oid OPERATOR(pg_catalog.=) d.objid AND s.relkind OPERATOR(pg_catalog.=) 'S'
			 WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		LOOP
			EXECUTE pg_catalog.format('REVOKE USAGE ON SEQUENCE %s FROM %I', object.seq, grantee.rolname);
		END LOOP;
		PERFORM moment.sync_group_roles(grantee.oid);
	END LOOP;
END
$do$;

------------------------------------------------------------------------------
-- Built-in catalog rows.  0.1.0's define_part / define_metadata changed a
-- built-in row in place; such a change becomes the user's own row (kept by
-- pg_dump from now on) and the built-in row returns to the extension's.
------------------------------------------------------------------------------

CREATE TEMPORARY TABLE moment_0_1_0_parts (entity text, name text, fields text[]);
INSERT INTO moment_0_1_0_parts VALUES
	('userAccounts', 'base', ARRAY['name', 'email', 'active']),
	('customers', 'base', ARRAY['customerNumber', 'name', 'organizationNumber', 'customerState']),
	('projects', 'base', ARRAY['customerId', 'projectNumber', 'name', 'projectState']),
	('offers', 'base', ARRAY['customerId', 'offerNumber', 'name', 'issueDate', 'offerState']),
	('timeRecords', 'base', ARRAY['projectId', 'userAccountId', 'projectMembershipId', 'timeRecordDate', 'minutes']),
	('userAccounts', 'all', NULL), ('customers', 'all', NULL), ('projects', 'all', NULL),
	('offers', 'all', NULL), ('timeRecords', 'all', NULL),
	('customers', 'contact', ARRAY['email', 'organizationNumber']),
	('projects', 'dates', ARRAY['startDate', 'endDate']),
	('projects', 'pricing', ARRAY['priceModel', 'fixedPrice', 'currencyCode']),
	('offers', 'sums', ARRAY['currencyCode', 'exchangeRate', 'totalSum']),
	('timeRecords', 'texts', ARRAY['description', 'internalNote']),
	('timeRecords', 'status', ARRAY['billable', 'approved']);
INSERT INTO moment.parts (entity, name, fields, builtin)
SELECT p.entity, p.name, p.fields, false FROM moment.parts p
  JOIN moment_0_1_0_parts o ON o.entity OPERATOR(pg_catalog.=) p.entity AND o.name OPERATOR(pg_catalog.=) p.name
 WHERE p.builtin AND p.fields IS DISTINCT FROM o.fields;
UPDATE moment.parts p SET fields = o.fields FROM moment_0_1_0_parts o
 WHERE p.builtin AND o.entity OPERATOR(pg_catalog.=) p.entity AND o.name OPERATOR(pg_catalog.=) p.name
   AND p.fields IS DISTINCT FROM o.fields;
DROP TABLE moment_0_1_0_parts;

CREATE TEMPORARY TABLE moment_0_1_0_metadata (entity text, set_name text, key text, expression text, expression_0_2_0 text, "position" integer);
INSERT INTO moment_0_1_0_metadata VALUES
	('userAccounts', 'count', 'count', 'count(*)', 'pg_catalog.count(*)', 0),
	('customers', 'count', 'count', 'count(*)', 'pg_catalog.count(*)', 0),
	('projects', 'count', 'count', 'count(*)', 'pg_catalog.count(*)', 0),
	('offers', 'count', 'count', 'count(*)', 'pg_catalog.count(*)', 0),
	('timeRecords', 'count', 'count', 'count(*)', 'pg_catalog.count(*)', 0),
	('offers', 'overviewPage', 'totalSumInCompanyCurrency', 'coalesce(sum(t.total_sum * t.exchange_rate), 0)',
	 'coalesce(pg_catalog.sum(t.total_sum OPERATOR(pg_catalog.*) t.exchange_rate), 0)', 1),
	('offers', 'overviewPage', 'count', 'count(*)', 'pg_catalog.count(*)', 0),
	('offers', 'sums', 'totalSum', 'coalesce(sum(t.total_sum), 0)', 'coalesce(pg_catalog.sum(t.total_sum), 0)', 0),
	('timeRecords', 'summary', 'totalMinutes', 'coalesce(sum(t.minutes), 0)', 'coalesce(pg_catalog.sum(t.minutes), 0)', 0),
	('timeRecords', 'summary', 'billableMinutes', 'coalesce(sum(t.minutes) FILTER (WHERE t.billable), 0)',
	 'coalesce(pg_catalog.sum(t.minutes) FILTER (WHERE t.billable), 0)', 1);
INSERT INTO moment.metadata (entity, set_name, key, expression, position, builtin)
SELECT m.entity, m.set_name, m.key, m.expression, m.position, false FROM moment.metadata m
  JOIN moment_0_1_0_metadata o ON o.entity OPERATOR(pg_catalog.=) m.entity AND o.set_name OPERATOR(pg_catalog.=) m.set_name
   AND o.key OPERATOR(pg_catalog.=) m.key
 WHERE m.builtin AND (m.expression OPERATOR(pg_catalog.<>) o.expression OR m.position OPERATOR(pg_catalog.<>) o.position);
UPDATE moment.metadata m SET expression = o.expression_0_2_0, position = o.position FROM moment_0_1_0_metadata o
 WHERE m.builtin AND o.entity OPERATOR(pg_catalog.=) m.entity AND o.set_name OPERATOR(pg_catalog.=) m.set_name
   AND o.key OPERATOR(pg_catalog.=) m.key;
DROP TABLE moment_0_1_0_metadata;

-- a built-in entity's changed date field becomes a setting
INSERT INTO moment.entity_settings (entity, date_field)
SELECT e.name, e.date_field FROM moment.entities e
  JOIN (VALUES ('userAccounts', NULL), ('customers', NULL), ('projects', 'startDate'), ('offers', 'issueDate'),
			   ('timeRecords', 'timeRecordDate')) AS d(entity, date_field) ON d.entity OPERATOR(pg_catalog.=) e.name
 WHERE e.builtin AND e.date_field IS DISTINCT FROM d.date_field;
UPDATE moment.entities e SET date_field = d.date_field
  FROM (VALUES ('userAccounts', NULL), ('customers', NULL), ('projects', 'startDate'), ('offers', 'issueDate'),
			   ('timeRecords', 'timeRecordDate')) AS d(entity, date_field)
 WHERE e.builtin AND d.entity OPERATOR(pg_catalog.=) e.name AND e.date_field IS DISTINCT FROM d.date_field;

-- the new built-in parts and metadata sets
UPDATE moment.parts SET builtin = true, fields = CASE entity
	WHEN 'projectExtensions' THEN ARRAY['projectId', 'projectExtensionNumber', 'name', 'projectExtensionState']
	WHEN 'projectMemberships' THEN ARRAY['projectId', 'userAccountId', 'projectMembershipState', 'projectMembershipRoleName']
	WHEN 'tasks' THEN ARRAY['projectExtensionId', 'taskNumber', 'name', 'taskState']
	END
 WHERE name OPERATOR(pg_catalog.=) 'base' AND entity OPERATOR(pg_catalog.=) ANY (ARRAY['projectExtensions', 'projectMemberships', 'tasks']);
UPDATE moment.metadata SET builtin = true
 WHERE entity OPERATOR(pg_catalog.=) ANY (ARRAY['projectExtensions', 'projectMemberships', 'tasks']);
INSERT INTO moment.parts (entity, name, fields, builtin) VALUES
	('userAccounts', 'timeLock', ARRAY['timeLockDate'], true),
	('timeRecords', 'activity', ARRAY['projectExtensionId', 'projectExtension.name', 'taskId', 'task.name'], true),
	('projectExtensions', 'all', NULL, true),
	('projectMemberships', 'all', NULL, true),
	('projectMemberships', 'pricing', ARRAY['hourlyRate'], true),
	('tasks', 'all', NULL, true);
INSERT INTO moment.metadata (entity, set_name, key, expression, position, builtin) VALUES
	('projectExtensions', 'summary', 'totalMinutes',
	 '(SELECT coalesce(pg_catalog.sum(r.minutes), 0) FROM moment.time_records r WHERE r.company_id OPERATOR(pg_catalog.=) pg_catalog.min(t.company_id) AND r.project_extension_id OPERATOR(pg_catalog.=) ANY (pg_catalog.array_agg(t.id)))', 0, true),
	('projectExtensions', 'summary', 'billableMinutes',
	 '(SELECT coalesce(pg_catalog.sum(r.minutes) FILTER (WHERE r.billable), 0) FROM moment.time_records r WHERE r.company_id OPERATOR(pg_catalog.=) pg_catalog.min(t.company_id) AND r.project_extension_id OPERATOR(pg_catalog.=) ANY (pg_catalog.array_agg(t.id)))', 1, true),
	('projectMemberships', 'summary', 'totalMinutes',
	 '(SELECT coalesce(pg_catalog.sum(r.minutes), 0) FROM moment.time_records r WHERE r.company_id OPERATOR(pg_catalog.=) pg_catalog.min(t.company_id) AND r.project_membership_id OPERATOR(pg_catalog.=) ANY (pg_catalog.array_agg(t.id)))', 0, true),
	('projectMemberships', 'summary', 'billableMinutes',
	 '(SELECT coalesce(pg_catalog.sum(r.minutes) FILTER (WHERE r.billable), 0) FROM moment.time_records r WHERE r.company_id OPERATOR(pg_catalog.=) pg_catalog.min(t.company_id) AND r.project_membership_id OPERATOR(pg_catalog.=) ANY (pg_catalog.array_agg(t.id)))', 1, true);

------------------------------------------------------------------------------
-- pg_dump keeps the new tables' data
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('moment.entity_settings', '');
SELECT pg_catalog.pg_extension_config_dump('moment.project_extensions', '');
SELECT pg_catalog.pg_extension_config_dump('moment.project_extensions_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.project_memberships', '');
SELECT pg_catalog.pg_extension_config_dump('moment.project_memberships_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.tasks', '');
SELECT pg_catalog.pg_extension_config_dump('moment.tasks_id_seq', '');

------------------------------------------------------------------------------
-- The API: new functions and comments
------------------------------------------------------------------------------

COMMENT ON FUNCTION moment.list(text, text, jsonb, text, integer, integer, boolean) IS
'Moment''s listing document {"content": [...], "limitWasExceeded": bool, "metadata"?, "page"?}: at most least(moment.default_limit, moment.max_limit) rows (moment.max_limit with no_limit), filtered, ordered (id is always the last tiebreaker) and optionally paged.';
COMMENT ON FUNCTION moment.rows(text, text, jsonb, text, boolean) IS
'The objects of a listing, one row each, under the same cap as list; a WARNING containing limitWasExceeded says when rows were cut (an error 54000 with moment.limit_exceeded = error).';
COMMENT ON FUNCTION moment."create"(text, jsonb, text) IS
'Creates one object from a JSON body of field names (company_id from the company in force; id, companyId, createdAt and updatedAt cannot be set) and returns it projected by include.';
COMMENT ON FUNCTION moment.batch(text, jsonb, text) IS
'Applies {"create": [...], "update": {"id": {...}}, "delete": [...]} all or nothing: creates in order, updates by ascending id, then deletes (every updated or deleted row locked first, in id order). Errors keep their SQLSTATE and name the failing instruction (create[N], update[ID], delete[ID]).';
COMMENT ON FUNCTION moment.api(text, text, jsonb) IS
'Moment''s REST API from SQL: api(''GET'', ''/api/1.0/companies/cloudware/offers/include/base?noLimit=true'') returns the HTTP status and JSON body Moment would, and sets response.status for PostgREST. Never raises for a bad request.';

CREATE OR REPLACE FUNCTION moment.hours_report(from_date date, to_date date, group_by text DEFAULT 'project,userAccount',
									filter jsonb DEFAULT '{}')
RETURNS TABLE (period date, project_id bigint, project_number text, project_name text,
			   project_extension_id bigint, project_extension_name text,
			   user_account_id bigint, user_account_name text, customer_id bigint,
			   customer_name text, records bigint, minutes bigint,
			   billable_minutes bigint, approved_minutes bigint)
AS 'MODULE_PATHNAME', 'moment_hours_report'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.hours_report(date, date, text, jsonb) IS
'Hours of the time records of the company in force dated from_date..to_date (inclusive), grouped by a comma list of project, projectExtension, userAccount, customer and at most one of day, week, month; filter is a time record filter. One statement; under the listing cap (WARNING with limitWasExceeded when cut).';

CREATE OR REPLACE FUNCTION moment.project_registered_hours(from_date date, to_date date, filter jsonb DEFAULT '{}')
RETURNS TABLE (project_id bigint, project_number text, project_name text,
			   customer_id bigint, customer_name text, records bigint, minutes bigint,
			   billable_minutes bigint, first_date date, last_date date)
AS 'MODULE_PATHNAME', 'moment_project_registered_hours'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.project_registered_hours(date, date, jsonb) IS
'Hours registered per project of the company in force from_date..to_date (inclusive), with the first and last date; filter is a time record filter. One statement; under the listing cap.';

------------------------------------------------------------------------------
-- Initial privileges: the extension's own grants, never users'
------------------------------------------------------------------------------

-- Every GRANT or REVOKE run by an extension script records the object's whole
-- privilege list in pg_init_privs as its initial privileges, member of the
-- extension or not, and pg_dump dumps only the changes from those.  The grants
-- and revokes above would make users' own grants (to roles of theirs, on the
-- extension's objects and on their registered tables) initial privileges, and
-- every later dump would leave them out.  What a fresh install records: its
-- members' grants to PUBLIC, the owner and the group roles; nothing for users'
-- tables, which register_entity grants on outside any extension script.
DELETE FROM pg_catalog.pg_init_privs i
 WHERE i.privtype OPERATOR(pg_catalog.=) 'e'
   AND i.classoid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
   AND NOT EXISTS (SELECT FROM pg_catalog.pg_depend d
					WHERE d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
					  AND d.objid OPERATOR(pg_catalog.=) i.objoid AND d.deptype OPERATOR(pg_catalog.=) 'e')
   AND i.objoid OPERATOR(pg_catalog.=) ANY (
		SELECT e.table_name::pg_catalog.oid FROM moment.entities e
		UNION ALL
		SELECT d.objid FROM moment.entities e
		  JOIN pg_catalog.pg_depend d ON d.refobjid OPERATOR(pg_catalog.=) e.table_name::pg_catalog.oid
		   AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
		   AND d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass);
UPDATE pg_catalog.pg_init_privs i
   SET initprivs = ARRAY(SELECT a.item FROM pg_catalog.unnest(i.initprivs) AS a(item)
						  WHERE (SELECT x.grantee FROM pg_catalog.aclexplode(ARRAY[a.item]) x LIMIT 1)
								OPERATOR(pg_catalog.=) ANY (ARRAY[0, (SELECT e.extowner FROM pg_catalog.pg_extension e
																	   WHERE e.extname OPERATOR(pg_catalog.=) 'moment'),
													  'moment_read'::pg_catalog.regrole, 'moment_write'::pg_catalog.regrole]::pg_catalog.oid[]))
 WHERE i.privtype OPERATOR(pg_catalog.=) 'e'
   AND EXISTS (SELECT FROM pg_catalog.pg_depend d
				WHERE d.classid OPERATOR(pg_catalog.=) i.classoid AND d.objid OPERATOR(pg_catalog.=) i.objoid
				  AND d.deptype OPERATOR(pg_catalog.=) 'e'
				  AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_extension'::pg_catalog.regclass
				  AND d.refobjid OPERATOR(pg_catalog.=) (SELECT e.oid FROM pg_catalog.pg_extension e
														 WHERE e.extname OPERATOR(pg_catalog.=) 'moment'));
-- The marks of roles with grants given above (SELECT on a column of
-- moment.grantees) left column initial privileges holding nothing: a fresh
-- install records none for those columns.
DELETE FROM pg_catalog.pg_init_privs i
 WHERE i.privtype OPERATOR(pg_catalog.=) 'e' AND i.objsubid OPERATOR(pg_catalog.<>) 0
   AND pg_catalog.cardinality(i.initprivs) OPERATOR(pg_catalog.=) 0;

------------------------------------------------------------------------------
-- Self-description: OpenAPI (section 13 of the contract)
------------------------------------------------------------------------------

CREATE FUNCTION moment.openapi(server_url text DEFAULT NULL)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moment_openapi'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.openapi(text) IS
'An OpenAPI 3.0.3 document of the REST paths moment.api() answers, built from the entity registry at call time: per entity the list, get, create, update (PUT, PATCH), delete, batch and include paths with their query parameters, request and response schemas, parts and metadata sets, and the error responses; the reports and GET /openapi.json. server_url sets servers (paths without the company prefix); NULL gives paths under /api/1.0/companies/{companyCode}. Same registry, same document.';

-- Sharding (contract section 15): a shard's number and id block, the entry
-- point of calls routed by moment_router, the write fence of a company being
-- moved, and the copy of a company's rows to another shard
------------------------------------------------------------------------------

ALTER TABLE moment.companies ADD COLUMN fenced boolean NOT NULL DEFAULT false,
	ADD COLUMN moved boolean NOT NULL DEFAULT false;

COMMENT ON COLUMN moment.companies.fenced IS
'True while moment_router moves the company to another shard: writes to it are refused with SQLSTATE 55006 (retry), reads keep working.';
COMMENT ON COLUMN moment.companies.moved IS
'True on the shard a company moved away from, where only this row of it is left: every call for it gets SQLSTATE 55006, so that a call routed before the move retries and reaches the new shard. Removed when the company moves back here, or by moment_router.move_company to its own shard.';

CREATE TABLE moment.shard_config (
	singleton boolean NOT NULL DEFAULT true,
	shard_number integer NOT NULL,
	CONSTRAINT shard_config_pkey PRIMARY KEY (singleton),
	CONSTRAINT shard_config_singleton_check CHECK (singleton),
	CONSTRAINT shard_config_shard_number_check CHECK (shard_number OPERATOR(pg_catalog.>=) 1
													  AND shard_number OPERATOR(pg_catalog.<=) 1000)
);

COMMENT ON TABLE moment.shard_config IS
'This database''s shard number, set once by moment.configure_shard(); empty when the database is not a shard.';

SELECT pg_catalog.pg_extension_config_dump('moment.shard_config', '');

-- The sequences that give ids: the defaults and identities of the id columns
-- of moment's own tables (webhooks and others included) and of registered
-- entities' tables.
CREATE FUNCTION moment_internal.id_sequences()
RETURNS SETOF regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH tables AS (
		SELECT c.oid, a.attnum
		  FROM pg_catalog.pg_class c
		  JOIN pg_catalog.pg_attribute a ON a.attrelid OPERATOR(pg_catalog.=) c.oid
		   AND a.attname OPERATOR(pg_catalog.=) 'id' AND NOT a.attisdropped
		 WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[])
		   AND (c.relnamespace OPERATOR(pg_catalog.=) 'moment'::pg_catalog.regnamespace
				OR c.oid OPERATOR(pg_catalog.=) ANY (SELECT e.table_name::pg_catalog.oid FROM moment.entities e))
	)
	SELECT DISTINCT s.oid::pg_catalog.regclass
	  FROM tables t
	  JOIN pg_catalog.pg_depend d ON (
			-- a default nextval('...'): the default depends on the sequence
			(d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
			 AND d.objid OPERATOR(pg_catalog.=) ANY (SELECT ad.oid FROM pg_catalog.pg_attrdef ad
												WHERE ad.adrelid OPERATOR(pg_catalog.=) t.oid
												  AND ad.adnum OPERATOR(pg_catalog.=) t.attnum)
			 AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass)
			-- an identity column: its sequence depends on the column
		 OR (d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
			 AND d.refclassid OPERATOR(pg_catalog.=) 'pg_catalog.pg_class'::pg_catalog.regclass
			 AND d.refobjid OPERATOR(pg_catalog.=) t.oid AND d.refobjsubid OPERATOR(pg_catalog.=) t.attnum
			 AND d.deptype OPERATOR(pg_catalog.=) 'i'))
	  JOIN pg_catalog.pg_class s ON s.relkind OPERATOR(pg_catalog.=) 'S'
	   AND s.oid OPERATOR(pg_catalog.=) CASE WHEN d.classid OPERATOR(pg_catalog.=) 'pg_catalog.pg_attrdef'::pg_catalog.regclass
											 THEN d.refobjid ELSE d.objid END
$$;

COMMENT ON FUNCTION moment_internal.id_sequences() IS
'The sequences behind the id columns (defaults and identities) of the tables in schema moment and of registered entities: the ones moment.configure_shard() gives the shard''s block of ids.';

-- Moves one sequence into the shard's block [n * 10^12 + 1, (n + 1) * 10^12),
-- keeping its position when it is already there.
CREATE FUNCTION moment_internal.apply_shard_block(seq regclass, shard_number integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	low bigint := shard_number::pg_catalog.int8 OPERATOR(pg_catalog.*) 1000000000000 OPERATOR(pg_catalog.+) 1;
	high bigint := (shard_number::pg_catalog.int8 OPERATOR(pg_catalog.+) 1) OPERATOR(pg_catalog.*) 1000000000000 OPERATOR(pg_catalog.-) 1;
	last bigint;
BEGIN
	PERFORM moment_internal.require_admin();
	EXECUTE pg_catalog.format('SELECT last_value FROM %s', seq) INTO last;
	IF last OPERATOR(pg_catalog.>) high THEN
		RAISE EXCEPTION 'sequence % is already past the block of shard % (its last value is %)', seq, shard_number, last
			USING ERRCODE = '55000';
	END IF;
	IF last OPERATOR(pg_catalog.<) low THEN
		EXECUTE pg_catalog.format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START WITH %s RESTART WITH %s NO CYCLE',
								  seq, low, high, low, low);
	ELSE
		EXECUTE pg_catalog.format('ALTER SEQUENCE %s MINVALUE %s MAXVALUE %s START WITH %s NO CYCLE', seq, low, high, low);
	END IF;
END
$$;

COMMENT ON FUNCTION moment_internal.apply_shard_block(regclass, integer) IS
'Makes a sequence draw from a shard''s block of ids, [n * 10^12 + 1, (n + 1) * 10^12); a sequence already inside the block keeps its position.';

CREATE FUNCTION moment.configure_shard(shard_number integer)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	configured integer;
	seq regclass;
BEGIN
	IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user), false) THEN
		RAISE EXCEPTION 'permission denied: only a superuser may configure a shard' USING ERRCODE = '42501';
	END IF;
	IF configure_shard.shard_number IS NULL OR configure_shard.shard_number OPERATOR(pg_catalog.<) 1
	   OR configure_shard.shard_number OPERATOR(pg_catalog.>) 1000 THEN
		RAISE EXCEPTION 'shard number must be between 1 and 1000, not %', coalesce(configure_shard.shard_number::pg_catalog.text, 'null')
			USING ERRCODE = '22023';
	END IF;
	-- two concurrent calls must not both see an unconfigured database
	LOCK TABLE moment.shard_config IN SHARE ROW EXCLUSIVE MODE;
	SELECT c.shard_number INTO configured FROM moment.shard_config c;
	IF configured OPERATOR(pg_catalog.<>) configure_shard.shard_number THEN
		RAISE EXCEPTION 'this database is already shard %', configured
			USING ERRCODE = '55000', HINT = 'A shard keeps its number: the ids it gave out come from that number''s block.';
	END IF;
	IF configured IS NULL THEN
		INSERT INTO moment.shard_config (shard_number) VALUES (configure_shard.shard_number);
	END IF;
	FOR seq IN SELECT s FROM moment_internal.id_sequences() s LOOP
		PERFORM moment_internal.apply_shard_block(seq, configure_shard.shard_number);
	END LOOP;
END
$$;

COMMENT ON FUNCTION moment.configure_shard(integer) IS
'Makes this database shard number n (1..1000) of a moment_router: every id sequence of the extension, and of entities registered later, draws from [n * 10^12 + 1, (n + 1) * 10^12), so ids stay unique across shards and a company keeps its ids when it moves. Superuser only; calling it again with the same number changes nothing.';

-- An entity registered on a configured shard gets the shard's block too.
CREATE FUNCTION moment_internal.entity_registered_on_shard()
RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	configured integer := (SELECT c.shard_number FROM moment.shard_config c);
	seq regclass;
BEGIN
	IF configured IS NOT NULL THEN
		FOR seq IN SELECT s FROM moment_internal.id_sequences() s LOOP
			PERFORM moment_internal.apply_shard_block(seq, configured);
		END LOOP;
	END IF;
	RETURN NULL;
END
$$;

COMMENT ON FUNCTION moment_internal.entity_registered_on_shard() IS
'Trigger after a row of moment.entities is added (register_entity): on a configured shard, the new entity''s id sequence draws from the shard''s block.';

CREATE TRIGGER entities_shard_block AFTER INSERT ON moment.entities
	FOR EACH ROW EXECUTE FUNCTION moment_internal.entity_registered_on_shard();

-- The entry point of every call moment_router routes here: applies the call's
-- settings for that call only, runs the function in-process, and returns its
-- result with the errors, warnings and notices it raised as data.
CREATE FUNCTION moment_internal.routed_call(target text, settings text[], VARIADIC arguments "any")
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'moment_routed_call'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment_internal.routed_call(text, text[], "any") IS
'Entry point of calls routed by moment_router: runs the function target (a signature in schema moment or moment_internal, executable by the caller) on the arguments, with settings (name, value pairs: moment.*, request.jwt.claims, transaction_read_only) in force for this call only. Returns the result columns after a text[] column holding the errors, warnings and notices raised (severity, SQLSTATE, message, detail, hint, context, schema, table, column, datatype, constraint, file, line, function), so that the router raises them as a direct call would.';

-- the same, for a function without arguments ("any" takes at least one)
CREATE FUNCTION moment_internal.routed_call(target text, settings text[])
RETURNS SETOF record
AS 'MODULE_PATHNAME', 'moment_routed_call'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment_internal.routed_call(text, text[]) IS
'Entry point of calls routed by moment_router to functions without arguments (see routed_call(text, text[], "any")).';

-- What moment_router needs to know of a shard before adding it.
CREATE FUNCTION moment_internal.shard_format()
RETURNS text
AS 'MODULE_PATHNAME', 'moment_shard_format'
LANGUAGE C IMMUTABLE PARALLEL SAFE;

COMMENT ON FUNCTION moment_internal.shard_format() IS
'The byte order of this server''s in-memory values (little-endian or big-endian): moment_router passes jsonb results between servers of the same byte order without parsing them again.';

CREATE FUNCTION moment_internal.shard_info(OUT shard_number integer, OUT version text, OUT format text, OUT companies bigint)
RETURNS record
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_internal.require_admin();
	shard_number := (SELECT c.shard_number FROM moment.shard_config c);
	version := moment.version();
	format := moment_internal.shard_format();
	companies := (SELECT pg_catalog.count(*) FROM moment.companies c WHERE NOT c.moved);
END
$$;

COMMENT ON FUNCTION moment_internal.shard_info() IS
'This shard''s number (NULL when moment.configure_shard() was not called), library version, value format and number of companies. Administrators only.';

CREATE FUNCTION moment_internal.shard_companies()
RETURNS TABLE (id bigint, code text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_internal.require_admin();
	RETURN QUERY SELECT c.id, c.code FROM moment.companies c WHERE NOT c.moved ORDER BY c.id;
END
$$;

COMMENT ON FUNCTION moment_internal.shard_companies() IS
'The companies of this shard (not those that moved away), for moment_router.add_shard() to record those of a server that already holds data. Administrators only.';

CREATE FUNCTION moment_internal.shard_create_company(id bigint, code text, name text, currency_code character(3))
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_internal.require_admin();
	IF shard_create_company.id IS NULL THEN
		RAISE EXCEPTION 'a routed company needs the id the router gave it' USING ERRCODE = '22023';
	END IF;
	INSERT INTO moment.companies (id, code, name, currency_code)
	VALUES (shard_create_company.id, shard_create_company.code, shard_create_company.name,
			coalesce(shard_create_company.currency_code, 'NOK'));
	RETURN shard_create_company.id;
END
$$;

COMMENT ON FUNCTION moment_internal.shard_create_company(bigint, text, text, character) IS
'Creates a company with the id moment_router assigned it (ids of companies are unique across shards). Administrators only.';

-- The tables holding a company's rows, parents before children: moment's
-- companies first, then every table of schema moment and every registered
-- entity's table with a company_id column, each after the tables its foreign
-- keys point to.  key_column is "id" when the table has one (the copy goes in
-- chunks by id), else NULL (the copy takes the company's rows at once).
CREATE FUNCTION moment_internal.company_tables()
RETURNS TABLE (table_name text, depth integer, key_column text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
	WITH RECURSIVE tables AS (
		SELECT c.oid
		  FROM pg_catalog.pg_class c
		 WHERE c.relkind OPERATOR(pg_catalog.=) ANY (ARRAY['r', 'p']::pg_catalog."char"[])
		   AND NOT c.relispartition
		   AND (c.relnamespace OPERATOR(pg_catalog.=) 'moment'::pg_catalog.regnamespace
				OR c.oid OPERATOR(pg_catalog.=) ANY (SELECT e.table_name::pg_catalog.oid FROM moment.entities e))
		   AND (c.oid OPERATOR(pg_catalog.=) 'moment.companies'::pg_catalog.regclass
				OR EXISTS (SELECT FROM pg_catalog.pg_attribute a
							WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) 'company_id'
							  AND NOT a.attisdropped))
	), edges AS (
		SELECT DISTINCT f.conrelid AS child, f.confrelid AS parent
		  FROM pg_catalog.pg_constraint f
		 WHERE f.contype OPERATOR(pg_catalog.=) 'f'
		   AND f.conrelid OPERATOR(pg_catalog.<>) f.confrelid
		   AND f.conrelid OPERATOR(pg_catalog.=) ANY (SELECT t.oid FROM tables t)
		   AND f.confrelid OPERATOR(pg_catalog.=) ANY (SELECT t.oid FROM tables t)
	), levels (oid, depth) AS (
		SELECT t.oid, 0 FROM tables t
		UNION ALL
		-- a child is one level below each of its parents (bounded: a cycle of
		-- foreign keys stops at 100 levels)
		SELECT e.child, l.depth OPERATOR(pg_catalog.+) 1
		  FROM levels l JOIN edges e ON e.parent OPERATOR(pg_catalog.=) l.oid
		 WHERE l.depth OPERATOR(pg_catalog.<) 100
	)
	SELECT pg_catalog.format('%I.%I', n.nspname, c.relname),
		   CASE WHEN c.oid OPERATOR(pg_catalog.=) 'moment.companies'::pg_catalog.regclass THEN -1
				ELSE pg_catalog.max(l.depth) END,
		   CASE WHEN c.oid OPERATOR(pg_catalog.<>) 'moment.companies'::pg_catalog.regclass
					 AND EXISTS (SELECT FROM pg_catalog.pg_attribute a
								  WHERE a.attrelid OPERATOR(pg_catalog.=) c.oid AND a.attname OPERATOR(pg_catalog.=) 'id'
									AND NOT a.attisdropped)
				THEN 'id' END
	  FROM levels l
	  JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) l.oid
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
	 GROUP BY c.oid, n.nspname, c.relname
	 ORDER BY 2, 1
$$;

COMMENT ON FUNCTION moment_internal.company_tables() IS
'The tables that hold a company''s rows, parents before children: moment.companies, then the tables of schema moment and of registered entities that have a company_id column, each deeper than the tables its foreign keys reference. key_column is id when the table has one.';

-- The company column of a table in company_tables(): companies is keyed by id.
CREATE FUNCTION moment_internal.company_column(table_name text)
RETURNS text
LANGUAGE sql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
	SELECT CASE WHEN table_name OPERATOR(pg_catalog.=) 'moment.companies' THEN 'id' ELSE 'company_id' END
$$;

COMMENT ON FUNCTION moment_internal.company_column(text) IS
'The column naming the company in a table of moment_internal.company_tables(): id in moment.companies, company_id elsewhere.';

-- Checks that a table name is one of company_tables() (the copy functions
-- are admin-only, but only ever touch those tables).
CREATE FUNCTION moment_internal.company_table(table_name text)
RETURNS regclass
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM moment_internal.company_tables() t WHERE t.table_name OPERATOR(pg_catalog.=) company_table.table_name) THEN
		RAISE EXCEPTION 'table % holds no company rows', table_name USING ERRCODE = '22023';
	END IF;
	RETURN table_name::pg_catalog.regclass;
END
$$;

COMMENT ON FUNCTION moment_internal.company_table(text) IS
'The table of that name when it is one of moment_internal.company_tables(); 22023 otherwise.';

CREATE FUNCTION moment_internal.shard_set_fence(company_id bigint, fenced boolean)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_internal.require_admin();
	UPDATE moment.companies c SET fenced = shard_set_fence.fenced
	 WHERE c.id OPERATOR(pg_catalog.=) shard_set_fence.company_id
	   AND c.fenced OPERATOR(pg_catalog.<>) shard_set_fence.fenced;
END
$$;

COMMENT ON FUNCTION moment_internal.shard_set_fence(bigint, boolean) IS
'Refuses (true) or allows again (false) writes to a company of this shard; a refused write gets SQLSTATE 55006. Committed on its own so that every session sees it. Administrators only.';

CREATE FUNCTION moment_internal.shard_wait_for_writers(company_id bigint)
RETURNS void
AS 'MODULE_PATHNAME', 'moment_shard_wait_for_writers'
LANGUAGE C;

COMMENT ON FUNCTION moment_internal.shard_wait_for_writers(bigint) IS
'Waits until every transaction that began writing to the company before its fence went up has ended (each write holds a lock on the company that this waits for). Administrators only.';

CREATE FUNCTION moment_internal.shard_export_rows(company_id bigint, table_name text, after_id bigint, max_rows integer)
RETURNS SETOF jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tbl regclass := moment_internal.company_table(table_name);
	key text := (SELECT t.key_column FROM moment_internal.company_tables() t WHERE t.table_name OPERATOR(pg_catalog.=) shard_export_rows.table_name);
BEGIN
	PERFORM moment_internal.require_admin();
	IF key IS NULL THEN
		-- no id to page by: every row of the company at once, on the first call
		IF after_id IS NULL THEN
			RETURN QUERY EXECUTE pg_catalog.format('SELECT pg_catalog.to_jsonb(t) FROM %s t WHERE t.%I OPERATOR(pg_catalog.=) $1',
												   tbl, moment_internal.company_column(table_name))
				USING company_id;
		END IF;
		RETURN;
	END IF;
	RETURN QUERY EXECUTE pg_catalog.format('SELECT pg_catalog.to_jsonb(t) FROM %s t WHERE t.company_id OPERATOR(pg_catalog.=) $1 '
										   'AND ($2 IS NULL OR t.%I OPERATOR(pg_catalog.>) $2) ORDER BY t.%I LIMIT $3',
										   tbl, key, key)
		USING company_id, after_id, max_rows;
END
$$;

COMMENT ON FUNCTION moment_internal.shard_export_rows(bigint, text, bigint, integer) IS
'The rows of a company in one of moment_internal.company_tables(), as JSON objects of their columns, by ascending id after after_id (at most max_rows); tables without id give all their rows of the company when after_id is NULL. Administrators only.';

CREATE FUNCTION moment_internal.shard_import_rows(company_id bigint, table_name text, company_rows jsonb)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	tbl regclass := moment_internal.company_table(table_name);
	columns text;
	imported bigint;
	grantee oid;
BEGIN
	PERFORM moment_internal.require_admin();
	IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user), false) THEN
		RAISE EXCEPTION 'permission denied: only a superuser may copy a company''s rows' USING ERRCODE = '42501';
	END IF;
	IF pg_catalog.jsonb_typeof(company_rows) OPERATOR(pg_catalog.<>) 'array' THEN
		RAISE EXCEPTION 'rows must be a JSON array of objects' USING ERRCODE = '22023';
	END IF;
	IF EXISTS (SELECT FROM pg_catalog.jsonb_array_elements(company_rows) r
				WHERE (r.value OPERATOR(pg_catalog.->>) moment_internal.company_column(table_name))::pg_catalog.int8
					  IS DISTINCT FROM company_id) THEN
		RAISE EXCEPTION 'a row of % does not belong to company %', table_name, company_id USING ERRCODE = '22023';
	END IF;
	-- every column that can be written, by name (ids kept, generated columns recomputed)
	SELECT pg_catalog.string_agg(pg_catalog.quote_ident(a.attname), ', ' ORDER BY a.attnum) INTO columns
	  FROM pg_catalog.pg_attribute a
	 WHERE a.attrelid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid AND a.attnum OPERATOR(pg_catalog.>) 0
	   AND NOT a.attisdropped AND a.attgenerated OPERATOR(pg_catalog.=) '';
	-- as a replica: no trigger fires (no default filled in, no time lock, no
	-- change notification queued, no foreign key checked: the rows were valid
	-- where they come from)
	PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
	EXECUTE pg_catalog.format('INSERT INTO %s (%s) OVERRIDING SYSTEM VALUE SELECT %s FROM pg_catalog.jsonb_populate_recordset(NULL::%s, $1)',
							  tbl, columns, columns, tbl)
		USING company_rows;
	GET DIAGNOSTICS imported = ROW_COUNT;
	PERFORM pg_catalog.set_config('session_replication_role', 'origin', true);
	IF tbl OPERATOR(pg_catalog.=) 'moment.company_grants'::pg_catalog.regclass THEN
		-- the grantees need the group roles' table privileges here too
		FOR grantee IN SELECT DISTINCT g.role::pg_catalog.oid FROM moment.company_grants g
						WHERE g.company_id OPERATOR(pg_catalog.=) shard_import_rows.company_id LOOP
			PERFORM moment.sync_group_roles(grantee);
		END LOOP;
	END IF;
	RETURN imported;
END
$$;

COMMENT ON FUNCTION moment_internal.shard_import_rows(bigint, text, jsonb) IS
'Inserts rows of a company (JSON objects of columns, as shard_export_rows gives them) into one of moment_internal.company_tables(), ids kept, as a replica (no trigger fires, nothing is queued). Superuser only.';

CREATE FUNCTION moment_internal.shard_count_rows(company_id bigint)
RETURNS TABLE (table_name text, row_count bigint)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
BEGIN
	PERFORM moment_internal.require_admin();
	FOR t IN SELECT * FROM moment_internal.company_tables() LOOP
		table_name := t.table_name;
		EXECUTE pg_catalog.format('SELECT pg_catalog.count(*) FROM %s x WHERE x.%I OPERATOR(pg_catalog.=) $1',
								  t.table_name, moment_internal.company_column(t.table_name))
			INTO row_count USING company_id;
		RETURN NEXT;
	END LOOP;
END
$$;

COMMENT ON FUNCTION moment_internal.shard_count_rows(bigint) IS
'How many rows of the company each of moment_internal.company_tables() holds. Administrators only.';

CREATE FUNCTION moment_internal.shard_purge_company(company_id bigint, code text, leave_moved boolean DEFAULT false)
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	t record;
	deleted bigint := 0;
	n bigint;
	grantees oid[];
	grantee oid;
	here text := (SELECT c.code FROM moment.companies c WHERE c.id OPERATOR(pg_catalog.=) shard_purge_company.company_id);
BEGIN
	PERFORM moment_internal.require_admin();
	IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user), false) THEN
		RAISE EXCEPTION 'permission denied: only a superuser may delete a company''s rows' USING ERRCODE = '42501';
	END IF;
	IF here IS DISTINCT FROM code AND here IS NOT NULL THEN
		RAISE EXCEPTION 'company % of this shard is "%", not "%"', company_id, here, code USING ERRCODE = '22023';
	END IF;
	SELECT pg_catalog.array_agg(DISTINCT g.role::pg_catalog.oid) INTO grantees FROM moment.company_grants g
	 WHERE g.company_id OPERATOR(pg_catalog.=) shard_purge_company.company_id;
	-- children before parents, as a replica (no trigger fires, nothing is queued)
	PERFORM pg_catalog.set_config('session_replication_role', 'replica', true);
	FOR t IN SELECT * FROM moment_internal.company_tables() ORDER BY depth DESC, table_name LOOP
		CONTINUE WHEN leave_moved AND t.table_name OPERATOR(pg_catalog.=) 'moment.companies';
		EXECUTE pg_catalog.format('DELETE FROM %s x WHERE x.%I OPERATOR(pg_catalog.=) $1',
								  t.table_name, moment_internal.company_column(t.table_name))
			USING company_id;
		GET DIAGNOSTICS n = ROW_COUNT;
		deleted := deleted OPERATOR(pg_catalog.+) n;
	END LOOP;
	PERFORM pg_catalog.set_config('session_replication_role', 'origin', true);
	IF leave_moved THEN
		-- what is left answers every call routed here before the move: retry (55006)
		UPDATE moment.companies c SET fenced = true, moved = true
		 WHERE c.id OPERATOR(pg_catalog.=) shard_purge_company.company_id;
	END IF;
	FOREACH grantee IN ARRAY coalesce(grantees, '{}') LOOP
		PERFORM moment.sync_group_roles(grantee);
	END LOOP;
	RETURN deleted;
END
$$;

COMMENT ON FUNCTION moment_internal.shard_purge_company(bigint, text, boolean) IS
'Deletes every row of a company from this shard (children first, as a replica: no trigger fires, nothing is queued), after it moved to another shard or a copy of it was abandoned; with leave_moved, the company''s own row stays, marked moved, so that calls routed here before the move get 55006 and retry. Refuses when the company of that id here has another code. Returns the number of rows deleted. Superuser only.';

REVOKE EXECUTE ON FUNCTION moment.configure_shard(integer), moment_internal.id_sequences(),
	moment_internal.apply_shard_block(regclass, integer), moment_internal.entity_registered_on_shard(),
	moment_internal.shard_info(), moment_internal.shard_companies(),
	moment_internal.shard_create_company(bigint, text, text, character), moment_internal.company_tables(),
	moment_internal.company_column(text), moment_internal.company_table(text),
	moment_internal.shard_set_fence(bigint, boolean), moment_internal.shard_wait_for_writers(bigint),
	moment_internal.shard_export_rows(bigint, text, bigint, integer),
	moment_internal.shard_import_rows(bigint, text, jsonb), moment_internal.shard_count_rows(bigint),
	moment_internal.shard_purge_company(bigint, text, boolean)
	FROM PUBLIC;

------------------------------------------------------------------------------
-- Webhooks (section 16): change notifications delivered by a background
-- worker.  Deliveries are queued in the changing transaction by statement
-- triggers on every entity table (an outbox) and sent at least once.
------------------------------------------------------------------------------

CREATE SEQUENCE moment.webhooks_id_seq;
CREATE TABLE moment.webhooks (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigint NOT NULL DEFAULT pg_catalog.nextval('moment.webhooks_id_seq'::pg_catalog.regclass),
	entity text NOT NULL REFERENCES moment.entities (name) ON DELETE CASCADE ON UPDATE CASCADE,
	url text NOT NULL,
	events text[] NOT NULL DEFAULT '{CREATE_NEW,UPDATE,DELETE}',
	secret text,
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	CONSTRAINT webhooks_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT webhooks_events_check CHECK (pg_catalog.cardinality(events) OPERATOR(pg_catalog.>) 0
		AND events OPERATOR(pg_catalog.<@) ARRAY['CREATE_NEW', 'UPDATE', 'DELETE']),
	CONSTRAINT webhooks_secret_check CHECK (secret OPERATOR(pg_catalog.<>) '')
);
ALTER SEQUENCE moment.webhooks_id_seq OWNED BY moment.webhooks.id;
CREATE INDEX webhooks_entity_idx ON moment.webhooks (company_id, entity);

-- No foreign key to webhooks: a dropped webhook's deliveries stay as its
-- history.  None to companies either: the company is the changed row's,
-- already checked, and a key check per queued delivery would cost every write.
CREATE SEQUENCE moment.webhook_deliveries_id_seq;
CREATE TABLE moment.webhook_deliveries (
	company_id bigint NOT NULL,
	id bigint NOT NULL DEFAULT pg_catalog.nextval('moment.webhook_deliveries_id_seq'::pg_catalog.regclass),
	webhook_id bigint NOT NULL,
	event text NOT NULL,
	body jsonb NOT NULL,
	state text NOT NULL DEFAULT 'pending',
	attempts integer NOT NULL DEFAULT 0,
	last_status integer,
	last_error text,
	next_attempt_at timestamptz DEFAULT pg_catalog.now(),
	created_at timestamptz NOT NULL DEFAULT pg_catalog.now(),
	delivered_at timestamptz,
	CONSTRAINT webhook_deliveries_pkey PRIMARY KEY (company_id, id),
	-- one CHECK only: every queueing statement evaluates them afresh, and
	-- only moment's own code writes event and attempts
	CONSTRAINT webhook_deliveries_state_check
		CHECK (state OPERATOR(pg_catalog.=) ANY (ARRAY['pending', 'done', 'failed']))
);
ALTER SEQUENCE moment.webhook_deliveries_id_seq OWNED BY moment.webhook_deliveries.id;
-- the worker's skip scan (the first pending delivery of each webhook) and
-- drop_webhook; a company's history is read by the primary key
CREATE INDEX webhook_deliveries_pending_idx ON moment.webhook_deliveries (webhook_id, id)
	WHERE state OPERATOR(pg_catalog.=) 'pending';

COMMENT ON TABLE moment.webhooks IS
'Webhooks (contract section 16): a company''s URL to POST to when objects of an entity change (events CREATE_NEW, UPDATE, DELETE), signed with secret when there is one. Readable by the company''s roles; written through moment.create_webhook and moment.drop_webhook. Every URL written must pass moment.webhook_allowed_hosts.';
COMMENT ON TABLE moment.webhook_deliveries IS
'One notification per changed row and matching webhook, queued in the changing transaction: its body, state (pending, done, failed), attempts, the last HTTP status and error, and when it is next tried. Readable by the company''s roles; sent by the moment webhook worker, at least once, in id order per webhook.';

-- Readable by the company's roles; written only by the functions below (as
-- the extension owner, who is not subject to these policies) and the worker.
ALTER TABLE moment.webhooks ENABLE ROW LEVEL SECURITY;
ALTER TABLE moment.webhook_deliveries ENABLE ROW LEVEL SECURITY;
CREATE POLICY moment_tenant_read ON moment.webhooks FOR SELECT
	USING (company_id OPERATOR(pg_catalog.=) (SELECT moment_internal.current_company_id()));
CREATE POLICY moment_tenant_read ON moment.webhook_deliveries FOR SELECT
	USING (company_id OPERATOR(pg_catalog.=) (SELECT moment_internal.current_company_id()));
GRANT SELECT ON moment.webhooks, moment.webhook_deliveries TO moment_read;

CREATE FUNCTION moment.webhook_check()
RETURNS trigger
AS 'MODULE_PATHNAME', 'moment_webhook_check'
LANGUAGE C;

COMMENT ON FUNCTION moment.webhook_check() IS
'Trigger on moment.webhooks: refuses (22023) a URL that is not http(s), carries user info, or names a host not in moment.webhook_allowed_hosts, whoever writes the row.';

-- An ordinary trigger: rows copied under session_replication_role = replica
-- (a company moved by the router) were checked where they were written.
CREATE TRIGGER webhooks_check BEFORE INSERT OR UPDATE OF url ON moment.webhooks
	FOR EACH ROW EXECUTE FUNCTION moment.webhook_check();
-- Every backend keeps the set of entities some webhook subscribes to (writes
-- to the others skip the queueing): these tell it when that changes, under
-- replica too.
CREATE TRIGGER webhooks_changed AFTER INSERT OR UPDATE OR DELETE ON moment.webhooks
	FOR EACH ROW EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER webhooks_truncated AFTER TRUNCATE ON moment.webhooks
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
ALTER TABLE moment.webhooks ENABLE ALWAYS TRIGGER webhooks_changed, ENABLE ALWAYS TRIGGER webhooks_truncated;

CREATE FUNCTION moment.webhook_queue()
RETURNS trigger
AS 'MODULE_PATHNAME', 'moment_webhook_queue'
LANGUAGE C;

COMMENT ON FUNCTION moment.webhook_queue() IS
'Statement trigger (AFTER INSERT, UPDATE or DELETE, with a transition table) on every entity table: queues one delivery per changed row and subscribed webhook of the row''s company, in the same transaction. Not ENABLE ALWAYS: rows copied under session_replication_role = replica queue nothing.';

-- The outbox triggers of one entity table.  Ordinary triggers, deliberately
-- not ENABLE ALWAYS: a company moved by the router is copied with
-- session_replication_role = replica and must queue nothing (its pending
-- deliveries move with it).
CREATE FUNCTION moment.enable_webhooks(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	action text;
	rows_clause text;
BEGIN
	PERFORM moment_internal.require_admin();
	FOREACH action IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
		CONTINUE WHEN EXISTS (SELECT 1 FROM pg_catalog.pg_trigger t
							   WHERE t.tgrelid OPERATOR(pg_catalog.=) tbl::pg_catalog.oid
								 AND t.tgname OPERATOR(pg_catalog.=) ('moment_webhook_' OPERATOR(pg_catalog.||) action));
		rows_clause := CASE WHEN action OPERATOR(pg_catalog.=) 'delete' THEN 'OLD TABLE AS moment_old_rows'
						    ELSE 'NEW TABLE AS moment_new_rows' END;
		EXECUTE pg_catalog.format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s '
								  'FOR EACH STATEMENT EXECUTE FUNCTION moment.webhook_queue()',
								  'moment_webhook_' OPERATOR(pg_catalog.||) action, pg_catalog.upper(action), tbl, rows_clause);
	END LOOP;
END
$$;

COMMENT ON FUNCTION moment.enable_webhooks(regclass) IS
'Attaches the webhook outbox triggers (moment_webhook_insert, moment_webhook_update, moment_webhook_delete) to an entity table. Called by register_entity.';

SELECT moment.enable_webhooks(e.table_name) FROM moment.entities e ORDER BY e.name;

CREATE FUNCTION moment.create_webhook(entity text, url text, events text[] DEFAULT '{CREATE_NEW,UPDATE,DELETE}',
									  secret text DEFAULT NULL)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moment_create_webhook'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.create_webhook(text, text, text[], text) IS
'Creates a webhook of the company in force (writable grant, else 42501) on an entity (42P01 when unknown) and returns its id. url: http:// or https://, optional port, no user info, a host listed in moment.webhook_allowed_hosts (else 22023); events: CREATE_NEW, UPDATE, DELETE (else 22023); with a secret every delivery carries X-Moment-Signature: sha256=<hex HMAC-SHA256 of the body>.';

CREATE FUNCTION moment.drop_webhook(id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moment_drop_webhook'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.drop_webhook(bigint) IS
'Drops a webhook of the company in force and returns its id (P0002 when not visible); its pending deliveries are cancelled (failed, last_error saying so) and kept.';

CREATE FUNCTION moment.redeliver(delivery_id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moment_redeliver'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.redeliver(bigint) IS
'Sets a webhook delivery of the company in force (any state) back to pending with its attempts reset, keeping its id; P0002 when not visible.';

REVOKE EXECUTE ON FUNCTION moment.webhook_check(), moment.webhook_queue(), moment.enable_webhooks(regclass) FROM PUBLIC;

SELECT pg_catalog.pg_extension_config_dump('moment.webhooks', '');
SELECT pg_catalog.pg_extension_config_dump('moment.webhooks_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.webhook_deliveries', '');
SELECT pg_catalog.pg_extension_config_dump('moment.webhook_deliveries_id_seq', '');
