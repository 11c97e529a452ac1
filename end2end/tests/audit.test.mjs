import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { startServer, launchBrowser, openPage, hydrated, shot, api } from '../harness.mjs';

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

test('the audit log renders its newest events and filters by action without JavaScript', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/audit`);
  const rows = page.locator('table.audit tbody tr');
  assert.equal(await rows.count(), 50, 'a page of 50 events');
  await page.getByLabel('Action').selectOption('pin.changed');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/action=pin.changed/);
  const actions = await page.locator('table.audit tbody td:nth-child(4)').allTextContents();
  assert.ok(actions.length > 0);
  assert.ok(actions.every((a) => a === 'pin.changed'), actions.join());
  await shot(page, 'audit-nojs');
  await ctx.close();
});

test('paging to older events continues where the first page ended', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/audit`);
  await hydrated(page);
  const ids = async () => (await page.locator('table.audit tbody td:first-child').allTextContents()).map(Number);
  const first = await ids();
  await page.getByRole('link', { name: 'Older events →' }).click();
  await page.waitForURL(/cursor=/);
  await page.waitForFunction((n) => {
    const cell = document.querySelector('table.audit tbody td');
    return cell !== null && Number(cell.textContent) < n;
  }, first.at(-1) + 1);
  const second = await ids();
  assert.equal(second[0], first.at(-1) - 1, 'no event skipped or repeated');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('verify chain says the chain is OK', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/audit`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Verify chain' }).click();
  const status = page.locator('.verify');
  await status.waitFor({ timeout: 20_000 });
  assert.match(await status.textContent(), /Chain OK\. All \d+ events link up/);
  await shot(page, 'audit');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the filtered audit log downloads as CSV and as JSON', async () => {
  const { ctx, page } = await openPage(browser);
  await page.goto(`${server.base}/audit?action=stage.changed`);
  await hydrated(page);
  let expected = 0;
  for (let cursor = ''; ;) {
    const page = await api(server.base, 'GET', `/api/v1/audit?action=stage.changed&limit=500${cursor}`);
    expected += page.events.length;
    if (!page.next_cursor) break;
    cursor = `&cursor=${page.next_cursor}`;
  }
  assert.ok(expected > 0);

  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV' }).click()]);
  assert.equal(csvDownload.suggestedFilename(), 'switchyard-audit.csv');
  const csv = readFileSync(await csvDownload.path(), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'id,at,actor,action,model_id,version,environment,cluster,reason,details,prev_hash,hash');
  assert.equal(csv.length - 1, expected);
  assert.ok(csv.slice(1).every((line) => line.split(',')[3] === 'stage.changed'));

  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'JSON' }).click()]);
  assert.equal(jsonDownload.suggestedFilename(), 'switchyard-audit.json');
  const events = JSON.parse(readFileSync(await jsonDownload.path(), 'utf8'));
  assert.equal(events.length, expected);
  assert.ok(events.every((e) => e.action === 'stage.changed' && e.hash.startsWith('sha256:')));
  await ctx.close();
});

test('an unreadable time filter is answered in plain words', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/audit?from=tuesday`);
  assert.match(await page.getByRole('alert').textContent(), /The from time “tuesday” is not a time/);
  await ctx.close();
});
