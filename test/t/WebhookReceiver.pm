
# The webhook receiver of test/webhook_receiver.py, for the TAP tests and the
# benchmark: started on 127.0.0.1 with a free port, asked what it got, and
# stopped when the test ends.
#
#   my $receiver = WebhookReceiver->start;
#   $receiver->url('ok/a')           # http://127.0.0.1:PORT/ok/a
#   $receiver->requests              # every request so far (hashes: n, time, path, headers, body)
#   $receiver->requests_for('ok/a')  # those to one path
#   $receiver->count; $receiver->reset;
#
# Also: moment_webhook_conf (the postgresql.conf lines that preload moment
# and deliver quickly) and wait_until (polls a Perl condition).

package WebhookReceiver;

use strict;
use warnings;

use HTTP::Tiny;
use IPC::Run;
use JSON::PP;
use PostgreSQL::Test::Utils;
use Time::HiRes qw(usleep time);

use Exporter 'import';
our @EXPORT = qw(moment_webhook_conf wait_until);

my @receivers;

sub start
{
	my ($class) = @_;
	my $dir = PostgreSQL::Test::Utils::tempdir();
	my $port_file = "$dir/port";
	my $script = ($ENV{TESTDIR} // '.') . '/test/webhook_receiver.py';
	my $run = IPC::Run::start([ 'python3', $script, '--port-file', $port_file, '--quiet' ],
		'>', "$dir/receiver.log", '2>&1');
	my $deadline = time + 30;
	while (!-e $port_file)
	{
		die "webhook receiver did not start: " . slurp_file("$dir/receiver.log") if time > $deadline;
		usleep(20_000);
	}
	my $self = bless {
		run => $run,
		port => slurp_file($port_file) + 0,
		http => HTTP::Tiny->new(timeout => 30, keep_alive => 1),
	}, $class;
	push @receivers, $self;
	return $self;
}

sub port { return $_[0]->{port}; }

sub url
{
	my ($self, $path) = @_;
	return "http://127.0.0.1:$self->{port}/$path";
}

sub get_json
{
	my ($self, $path) = @_;
	my $response = $self->{http}->get($self->url($path));
	die "receiver: GET $path: $response->{status} $response->{content}" unless $response->{success};
	return decode_json($response->{content});
}

sub requests
{
	my ($self, $since) = @_;
	return $self->get_json('_requests?since=' . ($since // 0));
}

sub requests_for
{
	my ($self, $path) = @_;
	return [ grep { $_->{path} eq "/$path" } @{ $self->requests } ];
}

sub count { return $_[0]->get_json('_count')->{count}; }

sub reset { $_[0]->get_json('_reset'); return; }

sub stop
{
	my ($self) = @_;
	return unless $self->{run};
	$self->{run}->kill_kill;
	eval { $self->{run}->finish; };
	delete $self->{run};
	return;
}

END
{
	# reaping the receiver must not become the test's exit status
	local $?;
	$_->stop for @receivers;
}

# The configuration of a node whose worker delivers quickly: small delays,
# few attempts, a receiver on 127.0.0.1.
sub moment_webhook_conf
{
	return <<'EOF';
shared_preload_libraries = 'moment'
moment.webhook_database = 'postgres'
moment.webhook_allowed_hosts = '127.0.0.1'
moment.webhook_timeout = 5s
moment.webhook_retry_delay = 100ms
moment.webhook_retry_max_delay = 400ms
moment.webhook_max_attempts = 4
EOF
}

# Polls $condition (a sub) until it returns true or $seconds pass; returns
# whether it did.
sub wait_until
{
	my ($condition, $seconds) = @_;
	my $deadline = time + ($seconds // 60);
	while (time < $deadline)
	{
		return 1 if $condition->();
		usleep(50_000);
	}
	return $condition->() ? 1 : 0;
}

1;
