import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, shotsDir, signIn } from '../harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test('the overview shows every environment and the demo models, server-rendered without JavaScript', async () => {
  const ctx = await browser.newContext({ javaScriptEnabled: false });
  const page = await ctx.newPage();
  await signIn(page, server.base);
  for (const env of ['development', 'staging', 'production']) {
    await page.getByRole('columnheader', { name: new RegExp(env) }).waitFor();
  }
  const rows = await page.locator('table.matrix tbody tr').count();
  assert.ok(rows >= 3, `expected the demo models in the table, saw ${rows} rows`);
  await page.screenshot({ path: join(shotsDir, 'overview-nojs.png'), fullPage: true });
  await ctx.close();
});

test('the overview hydrates: typing in the filter narrows the models in the browser', async () => {
  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page, server.base);
  const rows = page.locator('table.matrix tbody tr');
  const before = await rows.count();
  const first = (await rows.first().locator('.model').textContent()).trim();
  // The filter only works once the wasm bundle has hydrated the page.
  await page.locator('header[data-hydrated="true"]').waitFor({ timeout: 20_000 });
  await page.getByLabel('Filter models').fill(first);
  await page.waitForFunction(
    (n) => document.querySelectorAll('table.matrix tbody tr').length < n,
    before,
    { timeout: 20_000 },
  );
  assert.match(await page.locator('.count').textContent(), new RegExp(`of ${before} models`));
  await page.getByLabel('Filter models').fill('no-such-model-anywhere');
  await page.getByText('No model matches this filter.').waitFor();
  assert.deepEqual(errors, []);
  await page.getByLabel('Filter models').fill('');
  await page.screenshot({ path: join(shotsDir, 'overview.png'), fullPage: true });
  await ctx.close();
});
