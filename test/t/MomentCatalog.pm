
# MomentCatalog: a snapshot of everything extension moment puts in a
# database's catalog, and a comparison of two snapshots that names each
# object that differs.  Used by the upgrade and restore tests, which compare
# an upgraded (or restored) database with a fresh CREATE EXTENSION moment.
#
#   my $snapshot = MomentCatalog::snapshot($node, $dbname);
#   my %differences = MomentCatalog::compare($upgraded, $fresh, 'upgrade', 'fresh');
#   # section name => [ "what differs", ... ]
#
# The objects: every member of the extension, everything in schemas moment and
# moment_internal, every registered entity table (users' tables included) with
# its columns, constraints, indexes, policies, triggers and owned sequences.
# For each: the properties a user or pg_dump could notice (definitions,
# volatility, security, comments, owners, privileges as sets of grants), never
# oids or data.  Built-in catalog rows (builtin = true) are compared too.

package MomentCatalog;

use strict;
use warnings;

use JSON::PP;

# One row per object: section, key (the object's name), fields (jsonb).
# search_path is pg_catalog alone so that every name prints schema-qualified.
my $snapshot_sql = <<'SQL';
SET search_path = pg_catalog;
-- a privilege list as a sorted set of grantee=privilege/grantor (* = grantable)
CREATE FUNCTION pg_temp.acl_set(acl aclitem[]) RETURNS text
LANGUAGE sql STABLE AS $$
	SELECT coalesce(string_agg(g, ' ' ORDER BY g), '')
	  FROM (SELECT CASE WHEN e.grantee = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(e.grantee) END
				   || '=' || e.privilege_type || CASE WHEN e.is_grantable THEN '*' ELSE '' END
				   || '/' || pg_get_userbyid(e.grantor) AS g
			  FROM aclexplode(acl) e) s
$$;
WITH ext AS (
	SELECT e.* , e.oid AS extoid FROM pg_extension e WHERE e.extname = 'moment'
), member AS (
	SELECT d.classid, d.objid, d.objsubid FROM pg_depend d, ext
	 WHERE d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.extoid AND d.deptype = 'e'
), nsp AS (
	SELECT n.oid FROM pg_namespace n WHERE n.nspname IN ('moment', 'moment_internal')
	UNION SELECT m.objid FROM member m WHERE m.classid = 'pg_namespace'::regclass
), tbl AS (
	SELECT c.oid FROM pg_class c WHERE c.relnamespace IN (SELECT oid FROM nsp) AND c.relkind <> 't'
	UNION SELECT m.objid FROM member m WHERE m.classid = 'pg_class'::regclass
	UNION SELECT e.table_name::oid FROM moment.entities e
), rel AS (
	SELECT oid FROM tbl
	UNION SELECT i.indexrelid FROM pg_index i WHERE i.indrelid IN (SELECT oid FROM tbl)
	UNION SELECT d.objid FROM pg_depend d JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
	 WHERE d.classid = 'pg_class'::regclass AND d.refclassid = 'pg_class'::regclass
	   AND d.refobjid IN (SELECT oid FROM tbl)
), objects (section, key, fields) AS (
	SELECT 'extension', 'extension moment',
		   jsonb_build_object('schema', e.extnamespace::regnamespace::text, 'relocatable', e.extrelocatable,
							  'version', e.extversion, 'owner', pg_get_userbyid(e.extowner),
							  'comment', obj_description(e.extoid, 'pg_extension'),
							  'config tables', (SELECT string_agg(c::regclass::text || ' ' || coalesce(w, '(null)'), ', ' ORDER BY c::regclass::text)
												  FROM unnest(e.extconfig, e.extcondition) AS u(c, w)))
	  FROM ext e
	UNION ALL
	-- membership and every other dependency of or on the extension
	SELECT 'membership', CASE WHEN d.deptype = 'e' THEN 'member ' || pg_describe_object(d.classid, d.objid, d.objsubid)
							 WHEN d.refclassid = 'pg_extension'::regclass THEN pg_describe_object(d.classid, d.objid, d.objsubid) || ' depends on the extension'
							 ELSE 'the extension depends on ' || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid) END,
		   jsonb_build_object('deptype', d.deptype)
	  FROM pg_depend d, ext
	 WHERE (d.refclassid = 'pg_extension'::regclass AND d.refobjid = ext.extoid)
		OR (d.classid = 'pg_extension'::regclass AND d.objid = ext.extoid)
	UNION ALL
	SELECT 'schemas', 'schema ' || n.nspname,
		   jsonb_build_object('owner', pg_get_userbyid(n.nspowner),
							  'privileges', pg_temp.acl_set(coalesce(n.nspacl, acldefault('n', n.nspowner))),
							  'comment', obj_description(n.oid, 'pg_namespace'),
							  'member', n.oid IN (SELECT objid FROM member WHERE classid = 'pg_namespace'::regclass))
	  FROM pg_namespace n WHERE n.oid IN (SELECT oid FROM nsp)
	UNION ALL
	SELECT CASE WHEN c.relkind = 'i' THEN 'indexes' WHEN c.relkind = 'S' THEN 'sequences' ELSE 'tables' END,
		   CASE c.relkind WHEN 'r' THEN 'table ' WHEN 'p' THEN 'table ' WHEN 'i' THEN 'index ' WHEN 'S' THEN 'sequence '
						  WHEN 'v' THEN 'view ' WHEN 'm' THEN 'materialized view ' WHEN 'c' THEN 'type ' ELSE 'relation ' END
		   || c.oid::regclass::text,
		   jsonb_build_object('kind', c.relkind, 'owner', pg_get_userbyid(c.relowner), 'persistence', c.relpersistence,
							  'row security', c.relrowsecurity, 'forced row security', c.relforcerowsecurity,
							  'options', c.reloptions::text, 'replica identity', c.relreplident,
							  'privileges', pg_temp.acl_set(coalesce(c.relacl, acldefault(CASE WHEN c.relkind = 'S' THEN 's' ELSE 'r' END::"char", c.relowner))),
							  'comment', obj_description(c.oid, 'pg_class'),
							  'member', c.oid IN (SELECT objid FROM member WHERE classid = 'pg_class'::regclass),
							  'index definition', CASE WHEN c.relkind = 'i' THEN pg_get_indexdef(c.oid) END,
							  'owned by', (SELECT string_agg(pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), ', '
														   ORDER BY pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid))
										 FROM pg_depend d
										WHERE c.relkind = 'S' AND d.classid = 'pg_class'::regclass AND d.objid = c.oid
										  AND d.deptype IN ('a', 'i') AND d.refclassid = 'pg_class'::regclass),
							  'sequence', (SELECT jsonb_build_object('type', s.seqtypid::regtype::text, 'start', s.seqstart,
																	 'increment', s.seqincrement, 'min', s.seqmin, 'max', s.seqmax,
																	 'cache', s.seqcache, 'cycle', s.seqcycle)::text
											 FROM pg_sequence s WHERE s.seqrelid = c.oid))
	  FROM pg_class c WHERE c.oid IN (SELECT oid FROM rel)
	UNION ALL
	-- columns: type, default, not-null, and the order of the columns that are not dropped
	SELECT 'columns', 'column ' || a.attrelid::regclass::text || '.' || quote_ident(a.attname),
		   jsonb_build_object('position', row_number() OVER (PARTITION BY a.attrelid ORDER BY a.attnum),
							  'type', format_type(a.atttypid, a.atttypmod), 'not null', a.attnotnull,
							  'default', pg_get_expr(ad.adbin, ad.adrelid), 'identity', a.attidentity,
							  'generated', a.attgenerated,
							  'collation', CASE WHEN a.attcollation <> 0 THEN a.attcollation::regcollation::text END,
							  -- (the grants to roles on moment.grantees' columns are data, the
							  -- marks of the roles with company grants: only its owner's count)
							  'privileges', pg_temp.acl_set(CASE WHEN a.attrelid = to_regclass('moment.grantees')
								  THEN nullif(ARRAY(SELECT x FROM unnest(a.attacl) x
													 WHERE EXISTS (SELECT FROM aclexplode(ARRAY[x]) e WHERE e.grantee = c.relowner)),
											  '{}'::aclitem[])
								  ELSE a.attacl END),
							  'comment', col_description(a.attrelid, a.attnum))
	  FROM pg_attribute a
	  JOIN pg_class c ON c.oid = a.attrelid AND c.relkind IN ('r', 'p', 'v', 'm', 'c', 'f')
	  LEFT JOIN pg_attrdef ad ON ad.adrelid = a.attrelid AND ad.adnum = a.attnum
	 WHERE a.attrelid IN (SELECT oid FROM rel) AND a.attnum > 0 AND NOT a.attisdropped
	UNION ALL
	SELECT 'constraints', 'constraint ' || k.conname || ' on ' || k.conrelid::regclass::text,
		   jsonb_build_object('type', k.contype, 'definition', pg_get_constraintdef(k.oid),
							  'validated', k.convalidated, 'deferrable', k.condeferrable, 'deferred', k.condeferred,
							  'no inherit', k.connoinherit,
							  'index', CASE WHEN k.conindid <> 0 THEN k.conindid::regclass::text END,
							  'comment', obj_description(k.oid, 'pg_constraint'))
	  FROM pg_constraint k WHERE k.conrelid IN (SELECT oid FROM rel)
	UNION ALL
	SELECT 'policies', 'policy ' || p.polname || ' on ' || p.polrelid::regclass::text,
		   jsonb_build_object('command', p.polcmd, 'permissive', p.polpermissive,
							  'roles', (SELECT string_agg(CASE WHEN r = 0 THEN 'PUBLIC' ELSE pg_get_userbyid(r) END, ',' ORDER BY 1)
										  FROM unnest(p.polroles) r),
							  'using', pg_get_expr(p.polqual, p.polrelid),
							  'with check', pg_get_expr(p.polwithcheck, p.polrelid),
							  'comment', obj_description(p.oid, 'pg_policy'))
	  FROM pg_policy p WHERE p.polrelid IN (SELECT oid FROM rel)
	UNION ALL
	SELECT 'triggers', 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text,
		   jsonb_build_object('definition', pg_get_triggerdef(t.oid), 'enabled', t.tgenabled,
							  'comment', obj_description(t.oid, 'pg_trigger'))
	  FROM pg_trigger t WHERE t.tgrelid IN (SELECT oid FROM rel) AND NOT t.tgisinternal
	UNION ALL
	-- the triggers behind foreign keys: named by their constraint (their own names hold oids)
	SELECT 'triggers', 'foreign key trigger ' || t.tgfoid::regproc::text || ' on ' || t.tgrelid::regclass::text
		   || ' for ' || k.conname || ' on ' || k.conrelid::regclass::text,
		   jsonb_build_object('enabled', t.tgenabled, 'type', t.tgtype, 'deferrable', t.tgdeferrable,
							  'initially deferred', t.tginitdeferred)
	  FROM pg_trigger t JOIN pg_constraint k ON k.oid = t.tgconstraint
	 WHERE t.tgrelid IN (SELECT oid FROM rel) AND t.tgisinternal
	UNION ALL
	SELECT 'functions', CASE p.prokind WHEN 'a' THEN 'aggregate ' WHEN 'p' THEN 'procedure ' ELSE 'function ' END
		   || p.oid::regprocedure::text,
		   jsonb_build_object('arguments', pg_get_function_arguments(p.oid), 'result', pg_get_function_result(p.oid),
							  'kind', p.prokind, 'volatility', p.provolatile, 'strict', p.proisstrict,
							  'security definer', p.prosecdef, 'parallel', p.proparallel, 'leakproof', p.proleakproof,
							  'cost', p.procost, 'rows', p.prorows, 'returns set', p.proretset,
							  'config', p.proconfig::text, 'language', l.lanname, 'source', p.prosrc, 'library', p.probin,
							  'support', p.prosupport::text, 'owner', pg_get_userbyid(p.proowner),
							  'privileges', pg_temp.acl_set(coalesce(p.proacl, acldefault('f', p.proowner))),
							  'comment', obj_description(p.oid, 'pg_proc'),
							  'member', p.oid IN (SELECT objid FROM member WHERE classid = 'pg_proc'::regclass),
							  -- e.g. the automatic dependency of a typed listing on its table
							  'dependencies', (SELECT string_agg(d.deptype::text || ' ' || pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid), ', '
																ORDER BY d.deptype, pg_describe_object(d.refclassid, d.refobjid, d.refobjsubid))
												 FROM pg_depend d
												WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype NOT IN ('n', 'e')))
	  FROM pg_proc p JOIN pg_language l ON l.oid = p.prolang
	 WHERE p.pronamespace IN (SELECT oid FROM nsp) OR p.oid IN (SELECT objid FROM member WHERE classid = 'pg_proc'::regclass)
	UNION ALL
	SELECT 'types', 'type ' || t.oid::regtype::text,
		   jsonb_build_object('type', t.typtype, 'relation', CASE WHEN t.typrelid <> 0 THEN t.typrelid::regclass::text END,
							  'element', CASE WHEN t.typelem <> 0 THEN t.typelem::regtype::text END,
							  'owner', pg_get_userbyid(t.typowner),
							  'privileges', pg_temp.acl_set(coalesce(t.typacl, acldefault('T', t.typowner))),
							  'comment', obj_description(t.oid, 'pg_type'),
							  'member', t.oid IN (SELECT objid FROM member WHERE classid = 'pg_type'::regclass))
	  FROM pg_type t
	 WHERE t.typnamespace IN (SELECT oid FROM nsp) OR t.oid IN (SELECT objid FROM member WHERE classid = 'pg_type'::regclass)
	UNION ALL
	SELECT 'statistics', 'statistics ' || s.stxnamespace::regnamespace::text || '.' || s.stxname,
		   jsonb_build_object('definition', pg_get_statisticsobjdef(s.oid), 'owner', pg_get_userbyid(s.stxowner),
							  'comment', obj_description(s.oid, 'pg_statistic_ext'),
							  'member', s.oid IN (SELECT objid FROM member WHERE classid = 'pg_statistic_ext'::regclass))
	  FROM pg_statistic_ext s WHERE s.stxnamespace IN (SELECT oid FROM nsp) OR s.stxrelid IN (SELECT oid FROM rel)
	UNION ALL
	SELECT 'event triggers', 'event trigger ' || t.evtname,
		   jsonb_build_object('event', t.evtevent, 'function', t.evtfoid::regprocedure::text, 'enabled', t.evtenabled,
							  'tags', t.evttags::text, 'owner', pg_get_userbyid(t.evtowner),
							  'comment', obj_description(t.oid, 'pg_event_trigger'),
							  'member', t.oid IN (SELECT objid FROM member WHERE classid = 'pg_event_trigger'::regclass))
	  FROM pg_event_trigger t
	 WHERE t.evtname LIKE 'moment%' OR t.oid IN (SELECT objid FROM member WHERE classid = 'pg_event_trigger'::regclass)
	UNION ALL
	SELECT 'privileges', 'default privileges of ' || pg_get_userbyid(a.defaclrole) || ' in schema '
		   || a.defaclnamespace::regnamespace::text || ' on ' || a.defaclobjtype::text,
		   jsonb_build_object('privileges', pg_temp.acl_set(a.defaclacl))
	  FROM pg_default_acl a WHERE a.defaclnamespace IN (SELECT oid FROM nsp)
	UNION ALL
	-- what pg_dump takes as the extension's own privileges (it dumps only the changes from these)
	SELECT 'privileges', 'initial privileges of ' || pg_describe_object(i.classoid, i.objoid, i.objsubid),
		   jsonb_build_object('privileges', pg_temp.acl_set(i.initprivs))
	  FROM pg_init_privs i WHERE i.privtype = 'e'
	UNION ALL
	SELECT 'built-in rows', 'moment.entities row ' || e.name,
		   jsonb_build_object('table_name', e.table_name::text, 'date_field', e.date_field)
	  FROM moment.entities e WHERE e.builtin
	UNION ALL
	SELECT 'built-in rows', 'moment.parts row ' || p.entity || '.' || p.name,
		   jsonb_build_object('fields', p.fields::text)
	  FROM moment.parts p WHERE p.builtin
	UNION ALL
	SELECT 'built-in rows', 'moment.metadata row ' || m.entity || '.' || m.set_name || '.' || m.key,
		   jsonb_build_object('expression', m.expression, 'position', m."position")
	  FROM moment.metadata m WHERE m.builtin
)
SELECT coalesce(json_agg(json_build_array(section, key, fields) ORDER BY section, key), '[]') FROM objects;
SQL

# snapshot($node, $dbname): { key => { section => ..., fields => {...} } }
sub snapshot
{
	my ($node, $dbname) = @_;
	my $rows = decode_json($node->safe_psql($dbname, $snapshot_sql));
	my %objects;
	foreach my $row (@$rows)
	{
		my ($section, $key, $fields) = @$row;
		# two objects of one name (should not happen): keep both, numbered
		my $unique = $key;
		my $n = 1;
		$unique = $key . ' #' . ++$n while exists $objects{$unique};
		$objects{$unique} = { section => $section, fields => $fields };
	}
	return \%objects;
}

# A value as a short quoted string; $from: where the interesting part starts.
sub _show
{
	my ($value, $from) = @_;
	return 'absent' unless defined $value;
	$value = JSON::PP->new->canonical->encode($value) if ref $value;
	$value = "$value";
	$from //= 0;
	my $start = $from > 40 ? $from - 40 : 0;
	my $shown = substr($value, $start, 160);
	$shown = '...' . $shown if $start > 0;
	$shown .= '...' if length($value) > $start + 160;
	$shown =~ s/\n/\\n/g;
	return "'$shown'";
}

sub _first_difference
{
	my ($x, $y) = @_;
	return 0 unless defined $x && defined $y && !ref $x && !ref $y;
	my $i = 0;
	$i++ while $i < length($x) && $i < length($y) && substr($x, $i, 1) eq substr($y, $i, 1);
	return $i;
}

sub _same
{
	my ($x, $y) = @_;
	return 1 if !defined $x && !defined $y;
	return 0 if !defined $x || !defined $y;
	return JSON::PP->new->canonical->allow_nonref->encode($x) eq JSON::PP->new->canonical->allow_nonref->encode($y);
}

# compare($a, $b, $a_name, $b_name): { section => [ difference, ... ] }, one
# line per object missing on one side or per property that differs.
sub compare
{
	my ($a, $b, $a_name, $b_name) = @_;
	my %differences;
	my %keys = map { $_ => 1 } (keys %$a, keys %$b);
	foreach my $key (sort keys %keys)
	{
		my $section = ($a->{$key} // $b->{$key})->{section};
		if (!exists $a->{$key})
		{
			push @{ $differences{$section} }, "$key: missing after $a_name (present after $b_name)";
			next;
		}
		if (!exists $b->{$key})
		{
			push @{ $differences{$section} }, "$key: only after $a_name (absent after $b_name)";
			next;
		}
		my ($fa, $fb) = ($a->{$key}{fields}, $b->{$key}{fields});
		my %fields = map { $_ => 1 } (keys %$fa, keys %$fb);
		foreach my $field (sort keys %fields)
		{
			next if _same($fa->{$field}, $fb->{$field});
			if ($field eq 'privileges' && defined $fa->{$field} && defined $fb->{$field})
			{
				# sets of grants: say which grants one side lacks
				my %in_a = map { $_ => 1 } split / /, $fa->{$field};
				my %in_b = map { $_ => 1 } split / /, $fb->{$field};
				my @only_a = grep { !$in_b{$_} } sort keys %in_a;
				my @only_b = grep { !$in_a{$_} } sort keys %in_b;
				push @{ $differences{$section} },
				  "$key: privileges differ: only after $a_name {" . join(' ', @only_a)
				  . "}, only after $b_name {" . join(' ', @only_b) . '}';
				next;
			}
			my $at = _first_difference($fa->{$field}, $fb->{$field});
			push @{ $differences{$section} },
			  "$key: $field differs: $a_name " . _show($fa->{$field}, $at) . ", $b_name " . _show($fb->{$field}, $at);
		}
	}
	return \%differences;
}

# The sections a snapshot has, for reporting each as one test.
sub sections
{
	return ('extension', 'membership', 'schemas', 'tables', 'columns', 'constraints', 'indexes', 'sequences',
		'policies', 'triggers', 'functions', 'types', 'statistics', 'event triggers', 'privileges', 'built-in rows');
}

1;
