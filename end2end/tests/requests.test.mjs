import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { randomUUID } from 'node:crypto';
import { startServer, launchBrowser, openPage, hydrated, shot, api } from '../harness.mjs';

let server;
let browser;
let requestId;
let version;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  const { environments } = await api(server.base, 'GET', '/api/v1/environments');
  const pin = environments.find((e) => e.name === 'production').pins[0];
  version = await api(server.base, 'GET', `/api/v1/versions/${pin.full_id}`);
  requestId = `e2e-${randomUUID()}`;
  await api(server.base, 'POST', '/api/v1/request-records', [{
    request_id: requestId,
    at: new Date().toISOString(),
    // A cluster Switchyard manages: records naming others are refused.
    cluster: 'prod-eu',
    slot: 'blue',
    full_id: pin.full_id,
    latency_ms: 42.5,
    outcome: 'ok',
  }]);
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test('looking up a request id names the version that served it, its config hash and its provenance', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/requests`);
  await hydrated(page);
  await page.getByLabel('Request id').fill(requestId);
  await page.getByRole('button', { name: 'Look up' }).click();
  await page.getByRole('heading', { name: `Served by ${version.full_id}` }).waitFor();
  assert.equal(await page.locator('.config-hash').textContent(), version.config_hash);
  const actions = await page.locator('section[aria-labelledby="prov-h"] tbody td:nth-child(4)').allTextContents();
  assert.ok(actions.includes('version.registered') && actions.includes('pin.changed'), actions.join());
  await shot(page, 'requests');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('without JavaScript the lookup renders from the id in the address', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/requests?id=${requestId}`);
  await page.getByRole('heading', { name: `Served by ${version.full_id}` }).waitFor();
  assert.match(await page.locator('.facts').textContent(), /Latency42\.50 ms/);
  await shot(page, 'requests-nojs');
  await page.goto(`${server.base}/requests?id=no-such-request`);
  assert.match(await page.getByRole('alert').textContent(), /No request with id “no-such-request” has been recorded/);
  await ctx.close();
});
