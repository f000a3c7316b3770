
# Killing a backend in the middle of a write leaves nothing of the write.
#
# A BEFORE INSERT OR UPDATE trigger (ours, not the extension's) sleeps on
# rows whose description is 'slow', so a batch can be caught half-way: some
# of its creates and updates done, one asleep.  The backend is then
#   (a) terminated (pg_terminate_backend),
#   (b) killed with SIGKILL, which makes the postmaster restart every backend
#       and run crash recovery,
#   (c) terminated during a single moment.create,
#   (d) cancelled (pg_cancel_backend) during moment.batch and moment.api,
#       asleep in an update or in a multi-row create (a cancel must not be
#       replayed row by row): 57014 reaches the client, the session lives
#       on and its next requests work.
# Each time, none of the write is visible afterwards and the rows that
# existed before are exactly as they were.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('kill_batch');
$node->init;
$node->append_conf('postgresql.conf', "restart_after_crash = on\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION moment;
INSERT INTO moment.companies (code, name) VALUES ('acme', 'Acme AS');
SET moment.company = 'acme';
SELECT moment.create('userAccounts', '{"name": "Ada"}');
SELECT moment.create('customers', '{"name": "Customer"}');
SELECT moment.create('projects', '{"name": "Project", "customerId": 1}');
SELECT moment.batch('timeRecords', jsonb_build_object('create',
	(SELECT jsonb_agg(jsonb_build_object('projectId', 1, 'userAccountId', 1,
		'timeRecordDate', '2024-01-01', 'minutes', i, 'description', 'before ' || i))
	   FROM generate_series(1, 5) AS i)));

CREATE FUNCTION public.slow_on_request() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
	IF NEW.description = 'slow' THEN
		PERFORM pg_sleep(300);
	END IF;
	RETURN NEW;
END
$$;
CREATE TRIGGER slow_on_request BEFORE INSERT OR UPDATE ON moment.time_records
	FOR EACH ROW EXECUTE FUNCTION public.slow_on_request();
});

# Everything about the rows that exist now, to compare with afterwards.
my $state_sql = q{
SELECT count(*) || ' ' || md5(string_agg(t::text, ',' ORDER BY id)) FROM moment.time_records t;
};
my $state_before = $node->safe_psql('postgres', $state_sql);
like($state_before, qr/^5 [0-9a-f]{32}$/, 'five time records to start with');

sub sequence_value
{
	return $node->safe_psql('postgres',
		'SELECT last_value FROM moment.time_records_id_seq');
}

# A batch of 3000 creates and updates of the five old rows, sleeping where
# the description is 'slow': at create[$slow_create] or at update[$slow_update].
sub batch_sql
{
	my (%args) = @_;
	my $slow_create = $args{slow_create} // -1;
	my $slow_update = $args{slow_update} // -1;
	return qq{
SELECT moment.batch('timeRecords', jsonb_build_object(
	'create', (SELECT jsonb_agg(jsonb_build_object('projectId', 1, 'userAccountId', 1,
			'timeRecordDate', '2024-02-01', 'minutes', i % 600,
			'description', CASE WHEN i = $slow_create THEN 'slow' ELSE 'batch' END) ORDER BY i)
		FROM generate_series(0, 2999) AS i),
	'update', (SELECT jsonb_object_agg(id::text, jsonb_build_object(
			'description', CASE WHEN id = $slow_update THEN 'slow' ELSE 'changed' END))
		FROM generate_series(1, 5) AS id)));
};
}

# Starts SQL in a background session and waits until its backend sleeps in
# our trigger.  Returns the session and its backend's pid.
sub start_sleeping
{
	my ($sql, $what) = @_;
	my $session = $node->background_psql('postgres', on_error_stop => 0);
	my $pid = $session->query_safe('SELECT pg_backend_pid()');
	$session->query_safe("SET moment.company = 'acme'");
	$session->query_until(qr/started/, "\\echo started\n$sql;\n");
	ok( $node->poll_query_until('postgres',
			"SELECT wait_event = 'PgSleep' FROM pg_stat_activity WHERE pid = $pid"),
		"$what: backend $pid is asleep in the trigger");
	return ($session, $pid);
}

# The session's psql is gone with its backend; reap it.
sub reap
{
	my ($session) = @_;
	$session->{run}->kill_kill;
	eval { $session->{run}->finish; };
	return;
}

sub check_nothing_left
{
	my ($what) = @_;
	is($node->safe_psql('postgres', $state_sql),
		$state_before, "$what: the old rows are intact and there are no others");
	is( $node->safe_psql(
			'postgres',
			"SELECT count(*) FROM moment.time_records WHERE description IN ('batch', 'slow', 'changed', 'single')"
		),
		'0',
		"$what: nothing of the write is visible");
	return;
}

# (a) pg_terminate_backend half-way through the updates: every create and
# two updates are done when update[3] goes to sleep.
{
	my $seq_before = sequence_value();
	my ($session, $pid) = start_sleeping(batch_sql(slow_update => 3), 'terminate');
	cmp_ok(sequence_value(), '>=', $seq_before + 3000,
		'terminate: the 3000 creates were made before the kill');
	is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
		't', 'terminate: pg_terminate_backend');
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
		'terminate: the backend is gone');
	reap($session);
	check_nothing_left('terminate');
}

# (b) SIGKILL half-way through the creates (create[2200] sleeps, two chunks
# of 1000 are in): the postmaster restarts everything, crash recovery runs.
{
	my $seq_before = sequence_value();
	my ($session, $pid) = start_sleeping(batch_sql(slow_create => 2200), 'SIGKILL');
	cmp_ok(sequence_value(), '>=', $seq_before + 2000,
		'SIGKILL: 2000 creates were made before the kill');
	is(kill('KILL', $pid), 1, 'SIGKILL: signal sent');
	reap($session);
	ok($node->poll_query_until('postgres', 'SELECT 1', '1'),
		'SIGKILL: the server accepts connections again');
	ok( $node->wait_for_log(
			qr/all server processes terminated; reinitializing/),
		'SIGKILL: the postmaster restarted the backends');
	check_nothing_left('SIGKILL');
	# the extension works again after the restart
	is( $node->safe_psql(
			'postgres',
			"SET moment.company = 'acme'; SELECT moment.list('timeRecords', 'minutes', '{}', 'id')->'content'"
		),
		'[{"id": 1, "minutes": 1}, {"id": 2, "minutes": 2}, {"id": 3, "minutes": 3}, {"id": 4, "minutes": 4}, {"id": 5, "minutes": 5}]',
		'SIGKILL: moment.list works after crash recovery');
}

# (c) a single moment.create terminated while its INSERT sleeps.
{
	my ($session, $pid) = start_sleeping(
		q{SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-03-01", "minutes": 30, "description": "slow"}')},
		'single create');
	is($node->safe_psql('postgres', "SELECT pg_terminate_backend($pid)"),
		't', 'single create: pg_terminate_backend');
	ok( $node->poll_query_until('postgres',
			"SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $pid"),
		'single create: the backend is gone');
	reap($session);
	check_nothing_left('single create');
}

# (d) a cancel stops the batch with 57014, through moment.batch and through
# moment.api alike (the router must not turn it into a status), and the same
# session goes on working: its caches survived the aborted subtransactions.
# A cancel during a multi-row create must not be replayed row by row (which
# would sleep again): statement_timeout bounds the damage if it were.
foreach my $case (['batch', 'update'], ['batch', 'create'], ['api', 'update'], ['api', 'create'])
{
	my ($how, $where) = @$case;
	my $via = "$how during $where";
	my $sql = $where eq 'update' ? batch_sql(slow_update => 4) : batch_sql(slow_create => 1500);
	if ($how eq 'api')
	{
		$sql =~ s/^\s*SELECT moment\.batch\('timeRecords', /SELECT * FROM moment.api('POST', '\/timeRecords\/batch', /;
	}
	$sql = "SET statement_timeout = '20s';\n$sql";
	my ($session, $pid) = start_sleeping($sql, "cancel $via");
	is($node->safe_psql('postgres', "SELECT pg_cancel_backend($pid)"),
		't', "cancel $via: pg_cancel_backend");
	my ($out, $failed) = $session->query(q{SELECT 'next statement'});
	like($session->{stderr}, qr/canceling statement due to user request/,
		"cancel $via: the statement was cancelled");
	$session->{stderr} = '';
	$session->query_safe('RESET statement_timeout');
	is($out, 'next statement', "cancel $via: the session lives on, and no status row came back");
	check_nothing_left("cancel $via");
	# the same backend: a create, an update, a failing batch, a read, a delete
	my $result = $session->query_safe(
		q{SELECT moment.batch('timeRecords', '{"create": [{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-01-01", "minutes": 6, "description": "after"}]}', 'minutes')->'created'});
	like($result, qr/^\[\{"id": \d+, "minutes": 6\}\]$/, "cancel $via: the next batch works");
	my ($new_id) = $result =~ /"id": (\d+)/;
	is($session->query_safe(
		qq{SELECT moment.batch('timeRecords', '{"update": {"$new_id": {"minutes": 7}}}', 'minutes')->'updated'}),
		qq{[{"id": $new_id, "minutes": 7}]}, "cancel $via: an update batch works");
	($out) = $session->query(
		q{SELECT moment.batch('timeRecords', '{"update": {"1": {"minutes": 5000}}}')});
	like($session->{stderr}, qr/update\[1\]: new row for relation "time_records" violates check constraint/,
		"cancel $via: a failing batch fails as usual");
	$session->{stderr} = '';
	is($session->query_safe(q{SELECT moment.get('timeRecords', 1, 'minutes')}),
		'{"id": 1, "minutes": 1}', "cancel $via: reads work");
	is($session->query_safe(qq{SELECT moment.delete('timeRecords', $new_id)}),
		$new_id, "cancel $via: deleting the extra row");
	$session->quit;
	is($node->safe_psql('postgres', $state_sql), $state_before,
		"cancel $via: back to the old rows");
}

# No backend died of anything but our own kill.
my $log = slurp_file($node->logfile);
my @crashes = grep { !/\(PID \d+\) was terminated by signal 9: Killed/ }
  ($log =~ /^.*server process .* (?:was terminated by signal|exited with exit code [^01]).*$/mg);
is(scalar(@crashes), 0, 'no other backend crashed') or diag(join("\n", @crashes));
unlike($log, qr/TRAP:|PANIC:/, 'no assertion failure or panic in the log');

$node->stop;
done_testing();
