// The papercuts of issue 21 (and the busy state of issue 22 item 15), each
// as a person sees it: audit details readable, the drift note inside its
// cell, one date format with its zone named, the password box drawn like
// the username box, disabled danger buttons that look disabled, a busy
// state while an action starts, and the sign-in limit said on the page.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, hydrated, shot, api, registerVersion, moveStage, setPin } from '../harness.mjs';

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

const card = (page, name) => page.locator(`section.cluster[data-cluster="${name}"]`);

test('audit details are folded to their field names, open as formatted JSON, and a page of 50 events stays short', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/audit`);
  await hydrated(page);
  assert.equal(await page.locator('table.audit tbody tr').count(), 50);
  // The issue measured 12,800 px for a page of 50 with details squeezed to ~10 characters a line.
  const height = await page.evaluate(() => document.querySelector('table.audit').getBoundingClientRect().height);
  assert.ok(height < 5000, `a page of 50 events is ${height} px tall`);
  const details = page.locator('table.audit details.details').first();
  const summary = (await details.locator('summary').textContent()).trim();
  assert.ok(summary.length > 0, 'the folded line names what the details hold');
  const pre = details.locator('pre');
  assert.equal(await pre.isVisible(), false, 'folded until asked');
  await details.locator('summary').click();
  await pre.waitFor({ state: 'visible' });
  const json = await pre.textContent();
  assert.doesNotThrow(() => JSON.parse(json), json);
  if (Object.keys(JSON.parse(json)).length > 0) assert.match(json, /\n  "/, 'formatted, one field a line');
  // Readable: the opened details are wider than ten characters of text.
  const box = await pre.boundingBox();
  assert.ok(box && box.width >= 200, `details ${JSON.stringify(box)} wide`);
  await shot(page, 'papercuts-audit-details');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a drift note on serving at T wraps inside its table cell', async () => {
  // Drift made for the test: staging pins a new version of the model staging-eu serves.
  const cluster = await api(server.base, 'GET', '/api/v1/clusters/staging-eu');
  const serving = cluster.slots.find((s) => s.weight === 100)?.full_id;
  assert.ok(serving, JSON.stringify(cluster.slots));
  const model = serving.split(':')[0];
  const version = 'drift-check-with-a-rather-long-version-name-2026.12.07';
  await registerVersion(server.base, model, version);
  await moveStage(server.base, `${model}:${version}`, 'staging', 'e2e: a version to drift from');
  await setPin(server.base, 'staging', model, version, 'e2e: pinned without deploying, so staging-eu drifts');

  const { ctx, page, errors } = await openPage(browser, { width: 1024 });
  await page.goto(`${server.base}/serving`);
  await hydrated(page);
  const note = page.locator('td .drift').filter({ hasText: version });
  await note.waitFor();
  const [noteBox, cellBox] = await Promise.all([note.boundingBox(), note.locator('xpath=ancestor::td[1]').boundingBox()]);
  assert.ok(
    noteBox.x >= cellBox.x - 1 && noteBox.x + noteBox.width <= cellBox.x + cellBox.width + 1,
    `note ${JSON.stringify(noteBox)} inside its cell ${JSON.stringify(cellBox)}`,
  );
  const overflows = await note.evaluate((el) => el.scrollWidth > el.clientWidth + 1);
  assert.equal(overflows, false, 'no text runs out of the note');
  await shot(page, 'papercuts-drift');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('dates are typed in one format with the zone named, never in the browser\'s own date picker', async () => {
  const { ctx, page, errors } = await openPage(browser);
  for (const [path, names] of [['/audit', ['From (UTC)', 'To (UTC)']], ['/serving', ['Date and time']]]) {
    await page.goto(`${server.base}${path}`);
    await hydrated(page);
    assert.equal(await page.locator('input[type="date"], input[type="datetime-local"], input[type="time"]').count(), 0, path);
    for (const name of names) {
      const input = page.getByLabel(name);
      assert.equal(await input.getAttribute('type'), 'text', `${path} ${name}`);
      assert.match(await input.getAttribute('placeholder'), /^YYYY-MM-DD HH:MM(:SS)?$/, `${path} ${name}`);
    }
  }
  // Serving at T names the zone it reads the time in.
  await page.getByLabel('Time zone').waitFor();
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('the password box is drawn like the username box', async () => {
  const { ctx, page } = await openPage(browser, { user: null });
  await page.goto(`${server.base}/signin`);
  const [user, password] = await Promise.all([
    page.getByLabel('Username').boundingBox(),
    page.getByLabel('Password').boundingBox(),
  ]);
  assert.ok(Math.abs(user.width - password.width) <= 1, `widths ${user.width} and ${password.width}`);
  assert.ok(Math.abs(user.height - password.height) <= 1, `heights ${user.height} and ${password.height}`);
  await ctx.close();
});

test('a disabled danger button looks disabled, not like the live one', async () => {
  const viewer = await openPage(browser, { user: 'erin' });
  const deployer = await openPage(browser, { user: 'dave' });
  for (const { page } of [viewer, deployer]) {
    await page.goto(`${server.base}/clusters`);
    await hydrated(page);
  }
  const off = card(viewer.page, 'staging-eu').getByRole('button', { name: 'Roll back…' });
  const live = card(deployer.page, 'staging-eu').getByRole('button', { name: 'Roll back…' });
  assert.equal(await off.isDisabled(), true, 'a viewer cannot roll back');
  assert.equal(await live.isDisabled(), false, 'a deployer can');
  const look = (b) => b.evaluate((el) => {
    const s = getComputedStyle(el);
    return { background: s.backgroundColor, border: s.borderStyle, color: s.color };
  });
  const [offLook, liveLook] = await Promise.all([look(off), look(live)]);
  assert.notEqual(offLook.background, liveLook.background, `${JSON.stringify(offLook)} vs ${JSON.stringify(liveLook)}`);
  assert.notEqual(offLook.border, liveLook.border, `${JSON.stringify(offLook)} vs ${JSON.stringify(liveLook)}`);
  await viewer.ctx.close();
  await deployer.ctx.close();
});

test('while a switch is being started the card says so', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: 'dave' });
  // The server function's answer held back for a moment, as on a slow link.
  await page.route('**/console/fn/start_operation', async (route) => {
    await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await page.goto(`${server.base}/clusters`);
  await hydrated(page);
  const staging = card(page, 'staging-eu');
  const options = await staging.getByLabel('Version').locator('option').allTextContents();
  const serving = (await staging.locator('td.slot-version').allTextContents()).map((t) => t.trim());
  const target = options.find((o) => !serving.includes(o));
  assert.ok(target, `a version to switch to: ${options} (serving ${serving})`);
  await staging.getByLabel('Version').selectOption(target);
  await staging.getByLabel('Reason').fill('e2e: busy state');
  await staging.getByRole('button', { name: 'Blue-green switch…' }).click();
  await staging.getByRole('alertdialog').getByRole('button', { name: 'Confirm blue-green switch' }).click();
  await staging.getByRole('status').filter({ hasText: 'Starting…' }).waitFor({ timeout: 1400 });
  await staging.getByRole('status').filter({ hasText: 'Starting…' }).waitFor({ state: 'detached', timeout: 10_000 });
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('past the failed sign-in limit the page says so and when to try again, with the username kept', async () => {
  const { ctx, page, errors } = await openPage(browser, { user: null });
  const attempt = async () => {
    await page.goto(`${server.base}/signin`);
    await page.getByLabel('Username').fill('carol');
    await page.getByLabel('Password').fill('not-her-password');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.request().method() === 'POST' && r.url().endsWith('/signin')),
      page.getByRole('button', { name: 'Sign in' }).click(),
    ]);
    return res;
  };
  for (let i = 0; i < 5; i++) {
    assert.equal((await attempt()).status(), 303, `attempt ${i + 1} goes back to the form`);
  }
  const limited = await attempt();
  assert.equal(limited.status(), 429);
  assert.equal(limited.headers()['retry-after'], '900');
  // The page hydrates at /signin as it was rendered: the notice and the username stay.
  await hydrated(page);
  const alert = page.getByRole('alert');
  assert.match(await alert.textContent(), /Signing in is paused: .* Try again in 15 minutes/);
  assert.equal(await page.getByLabel('Username').inputValue(), 'carol');
  await shot(page, 'papercuts-signin-limited');
  assert.deepEqual(errors, []);
  await ctx.close();
});
