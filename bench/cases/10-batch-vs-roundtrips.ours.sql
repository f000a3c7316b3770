-- 10 ours: moment.batch of the same 1000 creates
BEGIN;
SELECT moment.batch('timeRecords', p.body) FROM bench.payload p WHERE p.id = 1;
ROLLBACK;
