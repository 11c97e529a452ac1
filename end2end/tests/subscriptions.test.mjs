import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { startServer, launchBrowser, openPage, hydrated, shot } from '../harness.mjs';

// The receivers are on loopback, which the server refuses unless told otherwise.
process.env.SWITCHYARD_WEBHOOK_ALLOW_PRIVATE = '1';

let server;
let browser;
let receiver;
const received = [];
let closedPort;

/// A webhook receiver on loopback that records what it is sent.
function startReceiver() {
  return new Promise((ok) => {
    const srv = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => {
        received.push({ path: req.url, headers: req.headers, body });
        res.writeHead(204).end();
      });
    });
    srv.listen(0, '127.0.0.1', () => ok(srv));
  });
}

/// A loopback port nothing listens on.
function freeClosedPort() {
  return new Promise((ok) => {
    const srv = createServer();
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

before(async () => {
  receiver = await startReceiver();
  closedPort = await freeClosedPort();
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
  receiver?.close();
});

async function waitFor(what, check, ms = 15_000) {
  const deadline = Date.now() + ms;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

test('an admin adds a webhook in the console, sees its secret once, and a test message arrives signed', async () => {
  const { page, errors } = await openPage(browser, { user: 'alice' });
  await page.goto(`${server.base}/`);
  await hydrated(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Subscriptions' }).click();
  await page.getByRole('heading', { name: 'Subscriptions', level: 1 }).waitFor();
  const form = page.locator('section.new-subscription');

  // Bad input is refused in words that say what to change, and nothing is added.
  await form.getByLabel('Name').fill('release-room');
  await form.getByLabel('URL (http or https)').fill(`http://127.0.0.1:${receiver.address().port}/hook`);
  await form.getByLabel(/Event kinds/).fill('promotion.requested, promotion.aproved');
  await form.getByRole('button', { name: 'Add subscription' }).click();
  const error = form.locator('.error');
  await error.waitFor();
  assert.match(await error.textContent(), /Not added: filter\.events: unknown event kind "promotion\.aproved"/);
  assert.equal(await page.locator('table.subscriptions tr[data-subscription="release-room"]').count(), 0);

  await form.getByLabel(/Event kinds/).fill('promotion.requested, promotion.approved');
  await form.getByRole('button', { name: 'Add subscription' }).click();
  const done = form.locator('.done');
  await done.waitFor();
  assert.match(await done.textContent(), /Subscription release-room added\./);
  const secret = (await done.locator('code.secret').textContent()).trim();
  assert.match(secret, /^whsec_/);
  const row = page.locator('table.subscriptions tr[data-subscription="release-room"]');
  await row.waitFor();
  assert.match(await row.textContent(), /promotion\.requested, promotion\.approved/);
  assert.match(await row.locator('td.health').textContent(), /delivering/);
  await shot(page, 'subscriptions-added');

  await row.getByRole('button', { name: 'Send test' }).click();
  await row.locator('.done').waitFor();
  // The list is re-read after the test is queued (the row is rebuilt); the answer stays.
  await page.waitForLoadState('networkidle');
  assert.equal(await row.locator('.done').count(), 1, 'the answer outlives the refresh of the list');
  const hit = await waitFor('the test message', () => received.find((r) => r.path === '/hook'));
  assert.ok(hit.headers['webhook-signature']?.startsWith('v1,'), 'signed (Standard Webhooks)');
  assert.ok(hit.headers['webhook-id'], 'a webhook-id');

  // The secret is never shown again.
  await page.reload();
  await hydrated(page);
  assert.equal(await page.locator('code.secret').count(), 0);
  assert.equal(await page.getByText(secret).count(), 0);
  assert.deepEqual(errors, []);
});

test('a subscription that cannot deliver is a warning on everyone\'s overview; the admin deletes it', async () => {
  const { page } = await openPage(browser, { user: 'alice' });
  await page.goto(`${server.base}/subscriptions`);
  await hydrated(page);
  const form = page.locator('section.new-subscription');
  await form.getByLabel('Name').fill('broken');
  await form.locator('select[name="kind"]').selectOption('chat');
  await form.getByLabel('URL (http or https)').fill(`http://127.0.0.1:${closedPort}/services/T0/B0/s3cr3t-path`);
  await form.getByRole('button', { name: 'Add subscription' }).click();
  await form.locator('.done').waitFor();
  assert.equal(await form.locator('code.secret').count(), 0, 'chat messages are not signed: no secret');
  const row = page.locator('table.subscriptions tr[data-subscription="broken"]');
  await row.waitFor();
  assert.doesNotMatch(await row.textContent(), /s3cr3t-path/, 'the URL is shown without its secret path');
  await row.getByRole('button', { name: 'Send test' }).click();
  await row.locator('.done').waitFor();
  // The list is re-read after the test is queued (the row is rebuilt); the answer stays.
  await page.waitForLoadState('networkidle');
  assert.equal(await row.locator('.done').count(), 1, 'the answer outlives the refresh of the list');

  // dave, a deployer, sees the warning (without the admin's link) and no Subscriptions page.
  const dave = await openPage(browser, { user: 'dave' });
  const warning = dave.page.locator('section.notification-alerts');
  await waitFor('the overview warning', async () => {
    await dave.page.goto(`${server.base}/`);
    return (await warning.count()) > 0;
  });
  assert.match(await warning.textContent(), /1 notification subscription not delivering/);
  assert.match(await warning.textContent(), /broken: (failing|paused)/);
  assert.equal(await warning.locator('a').count(), 0, 'no link for a deployer');
  assert.equal(await dave.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Subscriptions' }).count(), 0);
  await shot(dave.page, 'subscriptions-overview-warning');
  await dave.page.goto(`${server.base}/subscriptions`);
  assert.match(await dave.page.locator('main').textContent(), /admin/);

  // The admin follows the warning to the subscription, sees why, and deletes it.
  await page.goto(`${server.base}/`);
  await hydrated(page);
  await page.locator('section.notification-alerts a', { hasText: 'broken' }).click();
  await page.getByRole('heading', { name: 'broken', level: 1 }).waitFor();
  assert.match(await page.locator('dl.facts').textContent(), /Last error/);
  assert.match(await page.locator('table.deliveries').textContent(), /test message/);
  await shot(page, 'subscriptions-detail');
  await page.getByLabel('Type broken to confirm').fill('brokn');
  await page.getByRole('button', { name: 'Delete subscription' }).click();
  await page.getByText(/Not deleted: type the subscription's name, broken, to confirm/).waitFor();
  await page.getByLabel('Type broken to confirm').fill('broken');
  await page.getByRole('button', { name: 'Delete subscription' }).click();
  await page.getByText('Subscription broken deleted.').waitFor();
  await dave.page.goto(`${server.base}/`);
  assert.equal(await warning.count(), 0, 'no warning once it is gone');
});

test('without JavaScript an admin reads the subscriptions and adds one', async () => {
  const { page } = await openPage(browser, { user: 'alice', javaScriptEnabled: false });
  await page.goto(`${server.base}/subscriptions`);
  const form = page.locator('section.new-subscription');
  await form.getByLabel('Name').fill('no-js-room');
  await form.getByLabel('URL (http or https)').fill(`http://127.0.0.1:${receiver.address().port}/no-js`);
  await form.getByRole('button', { name: 'Add subscription' }).click();
  await page.waitForLoadState('load');
  await page.goto(`${server.base}/subscriptions`);
  await page.locator('table.subscriptions tr[data-subscription="no-js-room"]').waitFor();
});
