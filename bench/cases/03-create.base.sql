-- 3 baseline: hand-written INSERT ... RETURNING the same object moment.create returns
-- (the date is outside every listing filter of the other cases)
INSERT INTO moment.time_records AS t (company_id, project_id, user_account_id, time_record_date, minutes, description)
VALUES (:company, :project_id, :user_id, '2026-06-03', 90, 'Bench')
RETURNING jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                             'projectMembershipId', t.project_membership_id, 'timeRecordDate', t.time_record_date,
                             'minutes', t.minutes);
