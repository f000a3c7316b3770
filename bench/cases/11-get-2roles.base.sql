-- 11 baseline: case 02's hand-written get, as PostgREST runs it for two web roles in turn
-- (one transaction each: set_config('role', ..., true), then the query; row-level security in force).
-- One prepared statement for both roles, as PostgREST (prepared statements on) runs a request:
-- pgbench keeps variables per client, so :turn alternates 1, 2, 1, ... (bench/run passes -D turn=1).
\set turn 3 - :turn
\set id random(:tr_lo, :tr_hi)
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_web' || :turn, true);
SELECT jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                          'projectMembershipId', t.project_membership_id, 'timeRecordDate', t.time_record_date,
                          'minutes', t.minutes, 'projectName', p.name, 'projectCustomerName', c.name,
                          'userAccountName', u.name)
  FROM moment.time_records t
  LEFT JOIN moment.projects p ON p.company_id = t.company_id AND p.id = t.project_id
  LEFT JOIN moment.customers c ON c.company_id = p.company_id AND c.id = p.customer_id
  LEFT JOIN moment.user_accounts u ON u.company_id = t.company_id AND u.id = t.user_account_id
 WHERE t.company_id = :company AND t.id = :id;
COMMIT;
\endpipeline
