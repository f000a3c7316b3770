-- 1 "ours": the same lookup, the row built as jsonb with jsonb_build_object
-- (hand-written: this case measures what building JSON costs in itself)
\set id random(:tr_lo, :tr_hi)
SELECT jsonb_build_object('id', t.id, 'projectId', t.project_id, 'userAccountId', t.user_account_id,
                          'projectMembershipId', t.project_membership_id, 'timeRecordDate', t.time_record_date,
                          'minutes', t.minutes, 'description', t.description, 'internalNote', t.internal_note,
                          'billable', t.billable, 'approved', t.approved, 'createdAt', t.created_at,
                          'updatedAt', t.updated_at)
  FROM moment.time_records t WHERE t.company_id = :company AND t.id = :id;
