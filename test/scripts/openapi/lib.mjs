// Shared by the OpenAPI tests: the npm packages (installed by node_tools in
// scripts/lib.sh, found through MOMENT_NODE_MODULES), checks in the style of
// test/scripts/lib/checks.py, and calls of moment.api().
import { createRequire } from 'node:module';
import path from 'node:path';
import util from 'node:util';

const modules = process.env.MOMENT_NODE_MODULES;
if (!modules) {
  console.error('MOMENT_NODE_MODULES is not set: run through test/scripts/openapi*.sh');
  process.exit(2);
}
export const nodeModules = modules;
export const require = createRequire(path.join(modules, 'moment-openapi-tests.cjs'));

const started = Date.now();
const failures = [];
let count = 0;

/* Prints "ok   - what" or "FAIL - what" (with what was got) and records it. */
export function check(condition, what, got) {
  count++;
  if (condition) {
    console.log('ok   - ' + what);
  } else {
    failures.push(what);
    console.log('FAIL - ' + what + (got === undefined ? '' :
      '\n       got: ' + (typeof got === 'string' ? got : util.inspect(got, { depth: 6, breakLength: 120 }))));
  }
  return condition;
}

/* The summary line, the failed checks again, and the exit status. */
export function finish() {
  console.log(`# ${count} checks, ${failures.length} failed, ${((Date.now() - started) / 1000).toFixed(1)} s`);
  for (const failure of failures)
    console.log('FAILED: ' + failure);
  process.exit(failures.length > 0 || count === 0 ? 1 : 0);
}

/* (status, response) of moment.api(); a read-only transaction when asked. */
export async function api(client, method, path, body, { readOnly = false } = {}) {
  if (readOnly)
    await client.query('BEGIN READ ONLY');
  try {
    const result = await client.query('SELECT status, response FROM moment.api($1, $2, $3::jsonb)',
      [method, path, body === undefined ? null : JSON.stringify(body)]);
    return result.rows[0];
  } finally {
    if (readOnly)
      await client.query('COMMIT');
  }
}
