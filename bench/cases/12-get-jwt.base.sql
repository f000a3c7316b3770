-- 12 baseline: case 02's hand-written get under a fresh request.jwt.claims per call
-- as PostgREST sends a request: role and claims set for the transaction, the claims different on
-- every call (another user, another expiry); moment.company is not set, the "company" claim selects it
\set id random(:tr_lo, :tr_hi)
\set n random(1, 1000000000)
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_web1', true),
       set_config('request.jwt.claims', '{"role": "bench_web1", "company": "@@bench_code@@", "sub": "user-' || :n || '", "exp": ' || (1900000000 + :n::bigint) || '}', true);
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
