-- 14 baseline: the month's hours by project and user by hand: one GROUP BY over the time
-- records and the joined names, the same 14 columns and rows as moment.hours_report
-- (dimensions not grouped are NULL), ordered by the grouped columns, under the cap + 1
SELECT NULL::date AS period, t.project_id, p.project_number, p.name AS project_name,
       NULL::bigint AS project_extension_id, NULL::text AS project_extension_name,
       t.user_account_id, u.name AS user_account_name, NULL::bigint AS customer_id, NULL::text AS customer_name,
       count(*) AS records, coalesce(sum(t.minutes), 0) AS minutes,
       coalesce(sum(t.minutes) FILTER (WHERE t.billable), 0) AS billable_minutes,
       coalesce(sum(t.minutes) FILTER (WHERE t.approved), 0) AS approved_minutes
  FROM moment.time_records t
  LEFT JOIN moment.projects p ON p.company_id = t.company_id AND p.id = t.project_id
  LEFT JOIN moment.user_accounts u ON u.company_id = t.company_id AND u.id = t.user_account_id
 WHERE t.company_id = :big_company AND t.time_record_date >= :month_from AND t.time_record_date <= :month_last
 GROUP BY t.project_id, p.project_number, p.name, t.user_account_id, u.name
 ORDER BY t.project_id, p.project_number, p.name, t.user_account_id, u.name
 LIMIT :cap1;
