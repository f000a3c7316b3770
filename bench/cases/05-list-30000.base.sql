-- 5 baseline: as 4, 30 000 rows of the big company (no filter), limit 30 001
SELECT jsonb_build_object('content', coalesce(jsonb_agg(s.o) FILTER (WHERE s.n <= :max_cap), '[]'::jsonb),
                          'limitWasExceeded', count(*) > :max_cap)
  FROM (SELECT row_number() OVER (ORDER BY t.id) AS n,
               jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                                  'projectMembershipId', t.project_membership_id,
                                  'timeRecordDate', t.time_record_date, 'minutes', t.minutes,
                                  'projectName', p.name) AS o
          FROM moment.time_records t
          LEFT JOIN moment.projects p ON p.company_id = t.company_id AND p.id = t.project_id
         WHERE t.company_id = :big_company
         ORDER BY t.id
         LIMIT :max_cap1) s;
