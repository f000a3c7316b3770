-- 1 baseline: primary-key lookup of one time record, returned as a plain row
\set id random(:tr_lo, :tr_hi)
SELECT * FROM moment.time_records t WHERE t.company_id = :company AND t.id = :id;
