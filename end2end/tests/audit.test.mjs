import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, mkdtempSync, existsSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, launchBrowser, openPage, hydrated, shot, api, serverBin } from '../harness.mjs';

let server;
let browser;
// The server signs checkpoints into a file with this key (README, Proving
// the audit to an outsider); the auditor holds the public key.
let publicKey;
let otherKey;

const keygen = (file) => execFileSync(serverBin(), ['audit', 'keygen', '--out', file], { stdio: ['ignore', 'pipe', 'ignore'] })
  .toString().trim();

before(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-checkpoints-'));
  publicKey = keygen(join(dir, 'checkpoint.key'));
  otherKey = keygen(join(dir, 'other.key'));
  const checkpoints = join(dir, 'checkpoints.jsonl');
  server = await startServer({
    env: { SWITCHYARD_CHECKPOINT_KEY: join(dir, 'checkpoint.key'), SWITCHYARD_CHECKPOINT_FILE: checkpoints },
  });
  // The first checkpoint is signed as the server starts.
  for (let i = 0; i < 100 && !(existsSync(checkpoints) && readFileSync(checkpoints, 'utf8').trim()); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
});

test('the audit log renders its newest events and filters by action without JavaScript', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/audit`);
  const rows = page.locator('table.audit tbody tr');
  assert.equal(await rows.count(), 50, 'a page of 50 events');
  await page.getByLabel('Action').selectOption('pin.changed');
  await page.getByRole('button', { name: 'Apply filters' }).click();
  await page.waitForURL(/action=pin.changed/);
  const actions = await page.locator('table.audit tbody td:nth-child(4)').allTextContents();
  assert.ok(actions.length > 0);
  assert.ok(actions.every((a) => a === 'pin.changed'), actions.join());
  await shot(page, 'audit-nojs');
  await ctx.close();
});

test('paging to older events continues where the first page ended', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/audit`);
  await hydrated(page);
  const ids = async () => (await page.locator('table.audit tbody td:first-child').allTextContents()).map(Number);
  const first = await ids();
  await page.getByRole('link', { name: 'Older events →' }).click();
  await page.waitForURL(/cursor=/);
  await page.waitForFunction((n) => {
    const cell = document.querySelector('table.audit tbody td');
    return cell !== null && Number(cell.textContent) < n;
  }, first.at(-1) + 1);
  const second = await ids();
  assert.equal(second[0], first.at(-1) - 1, 'no event skipped or repeated');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('verify chain says the chain is OK', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/audit`);
  await hydrated(page);
  await page.getByRole('button', { name: 'Verify chain' }).click();
  const status = page.locator('.verify').first();
  await status.waitFor({ timeout: 20_000 });
  assert.match(await status.textContent(), /Chain OK\. All \d+ events link up/);
  // Without a key the checkpoints are not checked, and the page says how to.
  assert.match(await page.locator('.verify[data-checkpoints="no-key"]').textContent(), /no public key was given/);
  await shot(page, 'audit');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('verify chain with the auditor\'s public key says every signed checkpoint holds', async () => {
  const { ctx, page, errors } = await openPage(browser);
  await page.goto(`${server.base}/audit`);
  await hydrated(page);
  await page.getByLabel('Checkpoint public key (your own copy)').fill(publicKey);
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await page.waitForURL(new RegExp(`public_key=${publicKey}`));
  const verdict = page.locator('.verify[data-checkpoints="hold"]');
  await verdict.waitFor({ timeout: 20_000 });
  assert.match(await page.locator('.verify.ok').first().textContent(), /Chain OK\./);
  assert.match(
    await verdict.textContent(),
    new RegExp(`^Checkpoints OK\\. 1 signed checkpoint checked in .+checkpoints\\.jsonl with public key ${publicKey}: the ledger still holds each signed head unchanged\\. Newest: checkpoint #1 — event #\\d+ at .+ UTC, signed .+ UTC\\. Events after the newest checkpoint: \\d+\\.`),
  );
  // The form keeps the key, so verifying again is one click.
  assert.equal(await page.getByLabel('Checkpoint public key (your own copy)').inputValue(), publicKey);
  await shot(page, 'audit-verify-checkpoints');
  assert.deepEqual(errors, []);
  await ctx.close();
});

test('without JavaScript verify chain with another key names the checkpoint whose signature does not verify', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/audit`);
  await page.getByLabel('Checkpoint public key (your own copy)').fill(otherKey);
  await page.getByRole('button', { name: 'Verify chain' }).click();
  await page.waitForURL(/verify=1/);
  const verdict = page.locator('.verify[data-checkpoints="contradicted"]');
  assert.match(await verdict.textContent(), /^Checkpoints CONTRADICTED: 1 finding in .+checkpoints\.jsonl \(1 checkpoint, public key /);
  assert.match(
    await verdict.locator('li').textContent(),
    new RegExp(`^checkpoint 1 \\(event \\d+, .+\\) : the signature does not verify with public key ${otherKey} `),
  );
  await shot(page, 'audit-verify-nojs-wrong-key');

  // A key that is not one is refused on the page, with its status.
  const res = await page.goto(`${server.base}/audit?verify=1&public_key=not-a-key`);
  assert.equal(res.status(), 422);
  assert.match(await page.getByRole('alert').textContent(), /Could not verify the chain\. The public key holds 'n' \(character 1\), which is not a hex digit/);
  assert.equal(await page.locator('.verify').count(), 0, 'nothing was checked');
  await ctx.close();
});

test('the filtered audit log downloads as CSV and as JSON', async () => {
  const { ctx, page } = await openPage(browser);
  await page.goto(`${server.base}/audit?action=stage.changed`);
  await hydrated(page);
  let expected = 0;
  for (let cursor = ''; ;) {
    const page = await api(server.base, 'GET', `/api/v1/audit?action=stage.changed&limit=500${cursor}`);
    expected += page.events.length;
    if (!page.next_cursor) break;
    cursor = `&cursor=${page.next_cursor}`;
  }
  assert.ok(expected > 0);

  const [csvDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'CSV' }).click()]);
  assert.equal(csvDownload.suggestedFilename(), 'switchyard-audit.csv');
  const csv = readFileSync(await csvDownload.path(), 'utf8').trim().split('\n');
  assert.equal(csv[0], 'id,at,actor,action,model_id,version,environment,cluster,reason,details,prev_hash,hash');
  assert.equal(csv.length - 1, expected);
  assert.ok(csv.slice(1).every((line) => line.split(',')[3] === 'stage.changed'));

  const [jsonDownload] = await Promise.all([page.waitForEvent('download'), page.getByRole('link', { name: 'JSON' }).click()]);
  assert.equal(jsonDownload.suggestedFilename(), 'switchyard-audit.json');
  const events = JSON.parse(readFileSync(await jsonDownload.path(), 'utf8'));
  assert.equal(events.length, expected);
  assert.ok(events.every((e) => e.action === 'stage.changed' && e.hash.startsWith('sha256:')));
  await ctx.close();
});

test('an unreadable time filter is answered in plain words', async () => {
  const { ctx, page } = await openPage(browser, { javaScriptEnabled: false });
  await page.goto(`${server.base}/audit?from=tuesday`);
  assert.match(await page.getByRole('alert').textContent(), /The from time “tuesday” is not a time/);
  await ctx.close();
});
