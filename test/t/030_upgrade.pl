
# ALTER EXTENSION moment UPDATE from 0.1.0 gives what a fresh CREATE
# EXTENSION moment gives, and keeps what users had.
#
# Database "contrib_regression" (the name pg_regress uses) is created at
# 0.1.0 and filled through the 0.1.0 API (MomentReleases::fill_0_1_0), then
# upgraded; database "fresh" gets 0.2.0 directly, with the same user table
# registered.  Then:
#   - the whole catalog of the extension's objects is compared
#     (MomentCatalog): a difference fails the test and names the object;
#   - every data row and every user registry row is still there (digests
#     over the 0.1.0 columns), and users' changes to built-in parts, metadata
#     and date fields are kept, as their own rows and settings;
#   - the grants still work: the roles use the API as before;
#   - the pg_regress files of test/sql pass on the upgraded database;
#   - DROP EXTENSION moment removes everything, after an upgrade and fresh.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use MomentCatalog;
use MomentReleases;

my $node = PostgreSQL::Test::Cluster->new('upgrade');
$node->init;
$node->start;

my $upgraded = 'contrib_regression';
$node->safe_psql('postgres', "CREATE DATABASE $upgraded");
$node->safe_psql('postgres', 'CREATE DATABASE fresh');

# --- 0.1.0, filled, then upgraded ---------------------------------------------

$node->safe_psql($upgraded, "CREATE EXTENSION moment VERSION '0.1.0'");
fill_0_1_0($node, $upgraded);

my $columns_0_1_0 = table_columns($node, $upgraded);
my $before = digests($node, $upgraded, $columns_0_1_0);
like($before->{'moment.time_records'}, qr/^7 /, '0.1.0 holds 7 time records');
like($before->{'public.contracts'}, qr/^3 /, '0.1.0 holds 3 rows of the user table');
is( $node->safe_psql($upgraded, "SELECT count(*) FROM moment.company_grants WHERE role::oid NOT IN (SELECT oid FROM pg_roles)"),
	'1', '0.1.0 kept the grant of a dropped role');

$node->safe_psql($upgraded, 'ALTER EXTENSION moment UPDATE');
is($node->safe_psql($upgraded, "SELECT extversion FROM pg_extension WHERE extname = 'moment'"),
	'0.2.0', 'ALTER EXTENSION moment UPDATE goes to 0.2.0');
is($node->safe_psql($upgraded, 'SELECT moment.version()'), '0.2.0', 'moment.version() is the library version');

# --- a fresh 0.2.0 with the same user table ------------------------------------

$node->safe_psql('fresh', 'CREATE EXTENSION moment; ' . user_table_sql() . user_grants_sql());

# --- the catalogs are the same ------------------------------------------------------

my $differences = MomentCatalog::compare(
	MomentCatalog::snapshot($node, $upgraded),
	MomentCatalog::snapshot($node, 'fresh'),
	'upgrade', 'fresh install');
my %known = map { $_ => 1 } MomentCatalog::sections();
foreach my $section (MomentCatalog::sections(), grep { !$known{$_} } sort keys %$differences)
{
	my $found = $differences->{$section} // [];
	ok(!@$found, "catalog, $section: the upgrade gives what a fresh install gives")
	  or diag(join("\n", @$found));
}

# --- users' rows are kept --------------------------------------------------------------

my $after = digests($node, $upgraded, $columns_0_1_0);
# the upgrade turns users' changes of built-in rows into users' own rows
my %converted = (
	'moment.parts' => q{NOT (entity = 'customers' AND name = 'contact')},
	'moment.metadata' => q{NOT (entity = 'offers' AND set_name = 'sums' AND key = 'totalSum')});
foreach my $table (sort keys %converted)
{
	$after->{$table} = $node->safe_psql($upgraded,
		"SELECT count(*) || ' ' || coalesce(md5(string_agg(r::text, '|' ORDER BY r::text)), '')
		   FROM (SELECT $columns_0_1_0->{$table} FROM $table WHERE NOT builtin AND $converted{$table}) r");
}
foreach my $table (sort keys %$before)
{
	is($after->{$table}, $before->{$table}, "$table: every row kept by the upgrade");
}

is( $node->safe_psql($upgraded,
		"SELECT fields FROM moment.parts WHERE entity = 'customers' AND name = 'contact' AND NOT builtin"),
	'{email,organizationNumber,customerNumber}',
	"the user's change of built-in part customers.contact is kept as the user's own part");
is( $node->safe_psql($upgraded,
		"SELECT expression || ' ' || position FROM moment.metadata WHERE entity = 'offers' AND set_name = 'sums' AND key = 'totalSum' AND NOT builtin"),
	'coalesce(sum(t.total_sum * t.exchange_rate), 0) 0',
	"the user's change of built-in metadata offers.sums.totalSum is kept as the user's own");
is($node->safe_psql($upgraded, q{SELECT string_agg(entity || ' ' || coalesce(date_field, 'NULL'), ', ') FROM moment.entity_settings}),
	'projects endDate', "the user's date field of projects is kept as an entity setting");
is( $node->safe_psql($upgraded, "SELECT count(*) FROM moment.company_grants WHERE role::oid NOT IN (SELECT oid FROM pg_roles)"),
	'0', "the dropped role's grant is gone");

# --- the API serves the kept rows and the users' changes -----------------------------

is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT moment.get('customers', (SELECT min(id) FROM moment.customers WHERE company_id = 1), 'contact');
}),
	'{"id": 1, "email": "c1@example.com", "customerNumber": "C1", "organizationNumber": "911111111"}',
	"include 'contact' gives the user's version of the part");
is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT moment.list('offers', 'metadata.sums+metadata.overviewPage') -> 'metadata';
}),
	'{"count": 3, "totalSum": 16500.000, "totalSumInCompanyCurrency": 16500.000}',
	"metadata.sums uses the user's expression, overviewPage the built-in one");
is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT moment.list('timeRecords', 'metadata.summary') -> 'metadata';
}),
	'{"totalMinutes": 630, "approvedMinutes": 330, "billableMinutes": 630}',
	"the user's key added to a built-in metadata set is kept");
is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT status || ' ' || (SELECT string_agg(p ->> 'name', ', ') FROM jsonb_array_elements(response -> 'content') p)
  FROM moment.api('GET', '/projects?fromDate=2024-06-01&toDate=2024-06-30');
}),
	'200 Website 3',
	"fromDate/toDate filter projects on the user's date field endDate");
is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT moment.list('contracts', 'summary+metadata.totals', order_by => 'title') #>> '{content,0,customerName}'
	   || ' ' || (moment.list('contracts', 'metadata.totals') #>> '{metadata,totalAmount}');
}),
	'Fjord Consulting 1 600.00',
	"the user's entity keeps its relation, part and metadata");
is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT string_agg(r.id::text || ':' || coalesce((r.row ->> 'projectMembershipId'), '-'), ' ' ORDER BY r.id)
  FROM (SELECT (x ->> 'id')::bigint AS id, x AS row FROM moment.rows('timeRecords') x) r;
}),
	'1:- 2:102 3:- 4:104 5:- 6:106',
	'time records keep the membership numbers of 0.1.0');
is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT moment.update('timeRecords', 2, '{"minutes": 45}', 'minutes+projectMembershipId');
}),
	'{"id": 2, "minutes": 45, "projectMembershipId": 102}',
	'a time record with an old membership number can still be changed');
my ($ret, $stdout, $stderr) = $node->psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT moment.update('timeRecords', 2, '{"projectMembershipId": 103}');
});
like($stderr, qr/23503|project_membership|foreign key/i, 'a new membership number is checked against project_memberships');

# --- grants still work -------------------------------------------------------------------

my $as = sub { $node->connstr($upgraded) . " user=$_[0]" };
is( $node->safe_psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT jsonb_array_length(moment.list('customers') -> 'content');
SELECT moment.create('contracts', jsonb_build_object('title', 'By clerk after upgrade', 'customerId',
	(moment.list('customers', 'id', order_by => 'id', size => 1) #>> '{content,0,id}')::bigint)) ->> 'title';
SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-04-01", "minutes": 15}') ->> 'minutes';
}, connstr => $as->('clerk')),
	"7\nBy clerk after upgrade\n15",
	'a writable role reads and writes its company after the upgrade');
($ret, $stdout, $stderr) = $node->psql($upgraded, q{
SET moment.company = 'othercorp';
SELECT moment.list('customers');
}, connstr => $as->('clerk'));
like($stderr, qr/42501|not granted|permission denied/i, '... and still cannot use another company');
is( $node->safe_psql($upgraded, q{
SET moment.company = 'othercorp';
SELECT moment.list('customers') #>> '{content,0,name}';
SET moment.company = 'cloudware';
SELECT moment.list('contracts', 'metadata.count') #>> '{metadata,count}';
}, connstr => $as->('auditor')),
	"Other customer\n4",
	'a read-only role reads both its companies after the upgrade');
($ret, $stdout, $stderr) = $node->psql($upgraded, q{
SET moment.company = 'cloudware';
SELECT moment.create('customers', '{"name": "Not allowed"}');
}, connstr => $as->('auditor'));
isnt($ret, 0, '... and still cannot write');
is( $node->safe_psql($upgraded, q{
SET moment.company = 'othercorp';
SELECT moment.create('customers', '{"name": "By a member of team"}') ->> 'name';
}, connstr => $as->('teammate')),
	'By a member of team',
	'a member of a granted group role writes its company after the upgrade');
($ret, $stdout, $stderr) = $node->psql($upgraded, 'SELECT count(*) FROM moment.customers', connstr => $as->('clerk'));
ok($ret != 0 || $stdout eq '0', 'direct SQL without a company in force sees no rows (row-level security)');

# --- the regression files on the upgraded database ---------------------------------------

# back to what a fresh database holds: the user's table, parts, metadata,
# settings and roles go (their rows were checked above)
$node->safe_psql($upgraded, q{
SET client_min_messages = warning;
DROP TABLE public.contracts;
DELETE FROM moment.parts WHERE NOT builtin;
DELETE FROM moment.metadata WHERE NOT builtin;
DELETE FROM moment.entity_settings;
SELECT moment.revoke_company(c.code, r.rolname) FROM moment.company_grants g
  JOIN moment.companies c ON c.id = g.company_id JOIN pg_roles r ON r.oid = g.role::oid;
DROP OWNED BY clerk, auditor, team, teammate, reporting;
DROP ROLE clerk, auditor, teammate, team;
});
run_regress($node, $upgraded, 'upgraded database');

# --- DROP EXTENSION ---------------------------------------------------------------------------

$node->safe_psql('fresh', 'DROP TABLE public.contracts');
check_dropped($node, 'fresh', 'fresh install');

# the regression files ended with a fresh extension: upgrade another database
$node->safe_psql('postgres', 'CREATE DATABASE dropped');
$node->safe_psql('dropped', "CREATE EXTENSION moment VERSION '0.1.0'");
fill_0_1_0($node, 'dropped');
$node->safe_psql('dropped', 'ALTER EXTENSION moment UPDATE; DROP TABLE public.contracts');
check_dropped($node, 'dropped', 'upgraded from 0.1.0');

$node->stop;
done_testing();
