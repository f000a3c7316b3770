-- 14 ours: moment.hours_report for one month of the 40 000-record company, by project and user
SELECT * FROM moment.hours_report(:month_from, :month_last, 'project,userAccount');
