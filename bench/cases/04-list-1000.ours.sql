-- 4 ours: moment.list of 1000 rows (moment.default_limit = 1000) with a relation field
SELECT moment.list('timeRecords', 'base+project.name', '{"timeRecordDate": {"gte": "@@list_from@@", "lt": "@@list_to@@"}}');
