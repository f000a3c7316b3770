-- 2 ours: moment.get with relation fields three joins wide
\set id random(:tr_lo, :tr_hi)
SELECT moment.get('timeRecords', :id, 'base+project.name+project.customer.name+userAccount.name');
