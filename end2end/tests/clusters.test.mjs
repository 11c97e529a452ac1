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

const escape = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const card = (page, name) => page.locator(`section.cluster[data-cluster="${name}"]`);
const slotRow = (page, name, slot) => card(page, name).locator(`tr[data-slot="${slot}"]`);

/// The slot with all traffic and its version, as the REST API reports it.
async function serving(name) {
  const c = await api(server.base, 'GET', `/api/v1/clusters/${name}`);
  const s = c.slots.find((s) => s.weight === 100);
  return s ? { slot: s.slot, version: s.full_id } : null;
}

/// Waits until the page shows `version` on a slot with 100% of traffic.
async function waitServing(page, name, version) {
  await card(page, name)
    .locator('tr', { has: page.locator('td.slot-version', { hasText: new RegExp(`^${escape(version)}$`) }) })
    .filter({ has: page.locator('.weight-n', { hasText: /^100% of traffic$/ }) })
    .waitFor({ timeout: 20_000 });
}

/// Polls until a step of the live operation is seen running.
async function seeRunningStep(page, name) {
  await card(page, name).locator('.operation.live .step[data-state="running"]').first().waitFor({ timeout: 10_000 });
}

test('a deployer runs a blue-green switch from the page, watches its steps, then rolls back', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: 'dave' });
  await page.goto(`${server.base}/clusters`);
  await hydrated(page);
  const before = await serving('staging-eu');
  assert.ok(before, 'the demo cluster serves one version');
  const staging = card(page, 'staging-eu');
  await staging.locator('.driver-badge', { hasText: 'simulated' }).waitFor();

  // The version select offers the versions staging admits; pick one not serving.
  const options = await staging.getByLabel('Version').locator('option').allTextContents();
  const target = options.find((o) => o !== before.version);
  assert.ok(target, `another allowed version besides ${before.version}: ${options}`);
  await staging.getByLabel('Version').selectOption(target);
  await staging.getByLabel('Reason').fill('e2e: switch from the console');
  await staging.getByRole('button', { name: 'Blue-green switch…' }).click();
  const dialog = staging.getByRole('alertdialog');
  const other = before.slot === 'blue' ? 'green' : 'blue';
  assert.match(
    await dialog.textContent(),
    new RegExp(`Switch staging-eu from ${escape(before.version)} \\(${before.slot}, 100%\\) to ${escape(target)} on ${other}\\. Traffic moves all at once after ${other}(, which already holds \\S+,)? passes its health check`),
  );
  await shot(page, 'clusters-confirm');
  await dialog.getByRole('button', { name: 'Confirm blue-green switch' }).click();

  // The steps update live: one is seen running, with a loading indicator.
  await seeRunningStep(page, 'staging-eu');
  await shot(page, 'clusters-running');

  // While it runs, a second operation is refused, and the page says why next to the buttons.
  await staging.getByLabel('Reason').fill('e2e: a second switch');
  await staging.getByRole('button', { name: 'Blue-green switch…' }).click();
  await staging.getByRole('alertdialog').getByRole('button', { name: 'Confirm blue-green switch' }).click();
  const refused = staging.getByRole('alert').filter({ hasText: 'Not started' });
  await refused.waitFor({ timeout: 10_000 });
  assert.match(await refused.textContent(), /Not started: operation \d+ \(blue_green\) is running on cluster staging-eu; wait for it to finish/);
  await shot(page, 'clusters-refused');

  // Done: the new version has all traffic on the other slot, the old one none.
  await waitServing(page, 'staging-eu', target);
  assert.equal((await slotRow(page, 'staging-eu', other).locator('.weight-n').textContent()).trim(), '100% of traffic');
  assert.equal((await slotRow(page, 'staging-eu', before.slot).locator('.weight-n').textContent()).trim(), '0% of traffic');
  // Health is the driver's answer now, with the last operation's check below it.
  assert.match(await slotRow(page, 'staging-eu', other).locator('td.slot-health').textContent(), /^ready now\s*last operation: /);
  const last = staging.locator('details.operation.last');
  assert.match(await last.locator('summary').textContent(), new RegExp(`blue-green switch to ${escape(target)} — succeeded`));
  const states = await last.locator('.step').evaluateAll((els) => els.map((e) => e.dataset.state));
  assert.ok(states.length >= 2 && states.every((s) => s === 'done'), `every step done: ${states}`);
  assert.deepEqual(await serving('staging-eu'), { slot: other, version: target });
  await shot(page, 'clusters-switched');
  // A whole second (the serving page's precision) while the new version serves.
  const between = Math.ceil(Date.now() / 1000) * 1000;
  await new Promise((r) => setTimeout(r, Math.max(0, between - Date.now()) + 1_200));

  // Roll back: the previous version serves again.
  await staging.getByLabel('Reason').fill('e2e: back again');
  await staging.getByRole('button', { name: 'Roll back…' }).click();
  const back = staging.getByRole('alertdialog');
  assert.match(await back.textContent(), new RegExp(`Roll back staging-eu from ${escape(target)} \\(${other}, 100%\\) to ${escape(before.version)}`));
  await back.getByRole('button', { name: 'Confirm rollback' }).click();
  await seeRunningStep(page, 'staging-eu');
  await waitServing(page, 'staging-eu', before.version);
  assert.deepEqual(await serving('staging-eu'), before);
  await shot(page, 'clusters-rolled-back');

  // The cluster's own page lists both operations, newest first.
  await page.goto(`${server.base}/clusters/staging-eu`);
  const history = page.locator('.history .operations > li summary');
  await history.first().waitFor();
  const lines = await history.allTextContents();
  assert.match(lines[0], new RegExp(`rollback to ${escape(before.version)} — succeeded`));
  assert.match(lines[1], new RegExp(`blue-green switch to ${escape(target)} — succeeded`));
  await shot(page, 'cluster-detail');

  // Serving at T: an instant between the switch and the rollback answers the
  // switched-to version with all traffic; now answers the rolled-back one.
  const servedAt = async () => {
    const row = page.locator('section[aria-labelledby="clusters-at-h"] tbody tr', { hasText: 'staging-eu' });
    await row.waitFor();
    return row.locator('li', { hasText: '100% of traffic' }).locator('a.version').textContent();
  };
  await page.goto(`${server.base}/serving`);
  await hydrated(page);
  await page.getByLabel('Date and time').fill(new Date(between).toISOString().slice(0, 19));
  await page.getByLabel('Time zone').selectOption('UTC');
  await page.getByLabel('Environment').selectOption('staging');
  await page.getByRole('button', { name: 'Show' }).click();
  await page.waitForURL(/local=/);
  await page.locator('#clusters-at-h', { hasText: new Date(between).toISOString().slice(0, 19).replace('T', ' ') }).waitFor();
  assert.equal(await servedAt(), target, 'between the switch and the rollback');
  await shot(page, 'serving-between-switch-and-rollback');
  await page.goto(`${server.base}/serving?env=staging`);
  assert.equal(await servedAt(), before.version, 'after the rollback');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a viewer sees the buttons disabled with the reason, and a deployer cannot operate production', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: 'erin' });
  await page.goto(`${server.base}/clusters`);
  await hydrated(page);
  const staging = card(page, 'staging-eu');
  for (const name of ['Blue-green switch…', 'Rolling update…', 'Hot reload…', 'Roll back…']) {
    assert.equal(await staging.getByRole('button', { name }).isDisabled(), true, name);
  }
  assert.match(await staging.locator('.why').textContent(), /needs a deployer binding for \S+ or all; erin has: viewer on all/);
  await shot(page, 'clusters-viewer');
  await ctx.close();

  const dave = await openPage(browser, { user: 'dave' });
  await dave.page.goto(`${server.base}/clusters`);
  await hydrated(dave.page);
  const prod = card(dave.page, 'prod-eu');
  assert.equal(await prod.getByRole('button', { name: 'Roll back…' }).isDisabled(), true);
  assert.match(await prod.locator('.why').textContent(), /needs an approver binding for \S+ or all; dave has: deployer on all/);
  assert.deepEqual([...errors, ...dave.errors], []);
  await dave.ctx.close();
});

test('without JavaScript the clusters page shows each cluster\'s slots, traffic and drift', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/clusters`);
  for (const name of ['staging-eu', 'prod-eu']) {
    const c = card(page, name);
    await c.getByRole('heading', { name }).waitFor();
    assert.equal(await c.locator('tr[data-slot]').count(), 2);
    assert.match(await c.locator('.driver-badge').textContent(), /simulated/);
    const weights = await c.locator('.weight-n').allTextContents();
    assert.equal(weights.map((w) => parseInt(w, 10)).reduce((a, b) => a + b, 0), 100, weights.join(', '));
    assert.ok(await c.locator('.drift, .drift-ok').count() === 1, 'drift is stated in words either way');
  }
  await page.goto(`${server.base}/clusters/staging-eu`);
  await page.locator('.history .operations > li').first().waitFor();
  await shot(page, 'clusters-nojs');
  await ctx.close();
});
