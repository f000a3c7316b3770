
# Two databases with moment in one cluster: a grant or revoke in one never
# takes a role's access away in the other.
#
# The group roles moment_read and moment_write are the cluster's, the grants
# each database's.  A revoke of a role's last grant in one database used to
# take the role out of the group roles, and with them the table privileges it
# needed in the other database, where its grants still stood (found by the
# benchmarks: a get failed with 42501 in one database after a revoke in
# another).  Each database now marks the roles holding grants there
# (SELECT on a column of moment.grantees, a privilege: pg_shdepend shows it
# from every database); a revoke takes a role out of the group roles only
# when it holds no privilege in another database, and a grant row counts only
# with its database's mark, whatever the memberships.  The mark also keeps DROP ROLE
# from dropping a role with grants until they are revoked.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('two_databases');
$node->init;
$node->start;

$node->safe_psql('postgres', q{
CREATE ROLE web_user LOGIN;
CREATE ROLE web_reader LOGIN;
CREATE DATABASE one;
CREATE DATABASE two;
});
for my $db ('one', 'two')
{
	$node->safe_psql($db, qq{
CREATE EXTENSION moment;
INSERT INTO moment.companies (code, name) VALUES ('acme', 'Acme $db');
SET moment.company = 'acme';
SELECT moment.create('customers', '{"name": "Customer of $db"}');
SELECT moment.grant_company('acme', 'web_user');
SELECT moment.grant_company('acme', 'web_reader', false);
});
}

# what a role gets from a database: its get through the API, its direct read
# and a write, each as ok / the SQLSTATE
sub as_role
{
	my ($db, $role) = @_;
	my ($stdout, $stderr);
	my @answers;
	for my $sql (
		q{SELECT moment.get('customers', 1, 'name') ->> 'name'},
		q{SELECT count(*) FROM moment.customers},
		q{SELECT moment.create('customers', '{"name": "new"}') ->> 'name'})
	{
		$node->psql($db, "SET ROLE $role; SET moment.company = 'acme'; $sql",
			stdout => \$stdout, stderr => \$stderr, extra_params => [ '-v', 'VERBOSITY=sqlstate' ]);
		my ($state) = $stderr =~ /ERROR:\s+(\w{5})/;
		push @answers, $state // "ok $stdout";
	}
	# the rows written by the probe do not stay
	$node->safe_psql($db, q{DELETE FROM moment.customers WHERE name = 'new'});
	return join(', ', @answers);
}

is(as_role('one', 'web_user'), 'ok Customer of one, ok 1, ok new', 'web_user reads and writes in database one');
is(as_role('one', 'web_reader'), 'ok Customer of one, ok 1, 42501', 'web_reader reads in database one');

$node->safe_psql('two', q{
SELECT moment.revoke_company('acme', 'web_user');
SELECT moment.revoke_company('acme', 'web_reader');
});

is(as_role('one', 'web_user'), 'ok Customer of one, ok 1, ok new',
	'after the revokes in database two, web_user still reads and writes in database one');
is(as_role('one', 'web_reader'), 'ok Customer of one, ok 1, 42501',
	'after the revokes in database two, web_reader still reads in database one');
is(as_role('two', 'web_user'), '42501, 42501, 42501',
	'in database two web_user is refused: through the API and reading the table directly');
is(as_role('two', 'web_reader'), '42501, 42501, 42501', 'so is web_reader');
{
	my ($stdout, $stderr);
	$node->psql('two', q{SET ROLE web_user; SET moment.company = 'acme'; SELECT count(*) FROM moment.customers},
		stdout => \$stdout, stderr => \$stderr);
	like($stderr, qr/acme/, 'by the grant check (the role still has the table privileges): ' . ($stderr =~ s/\n.*//sr));
}

# a writable grant in two does not make a read-only grantee writable in one
$node->safe_psql('two', q{SELECT moment.grant_company('acme', 'web_reader')});
is(as_role('two', 'web_reader'), 'ok Customer of two, ok 1, ok new', 'web_reader may write in database two');
is(as_role('one', 'web_reader'), 'ok Customer of one, ok 1, 42501', 'and still only read in database one');
$node->safe_psql('two', q{SELECT moment.revoke_company('acme', 'web_reader')});
is(as_role('one', 'web_reader'), 'ok Customer of one, ok 1, 42501', 'the revoke in two leaves its read grant in one');

# the mark: held where the role has grants, and nowhere else
is($node->safe_psql('one', q{SELECT has_any_column_privilege('web_user', 'moment.grantees', 'SELECT')}), 't',
	'database one marks web_user');
is($node->safe_psql('two', q{SELECT has_any_column_privilege('web_user', 'moment.grantees', 'SELECT')}), 'f',
	'database two, where it has no grant left, does not');

# a role with grants is not dropped behind moment's back
{
	my ($ret, $stdout, $stderr) = $node->psql('postgres', 'DROP ROLE web_user');
	like($stderr, qr/1 object in database one/, 'DROP ROLE of a role with grants in a database is refused');
	($ret, $stdout, $stderr) = $node->psql('one', 'DROP ROLE web_user');
	like($stderr, qr/privileges for column m\d{3} of table moment\.grantees/, 'naming the mark, in that database');
}

# with its last grant in the last database revoked, a role leaves the group roles
$node->safe_psql('one', q{
SELECT moment.revoke_company('acme', 'web_user');
SELECT moment.revoke_company('acme', 'web_reader');
});
is($node->safe_psql('postgres', q{
SELECT count(*) FROM pg_auth_members m
 WHERE m.member IN ('web_user'::regrole, 'web_reader'::regrole)
   AND m.roleid IN ('moment_read'::regrole, 'moment_write'::regrole)}),
	'0', 'the last revokes, in the last database with grants, take both roles out of the group roles');
is(as_role('one', 'web_user'), '42501, 42501, 42501', 'and web_user has no table privileges left');
$node->safe_psql('postgres', 'DROP ROLE web_user, web_reader');
pass('and then the roles can be dropped');

$node->stop;
done_testing();
