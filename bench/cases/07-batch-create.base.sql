-- 7 baseline: PostgREST's bulk insert shape over the same 1000 bodies, one jsonb back.
-- Rolled back so the table keeps its size; both sides pay the same ROLLBACK.
BEGIN;
WITH created AS (
  INSERT INTO moment.time_records AS t (company_id, project_id, user_account_id, time_record_date, minutes, description)
  SELECT :company, r."projectId", r."userAccountId", r."timeRecordDate", r.minutes, r.description
    FROM bench.payload p,
         jsonb_to_recordset(p.body -> 'create') AS r("projectId" bigint, "userAccountId" bigint,
                                                   "timeRecordDate" date, minutes integer, description text)
   WHERE p.id = 1
  RETURNING jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                               'projectMembershipId', t.project_membership_id,
                               'timeRecordDate', t.time_record_date, 'minutes', t.minutes) AS o
)
SELECT jsonb_agg(o) FROM created;
ROLLBACK;
