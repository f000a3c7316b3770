-- 3 ours: moment.create of one time record, include base
SELECT moment.create('timeRecords', '{"projectId": @@project_id@@, "userAccountId": @@user_id@@, "timeRecordDate": "2026-06-03", "minutes": 90, "description": "Bench"}');
