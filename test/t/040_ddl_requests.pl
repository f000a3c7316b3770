
# Requests and DDL on other entities run side by side without deadlocks
# (issue 10, item 12).
#
# 0.1.0 rebuilt the whole registry on any relcache message of a watched
# table, and a rebuild took AccessShareLock on every registered table:
# requests deadlocked with DROP TABLE of an unrelated entity (about 70
# deadlocks in 40 s), and waited behind locks on tables they did not touch.
# Now the registry is invalidated per entity and a request locks only the
# tables it reads.
#
# pgbench, for a few seconds: three clients run transactions of several
# requests (get, list, rows, api, a typed listing) on the built-in entities,
# as a reporting tool or an application with autocommit off does; one client
# creates a table, registers it (a foreign key to moment.companies only, like
# any user table), writes to it and drops it, over and over.  No client may
# fail, and no deadlock may be logged.  (A DROP TABLE of a table referencing
# one the requests read does conflict with them, in PostgreSQL itself: it
# locks the referenced table too.  That is not tested here.)

use strict;
use warnings;

use IPC::Run;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $seconds = 5;

my $node = PostgreSQL::Test::Cluster->new('ddl_requests');
$node->init;
$node->append_conf('postgresql.conf', "deadlock_timeout = 100ms\nlog_lock_waits = on\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION moment;
INSERT INTO moment.companies (code, name) VALUES ('acme', 'Acme AS');
SET moment.company = 'acme';
SELECT moment.create('userAccounts', '{"name": "Ada"}');
SELECT moment.create('customers', '{"name": "Customer"}');
SELECT moment.create('projects', '{"name": "Project", "customerId": 1}');
SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-01-01", "minutes": 5}');
});

my $dir = PostgreSQL::Test::Utils::tempdir;
my $requests = "$dir/requests.sql";
my $ddl = "$dir/ddl.sql";
PostgreSQL::Test::Utils::append_to_file($requests, q{
BEGIN;
SELECT set_config('moment.company', 'acme', true);
SELECT moment.get('timeRecords', 1, 'minutes+project.name+project.customer.name+userAccount.name');
SELECT moment.list('projects', 'name+customer.name+metadata.count', '{"name": "Project"}');
SELECT count(*) FROM moment.rows('timeRecords', 'minutes+project.name');
SELECT status FROM moment.api('GET', '/api/1.0/companies/acme/timeRecords?fromDate=2024-01-01&toDate=2024-12-31');
SELECT count(*) FROM moment.list_time_records();
COMMIT;
});
PostgreSQL::Test::Utils::append_to_file($ddl, q{
DROP TABLE IF EXISTS public.ephemera;
CREATE TABLE public.ephemera (company_id bigint NOT NULL REFERENCES moment.companies (id), id bigserial, name text, PRIMARY KEY (company_id, id));
SELECT moment.register_entity('ephemera', 'public.ephemera');
SELECT moment.create('ephemera', '{"name": "e"}') FROM set_config('moment.company', 'acme', false);
DROP TABLE public.ephemera;
});

my $connstr = $node->connstr('postgres');
my ($requests_out, $requests_err, $ddl_out, $ddl_err) = ('', '', '', '');
my $common = [ '-n', '-T', $seconds, '--max-tries=1', '--failures-detailed' ];
my $requests_run = IPC::Run::start([ 'pgbench', @$common, '-c', '3', '-f', $requests, $connstr ],
	'>', \$requests_out, '2>', \$requests_err);
my $ddl_run = IPC::Run::start([ 'pgbench', @$common, '-c', '1', '-f', $ddl, $connstr ],
	'>', \$ddl_out, '2>', \$ddl_err);
my $requests_ok = $requests_run->finish;
my $ddl_ok = $ddl_run->finish;

sub figure
{
	my ($output, $what) = @_;
	return $output =~ /^\Q$what\E: (\d+)/m ? $1 : 'none';
}

note("requests: " . figure($requests_out, 'number of transactions actually processed') . " rounds, "
	  . figure($requests_out, 'number of deadlock failures') . " deadlocks; ddl: "
	  . figure($ddl_out, 'number of transactions actually processed') . " rounds, "
	  . figure($ddl_out, 'number of deadlock failures') . " deadlocks");
ok($requests_ok, 'the request clients ran to the end') or diag($requests_err);
ok($ddl_ok, 'the DDL client ran to the end') or diag($ddl_err);
cmp_ok(figure($requests_out, 'number of transactions actually processed'), '>', 0, 'requests were served');
cmp_ok(figure($ddl_out, 'number of transactions actually processed'), '>', 0, 'tables were registered and dropped');
is(figure($requests_out, 'number of failed transactions'), 0, 'no request failed');
is(figure($ddl_out, 'number of failed transactions'), 0, 'no DDL round failed');

my $log = slurp_file($node->logfile);
my $deadlocks = () = $log =~ /deadlock detected/g;
is($deadlocks, 0, 'no deadlock in the server log');
unlike($log, qr/was terminated by signal|TRAP:|PANIC:/, 'no backend crashed');

$node->stop;
done_testing();
