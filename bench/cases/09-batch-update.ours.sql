-- 9 ours: moment.batch of 1000 updates ({"update": {"id": {...}}}) of the same rows
BEGIN;
SELECT moment.batch('timeRecords', p.body) FROM bench.payload p WHERE p.id = 2;
ROLLBACK;
