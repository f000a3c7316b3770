-- 6 ours: the typed listing function for reporting tools
SELECT * FROM moment.list_time_records('{"timeRecordDate": {"gte": "@@month_from@@", "lt": "@@month_to@@"}}');
