// The OpenAPI document of moment (moment.openapi(), GET /openapi.json), checked
// with the tools people use, on a database holding the built-in entities and a
// registered one (fixture.sql):
//
//   1. the document: deterministic, the same through api(), every entity of the
//      registry with its operations, a few facts checked by name;
//   2. @apidevtools/swagger-parser validates it (with and without server_url);
//   3. every example in it is valid against its schema (ajv);
//   4. @redocly/cli lint (recommended-strict: a warning fails too);
//   5. real responses of api() -- success and error, for every operation --
//      are routed through the document's paths and validated against the
//      schema of their status (ajv, OpenAPI 3.0 nullable); a status the
//      operation does not document, or a body that does not match, fails;
//   6. a table registered a second ago is in the next document, and a 500 of an
//      entity broken since then matches that document.
//
// Environment: PGHOST, PGPORT, PGUSER (a superuser), PGDATABASE (fixture.sql
// loaded), MOMENT_NODE_MODULES, MOMENT_OPENAPI_OUT (a directory for the
// documents), MOMENT_REPO.
import fs from 'node:fs';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { api, check, finish, nodeModules, require } from './lib.mjs';

const pg = require('pg');
const SwaggerParser = require('@apidevtools/swagger-parser');
const Ajv = require('ajv');
const addFormats = require('ajv-formats');

const out = process.env.MOMENT_OPENAPI_OUT;
const repo = process.env.MOMENT_REPO;
const prefix = '/api/1.0/companies/cloudware';
const rival = '/api/1.0/companies/rival';
const missingId = 999999999;

// OpenAPI 3.0 schemas: nullable is ajv's own keyword; example is documentation
const ajv = new Ajv({ allErrors: true, strict: true, strictTypes: false });
addFormats(ajv);
ajv.addKeyword('example');

function validate(schema, value) {
  const valid = ajv.validate(schema, value);
  return valid ? null : ajv.errors;
}

// The document's paths as api() would route a request, and the schemas of its answers.
class Spec {
  static async load(doc) {
    const spec = new Spec();
    spec.doc = doc;
    spec.deref = await SwaggerParser.dereference(structuredClone(doc));
    spec.templates = Object.keys(doc.paths).map((p) => ({ path: p, segments: p.split('/') }));
    return spec;
  }

  // the path template a concrete path matches, literal segments before templated ones
  route(method, url) {
    const segments = url.split('?')[0].split('/');
    let best = null;
    for (const template of this.templates) {
      if (template.segments.length !== segments.length)
        continue;
      let literals = 0;
      let matches = true;
      template.segments.forEach((segment, i) => {
        if (/^\{[^}]+\}$/.test(segment))
          return;
        if (segment === decodeURIComponent(segments[i]))
          literals++;
        else
          matches = false;
      });
      if (matches && (best === null || literals > best.literals))
        best = { template, literals };
    }
    if (best === null)
      return null;
    return { path: best.template.path, operation: this.deref.paths[best.template.path][method.toLowerCase()] };
  }

  operations() {
    const list = [];
    for (const [p, item] of Object.entries(this.deref.paths))
      for (const [method, operation] of Object.entries(item))
        if (method !== 'parameters')
          list.push({ path: p, method, operation });
    return list;
  }

  operation(operationId) {
    return this.operations().find((o) => o.operation.operationId === operationId)?.operation;
  }

  // a parameter of an operation, its own or its path's
  parameter(operationId, name) {
    const found = this.operations().find((o) => o.operation.operationId === operationId);
    return [...(found?.operation.parameters ?? []), ...(this.deref.paths[found?.path]?.parameters ?? [])]
      .find((p) => p.name === name);
  }
}

// ---- responses of api() against the document ----

const covered = new Map();	// operationId -> Set of statuses validated
const statusesSeen = new Set();

async function request(spec, client, method, url, body, expected) {
  const { status, operationId, readOnly = false } = expected;
  const label = `${method} ${url.replace(prefix, '')}${body === undefined ? '' : ' ' + JSON.stringify(body).slice(0, 80)}`;
  const result = await api(client, method, url, body, { readOnly });
  const routed = spec.route(method, url);
  const problems = [];
  let operation = routed?.operation;
  if (!operation)
    problems.push(`no documented operation at ${routed ? routed.path : 'any path'}`);
  else {
    if (operationId && operation.operationId !== operationId)
      problems.push(`routed to ${operation.operationId}, not ${operationId}`);
    const response = operation.responses[String(result.status)];
    if (!response)
      problems.push(`status ${result.status} is not documented (documented: ${Object.keys(operation.responses)})`);
    else {
      const errors = validate(response.content['application/json'].schema, result.response);
      if (errors)
        problems.push(`the body does not match the ${result.status} schema: ${ajv.errorsText(errors)}`);
      else {
        if (!covered.has(operation.operationId))
          covered.set(operation.operationId, new Set());
        covered.get(operation.operationId).add(result.status);
        statusesSeen.add(result.status);
      }
    }
  }
  const wanted = status === undefined ? null : [].concat(status);
  if (wanted && !wanted.includes(result.status))
    problems.push(`status ${result.status}, wanted ${wanted.join(' or ')}`);
  check(problems.length === 0, `${label} -> ${result.status}${operation ? ' (' + operation.operationId + ')' : ''}`,
    problems.length ? { problems, body: result.response } : undefined);
  return result;
}

// A body for create/update: the writable fields of an existing object, strings that
// may be unique made different.
function bodyFrom(spec, entity, sample, suffix) {
  const schema = spec.operation(`${entity}.create`).requestBody.content['application/json'].schema;
  const body = {};
  for (const [name, property] of Object.entries(schema.properties)) {
    let value = sample[name];
    if (property.readOnly || value === undefined || value === null)
      continue;
    if (typeof value === 'string' && property.type === 'string' && !property.enum && !property.format &&
        !property.pattern && property.maxLength === undefined)
      value = `${value}-${suffix}`;
    body[name] = value;
  }
  return body;
}

function queryValue(value) {
  return encodeURIComponent(typeof value === 'string' ? value : JSON.stringify(value));
}

async function exerciseEntity(spec, client, entity) {
  const base = `${prefix}/${entity}`;
  const id = (op) => `${entity}.${op}`;
  const listing = await request(spec, client, 'GET', base, undefined, { status: 200, operationId: id('list') });
  const content = listing.response?.content ?? [];
  if (!check(content.length > 0, `${entity}: the test data holds an object`))
    return;
  const sample = content[0];
  const list = spec.operation(id('list'));
  const includeParameter = spec.parameter(id('listWithInclude'), 'spec');

  // list: paging, limits, order, ids, dates, every field filter, an IN
  await request(spec, client, 'GET', `${base}?page=0&size=1`, undefined, { status: 200, operationId: id('list') });
  await request(spec, client, 'GET', `${base}?noLimit=true&sort=id,desc`, undefined, { status: 200 });
  await request(spec, client, 'GET', `${base}?ids=${content.map((o) => o.id).join(',')}`, undefined, { status: 200 });
  const fromDate = list.parameters.find((p) => p.name === 'fromDate');
  if (fromDate) {
    const [from, to] = fromDate.schema.format === 'date-time' ?
      ['2000-01-01T00:00:00Z', '2100-01-01T00:00:00Z'] : ['2000-01-01', '2100-12-31'];
    await request(spec, client, 'GET', `${base}?fromDate=${queryValue(from)}&toDate=${queryValue(to)}`, undefined, { status: 200 });
  }
  for (const parameter of list.parameters) {
    const name = parameter.name;
    if (parameter.in !== 'query' || ['noLimit', 'page', 'size', 'sort', 'ids', 'fromDate', 'toDate'].includes(name))
      continue;
    if (sample[name] === null || sample[name] === undefined)
      continue;
    const answer = await request(spec, client, 'GET', `${base}?${name}=${queryValue(sample[name])}`, undefined, { status: 200 });
    check(answer.response?.content?.some((o) => o.id === sample.id), `${entity}?${name}=...: finds the object it came from`);
  }
  await request(spec, client, 'GET', `${base}?id=${sample.id}&id=${missingId}`, undefined, { status: 200 });
  // list errors
  await request(spec, client, 'GET', `${base}?page=-1`, undefined, { status: 400, operationId: id('list') });
  await request(spec, client, 'GET', `${base}?noSuchField=1`, undefined, { status: 400 });
  await request(spec, client, 'GET', `${rival}/${entity}`, undefined, { status: 403 });

  // every part and metadata set the include parameter offers, on a listing and an object
  check(Object.keys(includeParameter?.examples ?? {}).length > 1, `${entity}: the include parameter offers parts`);
  for (const example of Object.values(includeParameter?.examples ?? {})) {
    await request(spec, client, 'GET', `${base}/include/${encodeURIComponent(example.value)}?page=0&size=2`, undefined,
      { status: 200, operationId: id('listWithInclude') });
    await request(spec, client, 'GET', `${base}/${sample.id}/include/${encodeURIComponent(example.value)}`, undefined,
      { status: 200, operationId: id('getWithInclude') });
  }
  await request(spec, client, 'GET', `${base}/include/noSuchPart`, undefined, { status: 400, operationId: id('listWithInclude') });
  await request(spec, client, 'GET', `${base}/${sample.id}/include/base+noSuchPart`, undefined, { status: 400, operationId: id('getWithInclude') });

  // get
  await request(spec, client, 'GET', `${base}/${sample.id}`, undefined, { status: 200, operationId: id('get') });
  await request(spec, client, 'GET', `${base}/${missingId}`, undefined, { status: 404, operationId: id('get') });
  await request(spec, client, 'GET', `${base}/${sample.id}?page=1`, undefined, { status: 400, operationId: id('get') });

  // create, update, delete, batch
  const created = await request(spec, client, 'POST', base, bodyFrom(spec, entity, sample, 'c1'), { status: 201, operationId: id('create') });
  const created2 = await request(spec, client, 'POST', `${base}/include/base`, bodyFrom(spec, entity, sample, 'c2'),
    { status: 201, operationId: id('createWithInclude') });
  await request(spec, client, 'POST', base, {}, { status: [400, 422], operationId: id('create') });
  await request(spec, client, 'POST', base, { noSuchField: 1 }, { status: 400 });
  await request(spec, client, 'POST', `${base}/include/base`, { ...bodyFrom(spec, entity, sample, 'c3'), id: 1 },
    { status: 400, operationId: id('createWithInclude') });
  const one = created.response?.id;
  const two = created2.response?.id;
  if (!check(Number.isInteger(one) && Number.isInteger(two), `${entity}: created two objects`))
    return;
  await request(spec, client, 'PUT', `${base}/${one}`, bodyFrom(spec, entity, sample, 'u1'), { status: 200, operationId: id('put') });
  await request(spec, client, 'PATCH', `${base}/${one}`, bodyFrom(spec, entity, sample, 'u2'), { status: 200, operationId: id('patch') });
  await request(spec, client, 'PUT', `${base}/${one}/include/base`, bodyFrom(spec, entity, sample, 'u3'),
    { status: 200, operationId: id('putWithInclude') });
  await request(spec, client, 'PATCH', `${base}/${one}/include/default`, bodyFrom(spec, entity, sample, 'u4'),
    { status: 200, operationId: id('patchWithInclude') });
  await request(spec, client, 'PUT', `${base}/${missingId}`, bodyFrom(spec, entity, sample, 'u5'), { status: 404, operationId: id('put') });
  await request(spec, client, 'PATCH', `${base}/${one}`, { id: one }, { status: 400, operationId: id('patch') });
  await request(spec, client, 'PUT', `${base}/${missingId}/include/base`, bodyFrom(spec, entity, sample, 'u6'),
    { status: 404, operationId: id('putWithInclude') });
  await request(spec, client, 'PATCH', `${base}/${one}/include/base`, { noSuchField: 1 },
    { status: 400, operationId: id('patchWithInclude') });
  const batch = await request(spec, client, 'POST', `${base}/batch`,
    { create: [bodyFrom(spec, entity, sample, 'b1')], update: { [one]: bodyFrom(spec, entity, sample, 'b2') } },
    { status: 200, operationId: id('batch') });
  const batched = batch.response?.created?.[0]?.id;
  await request(spec, client, 'POST', `${base}/batch/include/base`,
    { create: [bodyFrom(spec, entity, sample, 'b3')], delete: [batched] }, { status: 200, operationId: id('batchWithInclude') });
  await request(spec, client, 'POST', `${base}/batch`, { noSuchKey: [] }, { status: 400, operationId: id('batch') });
  await request(spec, client, 'POST', `${base}/batch/include/base`, { create: [{}] },
    { status: [400, 422], operationId: id('batchWithInclude') });
  await request(spec, client, 'DELETE', `${base}/${two}`, undefined, { status: 200, operationId: id('delete') });
  await request(spec, client, 'DELETE', `${base}/${two}`, undefined, { status: 404, operationId: id('delete') });
}

async function exerciseSpecialCases(spec, client) {
  // 405: writes in a read-only transaction
  const gadget = (await api(client, 'GET', `${prefix}/gadgets?page=0&size=1`)).response.content[0];
  const body = bodyFrom(spec, 'gadgets', gadget, 'ro');
  await request(spec, client, 'POST', `${prefix}/gadgets`, body, { status: 405, readOnly: true, operationId: 'gadgets.create' });
  await request(spec, client, 'PATCH', `${prefix}/gadgets/${gadget.id}`, body, { status: 405, readOnly: true });
  await request(spec, client, 'DELETE', `${prefix}/gadgets/${gadget.id}`, undefined, { status: 405, readOnly: true });
  await request(spec, client, 'POST', `${prefix}/gadgets/batch`, { create: [body] }, { status: 405, readOnly: true });
  // 409: a customer still referenced, a second membership of the same role
  await request(spec, client, 'DELETE', `${prefix}/customers/1`, undefined, { status: 409, operationId: 'customers.delete' });
  await request(spec, client, 'POST', `${prefix}/projectMemberships`, { projectId: 1, userAccountId: 1 },
    { status: 409, operationId: 'projectMemberships.create' });
  // 422: a reference to a missing object, a value outside its CHECK
  await request(spec, client, 'POST', `${prefix}/gadgets`, { name: 'Saw', projectId: missingId }, { status: 422 });
  await request(spec, client, 'PATCH', `${prefix}/gadgets/${gadget.id}`, { colour: 'purple' }, { status: 422 });
  // 403: a time record on or before its user's time lock
  await request(spec, client, 'PATCH', `${prefix}/userAccounts/1`, { timeLockDate: '2024-12-31' }, { status: 200 });
  await request(spec, client, 'PATCH', `${prefix}/timeRecords/1`, { minutes: 61 }, { status: 403, operationId: 'timeRecords.patch' });
  await request(spec, client, 'DELETE', `${prefix}/timeRecords/1`, undefined, { status: 403, operationId: 'timeRecords.delete' });
  await request(spec, client, 'PATCH', `${prefix}/userAccounts/1`, { timeLockDate: null }, { status: 200 });

  // the reports
  const report = `${prefix}/timeRecords/getReport`;
  await request(spec, client, 'GET', `${report}?fromDate=2024-01-01&toDate=2024-12-31`, undefined, { status: 200, operationId: 'timeRecords.getReport' });
  await request(spec, client, 'GET', `${report}?fromDate=2024-01-01&toDate=2024-12-31&groupBy=project,projectExtension,userAccount,customer,month`,
    undefined, { status: 200 });
  await request(spec, client, 'GET', `${report}?fromDate=2024-01-01&toDate=2024-12-31&groupBy=day&billable=true&noLimit=true`, undefined, { status: 200 });
  await request(spec, client, 'GET', `${report}?fromDate=2024-01-01`, undefined, { status: 400 });
  await request(spec, client, 'GET', `${report}?fromDate=2024-01-01&toDate=2024-12-31&groupBy=year`, undefined, { status: 400 });
  await request(spec, client, 'GET', `${rival}/timeRecords/getReport?fromDate=2024-01-01&toDate=2024-12-31`, undefined, { status: 403 });
  const projects = `${prefix}/projects/projectRegisteredHoursReport`;
  await request(spec, client, 'GET', `${projects}?fromDate=2024-01-01&toDate=2024-12-31`, undefined,
    { status: 200, operationId: 'projects.projectRegisteredHoursReport' });
  await request(spec, client, 'GET', `${projects}?fromDate=2024-01-01&toDate=2024-12-31&userAccountId=1,2`, undefined, { status: 200 });
  await request(spec, client, 'GET', `${projects}?fromDate=2024-12-31&toDate=2024-01-01`, undefined, { status: 400 });

  // the document itself
  await request(spec, client, 'GET', `${prefix}/openapi.json`, undefined, { status: 200, operationId: 'openapi' });
  await request(spec, client, 'GET', `${prefix}/openapi.json?pretty=true`, undefined, { status: 400 });
  await request(spec, client, 'GET', `${rival}/openapi.json`, undefined, { status: 403 });
}

// ---- the document's examples ----

function checkExamples(spec) {
  let examples = 0;
  const failed = [];
  const visited = new Set();	// the dereferenced document shares its components: each once
  const visit = (node, where) => {
    if (node === null || typeof node !== 'object' || visited.has(node))
      return;
    visited.add(node);
    if (Array.isArray(node)) {
      node.forEach((item, i) => visit(item, `${where}/${i}`));
      return;
    }
    const schema = node.schema ?? ((node.type !== undefined || node.properties !== undefined) ? node : null);
    if ('example' in node && schema) {
      examples++;
      const errors = validate(schema, node.example);
      if (errors)
        failed.push(`${where}: ${ajv.errorsText(errors)}`);
    }
    if (node.examples && node.schema) {
      for (const [name, example] of Object.entries(node.examples)) {
        examples++;
        const errors = validate(node.schema, example.value);
        if (errors)
          failed.push(`${where}/examples/${name}: ${ajv.errorsText(errors)}`);
      }
    }
    for (const [key, value] of Object.entries(node))
      if (key !== 'example' && key !== 'examples')
        visit(value, `${where}/${key}`);
  };
  visit(spec.deref, '#');
  check(examples > 0 && failed.length === 0, `every example of the document matches its schema (${examples} examples)`, failed);
}

// ---- the linter ----

function lint(file) {
  const result = spawnSync(path.join(nodeModules, '.bin', 'redocly'),
    ['lint', '--config', path.join(repo, 'test/scripts/openapi/redocly.yaml'), '--max-problems', '100', file],
    { encoding: 'utf8', env: { ...process.env, REDOCLY_TELEMETRY: 'off', REDOCLY_SUPPRESS_UPDATE_NOTICE: 'true', NO_COLOR: '1' } });
  const output = (result.stdout + result.stderr).split('\n').filter((l) => !/[║╔╚]/.test(l)).join('\n');
  const clean = result.status === 0 && !/warning/i.test(output.replace(/Deprecation warning: Node\.js 20[^\n]*/g, ''));
  check(clean, `redocly lint ${path.basename(file)}: no errors, no warnings`, output);
  const summary = output.split('\n').filter((l) => /valid|error|warning/i.test(l)).slice(-2).join(' / ');
  console.log(`#   redocly: ${summary.trim()}`);
}

// ---- the run ----

const admin = new pg.Client();
await admin.connect();
await admin.query("SET client_min_messages = warning");
const app = new pg.Client();
await app.connect();
await app.query('SET ROLE openapi_app');

// 1. the document
const text = (await admin.query('SELECT moment.openapi()::text AS d')).rows[0].d;
const again = (await admin.query('SELECT moment.openapi()::text AS d')).rows[0].d;
const other = new pg.Client();
await other.connect();
const fromOtherSession = (await other.query('SELECT moment.openapi()::text AS d')).rows[0].d;
await other.end();
check(text === again && text === fromOtherSession, 'the same registry gives the same bytes (twice, and in another session)');
fs.writeFileSync(path.join(out, 'openapi.json'), text);
const doc = JSON.parse(text);
const viaApi = await api(app, 'GET', `${prefix}/openapi.json`);
check(viaApi.status === 200 && JSON.stringify(viaApi.response) === JSON.stringify(doc),
  'GET /openapi.json through api(), as a company role, answers moment.openapi()', viaApi.status);
check(doc.openapi === '3.0.3' && doc.info.version && doc.servers[0].url === '/', 'OpenAPI 3.0.3, version, servers', doc.servers);

const spec = await Spec.load(doc);
const entities = (await admin.query('SELECT name FROM moment.entities ORDER BY name')).rows.map((r) => r.name);
check(entities.includes('gadgets') && entities.includes('timeRecords'), `the registry holds built-in and registered entities (${entities.length})`);
const verbs = ['list', 'listWithInclude', 'get', 'getWithInclude', 'create', 'createWithInclude', 'put', 'putWithInclude',
  'patch', 'patchWithInclude', 'delete', 'batch', 'batchWithInclude'];
for (const entity of entities) {
  const missing = verbs.filter((v) => !spec.operation(`${entity}.${v}`));
  check(missing.length === 0 && doc.tags.some((t) => t.name === entity), `${entity}: tag and its ${verbs.length} operations`, missing);
}
check(Object.keys(doc.paths).every((p) => p.startsWith('/api/1.0/companies/{companyCode}/')),
  'without server_url every path carries /api/1.0/companies/{companyCode}');
check(!doc.paths[`/api/1.0/companies/{companyCode}/gadgets/{id}/include/{spec}`].delete, 'DELETE takes no include');
for (const { operation, method } of spec.operations()) {
  const statuses = Object.keys(operation.responses).sort().join(',');
  const wanted = operation.operationId === 'openapi' ? '200,400,403,409,500' :
    method === 'get' ? '200,400,403,404,409,500' :
      operation.operationId.endsWith('.create') || operation.operationId.endsWith('.createWithInclude') ?
        '201,400,403,404,405,409,422,500' : '200,400,403,404,405,409,422,500';
  if (statuses !== wanted)
    check(false, `${operation.operationId}: responses ${wanted}`, statuses);
}
check(true, `${spec.operations().length} operations document their statuses`);

const schemas = doc.components.schemas;
check(JSON.stringify(schemas['gadgets.create'].required) === '["name","projectId"]', 'gadgets.create: required = writable, NOT NULL, no default',
  schemas['gadgets.create'].required);
const gadget = schemas['gadgets.object'].properties;
check(gadget.id.readOnly && gadget.nameLength.readOnly && !gadget.name.readOnly && gadget.customerName.readOnly,
  'gadgets: id, the generated column and relation names are read-only');
check(gadget.id.format === 'int64' && gadget.boughtOn.format === 'date' && gadget.lastSeen.format === 'date-time' &&
  gadget.localSeen.format === undefined && gadget.weight.type === 'number' && gadget.token.format === 'uuid' &&
  gadget.serialCode.maxLength === 12 && gadget.tags.type === 'array' && gadget.specs.type === undefined,
  'gadgets: JSON types and formats as api writes them', gadget);
check(JSON.stringify(gadget.colour.enum) === '["red","green","blue",null]' && gadget.colour.nullable &&
  JSON.stringify(gadget.gadgetState.enum) === '["new","used","broken"]' && !gadget.gadgetState.nullable,
  'gadgets: enums from CHECK constraints, null in the nullable one');
check(gadget.customerName.nullable === true && gadget.projectName.nullable === undefined,
  'gadgets: a nullable relation gives a nullable name, a NOT NULL one not');
check(JSON.stringify(schemas['projects.object'].properties.projectState.enum) === '["notStarted","inProgress","finished","archived"]',
  'projects: projectState enum');
check(schemas['gadgets.metadata'].properties.lastSeen.format === 'date-time' &&
  schemas['gadgets.metadata'].properties.totalWeight.type === 'number' &&
  schemas['offers.metadata'].properties.totalSumInCompanyCurrency.type === 'number',
  'metadata keys typed by their expressions');
const gadgetSpec = doc.components.parameters['gadgets.spec'];
check(/`tracking`: id, serialCode, lastSeen, localSeen, customerName, projectCustomerName/.test(gadgetSpec.description) &&
  gadgetSpec.examples.tracking && gadgetSpec.examples['metadata.weights'],
  'gadgets: the include parameter lists its parts and metadata sets');
check(spec.operation('gadgets.list').parameters.some((p) => p.name === 'fromDate') &&
  !spec.operation('customers.list').parameters.some((p) => p.name === 'fromDate'),
  'fromDate/toDate only where the entity has a date field');

// 2. validators
try {
  await SwaggerParser.validate(structuredClone(doc));
  check(true, 'swagger-parser: the document is valid');
} catch (error) {
  check(false, 'swagger-parser: the document is valid', error.message);
}
const serverUrl = 'https://moment.test/api/1.0/companies/cloudware';
const withServerText = (await admin.query('SELECT moment.openapi($1)::text AS d', [serverUrl])).rows[0].d;
const withServer = JSON.parse(withServerText);
fs.writeFileSync(path.join(out, 'openapi-server.json'), withServerText);
check(withServer.servers[0].url === serverUrl && withServer.paths['/gadgets/{id}'] && !withServer.components.parameters.companyCode,
  'with server_url: servers holds it, paths have no company prefix');
try {
  await SwaggerParser.validate(structuredClone(withServer));
  check(true, 'swagger-parser: the document with server_url is valid');
} catch (error) {
  check(false, 'swagger-parser: the document with server_url is valid', error.message);
}

// 3. examples
checkExamples(spec);

// 4. the linter
lint(path.join(out, 'openapi.json'));
lint(path.join(out, 'openapi-server.json'));

// 5. real responses
for (const entity of entities)
  await exerciseEntity(spec, app, entity);
await exerciseSpecialCases(spec, app);
const uncovered = [];
for (const { operation } of spec.operations()) {
  const statuses = [...(covered.get(operation.operationId) ?? [])];
  if (!statuses.some((s) => s < 300) || !statuses.some((s) => s >= 400))
    uncovered.push(`${operation.operationId}: ${statuses.join(',') || 'none'}`);
}
check(uncovered.length === 0, `every operation has a success and an error answer validated (${spec.operations().length} operations)`, uncovered);

// 6. registered a second ago; broken since
await admin.query(`CREATE TABLE public.late_widgets (company_id bigint NOT NULL, id bigint GENERATED BY DEFAULT AS IDENTITY,
  label text NOT NULL, PRIMARY KEY (company_id, id))`);
await admin.query("SELECT moment.register_entity('lateWidgets', 'public.late_widgets')");
await admin.query("INSERT INTO public.late_widgets (company_id, label) VALUES (1, 'first')");
const late = (await api(app, 'GET', `${prefix}/openapi.json`)).response;
const lateSpec = await Spec.load(late);
check(lateSpec.operation('lateWidgets.list') && late.components.schemas['lateWidgets.create'].required[0] === 'label',
  'a table registered a second ago is in the next document');
await request(lateSpec, app, 'GET', `${prefix}/lateWidgets`, undefined, { status: 200, operationId: 'lateWidgets.list' });
await admin.query('ALTER TABLE public.late_widgets RENAME COLUMN id TO ident');
await request(lateSpec, app, 'GET', `${prefix}/lateWidgets`, undefined, { status: 500, operationId: 'lateWidgets.list' });
const broken = (await api(app, 'GET', `${prefix}/openapi.json`)).response;
check(!broken.paths[`/api/1.0/companies/{companyCode}/lateWidgets`], 'a broken entity has no paths');
await admin.query('DROP TABLE public.late_widgets');
check((await admin.query('SELECT moment.openapi()::text AS d')).rows[0].d === text,
  'once it is gone, the document is byte for byte the first one again');
for (const status of [200, 201, 400, 403, 404, 405, 409, 422, 500])
  check(statusesSeen.has(status), `a real ${status} answer was validated`);
console.log(`#   ${[...covered.values()].reduce((n, s) => n + s.size, 0)} (operation, status) pairs validated; ` +
  `document ${Buffer.byteLength(text)} bytes`);

await app.end();
await admin.end();
finish();
