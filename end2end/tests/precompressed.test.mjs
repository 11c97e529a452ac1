// The release build writes brotli and gzip files beside the bundle
// (`cargo leptos build --release --precompress`, scripts/run): the server must
// send those bytes as they are, never compress the bundle again per request,
// and the browser must run the page from them. The debug build the tests use
// has no such files, so this test writes them the way cargo-leptos does (next
// to each file, `.br` and `.gz`) into a copy of the site.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cpSync, mkdtempSync, readdirSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { brotliCompressSync, gzipSync, constants } from 'node:zlib';
import { root, startServer, launchBrowser, signIn } from '../harness.mjs';

let server;
let browser;
let site;

before(async () => {
  site = mkdtempSync(join(tmpdir(), 'switchyard-site-'));
  cpSync(join(root, 'target/site'), site, { recursive: true });
  for (const name of readdirSync(join(site, 'pkg'))) {
    const file = join(site, 'pkg', name);
    const raw = readFileSync(file);
    // A marker no on-the-fly compressor would produce: maximum quality.
    writeFileSync(`${file}.br`, brotliCompressSync(raw, { params: { [constants.BROTLI_PARAM_QUALITY]: 11 } }));
    writeFileSync(`${file}.gz`, gzipSync(raw, { level: 9 }));
  }
  server = await startServer({ env: { LEPTOS_SITE_ROOT: site } });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
  if (site) rmSync(site, { recursive: true, force: true });
});

/// GET `path` with `Accept-Encoding: encoding`: status, headers and the bytes as sent.
function raw(path, encoding) {
  return new Promise((ok, fail) => {
    const req = request(`${server.base}${path}`, { headers: { 'accept-encoding': encoding } }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => ok({ status: res.statusCode, headers: res.headers, body: Buffer.concat(chunks) }));
    });
    req.on('error', fail);
    req.end();
  });
}

test('the bundle is sent from its precompressed files, byte for byte, and the page runs from them', async () => {
  const wasm = readdirSync(join(site, 'pkg')).find((n) => n.endsWith('.wasm'));
  assert.ok(wasm, 'a wasm file in the site');
  for (const [encoding, suffix] of [['br', '.br'], ['gzip', '.gz']]) {
    const res = await raw(`/pkg/${wasm}`, encoding);
    assert.equal(res.status, 200);
    assert.equal(res.headers['content-encoding'], encoding);
    assert.equal(res.headers['content-type'], 'application/wasm');
    assert.ok(
      res.body.equals(readFileSync(join(site, 'pkg', `${wasm}${suffix}`))),
      `the ${encoding} body is the ${suffix} file as written, not compressed again`,
    );
  }
  // A client that takes no compression gets the file itself.
  const plain = await raw(`/pkg/${wasm}`, 'identity');
  assert.equal(plain.headers['content-encoding'], undefined);
  assert.ok(plain.body.equals(readFileSync(join(site, 'pkg', wasm))));

  const ctx = await browser.newContext();
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await signIn(page, server.base);
  await page.locator('header[data-hydrated="true"]').waitFor({ timeout: 20_000 });
  assert.deepEqual(errors, []);
  await ctx.close();
});
