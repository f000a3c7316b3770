
# A backend's memory stays bounded however many distinct inputs it serves
# (issue 10, items 10 and 11).
#
# (10) 50 000 distinct request shapes in one statement: 0.1.0 grew a backend
# to 1.45 GB (retired plans were freed only at transaction end, and the cache
# flushed everything at 2 000 entries).  Now the plan cache and the
# statement memo are bounded by moment.plan_cache_size and evict one entry at
# a time: the memory PostgreSQL's contexts hold stays within
# plan_cache_size + 20 MB, the process does not grow from the 10 000th shape
# to the 50 000th, and cache_stats() shows the evictions.
#
# (11) Every distinct request.jwt.claims string (PostgREST sends a fresh one
# per request) was copied into the tenant cache and never freed: 500 000
# requests took a pooled backend from 14 MB to 321 MB.  Now 200 000 distinct
# claims leave the backend as it was.
#
# Memory is read inside the statement, in the backend itself: RssAnon from
# /proc/self/status (the private pages; shared buffers touched are RssShmem)
# and the sum of pg_backend_memory_contexts.  The figures are printed.

use strict;
use warnings;

use PostgreSQL::Test::Cluster;
use PostgreSQL::Test::Utils;
use Test::More;

my $node = PostgreSQL::Test::Cluster->new('memory');
$node->init;
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

# the helpers, in each session (pg_temp)
my $helpers = q{
CREATE FUNCTION pg_temp.rss_anon_kb() RETURNS bigint LANGUAGE sql AS
  $$ SELECT (regexp_match(pg_read_file('/proc/self/status'), 'RssAnon:\s*(\d+)'))[1]::bigint $$;
CREATE FUNCTION pg_temp.contexts_kb() RETURNS bigint LANGUAGE sql AS
  $$ SELECT (sum(total_bytes) / 1024)::bigint FROM pg_backend_memory_contexts $$;
};

# -- (10) 50 000 distinct shapes in one statement
{
	my $cache_mb = 8;
	# 16 include items: every number 1..65535 names another subset, so
	# every row of the statement is a shape of its own
	my $out = $node->safe_psql('postgres', $helpers . qq{
SET moment.company = 'acme';
SET moment.plan_cache_size = '${cache_mb}MB';
CREATE TEMP TABLE items AS
	SELECT (row_number() OVER () - 1)::int AS bit, item
	  FROM unnest(ARRAY['projectId', 'userAccountId', 'projectMembershipId', 'timeRecordDate', 'minutes',
						'description', 'internalNote', 'billable', 'approved', 'createdAt', 'updatedAt',
						'projectExtensionId', 'taskId', 'project.name', 'userAccount.name',
						'project.customer.name']) AS item;
SELECT pg_temp.rss_anon_kb() || ' ' || pg_temp.contexts_kb();
SELECT count(moment.list('timeRecords',
						 (SELECT string_agg(item, '+' ORDER BY bit) FROM items WHERE (g >> bit) & 1 = 1)))
	   || ' ' || max(pg_temp.rss_anon_kb()) FILTER (WHERE g = 10000)
	   || ' ' || max(pg_temp.contexts_kb()) FILTER (WHERE g = 10000)
	   || ' ' || max(pg_temp.rss_anon_kb()) FILTER (WHERE g = 50000)
	   || ' ' || max(pg_temp.contexts_kb()) FILTER (WHERE g = 50000)
  FROM generate_series(1, 50000) AS g;
SELECT plans_prepared || ' ' || plans_evicted || ' ' || cached_bytes || ' ' || cached_plans FROM moment.cache_stats();
});
	my ($start, $run, $stats) = split /\n/, $out;
	my ($rss0, $ctx0) = split / /, $start;
	my ($count, $rss10k, $ctx10k, $rss50k, $ctx50k) = split / /, $run;
	my ($prepared, $evicted, $cached_bytes, $cached_plans) = split / /, $stats;
	note("plan_cache_size ${cache_mb} MB: RssAnon $rss0 kB at start, $rss10k kB after 10 000 shapes, "
		  . "$rss50k kB after 50 000; memory contexts $ctx0 / $ctx10k / $ctx50k kB");
	note("cache_stats: $prepared plans prepared, $evicted entries evicted, $cached_plans plans in "
		  . "$cached_bytes bytes");
	is($count, 50000, '50 000 listings of distinct shapes in one statement');
	cmp_ok($prepared, '>=', 50000, 'each shape prepared its own plan');
	cmp_ok($evicted, '>', 0, 'cache_stats shows evictions');
	cmp_ok($cached_bytes, '<=', $cache_mb * 1024 * 1024, 'cached bytes within moment.plan_cache_size');
	cmp_ok($ctx50k, '<=', ($cache_mb + 20) * 1024,
		'memory contexts after 50 000 shapes within plan_cache_size + 20 MB');
	cmp_ok($ctx10k, '<=', ($cache_mb + 20) * 1024,
		'memory contexts after 10 000 shapes within plan_cache_size + 20 MB');
	cmp_ok($rss50k - $rss10k, '<', 8 * 1024,
		'the process does not grow from 10 000 shapes to 50 000 (RssAnon)');
}

# -- (11) 200 000 distinct request.jwt.claims, as PostgREST sends them
{
	my $out = $node->safe_psql('postgres', $helpers . q{
SELECT moment.get('customers', 1, 'name') FROM set_config('request.jwt.claims', '{"role": "web", "company": "acme"}', false);
SELECT pg_temp.rss_anon_kb() || ' ' || pg_temp.contexts_kb();
SELECT count(moment.get('customers', 1, 'name'))
	   || ' ' || max(pg_temp.rss_anon_kb()) FILTER (WHERE g = 20000)
	   || ' ' || max(pg_temp.rss_anon_kb()) FILTER (WHERE g = 200000)
	   || ' ' || max(pg_temp.contexts_kb()) FILTER (WHERE g = 200000)
  FROM generate_series(1, 200000) AS g,
	   LATERAL set_config('request.jwt.claims',
						  format('{"role": "web", "company": "acme", "sub": "user-%s", "exp": %s, "iat": %s}',
								 g, 1700000000 + g, 1699990000 + g), false) AS c;
SELECT pg_temp.rss_anon_kb() || ' ' || pg_temp.contexts_kb() || ' ' || cached_companies FROM moment.cache_stats();
});
	# (the first line is the warm-up get)
	my ($warm, $run, $after) = (split /\n/, $out)[1 .. 3];
	my ($rss0, $ctx0) = split / /, $warm;
	my ($count, $rss20k, $rss200k, $ctx200k) = split / /, $run;
	my ($rss_end, $ctx_end, $companies) = split / /, $after;
	note("claims: RssAnon $rss0 kB before, $rss20k kB after 20 000 distinct claims, $rss200k kB after 200 000, "
		  . "$rss_end kB after the statement; memory contexts $ctx0 / $ctx200k / $ctx_end kB; "
		  . "$companies companies cached");
	is($count, 200000, '200 000 gets, each with claims of its own, found the customer');
	cmp_ok($rss200k - $rss20k, '<', 4 * 1024, 'the backend does not grow from 20 000 claims to 200 000');
	cmp_ok($ctx_end - $ctx0, '<', 2 * 1024, 'memory contexts as before the 200 000 claims');
}

$node->stop;
done_testing();
