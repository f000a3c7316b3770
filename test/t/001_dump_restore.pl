
# pg_dump / pg_restore keeps a moment database whole: users' rows in the
# extension's tables, their sequences, a user table registered as an entity
# (with its catalog rows, policies and relations), company grants and the
# table privileges behind them; and the built-in catalog rows that CREATE
# EXTENSION recreates are not restored a second time.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('main');
$node->init;
$node->start;

$node->safe_psql('postgres', 'CREATE DATABASE source');

# --- the source database ----------------------------------------------------

$node->safe_psql(
	'source', q{
CREATE EXTENSION moment;
INSERT INTO moment.companies (code, name) VALUES ('cloudware', 'Cloudware AS'), ('othercorp', 'Other Corp');

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
SELECT moment.define_part('contracts', 'summary', ARRAY['title', 'customer.name']);
SELECT moment.define_metadata('contracts', 'totals', 'totalAmount', 'coalesce(sum(t.amount), 0)');

-- a user's changes to built-in parts, metadata and entity settings
SELECT moment.define_part('customers', 'base', ARRAY['name', 'email']);
SELECT moment.define_metadata('timeRecords', 'summary', 'totalMinutes',
	'coalesce(pg_catalog.sum(t.minutes), 0) OPERATOR(pg_catalog.*) 100');
SELECT moment.set_date_field('projects', 'endDate');

CREATE ROLE clerk LOGIN;
SELECT moment.grant_company('cloudware', 'clerk');
CREATE ROLE auditor LOGIN;
SELECT moment.grant_company('othercorp', 'auditor', false);
});

# Rows through the API, as a superuser, in both companies.
$node->safe_psql(
	'source', q{
SET moment.company = 'cloudware';
SELECT moment.create('userAccounts', '{"name": "Kari Nordmann", "email": "kari@example.com"}');
SELECT moment.create('customers', jsonb_build_object('name', 'Fjord Consulting ' || n, 'customerNumber', 'C' || n))
  FROM generate_series(1, 5) n;
SELECT moment.create('projects', jsonb_build_object('name', 'Website ' || n,
	'customerId', (SELECT min(id) FROM moment.customers)))
  FROM generate_series(1, 3) n;
SELECT moment.create('offers', jsonb_build_object('name', 'Offer ' || n, 'currencyCode', 'NOK',
	'customerId', (SELECT max(id) FROM moment.customers), 'totalSum', n * 1000))
  FROM generate_series(1, 4) n;
SELECT moment.create('timeRecords', jsonb_build_object('projectId', (SELECT min(id) FROM moment.projects),
	'userAccountId', (SELECT min(id) FROM moment.user_accounts), 'timeRecordDate', '2024-03-0' || n,
	'minutes', n * 30))
  FROM generate_series(1, 6) n;
SELECT moment.create('contracts', jsonb_build_object('title', 'Framework agreement ' || n,
	'customerId', (SELECT min(id) FROM moment.customers), 'signedOn', '2024-05-01', 'amount', n * 100))
  FROM generate_series(1, 3) n;

SET moment.company = 'othercorp';
SELECT moment.create('customers', '{"name": "Other customer"}');
});

# The state of every table, to compare after the restore.
my @tables = qw(moment.companies moment.company_grants moment.entities moment.entity_settings moment.parts
  moment.metadata moment.user_accounts moment.customers moment.projects
  moment.offers moment.time_records public.contracts);

sub table_digests
{
	my ($dbname) = @_;
	my %digest;
	foreach my $table (@tables)
	{
		$digest{$table} = $node->safe_psql($dbname,
			"SELECT count(*) || ' ' || coalesce(md5(string_agg(t::text, '|' ORDER BY t::text)), '')
			   FROM $table t");
	}
	return \%digest;
}

my $before = table_digests('source');
like($before->{'public.contracts'}, qr/^3 /, 'source has 3 contracts');
like($before->{'moment.customers'}, qr/^6 /, 'source has 6 customers');

my %max_id_before;
foreach my $table (qw(moment.customers moment.offers moment.time_records public.contracts))
{
	$max_id_before{$table} = $node->safe_psql('source', "SELECT max(id) FROM $table");
}

# --- dump, restore into a new database ---------------------------------------

my $dumpfile = $PostgreSQL::Test::Utils::tmp_check . '/moment.dump';
$node->command_ok([ 'pg_dump', '-Fc', '-f', $dumpfile, '-d', $node->connstr('source') ],
	'pg_dump -Fc of the source database');

$node->safe_psql('postgres', 'CREATE DATABASE restored');
my ($restore_ok, $restore_stdout, $restore_stderr) = (0, '', '');
{
	my @cmd = ('pg_restore', '--exit-on-error', '-d', $node->connstr('restored'), $dumpfile);
	$restore_ok = IPC::Run::run(\@cmd, '>', \$restore_stdout, '2>', \$restore_stderr);
}
ok($restore_ok, 'pg_restore into a new database succeeds without errors')
  or diag($restore_stderr);
is($restore_stderr, '', 'pg_restore printed nothing on stderr');

# The same through a plain SQL dump replayed by psql, as people often do.
my $plainfile = $PostgreSQL::Test::Utils::tmp_check . '/moment.sql';
$node->command_ok([ 'pg_dump', '-f', $plainfile, '-d', $node->connstr('source') ],
	'pg_dump of the source database as plain SQL');
$node->safe_psql('postgres', 'CREATE DATABASE replayed');
$node->command_ok(
	[ 'psql', '-X', '-q', '-v', 'ON_ERROR_STOP=1', '-f', $plainfile, '-d', $node->connstr('replayed') ],
	'the plain SQL dump replays without errors');
is_deeply(table_digests('replayed'), $before, 'the replayed database holds the same rows');

# Parallel restore loads the tables' data concurrently, while the foreign keys
# among the extension's tables (created by CREATE EXTENSION, before any data)
# already hold: customers -> companies, parts -> entities, ...  pg_dump orders
# extension config tables by their foreign keys only for a serial restore.
{
	local $TODO = 'pg_restore -j: foreign keys among extension config tables fail concurrent data loads';
	$node->safe_psql('postgres', 'CREATE DATABASE restored_parallel');
	my ($parallel_stdout, $parallel_stderr) = ('', '');
	my $parallel_ok = IPC::Run::run(
		[ 'pg_restore', '-j', '2', '--exit-on-error', '-d', $node->connstr('restored_parallel'), $dumpfile ],
		'>', \$parallel_stdout, '2>', \$parallel_stderr);
	ok($parallel_ok, 'pg_restore -j 2 succeeds') or diag($parallel_stderr);
}

# --- rows, catalog rows, privileges ------------------------------------------

my $after = table_digests('restored');
foreach my $table (@tables)
{
	is($after->{$table}, $before->{$table}, "$table: same rows after restore");
}

is( $node->safe_psql(
		'restored',
		"SELECT count(*) FROM moment.entities WHERE builtin"),
	'8',
	'built-in entities are there once');
is( $node->safe_psql(
		'restored',
		"SELECT count(*) FROM (SELECT entity, name, builtin FROM moment.parts GROUP BY 1, 2, 3 HAVING count(*) > 1) d"),
	'0',
	'no part is duplicated (a user\'s row of a built-in part\'s name stands beside it)');
is( $node->safe_psql(
		'restored',
		"SELECT string_agg(entity || '.' || name, ',' ORDER BY entity, name) FROM moment.parts WHERE entity = 'contracts'"
	),
	'contracts.base,contracts.summary',
	'the user entity keeps its parts');

is( $node->safe_psql(
		'restored',
		"SELECT relrowsecurity FROM pg_class WHERE oid = 'public.contracts'::regclass"),
	't',
	'row-level security is still enabled on the user table');

# --- the API works on the restored data ----------------------------------------

my $first_customer = $node->safe_psql('restored',
	"SELECT min(id) FROM moment.customers WHERE company_id = (SELECT id FROM moment.companies WHERE code = 'cloudware')"
);
my $first_contract = $node->safe_psql('restored', 'SELECT min(id) FROM public.contracts');

is( $node->safe_psql(
		'restored', qq{
SET moment.company = 'cloudware';
SELECT moment.get('contracts', $first_contract, 'base+customer.name') ->> 'customerName';
}),
	'Fjord Consulting 1',
	'get on the registered entity with a relation include');

is( $node->safe_psql(
		'restored', q{
SET moment.company = 'cloudware';
SELECT jsonb_path_query_array(moment.list('contracts', 'summary+metadata.count+metadata.totals', order_by => 'title'),
	'$.content[*].customerName') || jsonb_build_array(moment.list('contracts', 'metadata.count+metadata.totals') -> 'metadata');
}),
	'["Fjord Consulting 1", "Fjord Consulting 1", "Fjord Consulting 1", {"count": 3, "totalAmount": 600.00}]',
	'list on the registered entity with a part, a relation and user metadata');

is( $node->safe_psql(
		'restored', q{
SET moment.company = 'cloudware';
SELECT moment.list('offers', 'base+metadata.overviewPage') -> 'metadata';
}),
	'{"count": 4, "totalSumInCompanyCurrency": 10000.00}',
	'built-in metadata on restored offers');

# the user's changes to built-in parts, metadata and settings came through
# (0.1.0: define_part on a built-in kept builtin = true, and the dump left it out)
is( $node->safe_psql(
		'restored', q{
SET moment.company = 'cloudware';
SELECT string_agg(key, ',' ORDER BY key) FROM jsonb_object_keys(moment.list('customers', size => 1) #> '{content,0}') AS key;
SELECT moment.list('timeRecords', 'metadata.summary') -> 'metadata';
SELECT moment.describe('projects') ->> 'dateField';
}),
	"email,id,name\n" . '{"totalMinutes": 63000, "billableMinutes": 630}' . "\nendDate",
	'a redefined built-in part, metadata key and date field survive the restore');

# --- sequences continue ---------------------------------------------------------

my $new_ids = $node->safe_psql(
	'restored', qq{
SET moment.company = 'cloudware';
SELECT moment.create('customers', '{"name": "New after restore"}') ->> 'id';
SELECT moment.create('offers', '{"name": "New offer", "currencyCode": "EUR", "customerId": $first_customer}') ->> 'id';
SELECT moment.create('timeRecords', jsonb_build_object('projectId', (SELECT min(id) FROM moment.projects),
	'userAccountId', (SELECT min(id) FROM moment.user_accounts), 'timeRecordDate', '2024-04-01', 'minutes', 60)) ->> 'id';
SELECT moment.create('contracts', '{"title": "New contract", "customerId": $first_customer}') ->> 'id';
});
my @new_ids = split /\n/, $new_ids;
is(scalar @new_ids, 4, 'creates after restore succeed (no duplicate key)');
my $i = 0;
foreach my $table (qw(moment.customers moment.offers moment.time_records public.contracts))
{
	cmp_ok($new_ids[$i] // 0, '>', $max_id_before{$table},
		"$table: new id continues after the old ones");
	$i++;
}

# --- grants survive: the roles can still use the API, and only their company ---

my $clerk = $node->connstr('restored') . ' user=clerk';
is( $node->safe_psql(
		'restored', q{
SET moment.company = 'cloudware';
SELECT jsonb_array_length(moment.list('customers') -> 'content');
SELECT moment.create('contracts', jsonb_build_object('title', 'By clerk', 'customerId',
	(moment.list('customers', 'id', order_by => 'id', size => 1) #>> '{content,0,id}')::bigint)) ->> 'title';
SELECT moment.update('customers', (moment.list('customers', 'id', size => 1) #>> '{content,0,id}')::bigint,
	'{"email": "clerk@example.com"}', 'email') ->> 'email';
}, connstr => $clerk),
	"6\nBy clerk\nclerk\@example.com",
	'the granted role reads and writes its company after restore');

my ($ret, $stdout, $stderr) = $node->psql(
	'restored', q{
SET moment.company = 'othercorp';
SELECT moment.list('customers');
}, connstr => $clerk);
isnt($ret, 0, 'the granted role still cannot use another company');
like($stderr, qr/othercorp|not granted|permission denied/i, '... with a permission error');

($ret, $stdout, $stderr) = $node->psql('restored', 'SELECT count(*) FROM moment.customers', connstr => $clerk);
ok($ret != 0 || $stdout eq '0',
	'direct SQL without a company in force is refused or sees no rows (row-level security)');

my $auditor = $node->connstr('restored') . ' user=auditor';
is( $node->safe_psql(
		'restored', q{
SET moment.company = 'othercorp';
SELECT moment.list('customers') #>> '{content,0,name}';
}, connstr => $auditor),
	'Other customer',
	'the read-only role reads its company after restore');
($ret, $stdout, $stderr) = $node->psql(
	'restored', q{
SET moment.company = 'othercorp';
SELECT moment.create('customers', '{"name": "Not allowed"}');
}, connstr => $auditor);
isnt($ret, 0, 'the read-only grant is still read-only after restore');

$node->stop;
done_testing();
