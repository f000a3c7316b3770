-- moment.openapi() and GET /openapi.json: an OpenAPI 3.0.3 document of the
-- paths api() answers, built from the registry at call time.  (The validators,
-- the response conformance and the browser: test/scripts/openapi*.sh.)
\i test/fixtures/seed.sql
RESET moment.company;

-- STABLE, one signature, SECURITY INVOKER, PostgREST's argument name
SELECT p.oid::regprocedure AS function, p.provolatile AS volatility, p.prosecdef AS security_definer,
       p.proargnames AS arguments
  FROM pg_proc p WHERE p.pronamespace = 'moment'::regnamespace AND p.proname = 'openapi';

-- The frame: a superuser needs no company
SELECT d ->> 'openapi' AS openapi, d #>> '{info,title}' AS title, d #>> '{info,version}' AS version,
       d -> 'servers' AS servers, d -> 'security' AS security
  FROM moment.openapi() d;
-- the same registry, the same bytes
SELECT moment.openapi()::text = moment.openapi()::text AS deterministic;

-- Operations per tag: 13 per entity, the two reports, the document itself
SELECT op -> 'tags' ->> 0 AS tag, count(*) AS operations
  FROM jsonb_each(moment.openapi() -> 'paths') p(path, item), jsonb_each(p.item) o(method, op)
 WHERE o.method <> 'parameters'
 GROUP BY 1 ORDER BY 1;

-- The paths of one entity and their methods (DELETE takes no include)
SELECT p.path, string_agg(o.method, ', ' ORDER BY o.method) AS methods,
       jsonb_path_query_array(p.item, '$.parameters[*]."$ref"') AS path_parameters
  FROM jsonb_each(moment.openapi() -> 'paths') p(path, item), jsonb_each(p.item) o(method, op)
 WHERE o.method <> 'parameters' AND p.path LIKE '%/offers%'
 GROUP BY p.path, p.item ORDER BY p.path;

-- The operations of a listing: query parameters and statuses
SELECT op ->> 'operationId' AS operation,
       (SELECT string_agg(replace(r ->> '$ref', '#/components/parameters/', ''), ', ')
          FROM jsonb_array_elements(op -> 'parameters') r) AS parameters,
       (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(op -> 'responses') k) AS statuses
  FROM jsonb_each(moment.openapi() -> 'paths') p(path, item), jsonb_each(p.item) o(method, op)
 WHERE p.path = '/api/1.0/companies/{companyCode}/timeRecords' AND o.method <> 'parameters' ORDER BY 1;
SELECT op ->> 'operationId' AS operation,
       (SELECT string_agg(k, ', ' ORDER BY k) FROM jsonb_object_keys(op -> 'responses') k) AS statuses,
       op #>> '{requestBody,content,application/json,schema,$ref}' AS body
  FROM jsonb_each(moment.openapi() -> 'paths') p(path, item), jsonb_each(p.item) o(method, op)
 WHERE p.path LIKE '/api/1.0/companies/{companyCode}/offers%' AND o.method NOT IN ('get', 'parameters') ORDER BY 1;

-- The default representation of offers: every field and the related objects' names
SELECT d #> '{components,schemas,offers.object,required}' AS keys,
       d #> '{components,schemas,offers.object,additionalProperties}' AS additional
  FROM moment.openapi() d;
SELECT key, value - 'description' AS schema
  FROM jsonb_each(moment.openapi() #> '{components,schemas,offers.object,properties}') ORDER BY key;
-- a create names what it requires; an update nothing
SELECT d #> '{components,schemas,offers.create,required}' AS create_requires,
       d #> '{components,schemas,offers.update,required}' AS update_requires
  FROM moment.openapi() d;

-- An include spec: the parts (with their keys) and metadata sets, as examples too
SELECT moment.openapi() #>> '{components,parameters,timeRecords.spec,description}' AS description;
SELECT key, value ->> 'value' AS spec
  FROM jsonb_each(moment.openapi() #> '{components,parameters,timeRecords.spec,examples}') ORDER BY key;
SELECT key, value - 'description' AS schema
  FROM jsonb_each(moment.openapi() #> '{components,schemas,timeRecords.metadata,properties}') ORDER BY key;

-- Field filters and the date range
SELECT value - 'description' AS parameter
  FROM jsonb_each(moment.openapi() -> 'components' -> 'parameters')
 WHERE key IN ('timeRecords.fromDate', 'timeRecords.filter.approved', 'projects.filter.projectState', 'ids')
 ORDER BY key;

-- Every status's error types, from the router's own tables
SELECT key AS schema, value #> '{properties,error_type,enum}' AS error_types
  FROM jsonb_each(moment.openapi() -> 'components' -> 'schemas') WHERE key LIKE '%Body' ORDER BY key;
SELECT key AS response, value #> '{content,application/json,example,error_type}' AS example_type
  FROM jsonb_each(moment.openapi() -> 'components' -> 'responses') ORDER BY key;

-- A report's rows
SELECT key, value AS schema,
       moment.openapi() #> '{components,schemas,ProjectHoursReportRow,required}' ? key AS required
  FROM jsonb_each(moment.openapi() #> '{components,schemas,ProjectHoursReportRow,properties}') ORDER BY key;

-- server_url: servers, and paths without the company prefix
SELECT d -> 'servers' AS servers,
       (SELECT count(*) FROM jsonb_object_keys(d -> 'paths') k WHERE k LIKE '/api/%') AS prefixed_paths,
       d -> 'paths' ? '/offers/{id}' AS bare_paths, d #> '{components,parameters}' ? 'companyCode' AS company_parameter
  FROM moment.openapi('https://moment.test/api/1.0/companies/cloudware') d;
SELECT pg_temp.try($$ SELECT moment.openapi('') $$);

-- GET /openapi.json through api(): the same document; nothing else is routed there
SELECT status, response = moment.openapi() AS same FROM moment.api('GET', '/api/1.0/companies/cloudware/openapi.json');
SELECT status, response = moment.openapi() AS same FROM moment.api('GET', '/openapi.json');
SELECT * FROM moment.api('GET', '/openapi.json?pretty=1');
SELECT * FROM moment.api('POST', '/openapi.json');
SELECT * FROM moment.api('GET', '/openapi.json/paths');

-- A company role needs a company in force, one it is granted
CREATE ROLE moment_openapi_user;
SELECT moment.grant_company('cloudware', 'moment_openapi_user', false);
SET ROLE moment_openapi_user;
SELECT pg_temp.try($$ SELECT moment.openapi() IS NOT NULL $$);
SELECT status FROM moment.api('GET', '/api/1.0/companies/cloudware/openapi.json');
SELECT * FROM moment.api('GET', '/api/1.0/companies/rival/openapi.json');
SET moment.company = 'cloudware';
SELECT moment.openapi() ->> 'openapi' AS openapi;
RESET moment.company;
RESET ROLE;
SELECT moment.revoke_company('cloudware', 'moment_openapi_user');
DROP ROLE moment_openapi_user;

-- A table registered a second ago is in the next document; a part that no
-- longer resolves is named as broken; a broken entity has no paths
CREATE TABLE public.openapi_notes (
	company_id bigint NOT NULL REFERENCES moment.companies (id),
	id bigint GENERATED BY DEFAULT AS IDENTITY,
	project_id bigint NOT NULL,
	kind text NOT NULL DEFAULT 'memo' CHECK (kind IN ('memo', 'call')),
	body_text text,
	PRIMARY KEY (company_id, id),
	FOREIGN KEY (company_id, project_id) REFERENCES moment.projects (company_id, id)
);
SELECT moment.register_entity('openapiNotes', 'public.openapi_notes');
SELECT moment.define_part('openapiNotes', 'texts', ARRAY['bodyText', 'project.name']);
SELECT key, value - 'description' AS schema
  FROM jsonb_each(moment.openapi() #> '{components,schemas,openapiNotes.object,properties}') ORDER BY key;
SELECT moment.openapi() #> '{components,schemas,openapiNotes.create,required}' AS create_requires;
ALTER TABLE public.openapi_notes DROP COLUMN body_text;
SELECT line FROM regexp_split_to_table(moment.openapi() #>> '{components,parameters,openapiNotes.spec,description}', '\n') line
 WHERE line LIKE '- `%';
SELECT moment.openapi() #> '{components,parameters,openapiNotes.spec,examples}' ? 'texts' AS texts_offered;
ALTER TABLE public.openapi_notes RENAME COLUMN id TO note_id;
SELECT moment.openapi() -> 'paths' ? '/api/1.0/companies/{companyCode}/openapiNotes' AS broken_entity_documented;
DROP TABLE public.openapi_notes;
SELECT moment.openapi() -> 'paths' ? '/api/1.0/companies/{companyCode}/openapiNotes' AS dropped_entity_documented;
