-- moment 0.1.0-restored -> 0.2.0 (ALTER EXTENSION moment UPDATE after
-- restoring a dump of a 0.1.0 database where 0.2.0 is installed).
-- complain if script is sourced in psql rather than via ALTER EXTENSION
\echo Use "ALTER EXTENSION moment UPDATE TO '0.2.0'" to load this file. \quit

-- The restore ran moment--0.2.0.sql, which left out the membership foreign
-- key and kept moment.current_company_id for 0.1.0's rows and policies (its
-- last section).  What is left is what moment--0.1.0--0.2.0.sql does to
-- users' rows and objects in place, in the same words: 0.2.0's policies and
-- privileges on users' tables, their typed listings, grants moved to the
-- group roles, the membership foreign key NOT VALID, and the initial
-- privileges a fresh install has.  test/t/031_dump_0_1_0.pl compares the
-- result with a fresh install.  (0.1.0 dumped no change to a built-in part,
-- metadata key or date field: those are not in the dump to restore.)

------------------------------------------------------------------------------
-- Users' tables: 0.2.0's policies and privileges, typed listings
------------------------------------------------------------------------------

SELECT moment.enable_tenant_security(e.table_name), moment.grant_entity_privileges(e.table_name)
  FROM moment.entities e ORDER BY e.name;

-- the webhook outbox on users' tables too (the built-in ones have it already)
SELECT moment.enable_webhooks(e.table_name) FROM moment.entities e ORDER BY e.name;

-- the restored policies of 0.1.0 were its only users, and are replaced
DROP FUNCTION moment.current_company_id(boolean);

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
		-- what 0.1.0's grant_company granted directly (and the dump restored)
		EXECUTE pg_catalog.format('REVOKE USAGE ON SCHEMA moment FROM %I', grantee.rolname);
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
-- Time records: the membership foreign key
------------------------------------------------------------------------------

-- NOT VALID: time records of 0.1.0 held any number here; new and changed rows are checked
ALTER TABLE moment.time_records
	ADD CONSTRAINT time_records_project_membership_fkey FOREIGN KEY (company_id, project_membership_id, project_id, user_account_id)
		REFERENCES moment.project_memberships (company_id, id, project_id, user_account_id) NOT VALID;

------------------------------------------------------------------------------
-- Initial privileges: the extension's own grants, never users'
------------------------------------------------------------------------------

-- As at the end of moment--0.1.0--0.2.0.sql: the grants and revokes above
-- recorded users' grants as initial privileges, which pg_dump would leave out.
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
