-- 8 baseline: the same 1000 creates as 1000 moment.create calls, one statement, one transaction
BEGIN;
SELECT jsonb_agg(moment.create('timeRecords', r.body)) FROM bench.payload_rows r;
ROLLBACK;
