
# Webhooks delivered by the background worker to a receiver on 127.0.0.1
# (test/webhook_receiver.py), on a node with shared_preload_libraries = moment:
#
#   - the worker waits for the extension, and starts delivering after
#     CREATE EXTENSION without a restart;
#   - bodies and headers as the contract says, for create, update and delete
#     of each built-in entity through the REST router, a batch and direct
#     SQL; the bytes received are the stored body; signatures verify;
#   - nothing for a rolled-back transaction or savepoint;
#   - retries: fail-first-N ends done after N+1 requests, always-fail and
#     refused connections end failed after moment.webhook_max_attempts, a
#     hanging receiver is timed out, a redirect is a failed attempt and is
#     not followed;
#   - per webhook one at a time in id order, a retry holding back the later
#     deliveries; a hanging receiver does not delay another webhook;
#   - the worker re-checks the allow-list; drop_webhook cancels what is
#     pending; redeliver sends again under the same id; a terminated worker
#     is back within 5 s; company B's roles see nothing of A's.
# (test/sql/webhooks.sql covers the queue itself in detail; t/051 the
# faults of a burst.)

use strict;
use warnings;

use Digest::SHA qw(hmac_sha256_hex);
use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use WebhookReceiver;

my $receiver = WebhookReceiver->start;
my $node = PostgreSQL::Test::Cluster->new('webhooks');
$node->init;
$node->append_conf('postgresql.conf', moment_webhook_conf() . "moment.webhook_database = 'hooks'\n");
$node->start;

sub sql { return $node->safe_psql('hooks', $_[0]); }

sub worker_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'moment webhook worker' AND datname = 'hooks'");
}

sub reload_with
{
	my (%settings) = @_;
	sql(join '', map { "ALTER SYSTEM SET moment.$_ = '$settings{$_}';\n" } sort keys %settings);
	sql('SELECT pg_reload_conf()');
	# the worker reads its configuration file on its next wake-up
	usleep(300_000);
	return;
}

# Waits until no delivery of the webhooks named is pending; returns whether that happened.
sub settled
{
	my ($where, $seconds) = @_;
	return $node->poll_query_until('hooks',
		"SELECT count(*) = 0 FROM moment.webhook_deliveries WHERE state = 'pending' AND ($where)",
		't') if !defined $seconds;
	return wait_until(sub { sql("SELECT count(*) FROM moment.webhook_deliveries WHERE state = 'pending' AND ($where)") eq '0' },
		$seconds);
}

sub webhook
{
	my ($entity, $path, %options) = @_;
	my $arguments = "'$entity', '" . $receiver->url($path) . "'";
	$arguments .= ", events => '$options{events}'" if $options{events};
	$arguments .= ", secret => '$options{secret}'" if defined $options{secret};
	return sql("SET moment.company = 'acme'; SELECT moment.create_webhook($arguments)");
}

# ---------------------------------------------------------------------------
# The worker waits for its database and the extension, then delivers
# without a restart
# ---------------------------------------------------------------------------
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'moment webhook worker' AND datname IS NULL"),
	'the worker waits for moment.webhook_database, connected to no database');
$node->safe_psql('postgres', 'CREATE DATABASE hooks');
my $created_at = time;
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'moment webhook worker' AND datname = 'hooks'"),
	'once the database exists, the worker connects to it');
cmp_ok(time - $created_at, '<', 8, 'within 5 s of polling and 1 s of restart');
my $first_worker = worker_pid();
sql(q{
CREATE EXTENSION moment;
INSERT INTO moment.companies (code, name) VALUES ('acme', 'Acme AS'), ('rival', 'Rival AB');
CREATE ROLE alice LOGIN;
CREATE ROLE bob LOGIN;
SELECT moment.grant_company('acme', 'alice');
SELECT moment.grant_company('rival', 'bob');
});
my %webhook_of;
my %secret_of;
for my $entity (qw(userAccounts customers projects offers timeRecords projectExtensions projectMemberships tasks))
{
	$secret_of{$entity} = "secret of $entity \x{e6}\x{f8}";
	$webhook_of{$entity} = webhook($entity, "ok/$entity", secret => "secret of $entity æø");
}
my $unsigned = webhook('customers', 'ok/unsigned');
my $started = time;
sql(q{
SET moment.company = 'acme';
SELECT moment.api('POST', '/userAccounts', '{"name": "Ada"}');
SELECT moment.api('POST', '/customers', '{"name": "Fjord", "customerNumber": "10001"}');
SELECT moment.api('POST', '/projects', '{"name": "Web", "customerId": 1, "projectNumber": "P1"}');
SELECT moment.api('POST', '/offers', '{"name": "Offer", "customerId": 1, "offerNumber": "O1", "currencyCode": "NOK"}');
SELECT moment.api('POST', '/projectExtensions', '{"name": "Design", "projectId": 1, "projectExtensionNumber": "A1"}');
SELECT moment.api('POST', '/tasks', '{"name": "Sketch", "projectExtensionId": 1, "taskNumber": "T1"}');
SELECT moment.api('POST', '/projectMemberships', '{"projectId": 1, "userAccountId": 1}');
SELECT moment.api('POST', '/timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-03-01", "minutes": 60, "taskId": 1}');
SELECT moment.api('PATCH', '/offers/1', '{"offerState": "readyToSend"}');
SELECT moment.api('PUT', '/timeRecords/1', '{"minutes": 90}');
SELECT moment.api('PATCH', '/projectMemberships/1', '{"hourlyRate": 900}');
SELECT moment.api('PATCH', '/tasks/1', '{"taskState": "closed"}');
SELECT moment.api('PATCH', '/projectExtensions/1', '{"name": "Design 2"}');
SELECT moment.api('PATCH', '/userAccounts/1', '{"email": "ada@example.com"}');
SELECT moment.api('DELETE', '/timeRecords/1');
SELECT moment.api('POST', '/customers/batch', '{"create": [{"name": "B1", "customerNumber": "20001"}, {"name": "B2"}], "update": {"1": {"email": "f@example.com"}}}');
SELECT moment.api('POST', '/projects/batch', '{"create": [{"name": "Doomed", "customerId": 2}], "update": {"1": {"projectNumber": "P1b"}}}');
SELECT moment.batch('projects', '{"delete": [2]}');
SELECT moment.api('DELETE', '/tasks/1');
SELECT moment.api('DELETE', '/projectMemberships/1');
SELECT moment.api('DELETE', '/projectExtensions/1');
SELECT moment.api('DELETE', '/offers/1');
});
sql(q{
SET moment.company = 'acme';
INSERT INTO moment.customers (company_id, name, customer_number) VALUES (1, 'Direct 1', 'D1'), (1, 'Direct 2', 'D2');
UPDATE moment.customers SET email = 'd@example.com' WHERE name LIKE 'Direct%';
DELETE FROM moment.customers WHERE name = 'Direct 2';
INSERT INTO moment.user_accounts (company_id, name) VALUES (1, 'Bea');
DELETE FROM moment.user_accounts WHERE name = 'Bea';
});
ok(settled('true', 30), 'every delivery is sent within 30 s of CREATE EXTENSION')
  or diag(sql("SELECT id, state, attempts, last_error FROM moment.webhook_deliveries WHERE state <> 'done'"));
is(worker_pid(), $first_worker, 'the same worker process delivers: no restart was needed');

my $deliveries = decode_json(sql(q{
SELECT coalesce(jsonb_agg(jsonb_build_object('id', d.id, 'webhook', d.webhook_id, 'event', d.event,
	'body', d.body::text, 'state', d.state, 'attempts', d.attempts, 'status', d.last_status,
	'delivered', d.delivered_at IS NOT NULL) ORDER BY d.id), '[]')
  FROM moment.webhook_deliveries d}));
is(scalar(@$deliveries), 41, '41 changes to subscribed entities (32, customers counting twice): 41 deliveries');
is(scalar(grep { $_->{state} eq 'done' && $_->{attempts} == 1 && $_->{status} == 200 && $_->{delivered} } @$deliveries),
	41, 'every delivery done at the first attempt with 200, delivered_at set');

my %entity_of_webhook = map { $webhook_of{$_} => $_ } keys %webhook_of;
my @requests = @{ $receiver->requests };
my %requests_of;
push @{ $requests_of{ $_->{headers}{'X-Moment-Delivery'} } }, $_ for @requests;
my ($headers_ok, $bodies_ok, $signatures_ok, $paths_ok, $once) = (0, 0, 0, 0, 0);
for my $delivery (@$deliveries)
{
	my $got = $requests_of{ $delivery->{id} } // [];
	$once++ if @$got == 1;
	my $request = $got->[0] or next;
	my $entity = $entity_of_webhook{ $delivery->{webhook} };
	my $headers = $request->{headers};
	$headers_ok++
	  if $headers->{'Content-Type'} eq 'application/json'
	  && $headers->{'X-Moment-Event'} eq $delivery->{event}
	  && $headers->{'X-Moment-Delivery'} eq $delivery->{id};
	$bodies_ok++ if $request->{body} eq $delivery->{body};
	$paths_ok++ if $request->{path} eq ($entity ? "/ok/$entity" : '/ok/unsigned');
	if ($entity)
	{
		my $key = $secret_of{$entity};
		utf8::encode($key);
		my $bytes = $request->{body};
		utf8::encode($bytes);
		$signatures_ok++
		  if ($headers->{'X-Moment-Signature'} // '') eq 'sha256=' . hmac_sha256_hex($bytes, $key);
	}
	else
	{
		$signatures_ok++ if !exists $headers->{'X-Moment-Signature'};
	}
}
is($once, 41, 'the receiver got each delivery once');
is($headers_ok, 41, 'Content-Type application/json, X-Moment-Event, X-Moment-Delivery = the delivery id');
is($bodies_ok, 41, 'the bytes received are the stored body');
is($paths_ok, 41, "each delivery went to its webhook's URL");
is($signatures_ok, 41,
	'X-Moment-Signature = sha256=<hex HMAC-SHA256 of the body, keyed with the UTF-8 secret>; none without a secret');

# a few bodies exactly, as JSON
sub body_of
{
	my ($path, $n) = @_;
	my @of = grep { $_->{path} eq "/$path" } @requests;
	return decode_json($of[$n]->{body});
}
is_deeply(body_of('ok/customers', 0),
	{ event => 'CREATE_NEW', customer => { id => 1, customerNumber => '10001' } }, 'customer created');
is_deeply(body_of('ok/offers', 1),
	{ event => 'UPDATE', offer => { id => 1, offerNumber => 'O1', customer => { id => 1, customerNumber => '10001' }, project => undef } },
	'offer updated: the example of the contract, a missing relation null');
is_deeply(body_of('ok/timeRecords', 2),
	{
		event => 'DELETE',
		timeRecord => {
			id => 1,
			project => { id => 1, projectNumber => 'P1' },
			userAccount => { id => 1 },
			projectMembership => { id => 1 },
			projectExtension => { id => 1, projectExtensionNumber => 'A1' },
			task => { id => 1, taskNumber => 'T1' }
		}
	},
	'time record deleted: built from the old row, every relation with its number if it has one');
is_deeply([ map { decode_json($_->{body})->{event} . ' ' . decode_json($_->{body})->{customer}{id} } grep { $_->{path} eq '/ok/customers' } @requests ],
	[ 'CREATE_NEW 1', 'CREATE_NEW 2', 'CREATE_NEW 3', 'UPDATE 1', 'CREATE_NEW 4', 'CREATE_NEW 5', 'UPDATE 4', 'UPDATE 5', 'DELETE 5' ],
	'customers: the batch in its order (creates, then updates), direct SQL one per row, in commit order');
cmp_ok(time - $started, '<', 30, 'all of it within 30 s');

# ---------------------------------------------------------------------------
# Rolled back: nothing is sent
# ---------------------------------------------------------------------------
$receiver->reset;
sql(q{
SET moment.company = 'acme';
BEGIN;
SELECT moment.create('customers', '{"name": "rolled back", "customerNumber": "RB1"}');
ROLLBACK;
BEGIN;
SELECT moment.create('customers', '{"name": "kept", "customerNumber": "KEPT"}');
SAVEPOINT s;
SELECT moment.create('customers', '{"name": "undone", "customerNumber": "RB2"}');
ROLLBACK TO SAVEPOINT s;
COMMIT;
});
my $failed_batch = $node->psql('hooks',
	q{SET moment.company = 'acme'; SELECT moment.batch('customers', '{"create": [{"name": "x", "customerNumber": "RB3"}, {"name": null}]}')});
isnt($failed_batch, 0, 'a failing batch fails');
ok(settled('true', 20), 'the committed change is delivered');
my @bodies = map { $_->{body} } @{ $receiver->requests };
is(scalar(grep { /KEPT/ } @bodies), 2, 'the change kept by the savepoint reaches both customer webhooks');
is(scalar(grep { /RB\d/ } @bodies), 0, 'nothing of a rolled-back transaction, savepoint or batch is sent');

# ---------------------------------------------------------------------------
# Retries, timeouts, redirects, refused connections
# ---------------------------------------------------------------------------
reload_with(webhook_timeout => '1s');
$receiver->reset;
my $fail2 = webhook('userAccounts', 'fail/2/retry');
my $always = webhook('userAccounts', 'fail/always/retry');
my $hang = webhook('userAccounts', 'hang/retry');
my $redirect = webhook('userAccounts', 'status/302/retry');
my $not_found = webhook('userAccounts', 'status/404/retry');
my $refuse = webhook('userAccounts', 'refuse/retry');
# a port nobody listens on: take one and close it
my $closed_port = PostgreSQL::Test::Cluster::get_free_port();
my $closed = sql("SET moment.company = 'acme'; SELECT moment.create_webhook('userAccounts', 'http://127.0.0.1:$closed_port/x', '{CREATE_NEW}')");
sql(q{SET moment.company = 'acme'; SELECT moment.create('userAccounts', '{"name": "Retry"}')});
my $retried = "webhook_id IN ($fail2, $always, $hang, $redirect, $not_found, $refuse, $closed)";
ok(settled($retried, 40), 'every retried delivery ends within 40 s');
my %outcome = map { my @f = split /\|/; ($f[0] => { state => $f[1], attempts => $f[2], status => $f[3], error => $f[4] }) }
  split /\n/, sql("SELECT webhook_id, state, attempts, last_status, last_error FROM moment.webhook_deliveries WHERE $retried");

is_deeply([ @{ $outcome{$fail2} }{qw(state attempts status)} ], [ 'done', 3, 200 ], 'fail twice, then 200: done after 3 attempts');
is(scalar(@{ $receiver->requests_for('fail/2/retry') }), 3, 'the receiver got it 3 times');
my @times = map { $_->{time} } @{ $receiver->requests_for('fail/2/retry') };
cmp_ok($times[1] - $times[0], '>=', 0.09, 'the second attempt came after moment.webhook_retry_delay (100ms)');
cmp_ok($times[2] - $times[1], '>=', 0.19, 'the third after twice that');
my @ids = map { $_->{headers}{'X-Moment-Delivery'} } @{ $receiver->requests_for('fail/2/retry') };
is(scalar(keys %{ { map { $_ => 1 } @ids } }), 1, 'X-Moment-Delivery is the same on every attempt');

is_deeply([ @{ $outcome{$always} }{qw(state attempts status error)} ], [ 'failed', 4, 500, 'HTTP status 500' ],
	'always 500: failed after moment.webhook_max_attempts (4) attempts');
is(scalar(@{ $receiver->requests_for('fail/always/retry') }), 4, 'the receiver got it 4 times');
@times = map { $_->{time} } @{ $receiver->requests_for('fail/always/retry') };
cmp_ok($times[3] - $times[2], '>=', 0.39, 'delays double: the fourth attempt came 400ms (the cap) after the third');

is_deeply([ @{ $outcome{$hang} }{qw(state attempts)} ], [ 'failed', 4 ], 'a hanging receiver: failed after 4 attempts');
like($outcome{$hang}{error}, qr/Timeout was reached/, 'each attempt timed out (moment.webhook_timeout)');
is($outcome{$hang}{status}, '', 'no HTTP status without an answer');
is(scalar(@{ $receiver->requests_for('hang/retry') }), 4, 'the hanging receiver got the request each time');

is_deeply([ @{ $outcome{$redirect} }{qw(state attempts status)} ], [ 'failed', 4, 302 ], 'a 302 is a failed attempt');
like($outcome{$redirect}{error}, qr/redirects are not followed/, 'and says so');
is(scalar(@{ $receiver->requests_for('ok/redirected') }), 0, 'the redirect was never followed');
is_deeply([ @{ $outcome{$not_found} }{qw(state attempts status)} ], [ 'failed', 4, 404 ], 'a 404 is a failed attempt');
is_deeply([ @{ $outcome{$refuse} }{qw(state attempts)} ], [ 'failed', 4 ], 'a connection closed without an answer: failed');
like($outcome{$refuse}{error}, qr/Empty reply|reset|Recv failure/i, 'with curl saying why');
is_deeply([ @{ $outcome{$closed} }{qw(state attempts)} ], [ 'failed', 4 ], 'a refused connection: failed');
like($outcome{$closed}{error}, qr/Couldn't connect|Connection refused/i, 'with curl saying why');

# ---------------------------------------------------------------------------
# Order per webhook, and webhooks in parallel
# ---------------------------------------------------------------------------
reload_with(webhook_timeout => '3s');
$receiver->reset;
my $ordered = webhook('customers', 'fail/1/ordered', events => '{UPDATE}');
sql(q{
SET moment.company = 'acme';
SELECT moment.update('customers', 1, '{"email": "1@example.com"}');
SELECT moment.update('customers', 1, '{"email": "2@example.com"}');
BEGIN;
SELECT moment.update('customers', 1, '{"email": "3@example.com"}');
SELECT moment.update('customers', 2, '{"email": "4@example.com"}');
COMMIT;
});
ok(settled("webhook_id = $ordered", 30), 'the ordered deliveries end');
my @order = map { $_->{headers}{'X-Moment-Delivery'} } @{ $receiver->requests_for('fail/1/ordered') };
my @expected = map { ($_, $_) } split /\n/, sql("SELECT id FROM moment.webhook_deliveries WHERE webhook_id = $ordered ORDER BY id");
is_deeply(\@order, \@expected,
	'one at a time in id order (commit order, then the order of the changes): each failed once, and its retry held back the next');

$receiver->reset;
my $slow = webhook('projects', 'hang/parallel', events => '{UPDATE}');
my $fast = webhook('projects', 'ok/parallel', events => '{UPDATE}');
sql(q{SET moment.company = 'acme'; SELECT moment.update('projects', 1, '{"name": "Web 1"}')});
ok(wait_until(sub { @{ $receiver->requests_for('hang/parallel') } == 1 }, 10), 'the slow receiver holds a request');
my $t0 = time;
sql(q{
SET moment.company = 'acme';
SELECT moment.update('projects', 1, '{"name": "Web 2"}');
SELECT moment.update('projects', 1, '{"name": "Web 3"}');
SELECT moment.update('projects', 1, '{"name": "Web 4"}');
});
ok(wait_until(sub { @{ $receiver->requests_for('ok/parallel') } == 4 }, 10), 'the other webhook gets its 4 deliveries');
my $elapsed = time - $t0;
cmp_ok($elapsed, '<', 2.5, "while the slow receiver hangs (3 s timeout), in ${\ sprintf('%.2f', $elapsed)} s");
is(scalar(@{ $receiver->requests_for('hang/parallel') }), 1, 'the slow webhook sent nothing more meanwhile');
is(sql("SELECT count(*) FROM moment.webhook_deliveries WHERE webhook_id = $slow AND state = 'pending'"), '4',
	'its deliveries wait behind the hanging one');
sql("SET moment.company = 'acme'; SELECT moment.drop_webhook($slow)");
is(sql("SELECT string_agg(DISTINCT state || ': ' || last_error, ', ') FROM moment.webhook_deliveries WHERE webhook_id = $slow"),
	"failed: cancelled: webhook $slow was dropped", 'drop_webhook cancels every pending delivery, the one in flight too');
is(sql("SELECT count(*) FROM moment.webhook_deliveries WHERE webhook_id = $slow"), '4', 'and keeps them');
usleep(3_500_000);
is(sql("SELECT count(*) FROM moment.webhook_deliveries WHERE webhook_id = $slow AND state = 'failed' AND attempts = 0"), '4',
	'the timed-out attempt in flight does not bring the cancelled delivery back');

# ---------------------------------------------------------------------------
# redeliver; the worker re-checks the allow-list
# ---------------------------------------------------------------------------
$receiver->reset;
my $done = sql("SELECT min(id) FROM moment.webhook_deliveries WHERE webhook_id = $fast");
sql("SET moment.company = 'acme'; SELECT moment.redeliver($done)");
ok(wait_until(sub { @{ $receiver->requests_for('ok/parallel') } == 1 }, 10), 'a redelivered delivery is sent again');
is($receiver->requests_for('ok/parallel')->[0]{headers}{'X-Moment-Delivery'}, $done, 'under its own id');
ok(settled("id = $done", 10), 'and is done again');
is(sql("SELECT state || ' ' || attempts FROM moment.webhook_deliveries WHERE id = $done"), 'done 1', 'after one attempt');

reload_with(webhook_allowed_hosts => 'localhost');
$receiver->reset;
sql(q{SET moment.company = 'acme'; SELECT moment.update('projects', 1, '{"name": "Web 5"}')});
ok(settled("webhook_id = $fast", 20), 'a delivery to a host no longer allowed ends');
is(sql("SELECT state || ' ' || attempts || ' ' || last_error FROM moment.webhook_deliveries WHERE webhook_id = $fast ORDER BY id DESC LIMIT 1"),
	'failed 4 URL refused: host "127.0.0.1" is not in moment.webhook_allowed_hosts',
	'the worker re-checks the allow-list before each attempt');
is($receiver->count, 0, 'and sent nothing');
reload_with(webhook_allowed_hosts => '127.0.0.1');

# ---------------------------------------------------------------------------
# A terminated worker is back within 5 s, and nothing is lost
# ---------------------------------------------------------------------------
$receiver->reset;
my $pid = worker_pid();
sql("SELECT pg_terminate_backend($pid)");
my $terminated_at = time;
sql(q{SET moment.company = 'acme'; SELECT moment.update('projects', 1, '{"name": "Web 6"}')});
ok(wait_until(sub { my $new = worker_pid(); $new ne '' && $new ne $pid }, 5), 'a new worker runs within 5 s');
ok(wait_until(sub { @{ $receiver->requests_for('ok/parallel') } == 1 }, 10), 'the change made meanwhile is delivered');
note(sprintf('worker back and delivering after %.1f s', time - $terminated_at));

# ---------------------------------------------------------------------------
# Tenancy and bad URLs, as company roles see them
# ---------------------------------------------------------------------------
my ($rc, $out, $err) = $node->psql('hooks',
	"SET moment.company = 'rival'; SELECT count(*) FROM moment.webhooks; SELECT count(*) FROM moment.webhook_deliveries;",
	extra_params => [ '-U', 'bob' ]);
is($out, "0\n0", "company B's role sees none of A's webhooks and deliveries");
($rc, $out, $err) = $node->psql('hooks',
	"SET moment.company = 'rival'; SELECT moment.drop_webhook($fast)", extra_params => [ '-U', 'bob' ]);
like($err, qr/webhook $fast does not exist/, "nor drops one (P0002)");
($rc, $out, $err) = $node->psql('hooks',
	"SET moment.company = 'rival'; SELECT moment.redeliver($done)", extra_params => [ '-U', 'bob' ]);
like($err, qr/webhook delivery $done does not exist/, "nor redelivers one (P0002)");
($rc, $out, $err) = $node->psql('hooks',
	"SET moment.company = 'acme'; SELECT count(*) > 0 FROM moment.webhooks", extra_params => [ '-U', 'alice' ]);
is($out, 't', "company A's role reads A's webhooks");
($rc, $out, $err) = $node->psql('hooks',
	"\\set VERBOSITY verbose\nSET moment.company = 'acme'; SELECT moment.create_webhook('customers', 'http://10.0.0.1/x')",
	extra_params => [ '-U', 'alice' ]);
like($err, qr/22023.*host "10\.0\.0\.1" is not in moment\.webhook_allowed_hosts/, 'a host not allowed: 22023');
($rc, $out, $err) = $node->psql('hooks',
	"\\set VERBOSITY verbose\nSET moment.company = 'acme'; SELECT moment.create_webhook('customers', 'http://me:pw\@127.0.0.1/x')",
	extra_params => [ '-U', 'alice' ]);
like($err, qr/22023.*user info/, 'a URL with user info: 22023');

# ---------------------------------------------------------------------------
# pg_dump keeps webhooks and deliveries; a restore checks URLs against the
# allow-list of the restoring session
# ---------------------------------------------------------------------------
my $dumpfile = $PostgreSQL::Test::Utils::tmp_check . '/webhooks.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dumpfile, '-d', $node->connstr('hooks') ], 'pg_dump of the database');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
{
	local $ENV{PGOPTIONS} = '-c moment.webhook_allowed_hosts=';
	my ($stdout, $stderr) = run_command([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dumpfile ]);
	like($stderr, qr/host "127\.0\.0\.1" is not in moment\.webhook_allowed_hosts/,
		'a restore without the allow-list refuses the webhooks');
}
$node->safe_psql('postgres', 'DROP DATABASE restored');
$node->safe_psql('postgres', 'CREATE DATABASE restored');
$node->command_ok([ 'pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dumpfile ],
	'with moment.webhook_allowed_hosts set (postgresql.conf here), pg_restore succeeds');
my $census = q{SELECT (SELECT count(*) FROM moment.webhooks) || ' ' ||
	(SELECT string_agg(state || ':' || n, ',' ORDER BY state) FROM (SELECT state, count(*) AS n FROM moment.webhook_deliveries GROUP BY state) s) || ' ' ||
	(SELECT md5(string_agg(d::text, ',' ORDER BY id)) FROM moment.webhook_deliveries d) || ' ' ||
	(SELECT last_value FROM moment.webhook_deliveries_id_seq)};
is($node->safe_psql('restored', $census), sql($census), 'webhooks, deliveries and their sequence are restored as they were');

$node->stop;
done_testing();
