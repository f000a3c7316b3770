-- moment 0.1.0: Moment's REST conventions in PostgreSQL.
-- complain if script is sourced in psql rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION moment" to load this file. \quit

------------------------------------------------------------------------------
-- Internal C helpers used by the schema itself
------------------------------------------------------------------------------

-- The company in force (moment.company, else the "company" claim of
-- request.jwt.claims), checked against the current role's grants.
CREATE FUNCTION moment.current_company_id(for_write boolean DEFAULT false)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moment_current_company_id'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.current_company_id(boolean) IS
'The id of the company in force (moment.company, else the "company" claim of request.jwt.claims). Raises 22023 when none is in force, 42501 when the current role is not granted it (or, with for_write, granted it read-only).';

-- Statement-level trigger on the catalog tables: tells every backend to drop
-- its registry, tenant and plan caches at commit.
CREATE FUNCTION moment.catalog_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'moment_catalog_changed'
LANGUAGE C;

COMMENT ON FUNCTION moment.catalog_changed() IS
'Trigger: invalidates the per-backend registry, tenant and plan caches of every session when a catalog table changes.';

-- Row trigger keeping updated_at current.
CREATE FUNCTION moment.set_updated_at()
RETURNS trigger
AS 'MODULE_PATHNAME', 'moment_set_updated_at'
LANGUAGE C;

COMMENT ON FUNCTION moment.set_updated_at() IS
'Trigger: sets updated_at to now() on every update.';

CREATE FUNCTION moment.cache_stats(OUT cached_plans bigint, OUT plans_prepared bigint, OUT registry_builds bigint)
RETURNS record
AS 'MODULE_PATHNAME', 'moment_cache_stats'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.cache_stats() IS
'This session''s caches: prepared plans kept, plans prepared since the session began, and registry (re)builds. A request shape seen before prepares nothing.';

------------------------------------------------------------------------------
-- Companies (tenants) and grants
------------------------------------------------------------------------------

CREATE TABLE moment.companies (
	id bigint NOT NULL,
	code text NOT NULL,
	name text NOT NULL,
	currency_code char(3) NOT NULL DEFAULT 'NOK',
	CONSTRAINT companies_pkey PRIMARY KEY (id),
	CONSTRAINT companies_code_key UNIQUE (code),
	CONSTRAINT companies_code_check CHECK (code <> '' AND code !~ '[/?#%\s]')
);
CREATE SEQUENCE moment.companies_id_seq OWNED BY moment.companies.id;
ALTER TABLE moment.companies ALTER COLUMN id SET DEFAULT nextval('moment.companies_id_seq');

COMMENT ON TABLE moment.companies IS
'Companies (tenants). Every entity row belongs to one; a request only ever sees the company in force. Not an entity: managed by the extension owner.';

CREATE TABLE moment.company_grants (
	company_id bigint NOT NULL REFERENCES moment.companies (id) ON DELETE CASCADE,
	role regrole NOT NULL,
	writable boolean NOT NULL DEFAULT true,
	CONSTRAINT company_grants_pkey PRIMARY KEY (company_id, role)
);

CREATE FUNCTION moment.company_visible(company_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'moment_company_visible'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.company_visible(bigint) IS
'Whether the current role is granted the company (directly or through membership): the row-level security of moment.companies.';

ALTER TABLE moment.companies ENABLE ROW LEVEL SECURITY;
CREATE POLICY moment_company_read ON moment.companies FOR SELECT
	USING (moment.company_visible(id));

COMMENT ON TABLE moment.company_grants IS
'Which roles may use which company (directly or through role membership), and whether they may write. Maintained by moment.grant_company / moment.revoke_company.';

------------------------------------------------------------------------------
-- The entity registry
------------------------------------------------------------------------------

CREATE TABLE moment.entities (
	name text NOT NULL,
	table_name regclass NOT NULL,
	date_field text,
	builtin boolean NOT NULL DEFAULT false,
	CONSTRAINT entities_pkey PRIMARY KEY (name),
	CONSTRAINT entities_table_name_key UNIQUE (table_name),
	CONSTRAINT entities_name_check CHECK (name ~ '^[a-z][A-Za-z0-9]*$')
);

COMMENT ON TABLE moment.entities IS
'Registered entities: JSON name -> table, and the date field that fromDate/toDate filter on. Fields and relations are derived from the table itself (columns, foreign keys on (company_id, x_id)).';

CREATE TABLE moment.parts (
	entity text NOT NULL REFERENCES moment.entities (name) ON DELETE CASCADE ON UPDATE CASCADE,
	name text NOT NULL,
	fields text[],
	builtin boolean NOT NULL DEFAULT false,
	CONSTRAINT parts_pkey PRIMARY KEY (entity, name),
	CONSTRAINT parts_name_check CHECK (name ~ '^[a-z][A-Za-z0-9]*$' AND name <> 'metadata')
);

COMMENT ON TABLE moment.parts IS
'Named groups of fields ("parts") usable in include specs. fields holds field names or relation paths (customer.name); NULL means every field of the entity.';

CREATE TABLE moment.metadata (
	entity text NOT NULL REFERENCES moment.entities (name) ON DELETE CASCADE ON UPDATE CASCADE,
	set_name text NOT NULL,
	key text NOT NULL,
	expression text NOT NULL,
	position integer NOT NULL DEFAULT 0,
	builtin boolean NOT NULL DEFAULT false,
	CONSTRAINT metadata_pkey PRIMARY KEY (entity, set_name, key),
	CONSTRAINT metadata_set_name_check CHECK (set_name ~ '^[a-z][A-Za-z0-9]*$'),
	CONSTRAINT metadata_key_check CHECK (key ~ '^[a-z][A-Za-z0-9]*$')
);

COMMENT ON TABLE moment.metadata IS
'Metadata sets (metadata.NAME in an include spec): each row is one output key and an aggregate SQL expression over the entity''s table, aliased t. Written only by the extension owner.';

CREATE TRIGGER entities_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON moment.entities
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER parts_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON moment.parts
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER metadata_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON moment.metadata
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER companies_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON moment.companies
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();
CREATE TRIGGER company_grants_changed AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON moment.company_grants
	FOR EACH STATEMENT EXECUTE FUNCTION moment.catalog_changed();

-- A registered table that is dropped stops being an entity (with its parts
-- and metadata).  SECURITY DEFINER: any table owner may drop their table.
CREATE FUNCTION moment.forget_dropped_tables()
RETURNS event_trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog
AS $$
BEGIN
	IF to_regclass('moment.entities') IS NOT NULL THEN
		DELETE FROM moment.entities e
		 USING pg_event_trigger_dropped_objects() d
		 WHERE d.classid = 'pg_class'::regclass AND d.objsubid = 0 AND d.objid = e.table_name::oid;
	END IF;
END
$$;

COMMENT ON FUNCTION moment.forget_dropped_tables() IS
'Event trigger: unregisters entities whose table was dropped.';

CREATE EVENT TRIGGER moment_forget_dropped_tables ON sql_drop
	EXECUTE FUNCTION moment.forget_dropped_tables();

GRANT USAGE ON SCHEMA moment TO PUBLIC;
GRANT SELECT ON moment.entities, moment.parts, moment.metadata TO PUBLIC;

------------------------------------------------------------------------------
-- Entity tables
------------------------------------------------------------------------------

CREATE SEQUENCE moment.user_accounts_id_seq;
CREATE TABLE moment.user_accounts (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigint NOT NULL DEFAULT nextval('moment.user_accounts_id_seq'),
	name text NOT NULL,
	email text,
	active boolean NOT NULL DEFAULT true,
	CONSTRAINT user_accounts_pkey PRIMARY KEY (company_id, id)
);
ALTER SEQUENCE moment.user_accounts_id_seq OWNED BY moment.user_accounts.id;

CREATE SEQUENCE moment.customers_id_seq;
CREATE TABLE moment.customers (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigint NOT NULL DEFAULT nextval('moment.customers_id_seq'),
	customer_number text,
	name text NOT NULL,
	organization_number text,
	email text,
	currency_code char(3),
	customer_state text NOT NULL DEFAULT 'active',
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT customers_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT customers_customer_state_check
		CHECK (customer_state IN ('active', 'potential', 'blocked', 'inactive'))
);
ALTER SEQUENCE moment.customers_id_seq OWNED BY moment.customers.id;

CREATE SEQUENCE moment.projects_id_seq;
CREATE TABLE moment.projects (
	-- the company is checked through the required (company_id, x_id) foreign key
	company_id bigint NOT NULL,
	id bigint NOT NULL DEFAULT nextval('moment.projects_id_seq'),
	customer_id bigint NOT NULL,
	project_number text,
	name text NOT NULL,
	project_state text NOT NULL DEFAULT 'inProgress',
	price_model text NOT NULL DEFAULT 'hourlyRate',
	start_date date,
	end_date date,
	currency_code char(3),
	fixed_price numeric(14,2),
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT projects_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT projects_customer_fkey FOREIGN KEY (company_id, customer_id)
		REFERENCES moment.customers (company_id, id),
	CONSTRAINT projects_project_state_check
		CHECK (project_state IN ('notStarted', 'inProgress', 'finished', 'archived')),
	CONSTRAINT projects_price_model_check
		CHECK (price_model IN ('hourlyRate', 'fixedPrice', 'subscription', 'nonBillable'))
);
ALTER SEQUENCE moment.projects_id_seq OWNED BY moment.projects.id;
CREATE INDEX projects_customer_idx ON moment.projects (company_id, customer_id);

CREATE SEQUENCE moment.offers_id_seq;
CREATE TABLE moment.offers (
	-- the company is checked through the required (company_id, x_id) foreign key
	company_id bigint NOT NULL,
	id bigint NOT NULL DEFAULT nextval('moment.offers_id_seq'),
	customer_id bigint NOT NULL,
	project_id bigint,
	offer_number text,
	name text NOT NULL,
	offer_state text NOT NULL DEFAULT 'draft',
	issue_date date,
	valid_until date,
	currency_code char(3) NOT NULL,
	exchange_rate numeric NOT NULL DEFAULT 1,
	total_sum numeric(14,2) NOT NULL DEFAULT 0,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT offers_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT offers_customer_fkey FOREIGN KEY (company_id, customer_id)
		REFERENCES moment.customers (company_id, id),
	CONSTRAINT offers_project_fkey FOREIGN KEY (company_id, project_id)
		REFERENCES moment.projects (company_id, id),
	CONSTRAINT offers_offer_state_check
		CHECK (offer_state IN ('draft', 'readyToSend', 'accepted', 'rejected'))
);
ALTER SEQUENCE moment.offers_id_seq OWNED BY moment.offers.id;
CREATE INDEX offers_customer_idx ON moment.offers (company_id, customer_id);
CREATE INDEX offers_issue_date_idx ON moment.offers (company_id, issue_date);
CREATE INDEX offers_project_idx ON moment.offers (company_id, project_id);

CREATE SEQUENCE moment.time_records_id_seq;
CREATE TABLE moment.time_records (
	-- the company is checked through the required (company_id, x_id) foreign key
	company_id bigint NOT NULL,
	id bigint NOT NULL DEFAULT nextval('moment.time_records_id_seq'),
	project_id bigint NOT NULL,
	user_account_id bigint NOT NULL,
	project_membership_id bigint,
	time_record_date date NOT NULL,
	minutes integer NOT NULL,
	description text,
	internal_note text,
	billable boolean NOT NULL DEFAULT true,
	approved boolean NOT NULL DEFAULT false,
	created_at timestamptz NOT NULL DEFAULT now(),
	updated_at timestamptz NOT NULL DEFAULT now(),
	CONSTRAINT time_records_pkey PRIMARY KEY (company_id, id),
	CONSTRAINT time_records_project_fkey FOREIGN KEY (company_id, project_id)
		REFERENCES moment.projects (company_id, id),
	CONSTRAINT time_records_user_account_fkey FOREIGN KEY (company_id, user_account_id)
		REFERENCES moment.user_accounts (company_id, id),
	CONSTRAINT time_records_minutes_check CHECK (minutes BETWEEN 0 AND 1440)
);
ALTER SEQUENCE moment.time_records_id_seq OWNED BY moment.time_records.id;
CREATE INDEX time_records_date_idx ON moment.time_records (company_id, time_record_date);
CREATE INDEX time_records_project_idx ON moment.time_records (company_id, project_id, time_record_date);
CREATE INDEX time_records_user_account_idx ON moment.time_records (company_id, user_account_id, time_record_date);
-- a project or user belongs to one company: tell the planner, so that
-- "company_id = $1 AND project_id = $2" is not estimated as two independent filters
CREATE STATISTICS moment.time_records_project_stats (dependencies) ON company_id, project_id FROM moment.time_records;
CREATE STATISTICS moment.time_records_user_account_stats (dependencies) ON company_id, user_account_id FROM moment.time_records;

CREATE TRIGGER customers_updated_at BEFORE UPDATE ON moment.customers
	FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
CREATE TRIGGER projects_updated_at BEFORE UPDATE ON moment.projects
	FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
CREATE TRIGGER offers_updated_at BEFORE UPDATE ON moment.offers
	FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();
CREATE TRIGGER time_records_updated_at BEFORE UPDATE ON moment.time_records
	FOR EACH ROW EXECUTE FUNCTION moment.set_updated_at();

COMMENT ON TABLE moment.user_accounts IS 'Entity userAccounts: the people who record time.';
COMMENT ON TABLE moment.customers IS 'Entity customers.';
COMMENT ON TABLE moment.projects IS 'Entity projects: work done for a customer.';
COMMENT ON TABLE moment.offers IS 'Entity offers: priced proposals to a customer, in any currency (exchange_rate to the company currency).';
COMMENT ON TABLE moment.time_records IS 'Entity timeRecords: minutes a user spent on a project on a date.';

------------------------------------------------------------------------------
-- Administration (extension owner or superuser only)
------------------------------------------------------------------------------

CREATE FUNCTION moment.require_admin()
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog
AS $$
BEGIN
	IF NOT EXISTS (SELECT 1 FROM pg_roles r WHERE r.rolname = current_user AND r.rolsuper)
	   AND current_user::regrole <> (SELECT e.extowner::regrole FROM pg_extension e WHERE e.extname = 'moment')
	THEN
		RAISE EXCEPTION 'permission denied: only a superuser or the owner of extension moment may do this'
			USING ERRCODE = '42501';
	END IF;
END
$$;

COMMENT ON FUNCTION moment.require_admin() IS
'Raises 42501 unless the current role is a superuser or the owner of extension moment.';

CREATE FUNCTION moment.enable_tenant_security(tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
	PERFORM moment.require_admin();
	EXECUTE format('ALTER TABLE %s ENABLE ROW LEVEL SECURITY', tbl);
	IF NOT EXISTS (SELECT 1 FROM pg_policy WHERE polrelid = tbl AND polname = 'moment_tenant_read') THEN
		EXECUTE format('CREATE POLICY moment_tenant_read ON %s FOR SELECT '
					   'USING (company_id = (SELECT moment.current_company_id()))', tbl);
		EXECUTE format('CREATE POLICY moment_tenant_insert ON %s FOR INSERT '
					   'WITH CHECK (company_id = (SELECT moment.current_company_id(true)))', tbl);
		EXECUTE format('CREATE POLICY moment_tenant_update ON %s FOR UPDATE '
					   'USING (company_id = (SELECT moment.current_company_id(true))) '
					   'WITH CHECK (company_id = (SELECT moment.current_company_id(true)))', tbl);
		EXECUTE format('CREATE POLICY moment_tenant_delete ON %s FOR DELETE '
					   'USING (company_id = (SELECT moment.current_company_id(true)))', tbl);
	END IF;
END
$$;

COMMENT ON FUNCTION moment.enable_tenant_security(regclass) IS
'Enables row-level security on an entity table with policies limiting other roles to the company in force (writes only with a writable grant). Called by register_entity.';

CREATE FUNCTION moment.register_entity(name text, tbl regclass)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
	existing regclass;
	id_type regtype;
	date_columns text[];
BEGIN
	PERFORM moment.require_admin();
	IF name IS NULL OR tbl IS NULL THEN
		RAISE EXCEPTION 'entity name and table must not be null' USING ERRCODE = '22023';
	END IF;
	IF name !~ '^[a-z][A-Za-z0-9]*$' THEN
		RAISE EXCEPTION 'invalid entity name "%"', name
			USING ERRCODE = '22023', HINT = 'Entity names are lowerCamelCase: a lower-case letter followed by letters and digits.';
	END IF;
	IF (SELECT c.relkind FROM pg_class c WHERE c.oid = tbl) NOT IN ('r', 'p') THEN
		RAISE EXCEPTION '"%" is not a table', tbl USING ERRCODE = '42809';
	END IF;
	IF NOT EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = tbl AND a.attname = 'company_id'
				   AND a.attnum > 0 AND NOT a.attisdropped) THEN
		RAISE EXCEPTION 'table % has no column company_id', tbl
			USING ERRCODE = '42703', HINT = 'An entity table needs a company_id column (the tenant key) and an id column.';
	END IF;
	SELECT a.atttypid::regtype INTO id_type FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attname = 'id' AND a.attnum > 0 AND NOT a.attisdropped;
	IF id_type IS NULL THEN
		RAISE EXCEPTION 'table % has no column id', tbl
			USING ERRCODE = '42703', HINT = 'An entity table needs a company_id column (the tenant key) and an id column.';
	END IF;
	IF id_type NOT IN ('bigint'::regtype, 'integer'::regtype, 'smallint'::regtype) THEN
		RAISE EXCEPTION 'column id of table % must be an integer, not %', tbl, id_type USING ERRCODE = '42804';
	END IF;

	SELECT e.table_name INTO existing FROM moment.entities e WHERE e.name = register_entity.name;
	IF existing IS NOT NULL THEN
		IF existing = tbl THEN
			RETURN;
		END IF;
		RAISE EXCEPTION 'entity "%" is already registered for table %', name, existing USING ERRCODE = '42710';
	END IF;
	IF EXISTS (SELECT 1 FROM moment.entities e WHERE e.table_name = tbl) THEN
		RAISE EXCEPTION 'table % is already registered as another entity', tbl USING ERRCODE = '42710';
	END IF;

	-- The date field for fromDate/toDate: the table's only date column, if it has exactly one.
	SELECT array_agg(a.attname ORDER BY a.attnum) INTO date_columns FROM pg_attribute a
	 WHERE a.attrelid = tbl AND a.attnum > 0 AND NOT a.attisdropped AND a.atttypid = 'date'::regtype;

	INSERT INTO moment.entities (name, table_name, date_field)
	VALUES (name, tbl,
			CASE WHEN cardinality(date_columns) = 1 THEN moment.camel_case(date_columns[1]) END);
	INSERT INTO moment.parts (entity, name, fields) VALUES (name, 'base', NULL);
	INSERT INTO moment.metadata (entity, set_name, key, expression) VALUES (name, 'count', 'count', 'count(*)');
	PERFORM moment.enable_tenant_security(tbl);
END
$$;

COMMENT ON FUNCTION moment.register_entity(text, regclass) IS
'Exposes a table (with company_id and id columns) as an entity: fields are its columns in lowerCamelCase, relations its foreign keys on (company_id, x_id), a base part with every field, metadata.count, and row-level security by company.';

CREATE FUNCTION moment.camel_case(snake text)
RETURNS text
AS 'MODULE_PATHNAME', 'moment_camel_case'
LANGUAGE C IMMUTABLE STRICT;

COMMENT ON FUNCTION moment.camel_case(text) IS
'The JSON name of a column: lowerCamelCase of its snake_case name (time_record_date -> timeRecordDate).';

CREATE FUNCTION moment.define_part(entity text, name text, fields text[])
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
	PERFORM moment.require_admin();
	INSERT INTO moment.parts AS p (entity, name, fields) VALUES (entity, name, fields)
	ON CONFLICT ON CONSTRAINT parts_pkey DO UPDATE SET fields = excluded.fields;
	-- resolve it now, so a bad field list fails here rather than in a request
	PERFORM moment.check_include(entity, name);
END
$$;

COMMENT ON FUNCTION moment.define_part(text, text, text[]) IS
'Defines (or redefines) a named part of an entity: a list of field names and relation paths usable in include specs.';

CREATE FUNCTION moment.define_metadata(entity text, set_name text, key text, expression text, "position" integer DEFAULT 0)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
	PERFORM moment.require_admin();
	INSERT INTO moment.metadata AS m (entity, set_name, key, expression, position)
	VALUES (entity, set_name, key, expression, position)
	ON CONFLICT ON CONSTRAINT metadata_pkey DO UPDATE SET expression = excluded.expression, position = excluded.position;
	PERFORM moment.check_include(entity, 'metadata.' || set_name);
END
$$;

COMMENT ON FUNCTION moment.define_metadata(text, text, text, text, integer) IS
'Defines one aggregate of a metadata set: key and an aggregate SQL expression over the entity''s table aliased t (owner-written, like a view definition).';

CREATE FUNCTION moment.check_include(entity text, include text)
RETURNS boolean
AS 'MODULE_PATHNAME', 'moment_check_include'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.check_include(text, text) IS
'Resolves an include spec for an entity and prepares the statement it needs, raising what a request would (42703, 42601, 54000, ...); true when it is sound.';

CREATE FUNCTION moment.describe(entity text)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moment_describe'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.describe(text) IS
'What an entity offers: its table, fields (with SQL types), relations, parts (expanded) and metadata sets. A part or metadata set that no longer resolves shows {"error": ...} instead of its keys.';

CREATE FUNCTION moment.grant_company(company_code text, role name, writable boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
DECLARE
	company bigint;
	grantee regrole;
	entity record;
BEGIN
	PERFORM moment.require_admin();
	SELECT c.id INTO company FROM moment.companies c WHERE c.code = company_code;
	IF company IS NULL THEN
		RAISE EXCEPTION 'company "%" does not exist', company_code USING ERRCODE = '22023';
	END IF;
	-- the role's exact name, as PostgreSQL's own functions taking a role name do
	SELECT r.oid::regrole INTO grantee FROM pg_roles r WHERE r.rolname = grant_company.role;
	IF grantee IS NULL THEN
		RAISE EXCEPTION 'role "%" does not exist', role USING ERRCODE = '42704';
	END IF;
	INSERT INTO moment.company_grants AS g (company_id, role, writable) VALUES (company, grantee, writable)
	ON CONFLICT ON CONSTRAINT company_grants_pkey DO UPDATE SET writable = excluded.writable;

	EXECUTE format('GRANT USAGE ON SCHEMA moment TO %s', grantee);
	EXECUTE format('GRANT SELECT ON moment.companies TO %s', grantee);
	FOR entity IN SELECT e.table_name FROM moment.entities e ORDER BY e.name LOOP
		EXECUTE format('GRANT SELECT ON %s TO %s', entity.table_name, grantee);
		-- write privileges whenever any grant of the role is writable; row-level
		-- security keeps writes to the companies it may write
		IF EXISTS (SELECT 1 FROM moment.company_grants g WHERE g.role = grantee AND g.writable) THEN
			EXECUTE format('GRANT INSERT, UPDATE, DELETE ON %s TO %s', entity.table_name, grantee);
		END IF;
	END LOOP;
	IF EXISTS (SELECT 1 FROM moment.company_grants g WHERE g.role = grantee AND g.writable) THEN
		FOR entity IN
			SELECT DISTINCT s.oid::regclass AS seq
			  FROM moment.entities e
			  JOIN pg_depend d ON d.refobjid = e.table_name AND d.refclassid = 'pg_class'::regclass
			  JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
			 WHERE d.classid = 'pg_class'::regclass
		LOOP
			EXECUTE format('GRANT USAGE ON SEQUENCE %s TO %s', entity.seq, grantee);
		END LOOP;
	END IF;
END
$$;

COMMENT ON FUNCTION moment.grant_company(text, name, boolean) IS
'Lets a role (and its members) use a company, read-only or read-write, with the schema, table and sequence privileges that needs. Superuser or extension owner only.';

CREATE FUNCTION moment.revoke_company(company_code text, role name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog
AS $$
BEGIN
	PERFORM moment.require_admin();
	DELETE FROM moment.company_grants g
	 USING moment.companies c, pg_roles r
	 WHERE c.id = g.company_id AND c.code = company_code
	   AND r.rolname = revoke_company.role AND g.role = r.oid::regrole;
END
$$;

COMMENT ON FUNCTION moment.revoke_company(text, name) IS
'Takes a company away from a role. Table privileges stay; row-level security and the API no longer let the role see the company.';

REVOKE EXECUTE ON FUNCTION moment.register_entity(text, regclass), moment.define_part(text, text, text[]),
	moment.define_metadata(text, text, text, text, integer), moment.grant_company(text, name, boolean),
	moment.revoke_company(text, name), moment.enable_tenant_security(regclass) FROM PUBLIC;

------------------------------------------------------------------------------
-- The built-in entities, registered through the same path as users' tables
------------------------------------------------------------------------------

SELECT moment.register_entity('userAccounts', 'moment.user_accounts');
SELECT moment.register_entity('customers', 'moment.customers');
SELECT moment.register_entity('projects', 'moment.projects');
SELECT moment.register_entity('offers', 'moment.offers');
SELECT moment.register_entity('timeRecords', 'moment.time_records');

UPDATE moment.entities SET builtin = true;
UPDATE moment.entities SET date_field = 'startDate' WHERE name = 'projects';
UPDATE moment.entities SET date_field = 'issueDate' WHERE name = 'offers';
UPDATE moment.entities SET date_field = 'timeRecordDate' WHERE name = 'timeRecords';

UPDATE moment.parts SET builtin = true, fields = CASE entity
	WHEN 'userAccounts' THEN ARRAY['name', 'email', 'active']
	WHEN 'customers' THEN ARRAY['customerNumber', 'name', 'organizationNumber', 'customerState']
	WHEN 'projects' THEN ARRAY['customerId', 'projectNumber', 'name', 'projectState']
	WHEN 'offers' THEN ARRAY['customerId', 'offerNumber', 'name', 'issueDate', 'offerState']
	WHEN 'timeRecords' THEN ARRAY['projectId', 'userAccountId', 'projectMembershipId', 'timeRecordDate', 'minutes']
	END
 WHERE name = 'base';

INSERT INTO moment.parts (entity, name, fields, builtin) VALUES
	('userAccounts', 'all', NULL, true),
	('customers', 'all', NULL, true),
	('customers', 'contact', ARRAY['email', 'organizationNumber'], true),
	('projects', 'all', NULL, true),
	('projects', 'dates', ARRAY['startDate', 'endDate'], true),
	('projects', 'pricing', ARRAY['priceModel', 'fixedPrice', 'currencyCode'], true),
	('offers', 'all', NULL, true),
	('offers', 'sums', ARRAY['currencyCode', 'exchangeRate', 'totalSum'], true),
	('timeRecords', 'all', NULL, true),
	('timeRecords', 'texts', ARRAY['description', 'internalNote'], true),
	('timeRecords', 'status', ARRAY['billable', 'approved'], true);

UPDATE moment.metadata SET builtin = true;
INSERT INTO moment.metadata (entity, set_name, key, expression, position, builtin) VALUES
	('offers', 'overviewPage', 'totalSumInCompanyCurrency',
	 'coalesce(sum(t.total_sum * t.exchange_rate), 0)', 1, true),
	('offers', 'overviewPage', 'count', 'count(*)', 0, true),
	('offers', 'sums', 'totalSum', 'coalesce(sum(t.total_sum), 0)', 0, true),
	('timeRecords', 'summary', 'totalMinutes', 'coalesce(sum(t.minutes), 0)', 0, true),
	('timeRecords', 'summary', 'billableMinutes', 'coalesce(sum(t.minutes) FILTER (WHERE t.billable), 0)', 1, true);

------------------------------------------------------------------------------
-- pg_dump keeps users' data (built-in catalog rows are recreated by
-- CREATE EXTENSION, so only users' own rows are dumped)
------------------------------------------------------------------------------

SELECT pg_catalog.pg_extension_config_dump('moment.companies', '');
SELECT pg_catalog.pg_extension_config_dump('moment.companies_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.company_grants', '');
SELECT pg_catalog.pg_extension_config_dump('moment.entities', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('moment.parts', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('moment.metadata', 'WHERE NOT builtin');
SELECT pg_catalog.pg_extension_config_dump('moment.user_accounts', '');
SELECT pg_catalog.pg_extension_config_dump('moment.user_accounts_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.customers', '');
SELECT pg_catalog.pg_extension_config_dump('moment.customers_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.projects', '');
SELECT pg_catalog.pg_extension_config_dump('moment.projects_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.offers', '');
SELECT pg_catalog.pg_extension_config_dump('moment.offers_id_seq', '');
SELECT pg_catalog.pg_extension_config_dump('moment.time_records', '');
SELECT pg_catalog.pg_extension_config_dump('moment.time_records_id_seq', '');

------------------------------------------------------------------------------
-- The API (section 6 of the contract). All SECURITY INVOKER; reads STABLE.
------------------------------------------------------------------------------

CREATE FUNCTION moment.get(entity text, id bigint, include text DEFAULT 'base')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moment_get'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.get(text, bigint, text) IS
'One object of an entity projected by an include spec (fields, parts, relation.field, metadata.NAME), or NULL when no such row is visible for the company in force.';

CREATE FUNCTION moment.list(entity text, include text DEFAULT 'base', filter jsonb DEFAULT '{}',
							order_by text DEFAULT NULL, page integer DEFAULT NULL, size integer DEFAULT NULL,
							no_limit boolean DEFAULT false)
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moment_list'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.list(text, text, jsonb, text, integer, integer, boolean) IS
'Moment''s listing document {"content": [...], "limitWasExceeded": bool, "metadata"?, "page"?}: at most moment.default_limit rows (moment.max_limit with no_limit), filtered, ordered (id is always the last tiebreaker) and optionally paged.';

CREATE FUNCTION moment.rows(entity text, include text DEFAULT 'base', filter jsonb DEFAULT '{}',
							order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF jsonb
AS 'MODULE_PATHNAME', 'moment_rows'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.rows(text, text, jsonb, text, boolean) IS
'The objects of a listing, one row each, under the same cap as list; a WARNING containing limitWasExceeded says when rows were cut.';

CREATE FUNCTION moment.list_customers(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.customers
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;
CREATE FUNCTION moment.list_projects(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.projects
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;
CREATE FUNCTION moment.list_offers(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.offers
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;
CREATE FUNCTION moment.list_time_records(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.time_records
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;
CREATE FUNCTION moment.list_user_accounts(filter jsonb DEFAULT '{}', order_by text DEFAULT NULL, no_limit boolean DEFAULT false)
RETURNS SETOF moment.user_accounts
AS 'MODULE_PATHNAME', 'moment_list_typed'
LANGUAGE C STABLE;

COMMENT ON FUNCTION moment.list_customers(jsonb, text, boolean) IS
'Typed customer rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';
COMMENT ON FUNCTION moment.list_projects(jsonb, text, boolean) IS
'Typed project rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';
COMMENT ON FUNCTION moment.list_offers(jsonb, text, boolean) IS
'Typed offer rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';
COMMENT ON FUNCTION moment.list_time_records(jsonb, text, boolean) IS
'Typed time record rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';
COMMENT ON FUNCTION moment.list_user_accounts(jsonb, text, boolean) IS
'Typed user account rows of the company in force for reporting tools (ODBC), filtered and ordered like moment.list, under the same cap (WARNING with limitWasExceeded when cut).';

CREATE FUNCTION moment."create"(entity text, body jsonb, include text DEFAULT 'base')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moment_create'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment."create"(text, jsonb, text) IS
'Creates one object from a JSON body of field names (company_id from the company in force; id and companyId cannot be set) and returns it projected by include.';

CREATE FUNCTION moment.update(entity text, id bigint, body jsonb, include text DEFAULT 'base')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moment_update'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.update(text, bigint, jsonb, text) IS
'Changes only the given fields of one object (PUT = PATCH), sets updated_at, returns it projected by include; P0002 when no such row of the company in force exists.';

CREATE FUNCTION moment.delete(entity text, id bigint)
RETURNS bigint
AS 'MODULE_PATHNAME', 'moment_delete'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.delete(text, bigint) IS
'Deletes one object and returns its id; P0002 when no such row exists, 23503 when other rows still reference it.';

CREATE FUNCTION moment.batch(entity text, instructions jsonb, include text DEFAULT 'base')
RETURNS jsonb
AS 'MODULE_PATHNAME', 'moment_batch'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.batch(text, jsonb, text) IS
'Applies {"create": [...], "update": {"id": {...}}, "delete": [...]} all or nothing: creates in order, updates by ascending id, then deletes. Errors keep their SQLSTATE and name the failing instruction (create[N], update[ID], delete[ID]).';

CREATE FUNCTION moment.api(method text, path text, body jsonb DEFAULT NULL)
RETURNS TABLE (status integer, response jsonb)
AS 'MODULE_PATHNAME', 'moment_api'
LANGUAGE C VOLATILE;

COMMENT ON FUNCTION moment.api(text, text, jsonb) IS
'Moment''s REST API from SQL: api(''GET'', ''/api/1.0/companies/cloudware/offers/include/base?noLimit=true'') returns the HTTP status and JSON body Moment would. Never raises for a bad request.';
