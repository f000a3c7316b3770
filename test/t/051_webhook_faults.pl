
# At least once, in order, through faults: a burst of 5 000 changes (50
# transactions of 100, creates and updates of customers, through batches and
# direct SQL) for two webhooks, while the webhook worker is killed with
# SIGKILL (the postmaster then restarts every backend and recovers) and the
# server is restarted (fast shutdown).  Afterwards every committed change
# has been delivered to each webhook at least once, the first deliveries of
# each webhook arrived in id order, and the deliveries table says done.

use strict;
use warnings;

use JSON::PP;
use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;
use Time::HiRes qw(time usleep);

use WebhookReceiver;

my $receiver = WebhookReceiver->start;
my $node = PostgreSQL::Test::Cluster->new('webhook_faults');
$node->init;
$node->append_conf('postgresql.conf', moment_webhook_conf() . "restart_after_crash = on\n");
$node->start;

$node->safe_psql('postgres', q{
CREATE EXTENSION moment;
INSERT INTO moment.companies (code, name) VALUES ('acme', 'Acme AS');
});
my @webhooks = map {
	$node->safe_psql('postgres',
		"SET moment.company = 'acme'; SELECT moment.create_webhook('customers', '" . $receiver->url("ok/$_") . "')")
} qw(first second);

sub worker_pid
{
	return $node->safe_psql('postgres',
		"SELECT pid FROM pg_stat_activity WHERE backend_type = 'moment webhook worker' AND datname = 'postgres'");
}
ok($node->poll_query_until('postgres',
		"SELECT count(*) = 1 FROM pg_stat_activity WHERE backend_type = 'moment webhook worker' AND datname = 'postgres'"),
	'the worker runs');

# Transaction $n of the burst: 100 creates by batch, or 100 updates by
# direct SQL of the rows the previous transaction created; every row carries
# its transaction's tag, so that a transaction whose fate a crash hid can
# be looked up.
sub burst_sql
{
	my ($n) = @_;
	my $tag = sprintf('t%02d', $n);
	return qq{SET moment.company = 'acme';
SELECT moment.batch('customers', jsonb_build_object('create',
	(SELECT jsonb_agg(jsonb_build_object('name', '$tag-' || i, 'customerNumber', '$tag') ORDER BY i)
	   FROM generate_series(1, 100) AS i))) IS NOT NULL;} if $n % 2 == 0;
	my $previous = sprintf('t%02d', $n - 1);
	return qq{SET moment.company = 'acme';
UPDATE moment.customers SET customer_number = '$tag', email = '$tag\@example.com' WHERE customer_number = '$previous';};
}

sub committed
{
	my ($n) = @_;
	my $tag = sprintf('t%02d', $n);
	my $count;
	wait_until(
		sub {
			my ($rc, $out) = $node->psql('postgres',
				"SELECT count(*) FROM moment.customers WHERE customer_number = '$tag' OR email = '$tag\@example.com'");
			$count = $out if $rc == 0;
			return $rc == 0;
		},
		60);
	return $count;
}

my $started = time;
my ($killed_at, $restarted_at);
for my $n (0 .. 49)
{
	if ($n == 15)
	{
		my $pid = worker_pid();
		ok($pid, "worker $pid is delivering the burst's backlog") or diag('no worker');
		ok(kill('KILL', $pid), 'kill -9 the worker');
		$killed_at = time;
	}
	if ($n == 32)
	{
		$node->restart;
		$restarted_at = time;
	}
	# a transaction the crash interrupted is retried, one that committed is not
	my $tries = 0;
	while (1)
	{
		my ($rc, $out, $err) = $node->psql('postgres', burst_sql($n));
		last if $rc == 0;
		$tries++;
		die "transaction $n keeps failing: $err" if $tries > 100;
		last if committed($n) > 0;
	}
}
note(sprintf('the burst took %.1f s', time - $started));
is($node->safe_psql('postgres', 'SELECT count(*) FROM moment.customers'), '2500', '2 500 customers created');
is($node->safe_psql('postgres', "SELECT count(*) FROM moment.customers WHERE email LIKE 't__\@example.com'"), '2500',
	'and 2 500 updated: 5 000 changes in all');
is($node->safe_psql('postgres', 'SELECT count(*) FROM moment.webhook_deliveries'), '10000',
	'one delivery per change and webhook: 10 000 queued');

ok($node->poll_query_until('postgres',
		"SELECT count(*) = 0 FROM moment.webhook_deliveries WHERE state <> 'done'", 't'),
	'every delivery is done in the end');
note(sprintf('all delivered %.1f s after the burst began', time - $started));

my %expected;
for my $row (split /\n/, $node->safe_psql('postgres',
		q{SELECT webhook_id || '|' || id || '|' || body::text FROM moment.webhook_deliveries ORDER BY id}))
{
	my ($webhook, $id, $body) = split /\|/, $row, 3;
	$expected{$webhook}{$id} = $body;
}
my @requests = @{ $receiver->requests };
for my $i (0 .. 1)
{
	my $webhook = $webhooks[$i];
	my $path = $i == 0 ? '/ok/first' : '/ok/second';
	my @got = grep { $_->{path} eq $path } @requests;
	my (%seen, @first, $wrong_body);
	for my $request (@got)
	{
		my $id = $request->{headers}{'X-Moment-Delivery'};
		$wrong_body++ if ($expected{$webhook}{$id} // '') ne $request->{body};
		push @first, $id unless $seen{$id}++;
	}
	my @missing = grep { !$seen{$_} } keys %{ $expected{$webhook} };
	is(scalar(@missing), 0, "webhook $path: every one of its 5 000 deliveries arrived") or diag("missing: @missing[0 .. 9]");
	ok(!$wrong_body, "webhook $path: each with its own body");
	is_deeply(\@first, [ sort { $a <=> $b } @first ], "webhook $path: first arrivals in id order");
	note(sprintf('webhook %s: %d requests for %d deliveries (%d sent again after the faults)',
			$path, scalar(@got), scalar(@first), scalar(@got) - scalar(@first)));
}
cmp_ok(time - $started, '<', 90, 'the whole burst delivered within 90 s');

$node->stop;
done_testing();
