-- 10 baseline: the same 1000 creates as 1000 moment.create statements sent by the client
-- (1000 round trips), in one transaction; the lines are generated from bench.payload_rows
BEGIN;
@@payload_creates@@
ROLLBACK;
