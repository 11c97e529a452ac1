// First load as a user in a remote office feels it: the time from navigation
// to a usable page (content painted, the wasm hydrated so buttons work), with
// Chromium's network emulation (20 Mbit/s each way, 40 ms round trip), once
// with an empty cache and once with a warm one, for the overview, a model
// page and the clusters page; with the bytes each load transferred.
//
//   cargo leptos build --release --precompress && SWITCHYARD_BIN=target/release/switchyard node end2end/first-load.mjs
//   node end2end/first-load.mjs [--runs 5] [--json FILE]
//
// Prints medians over the runs. The server is the real one on a fresh demo
// database (harness.mjs); a debug build works too, but measures a debug wasm.
import { writeFileSync } from 'node:fs';
import { startServer, launchBrowser, signIn, hydrated, api } from './harness.mjs';

const args = process.argv.slice(2);
const option = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 && i + 1 < args.length ? args[i + 1] : fallback;
};
const runs = Number.parseInt(option('--runs', '5'), 10);
if (!Number.isInteger(runs) || runs < 1) {
  console.error('--runs takes a whole number of runs, 1 or more');
  process.exit(2);
}
const jsonOut = option('--json', null);

const NETWORK = {
  offline: false,
  latency: 40, // ms added to each round trip
  downloadThroughput: (20 * 1000 * 1000) / 8, // bytes per second
  uploadThroughput: (20 * 1000 * 1000) / 8,
};

const kind = (url, mime) => {
  if (url.endsWith('.wasm') || mime === 'application/wasm') return 'wasm';
  if (url.endsWith('.js') || mime.includes('javascript')) return 'js';
  if (url.endsWith('.css') || mime === 'text/css') return 'css';
  if (mime === 'text/html') return 'html';
  return 'other';
};

/// One navigation in `page`: milliseconds to painted content and to a usable
/// (hydrated) page, and the bytes that crossed the emulated network by kind.
async function load(page, cdp, url) {
  const bytes = { html: 0, js: 0, wasm: 0, css: 0, other: 0 };
  const mimes = new Map();
  const onResponse = (e) => mimes.set(e.requestId, { url: e.response.url, mime: e.response.mimeType, cached: e.response.fromDiskCache || e.response.fromMemoryCache });
  const onFinished = (e) => {
    const r = mimes.get(e.requestId);
    if (r && !r.cached) bytes[kind(r.url, r.mime)] += e.encodedDataLength;
  };
  cdp.on('Network.responseReceived', onResponse);
  cdp.on('Network.loadingFinished', onFinished);
  const start = Date.now();
  await page.goto(url, { waitUntil: 'commit' });
  await page.locator('main h1').first().waitFor();
  const painted = Date.now() - start;
  await hydrated(page);
  const usable = Date.now() - start;
  // Let the last responses' loadingFinished events arrive.
  await page.waitForLoadState('load');
  cdp.off('Network.responseReceived', onResponse);
  cdp.off('Network.loadingFinished', onFinished);
  const fcp = await page.evaluate(() => {
    const e = performance.getEntriesByName('first-contentful-paint')[0];
    return e ? Math.round(e.startTime) : null;
  });
  return { painted, usable, fcp, bytes };
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : Math.round((s[m - 1] + s[m]) / 2);
};

const server = await startServer();
const browser = await launchBrowser();
const results = [];
try {
  const { models } = await api(server.base, 'GET', '/api/v1/models');
  const model = [...models].sort((a, b) => b.version_count - a.version_count)[0]?.model_id;
  if (!model) throw new Error('the demo data has no model');
  const pages = [
    ['overview', '/'],
    [`model page (${model})`, `/models/${model}`],
    ['clusters', '/clusters'],
  ];
  // Signed in once; each run starts from a fresh context (an empty HTTP
  // cache) holding only the session cookie.
  const signer = await browser.newContext();
  await signIn(await signer.newPage(), server.base, 'alice');
  const storageState = await signer.storageState();
  await signer.close();

  for (const [name, path] of pages) {
    const cold = [];
    const warm = [];
    for (let i = 0; i < runs; i += 1) {
      const ctx = await browser.newContext({ storageState, viewport: { width: 1280, height: 900 } });
      const page = await ctx.newPage();
      const cdp = await ctx.newCDPSession(page);
      await cdp.send('Network.enable');
      await cdp.send('Network.emulateNetworkConditions', NETWORK);
      cold.push(await load(page, cdp, server.base + path));
      // The same page again in the same context: the hashed bundle files
      // come from the cache (immutable), the HTML from the server.
      warm.push(await load(page, cdp, server.base + path));
      await ctx.close();
    }
    const row = (samples) => ({
      painted_ms: median(samples.map((s) => s.painted)),
      usable_ms: median(samples.map((s) => s.usable)),
      fcp_ms: median(samples.map((s) => s.fcp ?? 0)),
      bytes: Object.fromEntries(Object.keys(samples[0].bytes).map((k) => [k, median(samples.map((s) => s.bytes[k]))])),
    });
    results.push({ page: name, path, cold: row(cold), warm: row(warm) });
  }
} finally {
  await browser.close();
  server.stop();
}

const kb = (n) => `${(n / 1024).toFixed(0)} KB`;
console.log(`First load, 20 Mbit/s, 40 ms round trip, medians of ${runs} runs (server binary: ${process.env.SWITCHYARD_BIN ?? 'target/debug/switchyard'})`);
console.log('| page | cold: painted / usable | warm: painted / usable | cold bytes: HTML / JS / wasm / CSS | warm bytes |');
console.log('|---|---|---|---|---|');
for (const r of results) {
  const b = r.cold.bytes;
  const w = r.warm.bytes;
  const warmTotal = w.html + w.js + w.wasm + w.css + w.other;
  console.log(`| ${r.page} | ${r.cold.painted_ms} / ${r.cold.usable_ms} ms | ${r.warm.painted_ms} / ${r.warm.usable_ms} ms | ${kb(b.html)} / ${kb(b.js)} / ${kb(b.wasm)} / ${kb(b.css)} | ${kb(warmTotal)} |`);
}
const cold = Math.max(...results.map((r) => r.cold.usable_ms));
const warm = Math.max(...results.map((r) => r.warm.usable_ms));
console.log(`slowest usable page: cold ${cold} ms (target < 1500), warm ${warm} ms (target < 300)`);
if (jsonOut) writeFileSync(jsonOut, JSON.stringify({ network: NETWORK, runs, results }, null, 2));
