import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startServer, launchBrowser, openPage, hydrated, shot, api, registerVersion } from '../harness.mjs';

let server;
let browser;
let model;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
  // The demo model with the most pin changes makes the fullest timeline.
  const { models } = await api(server.base, 'GET', '/api/v1/models');
  model = models.sort((a, b) => b.version_count - a.version_count)[0].model_id;
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test('the model page draws the timeline and lists the versions without JavaScript', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/models/${model}?range=all`);
  await page.getByRole('heading', { name: 'Version timeline' }).waitFor();
  const bars = await page.locator('svg g.bar').count();
  const markers = await page.locator('svg g.marker').count();
  assert.ok(bars >= 3, `expected pin bars, saw ${bars}`);
  assert.ok(markers >= 5, `expected stage markers, saw ${markers}`);
  assert.match(await page.locator('svg g.bar title').first().textContent(), / by /);
  const rows = await page.locator('section[aria-labelledby="versions-h"] tbody tr').count();
  const { versions } = await api(server.base, 'GET', `/api/v1/models/${model}/versions`);
  assert.equal(rows, versions.length);
  await shot(page, 'model-nojs');
  await ctx.close();
});

test('zooming to 30 days and focusing a bar shows who pinned it and why', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/models/${model}?range=all`);
  await hydrated(page);
  const all = await page.locator('svg g.marker').count();
  await page.getByRole('link', { name: '30 days' }).click();
  await page.waitForURL(/range=30d/);
  await page.waitForFunction((n) => document.querySelectorAll('svg g.marker').length < n, all);
  assert.equal(await page.getByRole('link', { name: '30 days' }).getAttribute('aria-current'), 'page');
  await page.getByRole('link', { name: 'All' }).click();
  await page.waitForFunction((n) => document.querySelectorAll('svg g.marker').length === n, all);
  const bar = page.locator('svg g.bar').last();
  await bar.focus();
  const detail = page.locator('.timeline-detail');
  await page.waitForFunction(() => / pinned from /.test(document.querySelector('.timeline-detail').textContent));
  assert.equal(await detail.textContent(), await bar.getAttribute('aria-label'));
  await shot(page, 'model');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('zooming from the default 90 days out to All fetches the older history, and back again', async () => {
  // The server sends only the history inside the address's range: "All"
  // clicked with JavaScript must fetch what 90 days left out.
  const { versions } = await api(server.base, 'GET', `/api/v1/models/${model}/versions`);
  const oldest = versions[versions.length - 1].version;
  const summary = (page) => page.locator('figure.timeline svg[role="group"]').getAttribute('aria-label');
  const counts = (text) => text.match(/(\d+) pin changes and (\d+) stage changes/).slice(1).map(Number);
  const showsOldest = (page) => page.waitForFunction(
    (id) => [...document.querySelectorAll('svg g.marker')].some((m) => m.getAttribute('aria-label').includes(id)),
    `${model}:${oldest} `,
  );
  const nojs = await openPage(browser, { javaScriptEnabled: false });
  await nojs.page.goto(`${server.base}/models/${model}?range=all`);
  const everything = counts(await summary(nojs.page));
  await nojs.ctx.close();

  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/models/${model}`);
  await hydrated(page);
  const ninety = counts(await summary(page));
  assert.ok(ninety[1] < everything[1], `90 days show fewer stage changes (${ninety}) than all (${everything})`);
  await page.getByRole('link', { name: 'All', exact: true }).click();
  await page.waitForURL(/range=all/);
  await showsOldest(page);
  assert.deepEqual(counts(await summary(page)), everything);
  await page.getByRole('link', { name: '90 days', exact: true }).click();
  await page.waitForURL(/range=90d/);
  await page.waitForFunction((n) => {
    const label = document.querySelector('figure.timeline svg[role="group"]')?.getAttribute('aria-label') ?? '';
    return label.includes(`and ${n} stage changes`);
  }, ninety[1]);
  await page.getByRole('link', { name: 'All', exact: true }).click();
  await page.waitForURL(/range=all/);
  await showsOldest(page);
  assert.deepEqual(counts(await summary(page)), everything);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('after zooming, every bar and marker hovered shows its own words; 24 hours has hour marks', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/models/${model}?range=1y`);
  await hydrated(page);
  for (const range of ['30 days', 'All', '90 days']) {
    await page.getByRole('link', { name: range, exact: true }).click();
    await page.waitForFunction((r) => document.querySelector(`nav.zoom a[aria-current="page"]`)?.textContent === r, range);
    const items = page.locator('svg g.bar[data-detail], svg g.marker[data-detail]:not(.mk-rollback)');
    const n = Math.min(await items.count(), 12);
    for (let i = 0; i < n; i++) {
      const item = items.nth(i);
      // The shape itself: a short bar's label written above it reaches past it.
      const shape = item.locator('rect.bar-fill, path, rect').first();
      const box = await shape.boundingBox();
      if (!box || box.width < 1) continue;
      await shape.hover({ force: true });
      const own = await item.getAttribute('aria-label');
      await page.waitForFunction((text) => document.querySelector('.timeline-detail').textContent === text, own, { timeout: 5_000 });
    }
  }
  await page.getByRole('link', { name: '24 hours', exact: true }).click();
  await page.waitForURL(/range=24h/);
  const ticks = await page.locator('svg g.tick text').allTextContents();
  assert.ok(ticks.some((t) => /^\d{2}:00$/.test(t)), `hour marks: ${ticks}`);
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('a version page shows its config, stage history and pins, and is reached from the versions table', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/models/${model}`);
  await hydrated(page);
  const link = page.locator('section[aria-labelledby="versions-h"] tbody a.version').first();
  const version = (await link.textContent()).trim();
  await link.click();
  await page.waitForURL(new RegExp(`/versions/${model}:${version}`));
  await page.getByRole('heading', { name: 'Stage history' }).waitFor();
  assert.match(await page.locator('pre.config').textContent(), /\{/);
  assert.ok(await page.locator('section[aria-labelledby="history-h"] tbody tr').count() >= 1);
  assert.deepEqual(errors, []);
  await ctx.close();

  const nojs = await openPage(browser, { javaScriptEnabled: false });
  await nojs.page.goto(`${server.base}/versions/${model}:${version}`);
  await nojs.page.getByText('Pinned now in').waitFor();
  assert.match(await nojs.page.locator('.facts').textContent(), /sha256:/);
  await shot(nojs.page, 'version-nojs');
  await nojs.ctx.close();
});

test('an unknown model is answered in plain words, not a blank page', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/models/no-such-model`);
  const alert = page.getByRole('alert');
  assert.match(await alert.textContent(), /Could not load this model\. model no-such-model has no registered version/);
  await ctx.close();
});

test('a model with 1 000 versions: a page of 50 in the address, works without JavaScript, and the timeline groups what overlaps', async () => {
  const big = 'e2e-thousand';
  const names = Array.from({ length: 1000 }, (_, i) => `1.0.${i}`);
  for (let i = 0; i < names.length; i += 10) {
    await Promise.all(names.slice(i, i + 10).map((v) => registerVersion(server.base, big, v)));
  }
  const { versions } = await api(server.base, 'GET', `/api/v1/models/${big}/versions`);
  assert.equal(versions.length, 1000);
  const rows = (page) => page.locator('section[aria-labelledby="versions-h"] tbody tr');
  const firstVersion = async (page) => (await rows(page).first().locator('a.version').textContent()).trim();

  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  const first = await page.goto(`${server.base}/models/${big}?range=all`);
  assert.equal(first.status(), 200);
  assert.equal(await rows(page).count(), 50);
  assert.equal(await firstVersion(page), versions[0].version);
  assert.match(await page.locator('nav.pager').textContent(), /Versions 1–50 of 1000, newest first \(page 1 of 20\)/);
  // 1 000 registrations over a few seconds: one group marker naming its count, not 1 000 markers.
  const groups = page.locator('svg g.mk-group');
  assert.ok(await groups.count() >= 1);
  assert.ok(await page.locator('svg g.marker').count() <= 80, 'overlapping markers are grouped');
  assert.match(await groups.first().locator('title').textContent(), /^\d+ changes from .* and \d+ more — zoom in to see each$/);
  await shot(page, 'model-thousand-nojs');
  await page.getByRole('link', { name: 'Older ›' }).click();
  await page.waitForURL(/page=2/);
  assert.match(page.url(), /range=all/, 'the timeline range is kept');
  assert.equal(await firstVersion(page), versions[50].version);
  await page.getByRole('link', { name: 'Oldest »' }).click();
  await page.waitForURL(/page=20/);
  assert.equal(await rows(page).count(), 50);
  assert.equal(await firstVersion(page), versions[950].version);

  const past = await page.goto(`${server.base}/models/${big}?page=21`);
  assert.equal(past.status(), 404);
  assert.match(await page.getByRole('alert').textContent(), /page 21 does not exist: there are 1000 versions, 50 to a page, so pages 1 to 20/);
  const word = await page.goto(`${server.base}/models/${big}?page=two`);
  assert.equal(word.status(), 422);
  assert.match(await page.getByRole('alert').textContent(), /page “two” is not a page number/);
  await ctx.close();

  // With JavaScript the pager moves without reloading the page.
  const live = await openPage(browser);
  await live.page.goto(`${server.base}/models/${big}?range=all`);
  await hydrated(live.page);
  await live.page.getByRole('link', { name: 'Older ›' }).click();
  await live.page.waitForURL(/page=2/);
  await live.page.waitForFunction((v) => document.querySelector('section[aria-labelledby="versions-h"] tbody a.version')?.textContent.trim() === v, versions[50].version);
  assert.match(await live.page.locator('nav.pager').textContent(), /page 2 of 20/);
  assert.deepEqual(live.errors, []);
  await live.ctx.close();
});

test('a zoom range that ends before it starts, or a date that is not one, is said so with a 422 and a chart that still draws', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  const backwards = await page.goto(`${server.base}/models/${model}?from=2026-05-01&to=2026-01-01`);
  assert.equal(backwards.status(), 422);
  assert.match(await page.getByRole('alert').textContent(), /The range ends before it starts; showing 90 days instead\./);
  assert.ok(await page.locator('svg.timeline, .timeline svg').count() >= 1);
  const absurd = await page.goto(`${server.base}/models/${model}?from=99999-13-45`);
  assert.equal(absurd.status(), 422);
  assert.match(await page.getByRole('alert').textContent(), /“99999-13-45” is not a date like 2026-03-03 or 2026-03-03 14:30 \(UTC\)/);
  await ctx.close();
});
