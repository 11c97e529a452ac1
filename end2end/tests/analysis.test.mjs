// The Analysis page and a paused operation in the browser, against a real
// Prometheus (Debian's `prometheus`, started here on loopback with no scrape
// targets): it checks the template's PromQL when it is saved, and answers
// "no data" to every measurement, so each gated operation pauses for a person.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, hydrated, shot, api, freePort } from '../harness.mjs';

let server;
let browser;
let prometheus;
let promDir;
let promUrl;

async function startPrometheus() {
  const bin = process.env.SWITCHYARD_PROMETHEUS ?? '/usr/bin/prometheus';
  if (!existsSync(bin)) throw new Error(`no prometheus at ${bin}: scripts/test installs Debian's prometheus`);
  promDir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-prom-'));
  writeFileSync(join(promDir, 'prometheus.yml'), 'global: { scrape_interval: 1s }\nscrape_configs: []\n');
  const port = await freePort();
  promUrl = `http://127.0.0.1:${port}`;
  prometheus = spawn(bin, [
    `--config.file=${join(promDir, 'prometheus.yml')}`,
    `--storage.tsdb.path=${join(promDir, 'data')}`,
    `--web.listen-address=127.0.0.1:${port}`,
  ], { stdio: 'ignore' });
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      if ((await fetch(`${promUrl}/-/ready`)).ok) return;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('prometheus was not ready within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
}

before(async () => {
  await startPrometheus();
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
  prometheus?.kill('SIGTERM');
  if (promDir) rmSync(promDir, { recursive: true, force: true });
});

const card = (page, name) => page.locator(`section.cluster[data-cluster="${name}"]`);

async function operation(id) {
  return api(server.base, 'GET', `/api/v1/operations/${id}`);
}

/// Polls the REST API until `done(op)`.
async function waitFor(id, done, what) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    const op = await operation(id);
    if (done(op)) return op;
    if (Date.now() > deadline) throw new Error(`operation ${id} never ${what}: ${JSON.stringify(op)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/// Starts a blue-green switch on staging-eu to a version it does not serve,
/// gated by `template`, and waits until it pauses for a person.
async function pausedSwitch(template, reason) {
  const c = await api(server.base, 'GET', '/api/v1/clusters/staging-eu');
  const serving = c.slots.find((s) => s.weight === 100).full_id;
  const [model] = serving.split(':');
  const versions = await api(server.base, 'GET', `/api/v1/models/${model}/versions`);
  const list = versions.versions ?? versions;
  const target = list.find((v) => v.full_id !== serving && ['staging', 'production'].includes(v.stage));
  assert.ok(target, `a staging version of ${model} besides ${serving}`);
  const started = await api(server.base, 'POST', '/api/v1/clusters/staging-eu/operations', {
    kind: 'blue_green', full_id: target.full_id, reason, analysis: [template],
  });
  await waitFor(started.operation_id, (op) => op.paused || op.state !== 'running', 'paused');
  const op = await operation(started.operation_id);
  assert.equal(op.state, 'running', JSON.stringify(op));
  assert.ok(op.paused, JSON.stringify(op));
  return op;
}

test('an admin saves a template on the Analysis page; a paused operation shows its measurement and is continued with a reason', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: 'alice' });
  await page.goto(`${server.base}/analysis`);
  await hydrated(page);
  const form = page.locator('form.save-template');
  await form.getByLabel('Name').fill('e2e-errors');
  await form.getByLabel('Prometheus URL').fill(promUrl);
  await form.getByLabel('Query (PromQL)').fill('sum(rate(e2e_errors_total{model="{{model}}",version="{{version}}"}[1m]))');
  await form.getByLabel('Success condition').fill('result < 0.01');
  await form.getByLabel('Failure condition').fill('result > 0.05');
  await form.getByLabel('Interval (ms)').fill('200');
  await form.getByLabel('Count', { exact: true }).fill('2');
  await form.getByLabel('Reason (required, kept in the ledger)').fill('e2e: gate the staging switches');
  await form.getByRole('button', { name: 'Save template' }).click();
  await form.getByRole('status').filter({ hasText: 'Template created.' }).waitFor({ timeout: 15_000 });
  const saved = page.locator('section.template[data-template="e2e-errors"]');
  await saved.waitFor();
  assert.match(await saved.locator('code.query').textContent(), /e2e_errors_total/);
  // Bad PromQL: Prometheus's parser refuses it, and the page says so.
  await form.getByLabel('Name').fill('e2e-bad');
  await form.getByLabel('Query (PromQL)').fill('sum(rate(x[1m])');
  await form.getByRole('button', { name: 'Save template' }).click();
  await form.getByRole('alert').filter({ hasText: /Not saved: .*not valid PromQL/ }).waitFor({ timeout: 15_000 });
  assert.equal(await page.locator('section.template[data-template="e2e-bad"]').count(), 0);
  await shot(page, 'analysis-page');

  const op = await pausedSwitch('e2e-errors', 'e2e: gated switch');
  await page.goto(`${server.base}/clusters/staging-eu`);
  await hydrated(page);
  const staging = card(page, 'staging-eu');
  const decide = staging.getByRole('group', { name: `Answer paused operation ${op.id}` });
  await decide.waitFor();
  const row = staging.locator('table.measurements tr[data-verdict="inconclusive"]').first();
  await row.waitFor();
  assert.match(await row.locator('code.query').textContent(), /e2e_errors_total\{model="/);
  // The chart of its measurements against the thresholds, with its words.
  const chart = staging.locator('figure.measure-chart[data-template="e2e-errors"]');
  await chart.waitFor();
  assert.match(await chart.locator('figcaption').textContent(), /Success when result < 0\.01, failure when result > 0\.05\. .*inconclusive/);
  assert.ok(await chart.locator('g.point[data-verdict="inconclusive"]').count() >= 1);
  assert.ok(await chart.locator('g.threshold.failure line').count() === 1);
  await shot(page, 'analysis-paused');
  await decide.getByLabel('Reason to continue (required)').fill('e2e: Prometheus has no data yet; dashboards fine');
  await decide.getByRole('button', { name: 'Continue' }).click();
  const done = await waitFor(op.id, (o) => o.state !== 'running', 'finished');
  assert.equal(done.state, 'succeeded', JSON.stringify(done));
  await decide.waitFor({ state: 'detached', timeout: 10_000 });
  const events = await api(server.base, 'GET', `/api/v1/audit?cluster=staging-eu&action=operation.continued`);
  assert.equal(events.events[0].actor, 'alice');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('without JavaScript a viewer sees the answers greyed out and a deployer rolls a paused operation back', async () => {
  const op = await pausedSwitch('e2e-errors', 'e2e: gated switch, no JavaScript');
  const erin = await openPage(browser, { user: 'erin', javaScriptEnabled: false });
  await erin.page.goto(`${server.base}/clusters/staging-eu`);
  const greyed = card(erin.page, 'staging-eu').getByRole('group', { name: `Answer paused operation ${op.id}` });
  await greyed.waitFor();
  assert.equal(await greyed.getByRole('button', { name: 'Roll back' }).isDisabled(), true);
  assert.match(await greyed.locator('.why').textContent(), /erin/);
  await erin.ctx.close();

  const dave = await openPage(browser, { user: 'dave', javaScriptEnabled: false });
  await dave.page.goto(`${server.base}/clusters/staging-eu`);
  const decide = card(dave.page, 'staging-eu').getByRole('group', { name: `Answer paused operation ${op.id}` });
  await decide.getByLabel('Reason to roll back (required)').fill('e2e: cannot judge it');
  await Promise.all([
    dave.page.waitForURL(/\/clusters\/staging-eu/),
    decide.getByRole('button', { name: 'Roll back' }).click(),
  ]);
  const done = await waitFor(op.id, (o) => o.state !== 'running', 'finished');
  assert.deepEqual([done.state, done.trigger], ['rolled_back', 'person'], JSON.stringify(done));
  await dave.ctx.close();
});
