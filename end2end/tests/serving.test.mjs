import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, hydrated, shot, registerVersion, setPin, signIn } from '../harness.mjs';

let server;
let browser;
let between; // an instant, to the second, while v1 was pinned
let first;
let second;

/// `2026-03-03T14:00:05` for an instant, in UTC.
const localUtc = (ms) => new Date(ms).toISOString().slice(0, 19);

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await registerVersion(server.base, 'e2e-serve', 'v1');
  await registerVersion(server.base, 'e2e-serve', 'v2');
  first = await setPin(server.base, 'development', 'e2e-serve', 'v1', 'e2e: first pin');
  await new Promise((r) => setTimeout(r, 2_100));
  second = await setPin(server.base, 'development', 'e2e-serve', 'v2', 'e2e: second pin');
  const t1 = Date.parse(first.since);
  const t2 = Date.parse(second.since);
  between = Math.floor((t1 + t2) / 2 / 1000) * 1000;
  assert.ok(t1 <= between && between < t2, 'a whole second between the two pins');
});

after(async () => {
  await browser?.close();
  server?.stop();
});

const pinnedVersions = (page) => page.locator('table.serving tbody td:nth-child(3)').allTextContents();

test('asking for an instant between two pin changes answers the earlier version, with a permalink', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/serving`);
  await hydrated(page);
  await page.getByLabel('Date and time').fill(localUtc(between));
  await page.getByLabel('Time zone').selectOption('UTC');
  await page.getByLabel('Environment').selectOption('development');
  await page.getByLabel('Model').selectOption('e2e-serve');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.waitForURL(/local=/);
  await page.waitForFunction(() => document.querySelector('table.serving tbody td:nth-child(3)')?.textContent === 'e2e-serve:v1');
  assert.deepEqual(await pinnedVersions(page), ['e2e-serve:v1']);
  const row = await page.locator('table.serving tbody tr').textContent();
  assert.match(row, /e2e: first pin/);
  assert.match(row, new RegExp(second.since.slice(0, 16).replace('T', ' ')), 'the next change is the second pin');
  const permalink = await page.getByRole('link', { name: 'Permalink to this instant' }).getAttribute('href');
  assert.match(permalink, /^\/serving\?at=.*&env=development&model=e2e-serve$/);
  await shot(page, 'serving');
  assert.deepEqual(errors, []);
  await ctx.close();

  const nojs = await openPage(browser, { javaScriptEnabled: false });
  await nojs.page.goto(server.base + permalink);
  assert.deepEqual(await pinnedVersions(nojs.page), ['e2e-serve:v1']);
  await nojs.ctx.close();
});

test('without JavaScript a local time in UTC answers from the server, before and after the change', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/serving?local=${localUtc(between)}&tz=UTC&model=e2e-serve`);
  assert.deepEqual(await pinnedVersions(page), ['e2e-serve:v1']);
  assert.equal(await page.getByLabel('Time zone').inputValue(), 'UTC', 'UTC is the zone without JavaScript');
  await shot(page, 'serving-nojs');
  await page.goto(`${server.base}/serving?model=e2e-serve`);
  assert.deepEqual(await pinnedVersions(page), ['e2e-serve:v2'], 'now: the second pin');
  await ctx.close();
});

test('the time zone defaults to the browser\'s and the instant is also shown in UTC', async () => {
  const ctx = await browser.newContext({ timezoneId: 'Asia/Tokyo' });
  const page = await ctx.newPage();
  await signIn(page, server.base);
  const at = new Date(between).toISOString();
  await page.goto(`${server.base}/serving?at=${encodeURIComponent(at)}&model=e2e-serve`);
  await hydrated(page);
  await page.waitForFunction(() => document.querySelector('select[name="tz"]').value === 'Asia/Tokyo');
  // The console's one date format: YYYY-MM-DD HH:MM:SS, 24-hour.
  const tokyo = new Date(between + 9 * 3600_000).toISOString().slice(0, 19).replace('T', ' ');
  assert.equal(await page.getByLabel('Date and time').inputValue(), tokyo);
  assert.match(await page.locator('#answer-h').textContent(), new RegExp(`${at.slice(0, 19).replace('T', ' ')} UTC`));
  await ctx.close();
});

test('a local time that does not exist in the chosen zone is refused in plain words', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/serving?local=2026-03-29T02:30&tz=Europe/Paris`);
  assert.match(await page.getByRole('alert').textContent(), /does not exist in Europe\/Paris/);
  await ctx.close();
});
