-- Listings: the cap, limitWasExceeded, no_limit, filters, order, paging, metadata.
\i test/fixtures/seed.sql

-- 12 rows with default_limit = 5: 5 rows and limitWasExceeded
INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date, minutes, billable)
SELECT 1, 1 + (n % 2), 1 + (n % 2), date '2024-03-01' + n, 10 * n, n % 3 <> 0 FROM generate_series(1, 8) n;
SELECT count(*) FROM moment.time_records WHERE company_id = 1;
SET moment.default_limit = 5;
SELECT jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded
  FROM moment.list('timeRecords', 'minutes') l;
SELECT l -> 'content' -> 0 -> 'id' AS first, l -> 'content' -> 4 -> 'id' AS last FROM moment.list('timeRecords') l;
-- exactly the cap is not exceeded
SET moment.default_limit = 12;
SELECT jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded FROM moment.list('timeRecords') l;
SET moment.default_limit = 11;
SELECT jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded FROM moment.list('timeRecords') l;
-- no_limit raises the cap to moment.max_limit
SET moment.default_limit = 5;
SELECT jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded
  FROM moment.list('timeRecords', no_limit => true) l;

-- rows() and list_*() return at most the cap, with a WARNING that says so
SELECT * FROM moment.rows('timeRecords', 'minutes');
SELECT id, minutes, time_record_date FROM moment.list_time_records();
SELECT count(*) FROM moment.list_time_records(no_limit => true);
SELECT count(*) FROM moment.rows('timeRecords', filter => '{"minutes": {"lt": 50}}');
RESET moment.default_limit;

-- metadata aggregates every matching row, not only those returned
SET moment.default_limit = 2;
SELECT jsonb_pretty(moment.list('timeRecords', 'minutes+metadata.summary+metadata.count', '{"billable": true}'));
RESET moment.default_limit;
SELECT (SELECT count(*) FROM moment.time_records WHERE company_id = 1 AND billable) AS billable_rows,
       (SELECT sum(minutes) FROM moment.time_records WHERE company_id = 1 AND billable) AS billable_minutes;
SELECT moment.list('offers', 'name+metadata.overviewPage', '{"offerState": "nope"}');

-- Filters: equality, null, arrays, operators, relation paths; values typed by the column
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"minutes": 60}'), '$.content[*].id') AS eq;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"minutes": [30, 60, 999]}'), '$.content[*].id') AS in_array;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"minutes": {"in": [30, 60]}}'), '$.content[*].id') AS in_operator;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"minutes": {"gt": 60, "lte": 90}}'), '$.content[*].id') AS gt_lte;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"minutes": {"gte": 60, "lt": 90}}'), '$.content[*].id') AS gte_lt;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"minutes": {"neq": 60}, "projectId": 1}'), '$.content[*].id') AS neq;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"description": null}'), '$.content[*].id') AS null_scalar;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"description": {"isNull": false}}'), '$.content[*].id') AS not_null;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"description": {"like": "%i%"}}'), '$.content[*].id') AS like_;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"description": {"ilike": "k%"}}'), '$.content[*].id') AS ilike_;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"timeRecordDate": {"gte": "2024-01-03", "lt": "2024-03-03"}}'), '$.content[*].id') AS date_range;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"billable": false}'), '$.content[*].id') AS bool;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"project.customer.name": "Aurora Energy"}'), '$.content[*].id') AS relation_path;
SELECT jsonb_path_query_array(moment.list('offers', 'name', '{"project.name": null}'), '$.content[*].name') AS null_relation;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', '{"userAccount.name": {"like": "Kari%"}, "minutes": {"gte": 50}}'), '$.content[*].id') AS anded;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', NULL), '$.content[*].id') AS null_filter;
-- another company's rows never match
SELECT moment.list('timeRecords', 'minutes', '{"description": "SECRET-B work"}');

-- Order: PostgREST's form, relation paths, id always the last tiebreaker
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', NULL, 'minutes.desc'), '$.content[*].minutes') AS minutes_desc;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', NULL, 'timeRecordDate, minutes.desc'), '$.content[*].id') AS date_minutes;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', NULL, 'userAccount.name.desc'), '$.content[*].id') AS by_relation;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', NULL, 'project.customer.name'), '$.content[*].id') AS by_path;
SELECT jsonb_path_query_array(moment.list('offers', 'name', NULL, 'project.name.asc.nullsfirst'), '$.content[*].id') AS nulls_first;
SELECT jsonb_path_query_array(moment.list('timeRecords', 'minutes', NULL, 'id.desc'), '$.content[*].id') AS id_desc;

-- Paging: page/size, exact totals; a size above the cap is lowered and flagged
SELECT moment.list('timeRecords', 'minutes', '{"projectId": 1}', 'id', 0, 3);
SELECT moment.list('timeRecords', 'minutes', '{"projectId": 1}', 'id', 1, 3);
SELECT moment.list('timeRecords', 'minutes', '{"projectId": 1}', 'id', 5, 3);
SELECT moment.list('timeRecords', 'minutes', '{"projectId": 1}', 'id', page => 0);
SET moment.default_limit = 4;
SELECT moment.list('timeRecords', 'minutes', '{"projectId": 1}', 'id', size => 10);
SELECT moment.list('timeRecords', 'minutes', '{"projectId": 1}', 'id', size => 10, no_limit => true);
SELECT moment.list('timeRecords', 'minutes+metadata.count', '{"projectId": 1}', 'id', 1, 2);
RESET moment.default_limit;

-- The statement is prepared once per shape: new values, same plan
SELECT plans_prepared AS before FROM moment.cache_stats() \gset
SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"gte": 10}, "projectId": [1, 2]}', 'timeRecordDate.desc') IS NOT NULL;
SELECT moment.list('timeRecords', 'minutes', '{"projectId": [2], "minutes": {"gte": 500}}', 'timeRecordDate.desc') IS NOT NULL;
SELECT (SELECT plans_prepared FROM moment.cache_stats()) - :before AS prepared;

-- Errors
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minuts": 1}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"project.nmae": "x"}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"base": "x"}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"between": [1, 2]}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"in": 5}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"in": [1, null]}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"eq": null}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"like": "1%"}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"isNull": "yes"}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": {"gt": [1]}}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '[1, 2]') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '"minutes"') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": "lots"}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"timeRecordDate": "soon"}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', '{"minutes": 1e400}') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, 'minuts') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, 'minutes.up') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, 'minutes,,id') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, 'minutes desc') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, 'minutes.desc.asc') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, 'minutes;drop table x') $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, NULL, -1, 5) $$);
SELECT pg_temp.try($$ SELECT moment.list('timeRecords', 'minutes', NULL, NULL, 0, 0) $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.rows('timeRecords', 'minutes+metadata.count') $$);
SELECT pg_temp.try($$ SELECT count(*) FROM moment.list_time_records('{"nope": 1}') $$);

-- Settings: the cap is never above 30 000
SELECT pg_temp.try($$ SELECT set_config('moment.default_limit', '30001', false) $$);
SELECT pg_temp.try($$ SELECT set_config('moment.default_limit', '0', false) $$);
SELECT pg_temp.try($$ SELECT set_config('moment.max_limit', '30001', false) $$);
SELECT pg_temp.try($$ SELECT set_config('moment.default_limit', '30000', false) $$);
RESET moment.default_limit;
CREATE ROLE moment_list_user;
SET ROLE moment_list_user;
SELECT pg_temp.try($$ SELECT set_config('moment.max_limit', '100', false) $$);
SELECT pg_temp.try($$ SELECT set_config('moment.max_batch_size', '100', false) $$);
SELECT pg_temp.try($$ SELECT set_config('moment.default_limit', '100', false) $$);
RESET ROLE;
DROP ROLE moment_list_user;
RESET moment.default_limit;

-- 30 050 matching rows with no_limit: exactly 30 000, flagged
INSERT INTO moment.time_records (company_id, project_id, user_account_id, time_record_date, minutes)
SELECT 1, 2, 2, date '2025-01-01' + (n % 300), n % 600 FROM generate_series(1, 30050 - 6) n;
SELECT count(*) FROM moment.time_records WHERE company_id = 1 AND project_id = 2;
SELECT jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded
  FROM moment.list('timeRecords', 'minutes', '{"projectId": 2}', no_limit => true) l;
SELECT count(*) FROM moment.rows('timeRecords', 'minutes', '{"projectId": 2}', no_limit => true);
SELECT count(*) FROM moment.list_time_records('{"projectId": 2}', no_limit => true);
-- a superuser may lower max_limit, and no_limit follows it
SET moment.max_limit = 100;
SELECT jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded
  FROM moment.list('timeRecords', 'minutes', '{"projectId": 2}', no_limit => true) l;
RESET moment.max_limit;
-- paging through all of them gives exact totals
SELECT l -> 'page' AS page, jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded
  FROM moment.list('timeRecords', 'minutes', '{"projectId": 2}', 'id', 1, 20000, no_limit => true) l;
SELECT l -> 'page' AS page, jsonb_array_length(l -> 'content') AS rows, l -> 'limitWasExceeded' AS exceeded
  FROM moment.list('timeRecords', 'minutes', '{"projectId": 2}', 'id', 30, 1000) l;

-- A filter sent as a JSON string holding an object (PostgREST's GET /rpc/list?filter=...) is that object
SET moment.company = 'cloudware';
SELECT moment.list('customers', 'name', to_jsonb('{"customerNumber": "C002"}'::text));
SELECT pg_temp.try($$ SELECT moment.list('customers', 'name', '"C002"') $$);
