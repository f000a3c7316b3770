-- 5 ours: moment.list with no_limit: 30 000 rows of the big company
SELECT moment.list('timeRecords', 'base+project.name', '{}', no_limit => true);
