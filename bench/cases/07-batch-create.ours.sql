-- 7 ours: moment.batch of 1000 creates (payload read from bench.payload, as the baseline)
BEGIN;
SELECT moment.batch('timeRecords', p.body) FROM bench.payload p WHERE p.id = 1;
ROLLBACK;
