
# MomentReleases: what the upgrade and restore tests share.
#
#   fill_0_1_0($node, $db)        a database at moment 0.1.0, filled through the
#                                 0.1.0 API (see below)
#   user_table_sql()              the user's table (registered as "contracts")
#   $d = digests($node, $db [, $columns])
#                                 { table => "count md5" } for every table of
#                                 schema moment and the user's table: users'
#                                 registry rows (builtin = false) and data rows,
#                                 over the columns given (default: the columns
#                                 the tables have now; pass those of the old
#                                 version to compare across an upgrade that
#                                 adds columns)
#   $c = table_columns($node, $db)
#   check_dropped($node, $db, $label)
#                                 DROP EXTENSION moment leaves nothing behind
#   run_regress($node, $db, $label)
#                                 the pg_regress files of test/sql against an
#                                 existing database, expecting ./expected

package MomentReleases;

use strict;
use warnings;

use Exporter 'import';
use File::Basename qw(basename);
use File::Path qw(make_path);
use IPC::Run;
use PostgreSQL::Test::Utils;
use Test::More;

our @EXPORT = qw(fill_0_1_0 user_table_sql user_grants_sql digests table_columns check_dropped run_regress);

sub user_table_sql
{
	return q{
-- a user's own table, exposed as an entity: its foreign key to customers
-- becomes the relation "customer"
CREATE TABLE public.contracts (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	customer_id bigint NOT NULL,
	title text NOT NULL,
	signed_on date,
	amount numeric(14,2) NOT NULL DEFAULT 0,
	PRIMARY KEY (company_id, id),
	FOREIGN KEY (company_id, customer_id) REFERENCES moment.customers (company_id, id)
);
SELECT moment.register_entity('contracts', 'public.contracts');
};
}

# A user's own grants on the extension's objects and on the user's table, for
# a role that is no company role (a reporting tool reading tables directly):
# pg_dump must keep them, so they must not become initial privileges.
sub user_grants_sql
{
	return q{
GRANT USAGE ON SCHEMA moment TO reporting;
GRANT SELECT ON moment.customers, moment.time_records, public.contracts TO reporting;
GRANT EXECUTE ON FUNCTION moment.camel_case(text) TO reporting;
};
}

# Everything a 0.1.0 user could have: two companies, rows of every entity
# (through create and batch, as a superuser and as a granted role), a user
# table registered with a relation, users' parts and metadata (new ones, and
# define_part / define_metadata over built-in ones, which 0.1.0 changed in
# place), a built-in entity's date field changed in moment.entities (what
# 0.1.0's README said to do), grants writable and read-only to login roles
# and to a group role, a grant of a role dropped since, and time records whose
# project_membership_id holds free numbers (0.1.0 had no memberships table);
# and a user's own grants to a role that is no company role.
sub fill_0_1_0
{
	my ($node, $db) = @_;
	$node->safe_psql($db, q{
SET client_min_messages = warning;
-- roles are the cluster's: another database may have made them
DO $$
DECLARE
	role_sql text;
BEGIN
	FOREACH role_sql IN ARRAY ARRAY['clerk LOGIN', 'auditor LOGIN', 'team NOLOGIN', 'teammate LOGIN IN ROLE team',
									'reporting NOLOGIN', 'ghost NOLOGIN'] LOOP
		IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = split_part(role_sql, ' ', 1)) THEN
			EXECUTE 'CREATE ROLE ' || role_sql;
		END IF;
	END LOOP;
END
$$;
INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), ('othercorp', 'Other Corp');
} . user_table_sql() . user_grants_sql() . q{
SELECT moment.define_part('contracts', 'summary', ARRAY['title', 'customer.name']);
SELECT moment.define_metadata('contracts', 'totals', 'totalAmount', 'coalesce(sum(t.amount), 0)');
-- a new part and a new metadata key on built-in entities
SELECT moment.define_part('offers', 'overview', ARRAY['offerNumber', 'name', 'customer.name']);
SELECT moment.define_metadata('timeRecords', 'summary', 'approvedMinutes',
	'coalesce(sum(t.minutes) FILTER (WHERE t.approved), 0)', 2);
-- a built-in part and a built-in metadata key changed
SELECT moment.define_part('customers', 'contact', ARRAY['email', 'organizationNumber', 'customerNumber']);
SELECT moment.define_metadata('offers', 'sums', 'totalSum', 'coalesce(sum(t.total_sum * t.exchange_rate), 0)');
-- a built-in entity's date field, changed as 0.1.0's README showed
UPDATE moment.entities SET date_field = 'endDate' WHERE name = 'projects';

SELECT moment.grant_company('cloudware', 'clerk');
SELECT moment.grant_company('cloudware', 'auditor', false);
SELECT moment.grant_company('othercorp', 'auditor', false);
SELECT moment.grant_company('othercorp', 'team');
-- 0.1.0 kept the grant row of a role dropped later
SELECT moment.grant_company('cloudware', 'ghost');
DROP OWNED BY ghost;
DROP ROLE ghost;

SET moment.company = 'cloudware';
SELECT moment.create('userAccounts', '{"name": "Kari Nordmann", "email": "kari@example.com"}');
SELECT moment.create('userAccounts', '{"name": "Ola Nordmann", "active": false}');
SELECT moment.create('customers', jsonb_build_object('name', 'Fjord Consulting ' || n, 'customerNumber', 'C' || n,
	'email', 'c' || n || '@example.com', 'organizationNumber', '91111111' || n))
  FROM generate_series(1, 4) n;
SELECT moment.create('projects', jsonb_build_object('name', 'Website ' || n, 'projectNumber', 'P' || n,
	'customerId', (SELECT min(id) FROM moment.customers WHERE company_id = 1),
	'startDate', '2024-0' || n || '-01', 'endDate', '2024-0' || (n + 3) || '-15'))
  FROM generate_series(1, 3) n;
SELECT moment.create('offers', jsonb_build_object('name', 'Offer ' || n, 'offerNumber', 'O' || n,
	'currencyCode', CASE WHEN n = 1 THEN 'EUR' ELSE 'NOK' END, 'exchangeRate', CASE WHEN n = 1 THEN 11.5 ELSE 1 END,
	'customerId', (SELECT max(id) FROM moment.customers WHERE company_id = 1), 'totalSum', n * 1000,
	'issueDate', '2024-02-0' || n))
  FROM generate_series(1, 3) n;
-- even records name a membership number, as 0.1.0 allowed
SELECT moment.create('timeRecords', jsonb_build_object('projectId', (SELECT min(id) FROM moment.projects WHERE company_id = 1),
	'userAccountId', (SELECT min(id) FROM moment.user_accounts WHERE company_id = 1), 'timeRecordDate', '2024-03-0' || n,
	'minutes', n * 30, 'approved', n > 4, 'description', 'Work ' || n,
	'projectMembershipId', CASE WHEN n % 2 = 0 THEN 100 + n END))
  FROM generate_series(1, 6) n;
SELECT moment.batch('customers', jsonb_build_object(
	'create', jsonb_build_array('{"name": "Batch customer 1"}'::jsonb, '{"name": "Batch customer 2"}'::jsonb),
	'update', jsonb_build_object((SELECT min(id) FROM moment.customers WHERE company_id = 1)::text,
								 '{"customerState": "potential"}'::jsonb)));
SELECT moment.create('contracts', jsonb_build_object('title', 'Framework agreement ' || n,
	'customerId', (SELECT min(id) FROM moment.customers WHERE company_id = 1), 'signedOn', '2024-05-0' || n,
	'amount', n * 100))
  FROM generate_series(1, 3) n;

SET moment.company = 'othercorp';
SELECT moment.create('userAccounts', '{"name": "Other user"}');
SELECT moment.create('customers', '{"name": "Other customer", "customerNumber": "X1"}');
SELECT moment.create('projects', jsonb_build_object('name', 'Other project',
	'customerId', (SELECT min(id) FROM moment.customers WHERE company_id = 2)));
SELECT moment.create('timeRecords', jsonb_build_object('projectId', (SELECT min(id) FROM moment.projects WHERE company_id = 2),
	'userAccountId', (SELECT min(id) FROM moment.user_accounts WHERE company_id = 2), 'timeRecordDate', '2024-03-01',
	'minutes', 480, 'projectMembershipId', 7));
});

	# a row written by a granted role
	$node->safe_psql($db, q{
SET moment.company = 'cloudware';
SELECT moment.create('customers', '{"name": "Created by clerk"}');
}, connstr => $node->connstr($db) . ' user=clerk');
	return;
}

# { table => [columns] } for the tables of schema moment and the user's table
sub table_columns
{
	my ($node, $db) = @_;
	my %columns;
	foreach my $line (split /\n/, $node->safe_psql($db, q{
SET search_path = pg_catalog;
SELECT c.oid::regclass, string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
  FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
 WHERE c.relkind = 'r' AND (c.relnamespace = 'moment'::regnamespace OR c.oid = to_regclass('public.contracts'))
 GROUP BY 1 ORDER BY 1::text}))
	{
		my ($table, $list) = split /\|/, $line, 2;
		$columns{$table} = $list;
	}
	return \%columns;
}

sub digests
{
	my ($node, $db, $columns) = @_;
	$columns //= table_columns($node, $db);
	my @parts;
	foreach my $table (sort keys %$columns)
	{
		# users' registry rows only (built-in ones are compared with a fresh install);
		# grants of roles that still exist
		my $where = '';
		$where = 'WHERE NOT builtin' if $table =~ /^moment\.(entities|parts|metadata)$/;
		$where = 'WHERE role::oid IN (SELECT oid FROM pg_roles)' if $table eq 'moment.company_grants';
		push @parts,
		  "SELECT '$table', count(*) || ' ' || coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')
			 FROM (SELECT $columns->{$table} FROM $table $where) r";
	}
	my %digest;
	my $sequences = $node->safe_psql($db, q{
SET search_path = pg_catalog;
SELECT string_agg(format('SELECT %L, last_value || '' '' || is_called FROM %s', c.oid::regclass, c.oid::regclass),
				  ' UNION ALL ')
  FROM pg_class c
 WHERE c.relkind = 'S' AND (c.relnamespace = 'moment'::regnamespace OR c.relname = 'contracts_id_seq')});
	push @parts, $sequences if $sequences ne '';
	foreach my $line (split /\n/, $node->safe_psql($db, join("\nUNION ALL\n", @parts)))
	{
		my ($name, $value) = split /\|/, $line, 2;
		$digest{$name} = $value;
	}
	return \%digest;
}

# After DROP EXTENSION moment nothing of it is left: no schema moment or
# moment_internal, no event trigger, no function of its library, no initial
# privileges, nothing depending on the extension.
sub check_dropped
{
	my ($node, $db, $label) = @_;
	$node->safe_psql($db, 'DROP EXTENSION moment');
	is( $node->safe_psql($db, q{
SELECT concat_ws(', ',
	(SELECT 'schemas ' || string_agg(nspname, ' ') FROM pg_namespace WHERE nspname IN ('moment', 'moment_internal')),
	(SELECT 'event triggers ' || string_agg(evtname, ' ') FROM pg_event_trigger WHERE evtname LIKE 'moment%'),
	(SELECT 'functions ' || string_agg(oid::regprocedure::text, ' ') FROM pg_proc WHERE probin LIKE '%moment%'),
	(SELECT 'initial privileges of ' || string_agg(pg_describe_object(classoid, objoid, objsubid), ' ')
	   FROM pg_init_privs WHERE privtype = 'e'),
	(SELECT 'extension ' || string_agg(extname, ' ') FROM pg_extension WHERE extname = 'moment'))}),
		'',
		"$label: DROP EXTENSION moment removes schemas moment and moment_internal and everything in them");
	return;
}

# The pg_regress files of test/sql against an existing database, as
# scripts/test runs them against a fresh one; registry runs last, since it
# ends by dropping and re-creating the extension.
sub run_regress
{
	my ($node, $db, $label) = @_;
	my $top = $ENV{TESTDIR} // '.';
	my $pg_regress = $ENV{PG_REGRESS} // 'pg_regress';
	my $dir = "$PostgreSQL::Test::Utils::tmp_check/regress_$db";
	# pg_regress looks for INPUTDIR/sql/NAME.sql and INPUTDIR/expected/NAME.out
	make_path("$dir/input", "$dir/output");
	symlink("$top/test/sql", "$dir/input/sql") or die "symlink: $!" unless -e "$dir/input/sql";
	symlink("$top/expected", "$dir/input/expected") or die "symlink: $!" unless -e "$dir/input/expected";
	my @tests = sort map { basename($_, '.sql') } glob("$top/test/sql/*.sql");
	@tests = ((grep { $_ ne 'registry' } @tests), (grep { $_ eq 'registry' } @tests));
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(
		[ $pg_regress, '--use-existing', "--dbname=$db", '--host=' . $node->host, '--port=' . $node->port,
		  '--bindir=', "--inputdir=$dir/input", "--outputdir=$dir/output", @tests ],
		'>', \$stdout, '2>', \$stderr,
		# the files read test/fixtures/seed.sql relative to the top of the tree
		init => sub { chdir $top or die "chdir $top: $!" });
	ok($ok, "$label: the pg_regress files (" . join(' ', @tests) . ') give the expected output')
	  or diag("$stdout\n$stderr\n" . (-e "$dir/output/regression.diffs"
		  ? substr(slurp_file("$dir/output/regression.diffs"), 0, 20000) : ''));
	return $ok;
}

1;
