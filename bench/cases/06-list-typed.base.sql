-- 6 baseline: plain typed rows, one month of the company, cap + 1
SELECT * FROM moment.time_records t
 WHERE t.company_id = :company AND t.time_record_date >= :month_from AND t.time_record_date < :month_to
 ORDER BY t.id LIMIT :cap1;
