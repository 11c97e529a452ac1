import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, hydrated, shot } from '../harness.mjs';

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

/// An oip+haproxy config whose HAProxy admin socket is not there.
function configWithoutHaproxy() {
  const dir = mkdtempSync(join(tmpdir(), 'sy-e2e-onboard-'));
  return JSON.stringify({
    model: 'echo',
    blue: { url: 'http://127.0.0.1:1', repository: dir },
    green: { url: 'http://127.0.0.1:1', repository: dir },
    artifacts: dir,
    haproxy: { socket: join(dir, 'admin.sock'), route_map: join(dir, 'route.map'), weights_file: join(dir, 'weights') },
  }, null, 2);
}

test('an admin adds a cluster in the console, reads its connection test, tests it again and removes it', async () => {
  const { page, errors } = await openPage(browser, { user: 'alice' });
  await page.goto(`${server.base}/clusters`);
  await hydrated(page);
  const form = page.locator('section.new-cluster');

  // The example beside the text box follows the driver chosen.
  await form.locator('select[name="driver"]').selectOption('kubernetes');
  const k8s = form.locator('details.example[data-driver="kubernetes"]');
  assert.equal(await k8s.getAttribute('open'), '');
  assert.match(await k8s.locator('pre').textContent(), /"namespace": "serving"/);

  // A config without its namespace is refused in words, and nothing is added.
  await form.getByLabel('Name', { exact: true }).fill('onboard-1');
  await form.locator('select[name="environment"]').selectOption('development');
  await form.getByLabel(/Driver config/).fill('{ "model": "chat", "service": "chat", "deployments": { "blue": "a", "green": "b" }, "container": "model", "image": "r/chat" }');
  await form.getByRole('button', { name: 'Add cluster' }).click();
  const error = form.locator('.error');
  await error.waitFor();
  assert.match(await error.textContent(), /Not added, nothing was registered: .*namespace/);

  // An oip+haproxy cluster whose HAProxy is not running yet: added, and its
  // connection test says what is missing and how to fix it.
  await form.locator('select[name="driver"]').selectOption('oip+haproxy');
  await form.getByLabel(/Driver config/).fill(configWithoutHaproxy());
  await form.getByRole('button', { name: 'Add cluster' }).click();
  await page.waitForURL(`${server.base}/clusters/onboard-1/test?added=1`);
  await page.getByText('Cluster onboard-1 added.').waitFor();
  const runtime = page.locator('li[data-check="HAProxy Runtime API"]');
  await runtime.waitFor({ timeout: 30_000 });
  assert.equal(await runtime.getAttribute('data-ok'), 'false');
  assert.match(await runtime.textContent(), /how to fix: .*stats socket/);
  await shot(page, 'cluster-onboarding-test');

  // The cluster's page tests again in place.
  await page.getByRole('link', { name: 'Back to the cluster' }).click();
  await page.getByRole('heading', { name: 'onboard-1', level: 1 }).waitFor();
  await page.getByRole('button', { name: 'Test connection' }).click();
  const inPlace = page.locator('section.connection li[data-check="HAProxy Runtime API"]');
  await inPlace.waitFor({ timeout: 30_000 });
  assert.equal(page.url(), `${server.base}/clusters/onboard-1`);

  // Removing needs the name typed.
  const removal = page.locator('section.removal');
  await removal.getByLabel(/Type the cluster's name/).fill('onboard');
  await removal.getByRole('button', { name: 'Remove cluster' }).click();
  await removal.locator('.error').waitFor();
  assert.match(await removal.locator('.error').textContent(), /Type the cluster's name, onboard-1/);
  await removal.getByLabel(/Type the cluster's name/).fill('onboard-1');
  await removal.getByRole('button', { name: 'Remove cluster' }).click();
  await page.waitForURL(`${server.base}/clusters?removed=onboard-1`);
  await page.getByText('Cluster onboard-1 removed.').waitFor();
  assert.deepEqual(errors, []);
});

test('without JavaScript an admin adds a cluster, its test page follows, and the cluster is removed', async () => {
  const { page } = await openPage(browser, { user: 'alice', javaScriptEnabled: false });
  await page.goto(`${server.base}/clusters`);
  const form = page.locator('section.new-cluster');
  await form.getByLabel('Name', { exact: true }).fill('plain-1');
  await form.locator('select[name="environment"]').selectOption('development');
  await form.locator('select[name="driver"]').selectOption('simulated');
  await form.getByLabel(/Driver config/).fill('{ "colour": "blue" }');
  await form.getByRole('button', { name: 'Add cluster' }).click();
  await page.locator('section.new-cluster .error').waitFor();
  assert.match(await page.locator('section.new-cluster .error').textContent(), /unknown field `colour`/);

  // The refused form comes back with what was typed: only the config needs fixing.
  const back = page.locator('section.new-cluster');
  assert.equal(await back.getByLabel('Name', { exact: true }).inputValue(), 'plain-1');
  assert.equal(await back.locator('select[name="environment"]').inputValue(), 'development');
  assert.equal(await back.locator('select[name="driver"]').inputValue(), 'simulated');
  assert.equal(await back.getByLabel(/Driver config/).inputValue(), '{ "colour": "blue" }');
  await back.getByLabel(/Driver config/).fill('{}');
  await back.getByRole('button', { name: 'Add cluster' }).click();
  await page.waitForURL(`${server.base}/clusters/plain-1/test?added=1`);
  await page.getByText('Cluster plain-1 added.').waitFor();
  await page.getByText(/plain-1: all \d+ checks passed/).waitFor();

  // The Test connection button is a plain GET form to the same page.
  await page.goto(`${server.base}/clusters/plain-1`);
  await page.getByRole('button', { name: 'Test connection' }).click();
  // A GET form without fields: the address ends in "?".
  await page.waitForURL(/\/clusters\/plain-1\/test\??$/);
  await page.getByText(/plain-1: all \d+ checks passed/).waitFor();

  await page.goto(`${server.base}/clusters/plain-1`);
  await page.locator('section.removal').getByLabel(/Type the cluster's name/).fill('plain-1');
  await page.locator('section.removal').getByRole('button', { name: 'Remove cluster' }).click();
  await page.waitForURL(`${server.base}/clusters?removed=plain-1`);
  await page.getByText('Cluster plain-1 removed.').waitFor();
});
