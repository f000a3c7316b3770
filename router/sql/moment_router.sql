-- moment_router 0.2.0: moment's API over several PostgreSQL servers (shards),
-- each company on exactly one, routed by PL/Proxy.
-- complain if script is sourced in psql rather than via CREATE EXTENSION
\echo Use "CREATE EXTENSION moment_router" to load this file. \quit

-- Every name below is schema-qualified (pg_catalog. included): the script runs
-- with the installer's search_path, which must not be able to redirect it.

------------------------------------------------------------------------------
-- The schemas: the extension lives in pg_catalog and owns its schemas, so
-- that DROP EXTENSION drops them with everything in them
------------------------------------------------------------------------------

CREATE SCHEMA moment;
COMMENT ON SCHEMA moment IS
'Moment''s business API (get, list, rows, list_*, create, update, delete, batch, api, reports, ...), each call routed to the shard of the company in force by moment_router.';
GRANT USAGE ON SCHEMA moment TO PUBLIC;

CREATE SCHEMA moment_router;
COMMENT ON SCHEMA moment_router IS
'Administration of the router: shards, the directory of companies, grants and moves.';
GRANT USAGE ON SCHEMA moment_router TO PUBLIC;

-- The PL/Proxy functions, called only by the C functions of schema moment
-- (fmgr checks no privilege): a role that could call them could point them
-- at a connection string of its choosing.
CREATE SCHEMA moment_router_proxy;
COMMENT ON SCHEMA moment_router_proxy IS
'PL/Proxy functions that run moment_internal.routed_call on a shard. Internal to moment_router: nobody may call them directly.';

CREATE SCHEMA moment_router_internal;
COMMENT ON SCHEMA moment_router_internal IS
'Calls of moment_router''s administration on a given shard. Internal to moment_router.';

------------------------------------------------------------------------------
-- Shards and the directory of companies
------------------------------------------------------------------------------

CREATE TABLE moment_router.shard_registry (
	name text NOT NULL,
	conninfo text NOT NULL,
	shard_number integer,
	position bigint GENERATED ALWAYS AS IDENTITY,
	CONSTRAINT shard_registry_pkey PRIMARY KEY (name),
	CONSTRAINT shard_registry_shard_number_key UNIQUE (shard_number),
	CONSTRAINT shard_registry_position_key UNIQUE (position),
	CONSTRAINT shard_registry_name_check CHECK (name OPERATOR(pg_catalog.<>) '')
);
COMMENT ON TABLE moment_router.shard_registry IS
'The shards: name, libpq connection string (without user: calls connect as the calling role), the number moment.configure_shard() gave the shard, and the order they were added in. Changed by moment_router.add_shard().';

CREATE TABLE moment_router.company_directory (
	code text NOT NULL,
	id bigint NOT NULL,
	shard text NOT NULL,
	CONSTRAINT company_directory_pkey PRIMARY KEY (code),
	CONSTRAINT company_directory_id_key UNIQUE (id),
	CONSTRAINT company_directory_shard_fkey FOREIGN KEY (shard) REFERENCES moment_router.shard_registry (name)
);
CREATE INDEX company_directory_shard_idx ON moment_router.company_directory (shard);
COMMENT ON TABLE moment_router.company_directory IS
'Which shard each company lives on: the routing of every call. Changed by create_company, move_company and add_shard.';

CREATE SEQUENCE moment_router.company_id_seq;
COMMENT ON SEQUENCE moment_router.company_id_seq IS
'The ids of companies created through the router (unique across shards).';

-- The routed functions: the router's function, the PL/Proxy function it
-- calls, the function it runs on the shard, and how the shard is chosen:
-- 'c' the company in force, 'p' the company of the REST path (api), else the
-- company in force, 's' the shard named by the first argument.
CREATE TABLE moment_router.routes (
	function regprocedure NOT NULL,
	proxy regprocedure NOT NULL,
	target text NOT NULL,
	routing "char" NOT NULL,
	writes boolean NOT NULL,
	CONSTRAINT routes_pkey PRIMARY KEY (function),
	CONSTRAINT routes_routing_check CHECK (routing OPERATOR(pg_catalog.=) ANY (ARRAY['c', 'p', 's']::pg_catalog."char"[]))
);
COMMENT ON TABLE moment_router.routes IS
'For each routed function: its PL/Proxy function, the function run on the shard, how the shard is chosen (c: company in force, p: the REST path''s company, s: the shard named first) and whether it writes (a connection lost during a write is 08007). Generated from moment''s catalog.';

REVOKE ALL ON moment_router.shard_registry, moment_router.company_directory, moment_router.routes FROM PUBLIC;
REVOKE ALL ON SEQUENCE moment_router.company_id_seq FROM PUBLIC;

CREATE VIEW moment_router.shards AS
	SELECT s.name, s.conninfo,
		   (SELECT pg_catalog.count(*) FROM moment_router.company_directory c
			 WHERE c.shard OPERATOR(pg_catalog.=) s.name) AS companies
	  FROM moment_router.shard_registry s
	 ORDER BY s.position;
COMMENT ON VIEW moment_router.shards IS 'The shards in the order they were added, with the number of companies on each.';

CREATE VIEW moment_router.companies AS
	SELECT c.code, c.id, c.shard FROM moment_router.company_directory c ORDER BY c.code;
COMMENT ON VIEW moment_router.companies IS 'Every company and the shard it lives on.';

REVOKE ALL ON moment_router.shards, moment_router.companies FROM PUBLIC;

-- Every backend caches the directory; a change tells them all at commit.
CREATE FUNCTION moment_router.directory_changed()
RETURNS trigger
AS 'MODULE_PATHNAME', 'moment_router_directory_changed'
LANGUAGE C;
COMMENT ON FUNCTION moment_router.directory_changed() IS
'Trigger: every session drops its cached directory of shards and companies when the transaction commits.';
REVOKE EXECUTE ON FUNCTION moment_router.directory_changed() FROM PUBLIC;

CREATE TRIGGER shard_registry_changed AFTER INSERT OR UPDATE OR DELETE ON moment_router.shard_registry
	FOR EACH ROW EXECUTE FUNCTION moment_router.directory_changed();
CREATE TRIGGER shard_registry_truncated AFTER TRUNCATE ON moment_router.shard_registry
	FOR EACH STATEMENT EXECUTE FUNCTION moment_router.directory_changed();
CREATE TRIGGER company_directory_changed AFTER INSERT OR UPDATE OR DELETE ON moment_router.company_directory
	FOR EACH ROW EXECUTE FUNCTION moment_router.directory_changed();
CREATE TRIGGER company_directory_truncated AFTER TRUNCATE ON moment_router.company_directory
	FOR EACH STATEMENT EXECUTE FUNCTION moment_router.directory_changed();
ALTER TABLE moment_router.shard_registry ENABLE ALWAYS TRIGGER shard_registry_changed,
	ENABLE ALWAYS TRIGGER shard_registry_truncated;
ALTER TABLE moment_router.company_directory ENABLE ALWAYS TRIGGER company_directory_changed,
	ENABLE ALWAYS TRIGGER company_directory_truncated;

SELECT pg_catalog.pg_extension_config_dump('moment_router.shard_registry', '');
SELECT pg_catalog.pg_extension_config_dump('moment_router.company_directory', '');
SELECT pg_catalog.pg_extension_config_dump('moment_router.company_id_seq', '');

------------------------------------------------------------------------------
-- Administration (superusers only)
------------------------------------------------------------------------------

CREATE FUNCTION moment_router_internal.router_format()
RETURNS text
AS 'MODULE_PATHNAME', 'moment_router_format'
LANGUAGE C IMMUTABLE PARALLEL SAFE;
COMMENT ON FUNCTION moment_router_internal.router_format() IS
'The byte order of this server''s in-memory values: a shard must have the same (moment_internal.shard_format()).';

CREATE FUNCTION moment_router_internal.require_superuser()
RETURNS void
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT coalesce((SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname OPERATOR(pg_catalog.=) current_user), false) THEN
		RAISE EXCEPTION 'permission denied: only a superuser may administer moment_router'
			USING ERRCODE = '42501',
				  HINT = 'The router''s administration runs moment''s administration on the shards as the same role, a superuser there too.';
	END IF;
END
$$;
COMMENT ON FUNCTION moment_router_internal.require_superuser() IS
'Raises 42501 unless the current role is a superuser (every administration function calls it).';

CREATE FUNCTION moment_router_internal.shard_of(shard text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	IF NOT EXISTS (SELECT FROM moment_router.shard_registry s WHERE s.name OPERATOR(pg_catalog.=) shard_of.shard) THEN
		RAISE EXCEPTION 'unknown shard "%"', shard
			USING ERRCODE = '22023',
				  HINT = coalesce('Shards: ' OPERATOR(pg_catalog.||) (SELECT pg_catalog.string_agg(s.name, ', ' ORDER BY s.position)
																	  FROM moment_router.shard_registry s) OPERATOR(pg_catalog.||) '.',
								  'No shard has been added: moment_router.add_shard(name, conninfo).');
	END IF;
	RETURN shard;
END
$$;
COMMENT ON FUNCTION moment_router_internal.shard_of(text) IS 'The name of a registered shard; 22023 for another name.';

CREATE FUNCTION moment_router.add_shard(name text, conninfo text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	known integer;
	is_new boolean;
	info record;
	company record;
BEGIN
	PERFORM moment_router_internal.require_superuser();
	IF name IS NULL OR name OPERATOR(pg_catalog.=) '' OR conninfo IS NULL THEN
		RAISE EXCEPTION 'a shard needs a name and a connection string' USING ERRCODE = '22023';
	END IF;
	-- serialize with other changes of the registry
	LOCK TABLE moment_router.shard_registry IN SHARE ROW EXCLUSIVE MODE;
	SELECT s.shard_number INTO known FROM moment_router.shard_registry s WHERE s.name OPERATOR(pg_catalog.=) add_shard.name;
	is_new := NOT FOUND;
	-- recorded first, so that the shard can be asked what it is (all of it
	-- goes with this transaction if the answer does not suit)
	IF is_new THEN
		INSERT INTO moment_router.shard_registry (name, conninfo) VALUES (name, conninfo);
	ELSE
		UPDATE moment_router.shard_registry s SET conninfo = add_shard.conninfo WHERE s.name OPERATOR(pg_catalog.=) add_shard.name;
	END IF;
	SELECT * INTO info FROM moment_router_internal.shard_info(name);
	IF info.shard_number IS NULL THEN
		RAISE EXCEPTION 'the database of shard "%" is not a configured shard', name
			USING ERRCODE = '55000', HINT = 'Run SELECT moment.configure_shard(n) there first, with a number no other shard has.';
	END IF;
	IF info.format OPERATOR(pg_catalog.<>) moment_router_internal.router_format() THEN
		RAISE EXCEPTION 'shard "%" is %, the router is %', name, info.format, moment_router_internal.router_format()
			USING ERRCODE = '0A000', DETAIL = 'Results pass between the router and its shards as in-memory values.';
	END IF;
	IF NOT is_new THEN
		-- the same shard at a new address
		IF known OPERATOR(pg_catalog.<>) info.shard_number THEN
			RAISE EXCEPTION 'shard "%" is number %, the database at the new address is shard %', name, known, info.shard_number
				USING ERRCODE = '23505';
		END IF;
		RETURN;
	END IF;
	IF EXISTS (SELECT FROM moment_router.shard_registry s WHERE s.shard_number OPERATOR(pg_catalog.=) info.shard_number) THEN
		RAISE EXCEPTION 'shard number % is already the number of shard "%"', info.shard_number,
			(SELECT s.name FROM moment_router.shard_registry s WHERE s.shard_number OPERATOR(pg_catalog.=) info.shard_number)
			USING ERRCODE = '23505', HINT = 'Each shard has its own number (moment.configure_shard), so that ids stay unique.';
	END IF;
	UPDATE moment_router.shard_registry s SET shard_number = info.shard_number WHERE s.name OPERATOR(pg_catalog.=) add_shard.name;
	-- a server that already holds companies keeps them: they are recorded here
	FOR company IN SELECT * FROM moment_router_internal.shard_companies(name) LOOP
		IF EXISTS (SELECT FROM moment_router.company_directory d
					WHERE d.code OPERATOR(pg_catalog.=) company.code OR d.id OPERATOR(pg_catalog.=) company.id) THEN
			RAISE EXCEPTION 'company "%" (id %) of shard "%" is already in the directory', company.code, company.id, name
				USING ERRCODE = '23505', HINT = 'Company codes and ids must be unique across shards.';
		END IF;
		INSERT INTO moment_router.company_directory (code, id, shard) VALUES (company.code, company.id, name);
	END LOOP;
	-- ids the router gives out come after those
	IF EXISTS (SELECT FROM moment_router.company_directory d
				WHERE d.id OPERATOR(pg_catalog.>=) (SELECT s.last_value FROM moment_router.company_id_seq s)) THEN
		PERFORM pg_catalog.setval('moment_router.company_id_seq', (SELECT pg_catalog.max(d.id) FROM moment_router.company_directory d));
	END IF;
END
$$;
COMMENT ON FUNCTION moment_router.add_shard(text, text) IS
'Adds a shard (a database with moment, configured with moment.configure_shard): name and libpq connection string, without user (calls connect as the calling role). Companies the shard already holds are recorded in the directory. Adding a known name again changes its connection string. Superuser only.';

CREATE FUNCTION moment_router.create_company(code text, name text, shard text DEFAULT NULL, currency_code character(3) DEFAULT 'NOK')
RETURNS bigint
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	target text := shard;
	new_id bigint;
BEGIN
	PERFORM moment_router_internal.require_superuser();
	IF code IS NULL OR name IS NULL THEN
		RAISE EXCEPTION 'a company needs a code and a name' USING ERRCODE = '22023';
	END IF;
	LOCK TABLE moment_router.company_directory IN SHARE ROW EXCLUSIVE MODE;
	IF EXISTS (SELECT FROM moment_router.company_directory d WHERE d.code OPERATOR(pg_catalog.=) create_company.code) THEN
		RAISE EXCEPTION 'company "%" already exists', code
			USING ERRCODE = '23505', DETAIL = pg_catalog.format('It lives on shard "%s".',
				(SELECT d.shard FROM moment_router.company_directory d WHERE d.code OPERATOR(pg_catalog.=) create_company.code));
	END IF;
	IF target IS NULL THEN
		-- the shard with the fewest companies, the first added on a tie
		SELECT s.name INTO target FROM moment_router.shard_registry s
		  LEFT JOIN moment_router.company_directory d ON d.shard OPERATOR(pg_catalog.=) s.name
		 GROUP BY s.name, s.position
		 ORDER BY pg_catalog.count(d.code), s.position
		 LIMIT 1;
		IF target IS NULL THEN
			RAISE EXCEPTION 'no shard has been added' USING ERRCODE = '55000',
				HINT = 'Add one first: moment_router.add_shard(name, conninfo).';
		END IF;
	END IF;
	target := moment_router_internal.shard_of(target);
	new_id := pg_catalog.nextval('moment_router.company_id_seq');
	INSERT INTO moment_router.company_directory (code, id, shard) VALUES (code, new_id, target);
	-- last: if the shard refuses, the directory row goes with this transaction
	PERFORM moment_router_internal.shard_create_company(target, new_id, code, name, currency_code);
	RETURN new_id;
END
$$;
COMMENT ON FUNCTION moment_router.create_company(text, text, text, character) IS
'Creates a company on a shard (NULL: the one with the fewest companies, the first added on a tie) with an id unique across shards, and records it in the directory; an existing code is 23505 and creates nothing. Superuser only.';

CREATE FUNCTION moment_router_internal.company_shard(code text)
RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	found text := (SELECT d.shard FROM moment_router.company_directory d WHERE d.code OPERATOR(pg_catalog.=) company_shard.code);
BEGIN
	IF found IS NULL THEN
		RAISE EXCEPTION 'company "%" does not exist', code USING ERRCODE = '22023';
	END IF;
	RETURN found;
END
$$;
COMMENT ON FUNCTION moment_router_internal.company_shard(text) IS 'The shard a company lives on; 22023 for an unknown code.';

CREATE FUNCTION moment_router.grant_company(code text, role name, writable boolean DEFAULT true)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_router_internal.require_superuser();
	PERFORM moment_router_internal.grant_company(moment_router_internal.company_shard(code), code, role, writable);
END
$$;
COMMENT ON FUNCTION moment_router.grant_company(text, name, boolean) IS
'moment.grant_company on the company''s shard: the role (which must exist there, with LOGIN, as on every shard) may use the company, read-only or read-write. Superuser only.';

CREATE FUNCTION moment_router.revoke_company(code text, role name)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
	PERFORM moment_router_internal.require_superuser();
	PERFORM moment_router_internal.revoke_company(moment_router_internal.company_shard(code), code, role);
END
$$;
COMMENT ON FUNCTION moment_router.revoke_company(text, name) IS
'moment.revoke_company on the company''s shard. Superuser only.';

------------------------------------------------------------------------------
-- Moving a company to another shard
------------------------------------------------------------------------------

CREATE FUNCTION moment_router_internal.purge_after_commit(shard text, company_id bigint, code text)
RETURNS void
AS 'MODULE_PATHNAME', 'moment_router_purge_after_commit'
LANGUAGE C;
COMMENT ON FUNCTION moment_router_internal.purge_after_commit(text, bigint, text) IS
'Deletes the company''s rows from the shard once this transaction (which moved the company away from it) has committed, leaving only the company''s row, marked moved (calls routed there before the switch get 55006 and retry); a WARNING says so if it cannot. Superuser only.';

CREATE FUNCTION moment_router_internal.moved_here(company_id bigint)
RETURNS boolean
AS 'MODULE_PATHNAME', 'moment_router_moved_here'
LANGUAGE C STABLE;
COMMENT ON FUNCTION moment_router_internal.moved_here(bigint) IS
'Whether this transaction moved the company (its old rows wait for the commit to be deleted).';

REVOKE EXECUTE ON FUNCTION moment_router_internal.purge_after_commit(text, bigint, text),
	moment_router_internal.moved_here(bigint) FROM PUBLIC;

CREATE FUNCTION moment_router.move_company(code text, to_shard text)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
	company moment_router.company_directory;
	source text;
	target text;
	tbl record;
	after_id bigint;
	chunk jsonb;
	chunk_rows bigint;
	last_id bigint;
	other text;
	chunk_size constant integer := 5000;
BEGIN
	PERFORM moment_router_internal.require_superuser();
	target := moment_router_internal.shard_of(to_shard);
	IF pg_catalog.current_setting('transaction_isolation') OPERATOR(pg_catalog.<>) 'read committed' THEN
		RAISE EXCEPTION 'move_company runs in READ COMMITTED transactions only' USING ERRCODE = '25001',
			DETAIL = 'It must see the directory as other moves left it.';
	END IF;
	SELECT * INTO company FROM moment_router.company_directory d WHERE d.code OPERATOR(pg_catalog.=) move_company.code;
	IF NOT FOUND THEN
		RAISE EXCEPTION 'company "%" does not exist', code USING ERRCODE = '22023';
	END IF;
	-- one move of a company at a time; then read where it is now
	PERFORM pg_catalog.pg_advisory_xact_lock(1297044050, (company.id OPERATOR(pg_catalog.%) 2147483647)::pg_catalog.int4);
	SELECT * INTO company FROM moment_router.company_directory d WHERE d.code OPERATOR(pg_catalog.=) move_company.code;
	IF moment_router_internal.moved_here(company.id) THEN
		RAISE EXCEPTION 'company "%" was moved in this transaction already', code USING ERRCODE = '55000',
			HINT = 'Commit that move first: its old rows are deleted at commit.';
	END IF;
	source := company.shard;

	IF source OPERATOR(pg_catalog.=) target THEN
		-- nothing to copy: finish what an interrupted move left behind (the
		-- fence, copies on other shards); the directory names this shard
		PERFORM moment_router_internal.shard_set_fence(target, company.id, false);
		FOR other IN SELECT s.name FROM moment_router.shard_registry s
					  WHERE s.name OPERATOR(pg_catalog.<>) target ORDER BY s.position LOOP
			PERFORM moment_router_internal.shard_purge_company(other, company.id, company.code);
		END LOOP;
		RETURN;
	END IF;

	-- 1. writes to the company are refused (55006) from now on
	PERFORM moment_router_internal.shard_set_fence(source, company.id, true);
	-- 2. the writes that began before that finish, and move with it
	PERFORM moment_router_internal.shard_wait_for_writers(source, company.id);
	-- 3. the copy, parents first, ids kept, after whatever an earlier attempt left there
	PERFORM moment_router_internal.shard_purge_company(target, company.id, company.code);
	FOR tbl IN SELECT * FROM moment_router_internal.company_tables(source) t ORDER BY t.depth, t.table_name LOOP
		after_id := NULL;
		LOOP
			SELECT pg_catalog.jsonb_agg(r.row_data), pg_catalog.count(*),
				   pg_catalog.max((r.row_data OPERATOR(pg_catalog.->>) coalesce(tbl.key_column, 'id'))::pg_catalog.int8)
			  INTO chunk, chunk_rows, last_id
			  FROM moment_router_internal.shard_export_rows(source, company.id, tbl.table_name, after_id, chunk_size) AS r(row_data);
			EXIT WHEN chunk_rows OPERATOR(pg_catalog.=) 0;
			PERFORM moment_router_internal.shard_import_rows(target, company.id, tbl.table_name, chunk);
			EXIT WHEN tbl.key_column IS NULL OR chunk_rows OPERATOR(pg_catalog.<) chunk_size;
			after_id := last_id;
		END LOOP;
	END LOOP;
	-- 4. nothing lost, nothing twice: every table holds as many rows of it on both
	IF EXISTS (SELECT FROM moment_router_internal.shard_count_rows(source, company.id) s
				 FULL JOIN moment_router_internal.shard_count_rows(target, company.id) t
				   ON t.table_name OPERATOR(pg_catalog.=) s.table_name
				WHERE s.row_count IS DISTINCT FROM t.row_count) THEN
		RAISE EXCEPTION 'the copy of company "%" on shard "%" does not match shard "%"', code, target, source
			USING ERRCODE = 'XX000', HINT = 'Nothing was switched: the company stays on its shard. Run the move again.';
	END IF;
	-- 5. the directory names the new shard (for every session once this commits)
	UPDATE moment_router.company_directory d SET shard = target WHERE d.id OPERATOR(pg_catalog.=) company.id;
	-- 6. the copy came fenced: writes are allowed there, where they are routed from the commit on
	PERFORM moment_router_internal.shard_set_fence(target, company.id, false);
	-- 7. the old shard's rows go once this has committed
	PERFORM moment_router_internal.purge_after_commit(source, company.id, company.code);
END
$$;
COMMENT ON FUNCTION moment_router.move_company(text, text) IS
'Moves every row of a company (ids kept, pending webhook deliveries included, nothing queued by the move) to another shard: writes are refused with 55006 (retry) from the start, those already running finish and move with it, reads keep working; the directory names the new shard when this commits, and the old shard''s rows are deleted then, all but the company''s own row, marked moved, which answers 55006 (retry) to a call routed there before the switch. Idempotent: a move that failed or was killed leaves the company on its old shard (fenced) or on the new one; running it again finishes it, moving the company back to where the directory names it cancels it. Superuser only.';
