import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, hydrated, shot, api, registerVersion, moveStage } from '../harness.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  await registerVersion(server.base, 'e2e-board', 'v1');
  await registerVersion(server.base, 'e2e-board', 'v2');
  await moveStage(server.base, 'e2e-board:v2', 'staging', 'e2e: feature complete');
});

after(async () => {
  await browser?.close();
  server?.stop();
});

const column = (page, stage) => page.locator(`section.col-stage-${stage}`);
const card = (page, stage, version) =>
  column(page, stage).locator('li.card-v').filter({ has: page.locator('a.version', { hasText: new RegExp(`^${version}$`) }) });

test('sending a version from development to staging on the board moves its card', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/board?model=e2e-board`);
  await hydrated(page);
  await card(page, 'development', 'v1').getByLabel('Reason (required)').fill('e2e: feature complete');
  await card(page, 'development', 'v1').getByRole('button', { name: 'Send to staging' }).click();
  await card(page, 'staging', 'v1').waitFor({ timeout: 15_000 });
  assert.equal(await card(page, 'development', 'v1').count(), 0);
  const detail = await api(server.base, 'GET', '/api/v1/versions/e2e-board:v1');
  assert.equal(detail.stage, 'staging');
  await shot(page, 'board');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a viewer sees every move disabled with the role it needs', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: 'erin' });
  await page.goto(`${server.base}/board?model=e2e-board`);
  await hydrated(page);
  const v2 = card(page, 'staging', 'v2');
  assert.equal(await v2.getByRole('button', { name: 'Request promotion' }).isDisabled(), true);
  assert.equal(await v2.getByRole('button', { name: 'Send back to development' }).isDisabled(), true);
  assert.match(await v2.locator('.why').first().textContent(), /needs a deployer binding for \S+ or all; erin has: viewer on all/);
  await shot(page, 'board-viewer');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a refused move is explained next to the card', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/board?model=e2e-board`);
  await hydrated(page);
  const v2 = card(page, 'staging', 'v2');
  assert.equal(await v2.getByRole('button', { name: 'Request promotion' }).isDisabled(), false);
  // Someone else moves v2 meanwhile; the button on this stale board is now refused by the server.
  await moveStage(server.base, 'e2e-board:v2', 'development', 'e2e: moved elsewhere');
  await v2.getByLabel('Reason (required)').fill('e2e: not ready');
  await v2.getByRole('button', { name: 'Send back to development' }).click();
  const alert = v2.getByRole('alert');
  await alert.waitFor();
  assert.match(await alert.textContent(), /Not moved: the version is already development/);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('without JavaScript the board renders every column and a move still posts', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/board?model=e2e-board`);
  for (const stage of ['development', 'staging', 'production', 'deprecated', 'retired']) {
    await page.getByRole('heading', { name: new RegExp(`^${stage}`) }).waitFor();
  }
  await card(page, 'development', 'v2').getByLabel('Reason (required)').fill('e2e: without JavaScript');
  await card(page, 'development', 'v2').getByRole('button', { name: 'Send to staging' }).click();
  await page.waitForURL(/\/board\?model=e2e-board/);
  await card(page, 'staging', 'v2').waitFor();
  await shot(page, 'board-nojs');
  await ctx.close();
});

test('on a narrow screen the board stacks its columns', async () => {
  const { ctx, page } = await openPage(browser, { width: 390 });
  await page.goto(`${server.base}/board?model=e2e-board`);
  const dev = await column(page, 'development').boundingBox();
  const staging = await column(page, 'staging').boundingBox();
  assert.ok(staging.y > dev.y, 'columns are stacked');
  assert.ok(dev.width <= 390);
  await shot(page, 'board-narrow');
  await ctx.close();
});
