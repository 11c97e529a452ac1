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

async function freezes() {
  const r = await api(server.base, 'GET', '/api/v1/freezes');
  return r.freezes;
}

async function policyOf(env) {
  const r = await api(server.base, 'GET', '/api/v1/environments');
  return r.environments.find((e) => e.name === env).policy;
}

test('an admin edits an approval policy and adds a freeze window on the Release policy page', async () => {
  const { page, errors } = await openPage(browser, { user: 'alice' });
  await page.goto(`${server.base}/`);
  await hydrated(page);
  await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Release policy' }).click();
  await page.getByRole('heading', { name: 'Release policy', level: 1 }).waitFor();

  // The production policy: expiry 48 h, none from the requester's groups.
  const production = page.locator('form.policy-form[data-environment="production"]');
  await production.getByLabel('Expiry (hours)').fill('48');
  await production.getByLabel("Requester's groups may approve").selectOption('no');
  await production.getByRole('button', { name: 'Save policy' }).click();
  await production.getByText('Saved the policy of production.').waitFor();
  const saved = await policyOf('production');
  assert.equal(saved.expiry_hours, 48);
  assert.equal(saved.requester_group_may_approve, false);

  // A policy nobody can satisfy is refused, in words, and nothing changes.
  await production.getByLabel(/Required groups/).fill('nobody-is-in-this');
  await production.getByRole('button', { name: 'Save policy' }).click();
  const refusal = production.locator('.error');
  await refusal.waitFor();
  assert.match(await refusal.textContent(), /Not saved: .*can never be satisfied.*nobody-is-in-this/);
  assert.deepEqual((await policyOf('production')).required_groups, []);

  // A freeze: a bad day is named, then a one-off window is added.
  const form = page.locator('form.add-freeze');
  await form.getByLabel('Name').fill('year-end');
  await form.getByLabel('Environment').selectOption('staging');
  await form.getByLabel('Kind').selectOption('weekly');
  await form.getByLabel(/Days/).fill('funday');
  await form.getByLabel(/Start/).fill('18:00');
  await form.getByLabel(/Duration/).fill('60');
  await form.getByRole('button', { name: 'Add freeze' }).click();
  await form.locator('.error').waitFor();
  assert.match(await form.locator('.error').textContent(), /Not added: .*"funday"/);
  await form.getByLabel('Kind').selectOption('one_off');
  await form.getByLabel('From', { exact: true }).fill('2099-12-24 00:00');
  await form.getByLabel('To', { exact: true }).fill('2099-12-27 00:00');
  await form.getByRole('button', { name: 'Add freeze' }).click();
  await form.getByText('Added freeze “year-end” in staging.').waitFor();
  const row = page.locator('table.freezes tr', { hasText: 'year-end' });
  await row.waitFor();
  assert.match(await row.textContent(), /staging.*one-off 2099-12-24 00:00/);
  assert.ok((await freezes()).some((f) => f.name === 'year-end' && f.environment === 'staging'));
  await shot(page, 'release-policy');
  assert.deepEqual(errors, []);
});

test('without JavaScript an admin saves a policy and adds a weekly freeze in a time zone', async () => {
  const { page } = await openPage(browser, { user: 'alice', javaScriptEnabled: false });
  await page.goto(`${server.base}/release`);
  const staging = page.locator('form.policy-form[data-environment="staging"]');
  await staging.getByLabel('Expiry (hours)').fill('24');
  await staging.getByRole('button', { name: 'Save policy' }).click();
  await page.waitForLoadState('load');
  assert.equal((await policyOf('staging')).expiry_hours, 24);

  await page.goto(`${server.base}/release`);
  const form = page.locator('form.add-freeze');
  await form.getByLabel('Name').fill('weekend');
  await form.getByLabel('Environment').selectOption('production');
  await form.getByLabel('Kind').selectOption('weekly');
  await form.getByLabel(/Days/).fill('fri');
  await form.getByLabel(/Start/).fill('18:00');
  await form.getByLabel(/Duration/).fill('3600');
  await form.getByLabel(/Time zone/).fill('Europe/Berlin');
  await form.getByRole('button', { name: 'Add freeze' }).click();
  await page.waitForLoadState('load');
  await page.goto(`${server.base}/release`);
  const row = page.locator('table.freezes tr', { hasText: 'weekend' });
  await row.waitFor();
  assert.match(await row.textContent(), /weekly fri 18:00 for 60 h \(Europe\/Berlin\)/);
  assert.equal(await page.locator('form.policy-form[data-environment="staging"] input[name="expiry_hours"]').inputValue(), '24');
});

test('a deployer reads the release policy with every change greyed out and the reason given', async () => {
  const { page, errors } = await openPage(browser, { user: 'dave' });
  await page.goto(`${server.base}/release`);
  await hydrated(page);
  const save = page.locator('form.policy-form[data-environment="production"]').getByRole('button', { name: 'Save policy' });
  assert.equal(await save.isDisabled(), true);
  assert.equal(await page.locator('form.add-freeze').getByRole('button', { name: 'Add freeze' }).isDisabled(), true);
  assert.match(await page.locator('main').textContent(), /Changing release policy needs an admin binding for all/);
  assert.deepEqual(errors, []);
});
