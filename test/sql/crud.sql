-- create, update, delete: bodies, types, constraints and their SQLSTATEs.
\i test/fixtures/seed.sql

-- create returns the projected new row; company_id comes from the company in force
SELECT moment.create('customers', '{"name": "Polar Retail", "customerNumber": "C003", "currencyCode": "NOK"}',
					 'base+currencyCode');
SELECT company_id, name, customer_state FROM moment.customers WHERE customer_number = 'C003';

-- JSON numbers, strings, booleans, nulls and dates go through the column types' input functions
SELECT moment.create('offers', '{"name": "Licences", "customerId": 4, "currencyCode": "EUR", "exchangeRate": "11.25",
								 "totalSum": 1234.567, "issueDate": "2024-03-01", "projectId": null}',
					 'sums+issueDate+projectId+customer.name');
SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": "2", "timeRecordDate": "2024-03-04",
									  "minutes": 45, "billable": false, "description": "Workshop"}',
					 'base+billable+approved+description+project.customer.name');

-- the update seed example and partial updates: only the given fields change (PUT = PATCH)
SELECT moment.update('timeRecords', 6, '{"minutes": 50}', 'base+billable+description');
SELECT moment.update('timeRecords', 6, '{"description": null, "approved": true}', 'minutes+description+approved');
-- updated_at is set on every update, created_at is not
SELECT created_at = updated_at AS untouched FROM moment.customers WHERE id = 1;
SELECT moment.update('customers', 1, '{"email": "hello@fjord.no"}', 'email');
SELECT created_at < updated_at AS touched FROM moment.customers WHERE id = 1;
-- an empty body changes nothing but still names a row that must exist
SELECT moment.update('customers', 1, '{}', 'name');

-- delete returns the id
SELECT moment.delete('timeRecords', 6);
SELECT count(*) FROM moment.time_records WHERE id = 6;

-- Errors: unknown field 42703, id/companyId 428C9, body not an object 22023
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "nmae": "Y"}') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "customer": {"name": "Y"}}') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "id": 77}') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"companyId": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 1, '{"id": 2}') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '[{"name": "X"}]') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '"X"') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', 'null') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', NULL) $$);
SELECT pg_temp.try($$ SELECT moment.create('customerz', '{"name": "X"}') $$);
-- constraints and types keep PostgreSQL's own SQLSTATEs
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"customerNumber": "C9"}') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": null}') $$);
SELECT pg_temp.try($$ SELECT moment.create('customers', '{"name": "X", "customerState": "angry"}') $$);
SELECT pg_temp.try($$ SELECT moment.create('projects', '{"name": "X", "customerId": 999}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-01-01", "minutes": 1441}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-01-01", "minutes": "lots"}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-01-01", "minutes": 1.5}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "someday", "minutes": 1}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-02-30", "minutes": 1}') $$);
SELECT pg_temp.try($$ SELECT moment.create('timeRecords', '{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-01-01", "minutes": 1, "billable": "maybe"}') $$);
SELECT pg_temp.try($$ SELECT moment.create('offers', '{"name": "X", "customerId": 1, "currencyCode": "EURO"}') $$);
SELECT pg_temp.try($$ SELECT moment.create('offers', '{"name": "X", "customerId": 1, "currencyCode": "EUR", "totalSum": 1e20}') $$);
SELECT pg_temp.try($$ SELECT moment.create('offers', '{"name": "X", "customerId": 1, "currencyCode": "EUR", "totalSum": {"amount": 1}}') $$);
-- a foreign key cannot point at another company's row
SELECT pg_temp.try($$ SELECT moment.create('projects', '{"name": "X", "customerId": 3}') $$);
SELECT pg_temp.try($$ SELECT moment.update('offers', 1, '{"projectId": 3}') $$);
-- update and delete of a missing row, or of another company's row: P0002
SELECT pg_temp.try($$ SELECT moment.update('customers', 999, '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 3, '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', 3, '{}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', 999) $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', 3) $$);
SELECT pg_temp.try($$ SELECT moment.update('customers', NULL, '{"name": "X"}') $$);
SELECT pg_temp.try($$ SELECT moment.delete('customers', NULL) $$);
-- a row still referenced cannot be deleted: 23503
SELECT pg_temp.try($$ SELECT moment.delete('customers', 1) $$);
-- nothing of the failed writes remains; the other company's rows are untouched
SELECT count(*) AS customers FROM moment.customers;
SELECT name FROM moment.customers WHERE company_id = 2;

-- A user's own table registered as an entity works like the built-in ones
CREATE TABLE public.expenses (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigserial,
	project_id bigint NOT NULL,
	spent_on date NOT NULL,
	amount numeric(10,2) NOT NULL CHECK (amount > 0),
	note text,
	receipt jsonb,
	PRIMARY KEY (company_id, id),
	FOREIGN KEY (company_id, project_id) REFERENCES moment.projects (company_id, id)
);
SELECT moment.register_entity('expenses', 'public.expenses');
SELECT moment.describe('expenses') -> 'relations' AS relations, moment.describe('expenses') -> 'dateField' AS date_field;
SELECT moment.create('expenses', '{"projectId": 1, "spentOn": "2024-03-05", "amount": 99.5, "note": "Train", "receipt": {"vendor": "NSB", "lines": [1, 2]}}',
					 'base+project.name+project.customer.name');
SELECT moment.update('expenses', 1, '{"amount": 120}', 'amount+project.name');
SELECT moment.get('expenses', 1, 'amount+receipt');
SELECT moment.list('expenses', 'amount+project.customer.name', '{"project.customer.name": {"like": "Fjord%"}}');
SELECT pg_temp.try($$ SELECT moment.create('expenses', '{"projectId": 1, "spentOn": "2024-03-05", "amount": -1}') $$);
SELECT pg_temp.try($$ SELECT moment.create('expenses', '{"projectId": 3, "spentOn": "2024-03-05", "amount": 1}') $$);
SELECT moment.delete('expenses', 1);
DROP TABLE public.expenses;
-- a dropped table is no entity any more
SELECT pg_temp.try($$ SELECT moment.get('expenses', 1) $$);
SELECT count(*) FROM moment.entities WHERE name = 'expenses';
