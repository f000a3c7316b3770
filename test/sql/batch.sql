-- batch: create/update/delete all or nothing, errors naming the instruction.
\i test/fixtures/seed.sql

-- The seed's three examples: create two entries, update two, delete two
SELECT jsonb_pretty(moment.batch('timeRecords', $${
	"create": [
		{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-03-01", "minutes": 60, "description": "Batch one"},
		{"projectId": 2, "userAccountId": 2, "timeRecordDate": "2024-03-02", "minutes": 90, "description": "Batch two"}
	],
	"update": {"2": {"minutes": 95}, "1": {"description": "Renamed kick-off"}},
	"delete": [4, 3]
}$$, 'minutes+description+project.name'));
SELECT id, minutes, description FROM moment.time_records WHERE company_id = 1 ORDER BY id;

-- created objects come back in request order, even when shapes alternate
SELECT jsonb_path_query_array(moment.batch('customers', $${"create": [
	{"name": "A1"}, {"name": "A2"}, {"name": "B1", "email": "b1@x.no"}, {"name": "A3"},
	{"name": "B2", "email": "b2@x.no"}, {"name": "B3", "email": "b3@x.no"}]}$$, 'name'), '$.created[*].name') AS names;
SELECT moment.batch('customers', '{}');
SELECT moment.batch('customers', '{"create": [], "update": {}, "delete": []}');

-- A failing third create leaves no trace, and the error names it (0-based)
SELECT count(*) AS before FROM moment.time_records \gset
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": [
	{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-04-01", "minutes": 10},
	{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-04-02", "minutes": 20},
	{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-04-03", "minutes": 2000}]}') $$);
SELECT count(*) - :before AS added FROM moment.time_records;
-- errors keep their SQLSTATE, detail and constraint name, and name the instruction
DO $$
DECLARE
	state text; message text; detail text; tbl text; constraint_name text;
BEGIN
	PERFORM moment.batch('timeRecords', '{"create": [
		{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-04-01", "minutes": 10},
		{"projectId": 999, "userAccountId": 1, "timeRecordDate": "2024-04-02", "minutes": 20}]}');
EXCEPTION WHEN OTHERS THEN
	GET STACKED DIAGNOSTICS state = RETURNED_SQLSTATE, message = MESSAGE_TEXT, detail = PG_EXCEPTION_DETAIL,
		tbl = TABLE_NAME, constraint_name = CONSTRAINT_NAME;
	RAISE NOTICE 'sqlstate %: %', state, message;
	RAISE NOTICE 'detail: %', detail;
	RAISE NOTICE 'table %, constraint %', tbl, constraint_name;
END
$$;
-- type errors, unknown fields, bad bodies: named too
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": [{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-04-01", "minutes": 10}, {"minutes": "ten"}]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": [{"minutes": 10}, {"minuts": 10}]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": [{"minutes": 10}, "x"]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": [{"id": 10}]}') $$);
-- update or delete of a missing id, or another company's: P0002 naming it
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"1": {"minutes": 1}, "11362": {"minutes": 2}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"5": {"minutes": 2}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"delete": [1, 11357]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"1": {"minutes": 5000}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"delete": [1]}') $$);
SELECT minutes FROM moment.time_records WHERE id = 1;
-- a later failure undoes the earlier creates and updates of the same batch
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": [{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-05-01", "minutes": 10}], "update": {"1": {"minutes": 7}}, "delete": [999]}') $$);
SELECT count(*) - :before AS added, (SELECT minutes FROM moment.time_records WHERE id = 1) AS minutes FROM moment.time_records;

-- Many updates setting the same fields go set-based; results come in ascending id order,
-- a failing one is still named, and a missing id still gives P0002
SELECT jsonb_path_query_array(moment.batch('timeRecords', '{"update": {"2": {"minutes": 21}, "1": {"minutes": 11}, "7": {"minutes": 71}}}', 'minutes'), '$.updated[*]') AS updated;
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"1": {"minutes": 12}, "2": {"minutes": 9999}, "7": {"minutes": 72}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"1": {"minutes": 12}, "2": {"minutes": 22}, "5": {"minutes": 52}, "7": {"minutes": 72}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"1": {"minutes": 12}, "01": {"minutes": 13}}}') $$);
SELECT id, minutes FROM moment.time_records WHERE id IN (1, 2, 7) ORDER BY id;

-- Wrong shapes: 22023 before anything is done
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"insert": []}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '[]') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', NULL) $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": {"minutes": 1}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": [1]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"one": {}}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"update": {"1": [1]}}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"delete": "1"}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"delete": [1.5]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"delete": [{"id": 1}]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"delete": [1, 1]}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{"create": [{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-05-01", "minutes": 10}], "bogus": 1}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('nope', '{}') $$);
SELECT pg_temp.try($$ SELECT moment.batch('timeRecords', '{}', 'nmae') $$);
-- ids given as strings are accepted in delete
SELECT moment.batch('timeRecords', '{"delete": ["1"]}');

-- More than moment.max_batch_size instructions: 54000 before anything is done
SET moment.max_batch_size = 3;
SELECT pg_temp.try($$ SELECT moment.batch('customers', '{"create": [{"name": "a"}, {"name": "b"}], "delete": [1, 2]}') $$);
SELECT moment.batch('customers', '{"create": [{"name": "a"}, {"name": "b"}, {"name": "c"}]}', 'name') -> 'created' AS created;
RESET moment.max_batch_size;

-- The caller's transaction and savepoints behave normally
\set VERBOSITY terse
BEGIN;
SELECT moment.create('customers', '{"name": "Kept in transaction"}', 'name');
SAVEPOINT before_batch;
SELECT moment.batch('customers', '{"create": [{"name": "lost"}, {"name": null}]}');
ROLLBACK TO SAVEPOINT before_batch;
SELECT moment.batch('customers', '{"create": [{"name": "Also kept"}]}', 'name') -> 'created' AS created;
COMMIT;
SELECT name FROM moment.customers WHERE name IN ('Kept in transaction', 'Also kept', 'lost') ORDER BY name;
-- a failed batch inside a transaction aborts it, as any error does
BEGIN;
SELECT moment.batch('customers', '{"create": [{"name": null}]}');
SELECT 1;
ROLLBACK;
\set VERBOSITY default

-- Plans are prepared once per shape: a second batch of the same shapes prepares nothing
SELECT moment.batch('timeRecords', '{"create": [{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-06-01", "minutes": 1}, {"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-06-02", "minutes": 2}], "update": {"2": {"minutes": 3}, "7": {"minutes": 3}}}', 'minutes') IS NOT NULL;
SELECT plans_prepared AS before FROM moment.cache_stats() \gset
SELECT moment.batch('timeRecords', '{"create": [{"projectId": 2, "userAccountId": 2, "timeRecordDate": "2024-06-03", "minutes": 4}, {"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-06-04", "minutes": 5}, {"projectId": 1, "userAccountId": 2, "timeRecordDate": "2024-06-05", "minutes": 6}], "update": {"2": {"minutes": 7}, "7": {"minutes": 8}}}', 'minutes') IS NOT NULL;
SELECT (SELECT plans_prepared FROM moment.cache_stats()) - :before AS prepared;

-- A large batch: 3 500 creates (several set-based runs) in one call, in order,
-- then 3 500 updates of them in one call
SELECT jsonb_array_length(b -> 'created') AS created,
       (b -> 'created' -> 0 ->> 'minutes')::int AS first, (b -> 'created' -> 3499 ->> 'minutes')::int AS last,
       (SELECT bool_and((o ->> 'minutes')::int = n % 1440)
          FROM jsonb_array_elements(b -> 'created') WITH ORDINALITY AS e(o, n)) AS all_in_order
  FROM moment.batch('timeRecords', (SELECT jsonb_build_object('create', jsonb_agg(jsonb_build_object(
		'projectId', 1, 'userAccountId', 1, 'timeRecordDate', '2024-07-01', 'minutes', n % 1440) ORDER BY n))
	FROM generate_series(1, 3500) n), 'minutes') b;
SELECT bool_and(ok) AS ids_follow_request_order FROM (
	SELECT minutes = ((id - min(id) OVER ()) + 1) % 1440 AS ok FROM moment.time_records WHERE time_record_date = '2024-07-01') s;
SELECT jsonb_array_length(b -> 'updated') AS updated,
       (SELECT bool_and((o ->> 'description') = 'updated ' || (o ->> 'id')) FROM jsonb_array_elements(b -> 'updated') o) AS all_updated
  FROM moment.batch('timeRecords', (SELECT jsonb_build_object('update', jsonb_object_agg(id::text, jsonb_build_object('description', 'updated ' || id)))
	FROM moment.time_records WHERE time_record_date = '2024-07-01'), 'description') b;
SELECT count(*) FILTER (WHERE description = 'updated ' || id) AS updated_rows FROM moment.time_records WHERE time_record_date = '2024-07-01';
