// The release manager's whole story in the console, on the demo data:
// dave requests a promotion, bob and carol approve it, bob deploys the
// promoted version to the production cluster, serving at T names it with its
// approvers, and bob rolls back.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, hydrated, shot, api } from '../harness.mjs';

const MODEL = 'fraud-xgb';
const CLUSTER = 'prod-eu';

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

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const clusterCard = (page) => page.locator(`section.cluster[data-cluster="${CLUSTER}"]`);

/// The version with all of prod-eu's traffic, as the REST API reports it.
async function serving() {
  const c = await api(server.base, 'GET', `/api/v1/clusters/${CLUSTER}`);
  return c.slots.find((s) => s.weight === 100)?.full_id ?? null;
}

async function waitServing(page, version) {
  await clusterCard(page)
    .locator('tr', { has: page.locator('td.slot-version', { hasText: new RegExp(`^${escape(version)}$`) }) })
    .filter({ has: page.locator('.weight-n', { hasText: /^100% of traffic$/ }) })
    .waitFor({ timeout: 30_000 });
}

test('request, two approvals, deploy to production, serving at T with its approvers, roll back', async () => {
  const versions = (await api(server.base, 'GET', `/api/v1/models/${MODEL}/versions`)).versions;
  const candidate = versions.find((v) => v.stage === 'staging');
  assert.ok(candidate, `the demo has a ${MODEL} version in staging`);
  const fullId = candidate.full_id;
  const before = await serving();
  assert.ok(before && before !== fullId, `${CLUSTER} serves another ${MODEL} version: ${before}`);

  // 1. dave, a deployer, requests the promotion on the board.
  const dave = await openPage(browser, { user: 'dave' });
  await dave.page.goto(`${server.base}/board?model=${MODEL}`);
  await hydrated(dave.page);
  const card = dave.page.locator('section.col-stage-staging li.card-v')
    .filter({ has: dave.page.locator('a.version', { hasText: new RegExp(`^${escape(candidate.version)}$`) }) });
  await card.getByLabel('Reason for the promotion').fill('story: SHAP explanations for the risk team');
  await card.getByRole('button', { name: 'Request promotion' }).click();
  const requested = card.locator('.done');
  await requested.waitFor({ timeout: 15_000 });
  const id = (await requested.textContent()).match(/promotion (\d+)/)[1];
  assert.deepEqual(dave.errors, []);
  await dave.ctx.close();

  // 2. bob and carol approve; carol's approval applies it and the page offers the next step.
  for (const user of ['bob', 'carol']) {
    const { ctx, page, errors } = await openPage(browser, { user });
    await page.goto(`${server.base}/approvals`);
    await hydrated(page);
    const pending = page.locator(`li.promotion[data-promotion="${id}"]`);
    // The card says what approving will do before the button is pressed.
    const effects = await pending.locator('.effects').textContent();
    if (user === 'carol') {
      assert.match(effects, new RegExp(`last one needed: it applies the promotion at once — ${escape(fullId)} becomes production .* and \\S+ is deprecated`));
    } else {
      assert.match(effects, /The next approval leaves 1 more needed/);
    }
    await pending.getByLabel('Reason for approving (required)').fill(`story: reviewed by ${user}`);
    await pending.getByRole('button', { name: 'Approve' }).click();
    if (user === 'carol') {
      await page.getByRole('status').filter({ hasText: `Promotion ${id} applied: ${fullId} is now production` }).waitFor({ timeout: 15_000 });
      const next = page.getByRole('link', { name: /Next: deploy it on the production clusters/ });
      await next.waitFor();
      await shot(page, 'story-applied-next-step');
    } else {
      await page.getByRole('status').filter({ hasText: `Approved promotion ${id}` }).waitFor({ timeout: 15_000 });
    }
    assert.deepEqual(errors, []);
    await ctx.close();
  }

  // 3. bob (approvers operate production) deploys it to prod-eu: the promoted,
  // newly pinned version is the first the cluster offers.
  const bob = await openPage(browser, { user: 'bob' });
  await bob.page.goto(`${server.base}/clusters`);
  await hydrated(bob.page);
  const prod = clusterCard(bob.page);
  const options = await prod.getByLabel('Version').locator('option').allTextContents();
  assert.equal(options[0], fullId, `the newly pinned version first: ${options}`);
  await prod.getByLabel('Version').selectOption(fullId);
  await prod.getByLabel('Reason').fill('story: deploy the approved promotion');
  await prod.getByRole('button', { name: 'Blue-green switch…' }).click();
  const dialog = prod.getByRole('alertdialog');
  assert.match(await dialog.textContent(), new RegExp(`Switch ${CLUSTER} from ${escape(before)} .* to ${escape(fullId)}`));
  await dialog.getByRole('button', { name: 'Confirm blue-green switch' }).click();
  await waitServing(bob.page, fullId);
  assert.equal(await serving(), fullId);
  await shot(bob.page, 'story-deployed');
  // A whole second while the promoted version serves, for the serving page's precision.
  const between = Math.ceil(Date.now() / 1000) * 1000;
  await new Promise((r) => setTimeout(r, Math.max(0, between - Date.now()) + 1_200));

  // 4. Serving at T: the pin with its promotion's approvers, and prod-eu serving it.
  const at = new Date(between).toISOString().slice(0, 19);
  await bob.page.goto(`${server.base}/serving?local=${at}&tz=UTC&env=production&model=${MODEL}`);
  const pinRow = bob.page.locator('section[aria-labelledby="answer-h"] table.serving tbody tr', { hasText: fullId });
  await pinRow.waitFor();
  assert.match(await pinRow.textContent(), new RegExp(`promotion ${id} requested by dave, approved by bob, carol`));
  const clusterRow = bob.page.locator('section[aria-labelledby="clusters-at-h"] tbody tr', { hasText: CLUSTER });
  assert.equal(
    (await clusterRow.locator('li', { hasText: '100% of traffic' }).locator('a.version').textContent()).trim(),
    fullId,
  );
  await shot(bob.page, 'story-serving-at-t');

  // 5. bob rolls back: the previous version serves again.
  await bob.page.goto(`${server.base}/clusters`);
  await hydrated(bob.page);
  await prod.getByLabel('Reason').fill('story: false positives up in the first hour');
  await prod.getByRole('button', { name: 'Roll back…' }).click();
  await prod.getByRole('alertdialog').getByRole('button', { name: 'Confirm rollback' }).click();
  await waitServing(bob.page, before);
  assert.equal(await serving(), before);
  await shot(bob.page, 'story-rolled-back');
  assert.deepEqual(bob.errors, []);
  await bob.ctx.close();
});
