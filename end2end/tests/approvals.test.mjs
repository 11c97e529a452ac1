import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, hydrated, shot, api, registerVersion, moveStage } from '../harness.mjs';

// A demo model with a version in production: the new versions' configs are
// its config with one value changed, so the inbox shows a one-line diff.
const MODEL = 'rerank-minilm';

let server;
let browser;
let before_pin;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  before_pin = (await api(server.base, 'GET', `/api/v1/resolve/${MODEL}?env=production`)).full_id;
  const current = await api(server.base, 'GET', `/api/v1/versions/${before_pin}`);
  await registerVersion(server.base, MODEL, 'v9.0.0', { ...current.config, batch_size: 64 });
  await registerVersion(server.base, MODEL, 'v9.1.0', { ...current.config, batch_size: 16 });
  await moveStage(server.base, `${MODEL}:v9.0.0`, 'staging', 'e2e: evaluated');
});

after(async () => {
  await browser?.close();
  server?.stop();
});

const card = (page, stage, version) =>
  page.locator(`section.col-stage-${stage} li.card-v`)
    .filter({ has: page.locator('a.version', { hasText: new RegExp(`^${version.replaceAll('.', '\\.')}$`) }) });
const promotion = (page, id) => page.locator(`li.promotion[data-promotion="${id}"]`);

/// The production pin of MODEL as the overview's matrix shows it.
async function productionCell(page) {
  await page.goto(`${server.base}/`);
  const headers = await page.locator('table.matrix thead th').allTextContents();
  const column = headers.findIndex((h) => h.trim().startsWith('production'));
  assert.ok(column > 0, `a production column among ${headers}`);
  const row = page.locator('table.matrix tbody tr').filter({ has: page.locator('a.model', { hasText: new RegExp(`^${MODEL}$`) }) });
  return (await row.locator('td').nth(column - 1).locator('a.version').textContent()).trim();
}

test('a deployer requests a promotion on the board; two approvers apply it; the production pin moves', async () => {
  // dave, a deployer, requests the promotion from the board.
  const dave = await openPage(browser, { user: 'dave' });
  await dave.page.goto(`${server.base}/board?model=${MODEL}`);
  await hydrated(dave.page);
  const deprecate = card(dave.page, 'production', before_pin.split(':')[1]).getByRole('button', { name: 'Deprecate' });
  assert.equal(await deprecate.isDisabled(), true, 'a deployer cannot deprecate');
  const v9 = card(dave.page, 'staging', 'v9.0.0');
  assert.deepEqual(await v9.getByLabel('Environment').locator('option').allTextContents(), ['production']);
  await v9.getByLabel('Reason for the promotion').fill('e2e: better recall on the eval set');
  await v9.getByRole('button', { name: 'Request promotion' }).click();
  const requested = v9.locator('.done');
  await requested.waitFor({ timeout: 15_000 });
  const text = await requested.textContent();
  assert.match(text, /Requested: promotion \d+ to production needs 2 approvals/);
  const id = text.match(/promotion (\d+)/)[1];
  await shot(dave.page, 'approvals-board-requested');

  // In the inbox the requester sees it, but may not approve it.
  await dave.page.goto(`${server.base}/approvals`);
  await hydrated(dave.page);
  const mine = promotion(dave.page, id);
  await mine.waitFor();
  assert.match(await mine.textContent(), /e2e: better recall on the eval set/);
  assert.equal(await mine.getByRole('button', { name: 'Approve' }).isDisabled(), true);
  assert.match(await mine.locator('.why').first().textContent(), /You requested this; someone else must approve it/);
  assert.equal(await mine.getByRole('button', { name: 'Reject' }).isDisabled(), true, 'a deployer cannot reject');
  await shot(dave.page, 'approvals-requester');
  assert.deepEqual(dave.errors, []);
  await dave.ctx.close();

  // bob sees it pending on the overview, with the config diff in the inbox, and approves.
  const bob = await openPage(browser, { user: 'bob' });
  const pendingCard = bob.page.locator('section.pending-approvals');
  await pendingCard.waitFor();
  assert.match(await pendingCard.textContent(), new RegExp(`${MODEL}:v9\\.0\\.0 → production · none of 2 approvals yet · requested by dave`));
  await pendingCard.getByRole('link', { name: 'Pending approvals' }).click();
  await bob.page.waitForURL(/\/approvals/);
  await hydrated(bob.page);
  const forBob = promotion(bob.page, id);
  assert.match(await forBob.locator('.diff-removed').textContent(), /^- +"batch_size": 32,/);
  assert.match(await forBob.locator('.diff-added').textContent(), /^\+ +"batch_size": 64,/);
  await forBob.getByLabel('Reason for approving (required)').fill('e2e: diff reviewed');
  await forBob.getByRole('button', { name: 'Approve' }).click();
  await bob.page.getByRole('status').filter({ hasText: `Approved promotion ${id}` }).waitFor({ timeout: 15_000 });
  await forBob.locator('.approvals', { hasText: '1 of 2 approvals: bob' }).waitFor();
  assert.equal(await forBob.getByRole('button', { name: 'Approve' }).isDisabled(), true, 'one approval per person');
  await shot(bob.page, 'approvals-one-of-two');
  assert.deepEqual(bob.errors, []);
  await bob.ctx.close();

  const erin = await openPage(browser, { user: 'erin' });
  assert.equal(await productionCell(erin.page), before_pin.split(':')[1], 'one approval is not enough');
  await erin.ctx.close();

  // carol's approval is the second: it applies the promotion.
  const carol = await openPage(browser, { user: 'carol' });
  await carol.page.goto(`${server.base}/approvals`);
  await hydrated(carol.page);
  await promotion(carol.page, id).getByLabel('Reason for approving (required)').fill('e2e: checked the eval');
  await promotion(carol.page, id).getByRole('button', { name: 'Approve' }).click();
  await carol.page.getByRole('status').filter({ hasText: `Promotion ${id} applied: ${MODEL}:v9.0.0 is now production` }).waitFor({ timeout: 15_000 });
  await promotion(carol.page, id).waitFor({ state: 'detached' });
  const row = carol.page.locator('table.decided tbody tr').first();
  assert.match(await row.textContent(), new RegExp(`${MODEL}:v9\\.0\\.0.*applied.*carol`));
  await shot(carol.page, 'approvals-applied');

  assert.equal(await productionCell(carol.page), 'v9.0.0');
  await shot(carol.page, 'approvals-overview-pin-moved');
  assert.deepEqual(carol.errors, []);
  await carol.ctx.close();
});

test('a rejection needs a reason: without one the server says so; with one it is rejected for good', async () => {
  await moveStage(server.base, `${MODEL}:v9.1.0`, 'staging', 'e2e: evaluated');
  const p = await api(server.base, 'POST', '/api/v1/promotions', { full_id: `${MODEL}:v9.1.0`, environment: 'production', reason: 'e2e: longer inputs' });

  // Reading works without JavaScript, and a viewer is told why they cannot decide.
  const erin = await openPage(browser, { user: 'erin', javaScriptEnabled: false });
  await erin.page.goto(`${server.base}/approvals`);
  const seen = promotion(erin.page, p.id);
  await seen.waitFor();
  assert.match(await seen.textContent(), /requested by|Requested by/);
  assert.match(await seen.locator('.why').first().textContent(), /needs an approver binding for \S+ or all; erin has: viewer on all/);
  await shot(erin.page, 'approvals-nojs');
  await erin.ctx.close();

  // Without JavaScript the form still posts; the refusal comes back next to
  // that promotion's form, and nothing changed.
  await registerVersion(server.base, MODEL, 'v9.2.0', { batch_size: 8 });
  await moveStage(server.base, `${MODEL}:v9.2.0`, 'staging', 'e2e: evaluated');
  const other = await api(server.base, 'POST', '/api/v1/promotions', { full_id: `${MODEL}:v9.2.0`, environment: 'production', reason: 'e2e: smaller batches' });
  const plain = await openPage(browser, { user: 'bob', javaScriptEnabled: false });
  await plain.page.goto(`${server.base}/approvals`);
  await promotion(plain.page, p.id).getByRole('button', { name: 'Reject' }).click();
  await plain.page.waitForURL(/\/approvals\?.*__err=/);
  const refusal = promotion(plain.page, p.id).getByRole('alert');
  assert.match((await refusal.textContent()).trim(), /^Not rejected: a rejection needs a reason: say in `reason` what must change/);
  await promotion(plain.page, other.id).waitFor();
  assert.equal(await plain.page.getByRole('alert').count(), 1, 'only the form that posted shows the refusal');
  await shot(plain.page, 'approvals-nojs-refused');
  await plain.ctx.close();
  const pending = await api(server.base, 'GET', '/api/v1/promotions?status=pending');
  assert.ok(pending.promotions.some((x) => x.id === p.id), 'the refused rejection changed nothing');

  const bob = await openPage(browser, { user: 'bob' });
  await bob.page.goto(`${server.base}/approvals`);
  await hydrated(bob.page);
  const card = promotion(bob.page, p.id);
  await card.getByRole('button', { name: 'Reject' }).click();
  const alert = card.getByRole('alert');
  await alert.waitFor({ timeout: 15_000 });
  assert.match((await alert.textContent()).trim(), /^Not rejected: a rejection needs a reason: say in `reason` what must change/);
  await shot(bob.page, 'approvals-reject-needs-reason');
  await card.getByLabel('Reason for rejecting (required)').fill('e2e: latency too high with batch 16');
  await card.getByRole('button', { name: 'Reject' }).click();
  await bob.page.getByRole('status').filter({ hasText: `Rejected promotion ${p.id}` }).waitFor({ timeout: 15_000 });
  const row = bob.page.locator('table.decided tbody tr').filter({ hasText: `${MODEL}:v9.1.0` });
  assert.match(await row.textContent(), /rejected.*bob.*e2e: latency too high with batch 16/);
  const listed = await api(server.base, 'GET', '/api/v1/promotions?status=rejected');
  assert.ok(listed.promotions.some((x) => x.id === p.id && x.decision_reason === 'e2e: latency too high with batch 16'));
  await shot(bob.page, 'approvals-rejected');
  assert.deepEqual(bob.errors, []);
  await bob.ctx.close();
});
