// The API page (write_api_page in scripts/lib.sh: Swagger UI and the document)
// in headless Chromium: every entity's operations render, one of them opens
// with its parameters and responses, the page logs no console error and asks
// for nothing but its own files; a screenshot is saved.
//
//   node browser.mjs URL DOCUMENT SCREENSHOT
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { check, finish, require } from './lib.mjs';

const { chromium } = require('playwright-core');
const [url, documentFile, screenshot] = process.argv.slice(2);
const doc = JSON.parse(fs.readFileSync(documentFile, 'utf8'));

const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'moment-chromium-'));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath: '/usr/bin/chromium',
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  viewport: { width: 1280, height: 900 },
});
try {
  const page = context.pages()[0] ?? await context.newPage();
  const problems = [];
  page.on('console', (message) => {
    if (message.type() === 'error')
      problems.push(`console error: ${message.text()}`);
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('requestfailed', (request) => problems.push(`request failed: ${request.url()} ${request.failure()?.errorText}`));
  page.on('response', (response) => {
    if (response.status() >= 400)
      problems.push(`HTTP ${response.status()}: ${response.url()}`);
  });
  // the page must not reach out: anything but its own server is refused and counted
  const origin = new URL(url).origin;
  await page.route('**/*', (route) => {
    if (new URL(route.request().url()).origin === origin)
      return route.continue();
    problems.push(`request outside the page: ${route.request().url()}`);
    return route.abort();
  });

  await page.goto(url, { waitUntil: 'networkidle' });
  await page.waitForSelector('.swagger-ui .info .title', { timeout: 30000 });
  await page.waitForSelector('.swagger-ui .opblock', { timeout: 30000 });
  const title = await page.textContent('.swagger-ui .info .title');
  check(title.includes(doc.info.title) && title.includes(doc.info.version), `the page shows "${doc.info.title}" ${doc.info.version}`, title);

  // what Swagger UI rendered: per tag section, each operation's method and path
  const rendered = await page.evaluate(() => {
    const sections = {};
    for (const section of document.querySelectorAll('.swagger-ui .opblock-tag-section')) {
      const tag = section.querySelector('.opblock-tag')?.getAttribute('data-tag');
      sections[tag] = [...section.querySelectorAll('.opblock')].map((block) => ({
        method: block.querySelector('.opblock-summary-method')?.textContent.trim().toLowerCase(),
        path: block.querySelector('.opblock-summary-path')?.getAttribute('data-path'),
        visible: block.getBoundingClientRect().height > 0,
      }));
    }
    return sections;
  });
  const expected = {};
  for (const [p, item] of Object.entries(doc.paths))
    for (const [method, operation] of Object.entries(item))
      if (method !== 'parameters')
        for (const tag of operation.tags)
          (expected[tag] ??= []).push({ method, path: p });
  for (const tag of doc.tags.map((t) => t.name)) {
    const shown = rendered[tag] ?? [];
    const missing = (expected[tag] ?? []).filter((o) => !shown.some((r) => r.visible && r.method === o.method && r.path === o.path));
    check((expected[tag] ?? []).length > 0 && missing.length === 0 && shown.length === expected[tag].length,
      `tag ${tag}: its ${(expected[tag] ?? []).length} operations render`, { missing, shown: shown.length });
  }

  // one operation opened: the registered entity's listing, with its query parameters and statuses
  const listing = doc.paths['/api/1.0/companies/{companyCode}/gadgets']?.get;
  if (check(listing, 'the document has GET /gadgets')) {
    const block = page.locator('.opblock-tag-section', { has: page.locator('[data-tag="gadgets"]') })
      .locator('.opblock-get', { has: page.locator('[data-path="/api/1.0/companies/{companyCode}/gadgets"]') });
    await block.locator('.opblock-summary').first().click();
    await block.locator('.parameters').first().waitFor({ timeout: 10000 });
    const parameters = await block.locator('.parameters .parameter__name').allTextContents();
    const names = parameters.map((t) => t.replace(/\s*\*.*$/s, '').trim());
    const wantedNames = ['companyCode', 'noLimit', 'page', 'size', 'sort', 'fromDate', 'toDate', 'ids', 'colour', 'gadgetState'];
    check(wantedNames.every((n) => names.includes(n)), 'GET /gadgets opens with its parameters', names);
    const codes = await block.locator('.responses-table .response-col_status').allTextContents();
    const statuses = codes.map((c) => c.trim().split(/\s/)[0]);
    check(['200', '400', '403', '404', '409', '500'].every((s) => statuses.includes(s)), 'GET /gadgets shows its responses', statuses);
  }

  await page.waitForLoadState('networkidle');
  check(problems.length === 0, 'no console errors, failed or outside requests', problems);
  // the top of the page, and the whole page (every operation, the opened one, the schemas)
  const whole = screenshot.replace(/\.png$/, '-full.png');
  fs.mkdirSync(path.dirname(screenshot), { recursive: true });
  await page.evaluate(() => window.scrollTo(0, 0));
  await page.screenshot({ path: screenshot });
  await page.screenshot({ path: whole, fullPage: true });
  check(fs.statSync(screenshot).size > 10000 && fs.statSync(whole).size > 10000,
    `screenshots saved: ${screenshot} (the top), ${whole} (the whole page)`);
} finally {
  await context.close();
  fs.rmSync(userDataDir, { recursive: true, force: true });
}
finish();
