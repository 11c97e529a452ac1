// The MLflow import page in the browser, against a real MLflow tracking
// server (mlflow==3.17.2 from .tools/mlflow-venv, installed by
// scripts/peers.sh; SQLite backend, loopback): the test run's shared one
// (SWITCHYARD_MLFLOW_URL, started by scripts/test) or else its own, filled
// here over its REST API with model names of its own.
// Hydrated: a dry run followed on its progress page by polling; without
// JavaScript: the import posted as a plain form and its page reloaded by the
// browser until done. A deployer is told why the page is not theirs.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, hydrated, shot, freePort, root } from '../harness.mjs';

let server;
let browser;
let mlflow;
let mlflowDir;
let mlflowUrl;

async function mlflowApi(path, body) {
  const r = await fetch(`${mlflowUrl}/api/2.0/mlflow/${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`MLflow ${path} answered ${r.status}: ${text}`);
  return JSON.parse(text);
}

// This file's own model names (a random tag), so that the test run's shared
// MLflow (SWITCHYARD_MLFLOW_URL, started by scripts/test) can hold other tests'
// models: the imports read only names matching `pattern`.
const tag = Math.random().toString(16).slice(2, 10);
const pattern = `?2?${tag}*`;

async function startMlflow() {
  if (process.env.SWITCHYARD_MLFLOW_URL) {
    // Shared: started by scripts/test beside the build, stopped by it.
    mlflowUrl = process.env.SWITCHYARD_MLFLOW_URL.replace(/\/$/, '');
  } else {
    const bin = process.env.SWITCHYARD_MLFLOW ?? join(root, '.tools/mlflow-venv/bin/mlflow');
    if (!existsSync(bin)) throw new Error(`no MLflow at ${bin}: scripts/peers.sh installs it`);
    mlflowDir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-mlflow-'));
    const port = await freePort();
    mlflowUrl = `http://127.0.0.1:${port}`;
    mlflow = spawn(bin, [
      'server', '--backend-store-uri', `sqlite:///${join(mlflowDir, 'mlflow.db')}`,
      '--default-artifact-root', join(mlflowDir, 'artifacts'),
      '--host', '127.0.0.1', '--port', String(port), '--workers', '1',
    ], { stdio: 'ignore', detached: true, env: { ...process.env, MLFLOW_DISABLE_TELEMETRY: 'true', DO_NOT_TRACK: 'true' } });
  }
  // MLflow takes up to a couple of minutes to start on a loaded machine.
  const deadline = Date.now() + 240_000;
  for (;;) {
    try {
      if ((await fetch(`${mlflowUrl}/health`)).ok) break;
    } catch { /* not up yet */ }
    if (mlflow && mlflow.exitCode !== null) throw new Error(`MLflow exited with ${mlflow.exitCode}`);
    if (Date.now() > deadline) throw new Error(`MLflow at ${mlflowUrl} did not answer /health within 240 s`);
    await new Promise((r) => setTimeout(r, 500));
  }
  await mlflowApi('registered-models/create', { name: `E2E${tag} Ranker` });
  for (const i of [1, 2, 3]) {
    await mlflowApi('model-versions/create', { name: `E2E${tag} Ranker`, source: `s3://e2e/ranker/${i}` });
  }
  // Two names that map to one model id: both refused, never merged.
  for (const name of [`E2E${tag} Churn`, `e2e${tag}-churn`]) {
    await mlflowApi('registered-models/create', { name });
    await mlflowApi('model-versions/create', { name, source: 's3://e2e/churn/1' });
  }
}

before(async () => {
  await startMlflow();
  server = await startServer();
  browser = await launchBrowser();
}, { timeout: 300_000 });

after(async () => {
  await browser?.close();
  server?.stop();
  // Its worker processes are in its process group.
  if (mlflow?.pid) {
    try { process.kill(-mlflow.pid, 'SIGTERM'); } catch { /* gone */ }
  }
  if (mlflowDir) rmSync(mlflowDir, { recursive: true, force: true });
});

const items = (page, what) => page.locator(`table.import-items tr[data-item="${what}"]`);

test('an admin starts a dry run from the import page and watches it finish without reloading', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: 'alice' });
  await page.goto(`${server.base}/`);
  await hydrated(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Import' }).click();
  await page.waitForURL(`${server.base}/import/mlflow`);
  await page.getByLabel('Tracking URI (http or https)').fill(mlflowUrl);
  await page.getByLabel(/^Model names/).fill(pattern);
  await page.getByLabel(/^Dry run/).check();
  await Promise.all([
    page.waitForURL(/\/import\/mlflow\/[0-9a-f]{16}$/),
    page.getByRole('button', { name: 'Start import' }).click(),
  ]);
  await page.locator('.import-head[data-state="done"]').waitFor({ timeout: 30_000 });
  assert.match(await page.locator('.import-head').textContent(), /Dry run from .* done: nothing was changed \(dry run\)/);
  assert.equal(await items(page, 'create').count(), 3);
  assert.equal(await items(page, 'refused').count(), 2);
  assert.match(await items(page, 'create').first().textContent(), new RegExp(`e2e${tag}-ranker:v1 ← MLflow "E2E${tag} Ranker" version 1`));
  assert.equal(await page.locator('td[data-count="created"]').textContent(), '3');
  await shot(page, 'import-dry-run');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('without JavaScript an admin posts the import and its page reloads itself until it is done', async () => {
  const { ctx, page } = await openPage(browser, { user: 'alice', javaScriptEnabled: false });
  // A server that does not answer: refused on the form, nothing started.
  await page.goto(`${server.base}/import/mlflow`);
  await page.getByLabel('Tracking URI (http or https)').fill(`http://127.0.0.1:${await freePort()}`);
  await Promise.all([
    page.waitForURL(/\/import\/mlflow/),
    page.getByRole('button', { name: 'Start import' }).click(),
  ]);
  assert.match(await page.locator('p.error').textContent(), /Not started: MLflow at .* did not answer/);
  assert.equal(await page.locator('table.imports tbody tr').count(), 1, 'only the dry run');
  await page.goto(`${server.base}/import/mlflow`);
  await page.getByLabel('Tracking URI (http or https)').fill(mlflowUrl);
  await page.getByLabel(/^Model names/).fill(pattern);
  await Promise.all([
    page.waitForURL(/\/import\/mlflow\/[0-9a-f]{16}$/),
    page.getByRole('button', { name: 'Start import' }).click(),
  ]);
  await page.locator('.import-head[data-state="done"]').waitFor({ timeout: 30_000 });
  assert.equal(await items(page, 'created').count(), 3);
  assert.equal(await page.locator('td[data-count="refused"]').textContent(), '2');
  // The list on the form's page has both imports, newest first.
  await page.goto(`${server.base}/import/mlflow`);
  assert.equal(await page.locator('table.imports tbody tr').count(), 2);
  assert.match(await page.locator('table.imports tbody tr').first().textContent(), /import/);
  await ctx.close();

  const dave = await openPage(browser, { user: 'dave', javaScriptEnabled: false });
  await dave.page.goto(`${server.base}/import/mlflow`);
  assert.match(await dave.page.locator('main').textContent(), /admin/);
  assert.equal(await dave.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Import' }).count(), 0);
  await dave.ctx.close();
});
