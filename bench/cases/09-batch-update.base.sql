-- 9 baseline: bulk UPDATE ... FROM jsonb_to_recordset of 1000 existing rows, one jsonb back
BEGIN;
WITH updated AS (
  UPDATE moment.time_records AS t
     SET minutes = r.minutes, description = r.description, updated_at = now()
    FROM bench.payload p,
         jsonb_to_recordset(p.body) AS r(id bigint, minutes integer, description text)
   WHERE p.id = 3 AND t.company_id = :company AND t.id = r.id
  RETURNING jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                               'projectMembershipId', t.project_membership_id,
                               'timeRecordDate', t.time_record_date, 'minutes', t.minutes) AS o
)
SELECT jsonb_agg(o) FROM updated;
ROLLBACK;
