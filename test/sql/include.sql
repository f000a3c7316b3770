-- Include projection: fields, parts, relations, metadata, and their errors.
\i test/fixtures/seed.sql

-- The seed example: GET /offers/include/base+currencyCode+metadata.overviewPage
SELECT jsonb_pretty(moment.get('offers', 2, 'base+currencyCode+metadata.overviewPage'));

-- id is always returned; NULL, empty and blank specs mean base
SELECT moment.get('offers', 1, 'name');
SELECT moment.get('offers', 1, NULL) = moment.get('offers', 1, 'base') AS null_is_base,
       moment.get('offers', 1, '') = moment.get('offers', 1, 'base') AS empty_is_base,
       moment.get('offers', 1, '   ') = moment.get('offers', 1, 'base') AS blank_is_base,
       moment.get('offers', 1) = moment.get('offers', 1, 'base') AS default_is_base;

-- + and , both separate items; spaces around items are ignored; duplicates merge
SELECT moment.get('offers', 1, ' name , currencyCode+ name +id ');

-- fields of related objects are flattened to camelCase keys; a NULL relation gives NULLs
SELECT moment.get('offers', 1, 'customer.name+project.name+project.customer.customerNumber');
SELECT moment.get('offers', 2, 'customer.name+project.name+project.customer.customerNumber');

-- relation.part expands the related entity's part
SELECT moment.get('timeRecords', 1, 'minutes+project.base+userAccount.name');

-- customer.id and customerId are the same value under the same key
SELECT moment.get('offers', 1, 'customerId+customer.id+customer.name');

-- numbers are JSON numbers, dates ISO strings, booleans booleans
SELECT moment.get('offers', 2, 'exchangeRate+totalSum+issueDate+validUntil');
SELECT jsonb_typeof(o -> 'exchangeRate') AS rate, jsonb_typeof(o -> 'issueDate') AS date
  FROM moment.get('offers', 2, 'sums+issueDate') o;
SELECT moment.get('timeRecords', 3, 'billable+approved+minutes');

-- several metadata sets merge under "metadata"; on one object they aggregate that object
SELECT moment.get('offers', 2, 'name+metadata.count+metadata.overviewPage+metadata.sums');
SELECT moment.get('timeRecords', 3, 'metadata.summary');

-- parts: a custom part, and the all part
SELECT moment.get('customers', 1, 'contact');
SELECT moment.get('userAccounts', 1, 'all');

-- other companies' rows are invisible: NULL, never the row
SELECT moment.get('offers', 3, 'name');
SELECT moment.get('offers', 999, 'name');
SELECT moment.get('offers', NULL, 'name');

-- Errors (contract section 8)
SELECT pg_temp.try($$ SELECT moment.get('offer', 1) $$);
SELECT pg_temp.try($$ SELECT moment.get(NULL, 1) $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'nmae') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'customer.nmae') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'custmer.name') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'name.first') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'metadata.nope') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'metadata') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'metadata.count.x') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'customer.metadata.count') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'companyId') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'customer..name') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'customer.') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, '.name') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'base+') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'base++name') $$);
-- white space between names separates items too (a URL's + arrives as a space)
SELECT moment.get('offers', 1, 'name currencyCode') = moment.get('offers', 1, 'name+currencyCode') AS space_separates;
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'customer. name') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'name;drop table x') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, '"name"') $$);
SELECT pg_temp.try($$ SELECT moment.get('offers', 1, 'nåme') $$);
-- over 3 relations deep, and over 8 KB
SELECT pg_temp.try($$ SELECT moment.get('timeRecords', 1, 'project.customer.a.b.name') $$);
SELECT pg_temp.try(format($$ SELECT moment.get('offers', 1, %L) $$, repeat('name+', 1638) || 'id'));
SELECT length(repeat('name+', 1638) || 'id') AS spec_bytes;
SELECT pg_temp.try(format($$ SELECT moment.get('offers', 1, %L) $$, repeat('name+', 1638) || 'idx'));
SELECT pg_temp.try(format($$ SELECT length(moment.get('offers', 1, %L)::text) $$, repeat('name+', 1638) || 'id'));

-- The seed example: PUT /offers/{id}/include/customer.id+customer.name with body {"customerId": 1}
SELECT moment.update('offers', 2, '{"customerId": 1}', 'customer.id+customer.name');
SELECT moment.update('offers', 2, '{"customerId": 2}', 'customer.id+customer.name');

-- Statement text is the same for the same shape, whatever the order of items
-- or the values: the second and third calls prepare nothing new.
SELECT plans_prepared AS before FROM moment.cache_stats() \gset
SELECT moment.get('offers', 1, 'currencyCode+customer.name+name');
SELECT (SELECT plans_prepared FROM moment.cache_stats()) - :before AS prepared_first;
SELECT moment.get('offers', 2, 'name+customer.name +currencyCode');
SELECT moment.get('offers', 1, 'customer.name, name, currencyCode, name');
SELECT (SELECT plans_prepared FROM moment.cache_stats()) - :before AS prepared_after_three;
