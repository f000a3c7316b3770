-- 13 baseline: case 04's hand-written listing document, run by two web roles in turn
-- (row-level security in force).
-- One prepared statement for both roles, as PostgREST (prepared statements on) runs a request:
-- pgbench keeps variables per client, so :turn alternates 1, 2, 1, ... (bench/run passes -D turn=1).
\set turn 3 - :turn
\startpipeline
BEGIN;
SELECT set_config('role', 'bench_web' || :turn, true);
SELECT jsonb_build_object('content', coalesce(jsonb_agg(s.o) FILTER (WHERE s.n <= :cap), '[]'::jsonb),
                          'limitWasExceeded', count(*) > :cap)
  FROM (SELECT row_number() OVER (ORDER BY t.id) AS n,
               jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                                  'projectMembershipId', t.project_membership_id,
                                  'timeRecordDate', t.time_record_date, 'minutes', t.minutes,
                                  'projectName', p.name) AS o
          FROM moment.time_records t
          LEFT JOIN moment.projects p ON p.company_id = t.company_id AND p.id = t.project_id
         WHERE t.company_id = :company AND t.time_record_date >= :list_from AND t.time_record_date < :list_to
         ORDER BY t.id
         LIMIT :cap1) s;
COMMIT;
\endpipeline
