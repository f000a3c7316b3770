
# Ten thousand tenants on one server: 10 000 companies, 1 000 web roles
# (one company each, and 9 000 companies held by 100 roles of 90 each), all
# provisioned with moment.grant_company one call at a time; every role then
# sees exactly its companies -- through row-level security on
# moment.companies, and through the API (a get on each of its companies
# works, a company it was not granted is 42501).  Revoking one grant takes
# it away and nothing else.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time);

my $node = PostgreSQL::Test::Cluster->new('many_tenants');
$node->init;
$node->append_conf('postgresql.conf', "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION moment;
INSERT INTO moment.companies (code, name)
SELECT pg_catalog.format('t%s', n), pg_catalog.format('Tenant %s', n) FROM pg_catalog.generate_series(1, 10000) n;
-- one customer in every company, so that a get has something to find
SET moment.company = 't1';
INSERT INTO moment.customers (company_id, name) SELECT c.id, 'Customer of ' || c.code FROM moment.companies c;
DO $$ BEGIN
	FOR n IN 1..1000 LOOP
		EXECUTE pg_catalog.format('CREATE ROLE web_%s', n);
	END LOOP;
END $$;
});

# Role web_N (N <= 900) holds company tN; roles web_901 .. web_1000 hold 90
# companies each: t(1000 + (N - 901) * 90 + 1) .. t(1000 + (N - 900) * 90).
my @grants;
foreach my $n (1 .. 900)
{
	push @grants, "SELECT moment.grant_company('t$n', 'web_$n');";
}
foreach my $n (901 .. 1000)
{
	my $first = 1000 + ($n - 901) * 90 + 1;
	foreach my $c ($first .. $first + 89)
	{
		push @grants, "SELECT moment.grant_company('t$c', 'web_$n', " . ($c % 2 ? 'true' : 'false') . ");";
	}
}
is(scalar(@grants), 9900, '9 900 grants to make');

# one call (one transaction) each, as an operator's provisioning script would
my $script = $PostgreSQL::Test::Utils::tmp_check . '/grants.sql';
open(my $fh, '>', $script) or die $!;
print $fh join("\n", @grants), "\n";
close($fh);
my $started = time();
$node->command_ok([ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-d', $node->connstr('postgres'), '-f', $script ],
	'9 900 grant_company calls, one transaction each');
my $seconds = time() - $started;
note(sprintf('provisioning: %.1f s for 9 900 grants (%.2f ms each)', $seconds, $seconds * 1000 / 9900));
cmp_ok($seconds, '<', 120, 'provisioning stays far from quadratic');

is($node->safe_psql('postgres', 'SELECT count(*) FROM moment.company_grants'), '9900', 'every grant recorded');
is($node->safe_psql('postgres', q{SELECT count(*) FROM pg_catalog.pg_auth_members m
	WHERE m.roleid IN ('moment_read'::regrole, 'moment_write'::regrole) AND m.member <> 'moment_write'::regrole}),
	'1000', 'each role is in one group role (no per-table ACL entries)');
is($node->safe_psql('postgres', q{SELECT pg_catalog.array_length(relacl, 1) < 10 FROM pg_catalog.pg_class
	WHERE oid = 'moment.customers'::regclass}), 't', 'the ACL of a table does not grow with the roles');

# Every role sees exactly its companies.  One session, SET ROLE per role, so
# that the check itself stays quick; a role that sees anything else prints
# its number.
sub expected_codes
{
	my ($n) = @_;
	return "t$n" if $n <= 900;
	my $first = 1000 + ($n - 901) * 90 + 1;
	return join(',', map { "t$_" } ($first .. $first + 89));
}
my $check = '';
foreach my $n (1 .. 1000)
{
	my $expected = expected_codes($n);
	$check .= "SET ROLE web_$n;\n"
	  . "SELECT $n WHERE (SELECT pg_catalog.string_agg(code, ',' ORDER BY id) FROM moment.companies) "
	  . "IS DISTINCT FROM '$expected';\n"
	  . "RESET ROLE;\n";
}
my $check_file = $PostgreSQL::Test::Utils::tmp_check . '/check.sql';
open($fh, '>', $check_file) or die $!;
print $fh $check;
close($fh);
my ($stdout, $stderr) = ('', '');
$node->psql('postgres', undef, stdout => \$stdout, stderr => \$stderr,
	extra_params => [ '-v', 'ON_ERROR_STOP=1', '-f', $check_file ]);
is($stdout, '', 'every one of the 1 000 roles sees exactly its companies (roles seeing others listed)');
is($stderr, '', 'no errors while checking');

# Through the API: as role web_950, a get in each of its 90 companies
# finds that company's customer; a company of another role is 42501.
my $api = "SET ROLE web_950;\n";
my @expected_names;
foreach my $c (1000 + 49 * 90 + 1 .. 1000 + 50 * 90)
{
	$api .= "SET moment.company = 't$c';\nSELECT moment.list('customers', 'name') -> 'content' -> 0 ->> 'name';\n";
	push @expected_names, "Customer of t$c";
}
is($node->safe_psql('postgres', $api), join("\n", @expected_names),
	'web_950 reads each of its 90 companies through the API');
my ($ret, $out, $err) = $node->psql('postgres',
	q{SET ROLE web_950; SET moment.company = 't1'; SELECT moment.list('customers')});
like($err, qr/company "t1" is not granted to role "web_950"/, 'another role\'s company is refused');

# revoking one grant takes it away, and nothing else
$node->safe_psql('postgres', q{SELECT moment.revoke_company('t5411', 'web_950')});
is($node->safe_psql('postgres', q{SET ROLE web_950; SELECT count(*) FROM moment.companies}), '89',
	'after one revoke the role sees 89 companies');
is($node->safe_psql('postgres', q{SET ROLE web_949; SELECT count(*) FROM moment.companies}), '90',
	'another role keeps its 90');

$node->stop;
done_testing();
