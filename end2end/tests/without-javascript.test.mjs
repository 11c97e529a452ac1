// Every change works as a plain form post with a page that says what
// happened, so an emergency rollback does not depend on the bundle loading;
// and the cluster dialog, with JavaScript, is in view, focused, and closes
// with Escape.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
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

const card = (page, name) => page.locator(`section.cluster[data-cluster="${name}"]`);
const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

async function servingVersion(name) {
  const c = await api(server.base, 'GET', `/api/v1/clusters/${name}`);
  return c.slots.find((s) => s.weight === 100)?.full_id ?? null;
}

test('without JavaScript a deployer switches a cluster through the confirmation page, then rolls back', async () => {
  const { ctx, page } = await openPage(browser, { user: 'dave', javaScriptEnabled: false });
  await page.goto(`${server.base}/clusters/staging-eu`);
  const before = await servingVersion('staging-eu');
  const staging = card(page, 'staging-eu');
  const options = await staging.getByLabel('Version').locator('option').allTextContents();
  const target = options.find((o) => o !== before);
  assert.ok(target, `another allowed version besides ${before}: ${options}`);
  // The server selects a version that is not serving already.
  assert.notEqual(await staging.getByLabel('Version').inputValue(), before);
  await staging.getByLabel('Version').selectOption(target);
  await staging.getByLabel('Reason').fill('no-js: switch');
  await staging.getByRole('button', { name: 'Blue-green switch…' }).click();

  // The confirmation page says what will happen, in the dialog's words.
  await page.waitForURL(/\/clusters\/staging-eu\/confirm\?/);
  assert.match(
    await page.locator('#confirm-text').textContent(),
    new RegExp(`^Switch staging-eu from ${escape(before)} \\((blue|green), 100%\\) to ${escape(target)} on (blue|green)\\.`),
  );
  assert.equal(await page.getByLabel('Reason (required)').inputValue(), 'no-js: switch');
  await shot(page, 'nojs-confirm');
  await page.getByRole('button', { name: 'Confirm blue-green switch' }).click();

  // The result page: the cluster, with what was started.
  await page.waitForURL(/\/clusters\/staging-eu\?started=\d+/);
  const note = await page.locator('p.done[data-posted]').textContent();
  assert.match(note, new RegExp(`Started operation #\\d+: blue-green switch to ${escape(target)}`));
  for (let i = 0; i < 60 && (await servingVersion('staging-eu')) !== target; i++) {
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(await servingVersion('staging-eu'), target);

  // Rollback the same way.
  await page.goto(`${server.base}/clusters/staging-eu`);
  await card(page, 'staging-eu').getByLabel('Reason').fill('no-js: emergency rollback');
  await card(page, 'staging-eu').getByRole('button', { name: 'Roll back…' }).click();
  await page.waitForURL(/\/confirm\?/);
  assert.match(await page.locator('#confirm-text').textContent(), /^Roll back staging-eu/);
  await page.getByRole('button', { name: 'Confirm rollback' }).click();
  await page.waitForURL(/\?started=\d+/);
  assert.match(await page.locator('p.done[data-posted]').textContent(), /Started operation #\d+: rollback/);
  for (let i = 0; i < 60 && (await servingVersion('staging-eu')) !== before; i++) {
    await new Promise((r) => setTimeout(r, 500));
  }
  assert.equal(await servingVersion('staging-eu'), before);
  await ctx.close();
});

test('the confirmation page refuses what cannot be confirmed with its status and reason', async () => {
  const { ctx, page } = await openPage(browser, { user: 'dave', javaScriptEnabled: false });
  let res = await page.goto(`${server.base}/clusters/staging-eu/confirm?kind=explode&version=x&reason=r`);
  assert.equal(res.status(), 422);
  assert.match(await page.locator('p.error').textContent(), /“explode” is not an operation/);
  const serving = await servingVersion('staging-eu');
  res = await page.goto(`${server.base}/clusters/staging-eu/confirm?kind=blue_green&version=${encodeURIComponent(serving)}&reason=r`);
  assert.equal(res.status(), 422);
  assert.match(await page.locator('#confirm-text').textContent(), /^Not possible now: /);
  assert.equal(await page.getByRole('button', { name: /^Confirm/ }).count(), 0);
  // A deployer may not operate production: 403 with the missing binding named.
  res = await page.goto(`${server.base}/clusters/prod-eu/confirm?kind=rollback&reason=r`);
  assert.equal(res.status(), 403);
  assert.equal(await page.getByRole('button', { name: /^Confirm/ }).count(), 0);
  await ctx.close();
});

test('without JavaScript a promotion request lands on the approvals page that says what was requested', async () => {
  const { ctx, page } = await openPage(browser, { user: 'dave', javaScriptEnabled: false });
  await page.goto(`${server.base}/board?model=fraud-xgb`);
  const cardV = page.locator('section.col-stage-staging li.card-v').first();
  const version = (await cardV.locator('a.version').textContent()).trim();
  await cardV.getByLabel('Reason for the promotion').fill('no-js: request');
  await cardV.getByRole('button', { name: 'Request promotion' }).click();
  await page.waitForURL(/\/approvals\?requested=\d+/);
  assert.match(
    await page.locator('p.done[data-posted]').textContent(),
    new RegExp(`Requested: promotion \\d+ of fraud-xgb:${escape(version)} to production needs 2 more approvals\\.`),
  );
  // The requester takes it back from the inbox, still without JavaScript.
  const id = page.url().match(/requested=(\d+)/)[1];
  const own = page.locator(`li.promotion[data-promotion="${id}"]`);
  await own.getByLabel('Reason for withdrawing your request (required)').fill('no-js: not ready after all');
  await own.getByRole('button', { name: 'Withdraw' }).click();
  await page.waitForURL(new RegExp(`/approvals\\?withdrawn=${id}`));
  assert.match(await page.locator('p.done[data-posted]').textContent(), new RegExp(`Withdrew promotion ${id} of fraud-xgb`));
  assert.equal(await page.locator(`li.promotion[data-promotion="${id}"] form.withdraw`).count(), 0);
  const p = await api(server.base, 'GET', `/api/v1/promotions?status=withdrawn`);
  assert.equal(p.promotions[0].id, Number(id));
  await ctx.close();
});

test('without JavaScript serving at T opens with the instant filled in and answers it', async () => {
  const { ctx, page } = await openPage(browser, { user: 'erin', javaScriptEnabled: false });
  await page.goto(`${server.base}/serving`);
  const value = await page.getByLabel('Date and time').inputValue();
  assert.match(value, /^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}(:\d{2})?$/);
  await page.getByRole('button', { name: 'Show' }).click();
  await page.waitForURL(/\/serving\?local=/);
  assert.equal(await page.locator('p.error').count(), 0);
  await ctx.close();
});

test('with JavaScript the confirmation dialog is in view, focused, and Escape closes it', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: 'dave' });
  await page.goto(`${server.base}/clusters`);
  await hydrated(page);
  const staging = card(page, 'staging-eu');
  await staging.getByLabel('Reason').fill('dialog check');
  await staging.getByRole('button', { name: 'Roll back…' }).click();
  const dialog = staging.getByRole('alertdialog');
  await dialog.waitFor();
  const focused = await page.evaluate(() => document.activeElement?.textContent ?? '');
  assert.match(focused, /^(Confirm rollback|Cancel)$/);
  assert.ok(await dialog.isVisible());
  const box = await dialog.boundingBox();
  const viewport = page.viewportSize();
  // Within a pixel: layout positions are fractional.
  assert.ok(box && box.y >= -1 && box.y + box.height <= viewport.height + 1, `dialog in view: ${JSON.stringify(box)}`);
  await page.keyboard.press('Escape');
  await dialog.waitFor({ state: 'detached' });
  assert.deepEqual(errors, []);
  await ctx.close();
});
