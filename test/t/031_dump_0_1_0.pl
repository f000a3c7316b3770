
# A dump of a 0.1.0 database restores where 0.2.0 is installed, and ALTER
# EXTENSION moment UPDATE then finishes its upgrade.
#
# pg_dump writes no extension version, so the restore's CREATE EXTENSION
# moment WITH SCHEMA moment runs the 0.2.0 script; it finds schema moment
# already there (0.1.0's schema was no member of the extension, so the dump
# creates it), takes that for the restore of a 0.1.0 dump and leaves the
# extension at 0.1.0-restored: without the membership foreign key (0.1.0's
# time records hold free numbers there, which a restore's COPY would check)
# and with moment.current_company_id (0.1.0's policies on users' tables call
# it).  ALTER EXTENSION moment UPDATE then does to the restored rows what the
# in-place upgrade does.  Checked for a custom-format dump through pg_restore
# and a plain one through psql: no error, every row and registry row there,
# the catalog that of a fresh install, grants and the API working.

use strict;
use warnings;

use FindBin;
use lib $FindBin::RealBin;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

use MomentCatalog;
use MomentReleases;

my $node = PostgreSQL::Test::Cluster->new('dump_0_1_0');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE source');
$node->safe_psql('source', "CREATE EXTENSION moment VERSION '0.1.0'");
fill_0_1_0($node, 'source');
my $columns_0_1_0 = table_columns($node, 'source');
my $before = digests($node, 'source', $columns_0_1_0);

# a fresh install with the same user table and grants, to compare with
$node->safe_psql('postgres', 'CREATE DATABASE fresh');
$node->safe_psql('fresh', 'CREATE EXTENSION moment; ' . user_table_sql() . user_grants_sql());
my $fresh = MomentCatalog::snapshot($node, 'fresh');

my $dump_dir = $PostgreSQL::Test::Utils::tmp_check;
$node->command_ok([ 'pg_dump', '-Fc', '-f', "$dump_dir/source.dump", '-d', $node->connstr('source') ],
	'pg_dump -Fc of a 0.1.0 database');
$node->command_ok([ 'pg_dump', '-f', "$dump_dir/source.sql", '-d', $node->connstr('source') ],
	'pg_dump of a 0.1.0 database as plain SQL');

# restore_run(label, command...): runs a restore, returns its stderr
sub restore_run
{
	my ($label, @cmd) = @_;
	my ($stdout, $stderr) = ('', '');
	my $ok = IPC::Run::run(\@cmd, '>', \$stdout, '2>', \$stderr);
	ok($ok, "$label succeeds") or diag($stderr);
	return $stderr;
}

# check_restored(db, label): the restored database, upgraded, holds what the
# 0.1.0 one held and equals a fresh install
sub check_restored
{
	my ($db, $label, $stderr) = @_;
	# (pg_restore shows a server's warnings only with --verbose)
	like($stderr, qr/extension moment is at version 0\.1\.0-restored/,
		"$label: the restore says the extension waits for ALTER EXTENSION moment UPDATE")
	  if $label eq 'psql';
	unlike($stderr, qr/ERROR/, "$label: no error");
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'moment'"),
		'0.1.0-restored', "$label: restored at version 0.1.0-restored");
	$node->safe_psql($db, 'ALTER EXTENSION moment UPDATE');
	is($node->safe_psql($db, "SELECT extversion FROM pg_extension WHERE extname = 'moment'"),
		'0.2.0', "$label: ALTER EXTENSION moment UPDATE goes to 0.2.0");

	my $differences = MomentCatalog::compare(MomentCatalog::snapshot($node, $db), $fresh,
		"$label and update", 'fresh install');
	my @found = map { @{ $differences->{$_} } } sort keys %$differences;
	ok(!@found, "$label: the catalog is that of a fresh install") or diag(join("\n", @found));

	my $after = digests($node, $db, $columns_0_1_0);
	foreach my $table (sort keys %$before)
	{
		is($after->{$table}, $before->{$table}, "$label: $table: every row restored");
	}

	# what 0.1.0 never dumped: its changes of built-in rows (define_part on
	# customers.contact, define_metadata on offers.sums, the date field of
	# projects); the built-in rows are 0.2.0's
	is( $node->safe_psql($db, q{
SELECT (SELECT count(*) FROM moment.parts WHERE entity = 'customers' AND name = 'contact' AND NOT builtin)
	 + (SELECT count(*) FROM moment.entity_settings)}),
		'0', "$label: changes to built-in rows are not in a 0.1.0 dump");

	my $as = sub { $node->connstr($db) . " user=$_[0]" };
	is( $node->safe_psql($db, q{
SET moment.company = 'cloudware';
SELECT moment.list('contracts', 'summary+metadata.totals', order_by => 'title') #>> '{content,0,customerName}'
	   || ' ' || (moment.list('contracts', 'metadata.totals') #>> '{metadata,totalAmount}');
SELECT string_agg(coalesce(r ->> 'projectMembershipId', '-'), ' ' ORDER BY (r ->> 'id')::bigint) FROM moment.rows('timeRecords') r;
SELECT moment.update('timeRecords', 2, '{"minutes": 45}', 'minutes') ->> 'minutes';
SELECT moment.create('contracts', jsonb_build_object('title', 'After restore', 'customerId', 1)) ->> 'title';
}, connstr => $as->('clerk')),
		"Fjord Consulting 1 600.00\n- 102 - 104 - 106\n45\nAfter restore",
		"$label: a writable role uses the API on the restored rows");
	my ($ret, $stdout, $stderr2) = $node->psql($db, q{
SET moment.company = 'cloudware';
SELECT moment.update('timeRecords', 2, '{"projectMembershipId": 103}');
});
	like($stderr2, qr/23503|project_membership|foreign key/i, "$label: new membership numbers are checked");
	is( $node->safe_psql($db, q{
SET moment.company = 'othercorp';
SELECT moment.list('customers') #>> '{content,0,name}';
}, connstr => $as->('auditor')),
		'Other customer', "$label: a read-only role reads");
	($ret, $stdout, $stderr2) = $node->psql($db, q{
SET moment.company = 'othercorp';
SELECT moment.create('customers', '{"name": "Not allowed"}');
}, connstr => $as->('auditor'));
	isnt($ret, 0, "$label: ... and cannot write");
	is( $node->safe_psql($db, q{
SET moment.company = 'othercorp';
SELECT moment.create('customers', '{"name": "By a member of team"}') ->> 'name';
}, connstr => $as->('teammate')),
		'By a member of team', "$label: a member of a granted group role writes");
	is( $node->safe_psql($db, q{
SELECT has_schema_privilege('reporting', 'moment', 'USAGE'), has_table_privilege('reporting', 'moment.customers', 'SELECT'),
	   has_table_privilege('reporting', 'public.contracts', 'SELECT')}),
		't|t|t', "$label: the user's own grants to a role of theirs are kept");
	return;
}

# --- pg_restore of the custom-format dump -------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE restored');
my $stderr = restore_run('pg_restore --exit-on-error of the 0.1.0 dump',
	'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), "$dump_dir/source.dump");
check_restored('restored', 'pg_restore', $stderr);

# --- psql of the plain dump ------------------------------------------------------------

$node->safe_psql('postgres', 'CREATE DATABASE replayed');
$stderr = restore_run('psql -v ON_ERROR_STOP=1 of the plain 0.1.0 dump',
	'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', "$dump_dir/source.sql", '-d', $node->connstr('replayed'));
check_restored('replayed', 'psql', $stderr);

# --- and the restored database dumped again ---------------------------------------------

# A known limit: a 0.2.0 database cannot be restored by a plain pg_restore
# while its time records hold 0.1.0's membership numbers (kept NOT VALID by
# the upgrade, checked again by the restore's COPY); a restore with
# session_replication_role = replica (no foreign key checks) works, and the
# README says so.  Time records on or before a time lock restore as they
# were: the time lock judges new work, and a restore's COPY is history.
sub roundtrip
{
	my ($label, $todo, $target) = @_;
	IPC::Run::run([ 'pg_dump', '-Fc', '-f', "$dump_dir/$target.dump", '-d', $node->connstr('restored') ])
	  or die "pg_dump of the restored database failed";
	$node->safe_psql('postgres', "CREATE DATABASE $target; CREATE DATABASE ${target}_replica");
	my ($stdout, $err) = ('', '');
	my $ok = IPC::Run::run([ 'pg_restore', '-d', $node->connstr($target), "$dump_dir/$target.dump" ],
		'>', \$stdout, '2>', \$err);
	{
		local $TODO = $todo;
		ok($ok && $err eq '', "the restored database dumped again restores (with $label)") or diag($err);
	}
	{
		local $ENV{PGOPTIONS} = '-c session_replication_role=replica';
		$ok = IPC::Run::run([ 'pg_restore', '--exit-on-error', '-d', $node->connstr("${target}_replica"),
							  "$dump_dir/$target.dump" ], '>', \$stdout, '2>', \$err);
	}
	ok($ok && $err eq '', "... with session_replication_role = replica it does (with $label)") or diag($err);
	is_deeply(digests($node, "${target}_replica"), digests($node, 'restored'), "... with every row (with $label)");
	return;
}
roundtrip('0.1.0 membership numbers', 'a restore COPY checks the NOT VALID membership foreign key against them',
	'roundtrip_numbers');
$node->safe_psql('restored', q{
UPDATE moment.time_records SET project_membership_id = NULL;
UPDATE moment.user_accounts SET time_lock_date = '2024-03-03' WHERE id = 1;
});
# a restore's COPY loads locked time records as they were (triggers.c: loading_by_copy)
roundtrip('a time lock', undef, 'roundtrip_lock');

$node->stop;
done_testing();
