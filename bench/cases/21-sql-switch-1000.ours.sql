-- 21 "ours" (reference for 17): the same hand-written get on another of 1 000 companies every call:
-- what PostgreSQL itself pays for touching 1 000 companies' rows instead of one's
-- first transaction of the connection, not measured (bench/run: "warm"): one get on each
-- company, so that the backend has them cached as a long-lived pooled backend would
\if :warm
BEGIN;
SELECT count(g.o)
  FROM generate_series(1, :tenant_many) c,
       LATERAL (SELECT set_config('moment.company', 't' || lpad(c::text, 5, '0'), true) AS code) s,
       LATERAL (SELECT moment.get('timeRecords', c * 10, 'base+project.name+project.customer.name+userAccount.name') AS o
                 WHERE s.code IS NOT NULL) g;
COMMIT;
\set warm 0
\endif
\set c random(1, :tenant_many)
\set id :c * 10 + random(0, :tenant_records - 1)
\startpipeline
BEGIN;
SELECT set_config('moment.company', 't' || lpad(:c::text, 5, '0'), true);
SELECT jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                          'projectMembershipId', t.project_membership_id, 'timeRecordDate', t.time_record_date,
                          'minutes', t.minutes, 'projectName', p.name, 'projectCustomerName', c.name,
                          'userAccountName', u.name)
  FROM moment.time_records t
  LEFT JOIN moment.projects p ON p.company_id = t.company_id AND p.id = t.project_id
  LEFT JOIN moment.customers c ON c.company_id = p.company_id AND c.id = p.customer_id
  LEFT JOIN moment.user_accounts u ON u.company_id = t.company_id AND u.id = t.user_account_id
 WHERE t.company_id = :c AND t.id = :id;
COMMIT;
\endpipeline
