-- The REST router: Moment's paths, query strings and statuses from SQL.
\i test/fixtures/seed.sql
RESET moment.company;

-- GET /offers/include/base+currencyCode+metadata.overviewPage (company from the path)
SELECT status, jsonb_pretty(response)
  FROM moment.api('GET', '/api/1.0/companies/cloudware/offers/include/base+currencyCode+metadata.overviewPage');

-- PUT /offers/{id}/include/customer.id+customer.name with {"customerId": ...}
SELECT * FROM moment.api('PUT', '/api/1.0/companies/cloudware/offers/2/include/customer.id+customer.name', '{"customerId": 1}');
SELECT * FROM moment.api('PATCH', '/api/1.0/companies/cloudware/offers/2/include/customer.id+customer.name', '{"customerId": 2}');

-- Without the prefix, the company in force is used
SET moment.company = 'cloudware';
SELECT * FROM moment.api('GET', '/offers/1/include/name+customer.name');
SELECT * FROM moment.api('get', 'offers/1/include/name');
-- without /include/: the default representation (every field and the related names)
SELECT status, response - 'createdAt' - 'updatedAt' AS response FROM moment.api('GET', '/offers/1');
SELECT * FROM moment.api('GET', '/offers/1/include/base');

-- POST /timeRecords/batch with create, update and delete
SELECT status, jsonb_pretty(response) FROM moment.api('POST', '/api/1.0/companies/cloudware/timeRecords/batch/include/minutes+description', $${
	"create": [{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-03-01", "minutes": 15, "description": "From the router"},
			   {"projectId": 1, "userAccountId": 2, "timeRecordDate": "2024-03-01", "minutes": 25}],
	"update": {"1": {"minutes": 61}, "2": {"minutes": 91}},
	"delete": [3, 4]}$$);

-- POST creates (201), DELETE returns the id
SELECT * FROM moment.api('POST', '/customers/include/name+customerState', '{"name": "Router Customer"}');
SELECT * FROM moment.api('DELETE', '/customers/4');

-- Listing over the cap, with and without noLimit
SET moment.default_limit = 2;
SELECT status, response -> 'limitWasExceeded' AS exceeded, jsonb_array_length(response -> 'content') AS rows
  FROM moment.api('GET', '/timeRecords');
SELECT status, response -> 'limitWasExceeded' AS exceeded, jsonb_array_length(response -> 'content') AS rows
  FROM moment.api('GET', '/timeRecords?noLimit=true');
RESET moment.default_limit;

-- Query strings: paging, Spring-style sort, fromDate/toDate (inclusive) on the entity's date field,
-- field names as equality filters, percent-decoding
SELECT response FROM moment.api('GET', '/timeRecords/include/minutes?page=1&size=2&sort=minutes,desc');
SELECT response FROM moment.api('GET', '/timeRecords/include/timeRecordDate+minutes?fromDate=2024-01-02&toDate=2024-01-03&sort=timeRecordDate&sort=minutes,desc');
SELECT response FROM moment.api('GET', '/timeRecords/include/minutes?projectId=1&userAccountId=2');
SELECT response FROM moment.api('GET', '/timeRecords/include/minutes?minutes=15&minutes=91');
SELECT response FROM moment.api('GET', '/customers/include/name?name=Fjord%20Consulting');
SELECT response FROM moment.api('GET', '/customers/include/name?name=Fjord+Consulting');
SELECT response FROM moment.api('GET', '/offers/include/name%2BcurrencyCode?customer.name=Aurora%20Energy');
SELECT response FROM moment.api('GET', '/timeRecords/include/minutes+metadata.summary?sort=-minutes&size=1');

-- Every error status, as a response, never as an error
-- 400: bad input
SELECT * FROM moment.api('GET', '/offers/include/nmae');
SELECT * FROM moment.api('GET', '/offers/include/customer..name');
SELECT * FROM moment.api('GET', '/offers?nmae=1');
SELECT * FROM moment.api('GET', '/offers?size=0');
SELECT * FROM moment.api('GET', '/offers?size=lots');
SELECT * FROM moment.api('GET', '/offers?noLimit=maybe');
SELECT * FROM moment.api('GET', '/offers?sort=name,up');
SELECT * FROM moment.api('GET', '/customers?fromDate=2024-01-01');
SELECT * FROM moment.api('GET', '/offers?fromDate=someday');
SELECT * FROM moment.api('GET', '/offers/abc');
SELECT * FROM moment.api('GET', '/offers/1?size=2');
SELECT * FROM moment.api('GET', '/offers/%zz');
SELECT * FROM moment.api('POST', '/customers', '{"nmae": "x"}');
SELECT * FROM moment.api('POST', '/customers', '{"name": "x", "id": 5}');
SELECT * FROM moment.api('POST', '/customers', '[1]');
SELECT * FROM moment.api('POST', '/customers', NULL);
SELECT * FROM moment.api('POST', '/timeRecords/batch', '{"bogus": []}');
-- 403: a company the role is not granted
CREATE ROLE moment_api_user;
SELECT moment.grant_company('rival', 'moment_api_user', true);
SET ROLE moment_api_user;
SELECT * FROM moment.api('GET', '/api/1.0/companies/cloudware/offers');
SELECT * FROM moment.api('GET', '/offers');
SELECT status FROM moment.api('GET', '/api/1.0/companies/rival/offers/include/name');
SELECT * FROM moment.api('GET', '/api/1.0/companies/nonexistent/offers');
RESET ROLE;
SELECT moment.revoke_company('rival', 'moment_api_user');
REVOKE ALL ON ALL TABLES IN SCHEMA moment FROM moment_api_user;
REVOKE ALL ON ALL SEQUENCES IN SCHEMA moment FROM moment_api_user;
REVOKE ALL ON SCHEMA moment FROM moment_api_user;
DROP ROLE moment_api_user;
-- 404: unknown entity, id or path
SELECT * FROM moment.api('GET', '/offer');
SELECT * FROM moment.api('GET', '/offers/999');
SELECT * FROM moment.api('GET', '/offers/3');
SELECT * FROM moment.api('PUT', '/offers/999', '{"name": "x"}');
SELECT * FROM moment.api('DELETE', '/offers/999');
SELECT * FROM moment.api('GET', '/api/2.0/companies/cloudware/offers');
SELECT * FROM moment.api('GET', '/offers/1/extra');
SELECT * FROM moment.api('GET', '/');
-- 405: method not allowed
SELECT * FROM moment.api('DELETE', '/offers');
SELECT * FROM moment.api('POST', '/offers/1', '{}');
SELECT * FROM moment.api('GET', '/offers/batch');
SELECT * FROM moment.api('HEAD', '/offers');
SELECT * FROM moment.api(NULL, '/offers');
-- 409: conflict (a row still referenced)
SELECT * FROM moment.api('DELETE', '/customers/1');
-- 422: constraint violations
SELECT status, response -> 'error' AS error, response -> 'error_type' AS type FROM moment.api('POST', '/customers', '{"customerNumber": "C9"}');
SELECT * FROM moment.api('POST', '/projects', '{"name": "x", "customerId": 999}');
SELECT status, response -> 'error' AS error, response -> 'error_type' AS type FROM moment.api('PUT', '/timeRecords/1', '{"minutes": 9999}');
SELECT status, response -> 'error' FROM moment.api('POST', '/timeRecords/batch', '{"create": [{"projectId": 1, "userAccountId": 1, "timeRecordDate": "2024-05-01", "minutes": 1}, {"minutes": 1}]}');
-- nothing of a failed request remains
SELECT count(*) FROM moment.time_records WHERE time_record_date = '2024-05-01';
-- the router's error leaves the caller's transaction usable
BEGIN;
SELECT status FROM moment.api('POST', '/customers', '{"customerNumber": "no name"}');
SELECT status FROM moment.api('POST', '/customers/include/name', '{"name": "After an error"}');
COMMIT;
SELECT count(*) FROM moment.customers WHERE name = 'After an error';
-- the company from the path lasts only for the request
SELECT current_setting('moment.company');
