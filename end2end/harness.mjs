// Starts the real switchyard server on a free port with a fresh SQLite
// database filled with demo data, and launches Debian's Chromium.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, mkdirSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve, dirname } from 'node:path';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, '..');
export const shotsDir = join(here, 'screenshots');

function freePort() {
  return new Promise((ok, fail) => {
    const srv = createServer();
    srv.unref();
    srv.on('error', fail);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => ok(port));
    });
  });
}

/// The switchyard binary the tests run (for its CLI too).
export function serverBin() {
  // cargo puts the binary under CARGO_TARGET_DIR when it is set.
  const targetDir = process.env.CARGO_TARGET_DIR ?? join(root, 'target');
  const bin = process.env.SWITCHYARD_BIN ?? join(targetDir, 'debug/switchyard');
  if (!existsSync(bin)) throw new Error(`no server binary at ${bin}: run cargo leptos build first`);
  return bin;
}

/// `port` and `env`: a server on a port chosen beforehand (the identity
/// provider must know its redirect URI first) with extra environment.
export async function startServer({ port: chosenPort, env = {} } = {}) {
  const bin = serverBin();
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  const port = chosenPort ?? await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--demo-if-empty'], {
    env: {
      ...process.env,
      ...env,
      DATABASE_URL: `sqlite://${dir}/switchyard.db`,
      SWITCHYARD_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: env.LEPTOS_SITE_ROOT ?? join(root, 'target/site'),
      RUST_LOG: process.env.RUST_LOG ?? 'warn',
    },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`server exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${base}/healthz`);
      if (r.ok) break;
    } catch { /* not up yet */ }
    if (Date.now() > deadline) throw new Error('server did not answer /healthz within 30 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  // The REST API takes bearer tokens: one for the tests, made by the CLI as an
  // operator would, for the demo admin.
  apiToken = execFileSync(bin, ['token', 'create', '--user', 'alice', '--name', 'e2e'], {
    env: { ...process.env, DATABASE_URL: `sqlite://${dir}/switchyard.db` },
    stdio: ['ignore', 'pipe', 'ignore'],
  }).toString().trim();
  currentBase = base;
  return { base, token: apiToken, stop: () => child.kill('SIGTERM') };
}

let apiToken = '';
let currentBase = '';

/// A fresh browser context and page that records uncaught page errors,
/// signed in as `user` (a demo user; alice is the admin) unless `user` is null.
export async function openPage(browser, { javaScriptEnabled = true, width = 1280, user = 'alice' } = {}) {
  const ctx = await browser.newContext({ javaScriptEnabled, viewport: { width, height: 900 }, acceptDownloads: true });
  const page = await ctx.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  if (user) await signIn(page, currentBase, user);
  return { ctx, page, errors };
}

/// Waits until the wasm bundle has hydrated the page.
export async function hydrated(page) {
  await page.locator('header[data-hydrated="true"]').waitFor({ timeout: 20_000 });
}

export function shot(page, name) {
  return page.screenshot({ path: join(shotsDir, `${name}.png`), fullPage: true });
}

/// Calls the REST API and returns the parsed body, failing on an error status.
export async function api(base, method, path, body, contentType = 'application/json') {
  const r = await fetch(base + path, {
    method,
    headers: {
      authorization: `Bearer ${apiToken}`,
      ...(body === undefined ? {} : { 'content-type': contentType }),
    },
    body: body === undefined ? undefined : (typeof body === 'string' ? body : JSON.stringify(body)),
  });
  const text = await r.text();
  if (!r.ok) throw new Error(`${method} ${path} answered ${r.status}: ${text}`);
  return text ? JSON.parse(text) : null;
}

export const registerVersion = (base, model, version, config = { temperature: 0.2, version }) =>
  api(base, 'POST', `/api/v1/models/${model}/versions`, { version, config, artifact_uri: `s3://e2e/${model}/${version}` });

export const moveStage = (base, fullId, to, reason) =>
  api(base, 'POST', `/api/v1/versions/${fullId}/stage`, { to, reason });

export const setPin = (base, env, model, version, reason) =>
  api(base, 'PUT', `/api/v1/environments/${env}/pins/${model}`, { version, reason });

export async function launchBrowser() {
  mkdirSync(shotsDir, { recursive: true });
  return chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: [
      '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
  });
}

// Signs in through the sign-in page as one of the demo users (README, "Demo users").
export async function signIn(page, base, user = 'erin', password = `${user}-switchyard`) {
  await page.goto(base + '/signin');
  await page.getByLabel('Username').fill(user);
  await page.getByLabel('Password').fill(password);
  await Promise.all([
    page.waitForURL(base + '/'),
    page.getByRole('button', { name: 'Sign in' }).click(),
  ]);
}

export { freePort };

/// Starts the single sign-on tests' real OpenID provider
/// (server/tests/oidc/provider.mjs, npm oidc-provider installed by
/// scripts/peers.sh) on a free port, for a server at `serverBase`; once per
/// test file. Answers its issuer and a stop function.
export async function startProvider(serverBase) {
  const script = process.env.SWITCHYARD_OIDC_PROVIDER ?? join(root, 'server/tests/oidc/provider.mjs');
  if (!existsSync(join(dirname(script), 'node_modules/oidc-provider'))) {
    throw new Error('oidc-provider is not installed: run scripts/peers.sh');
  }
  const child = spawn(process.execPath, [script], {
    env: {
      ...process.env,
      OIDC_PORT: '0',
      RP_REDIRECT: `${serverBase}/auth/oidc/callback`,
      OIDC_KEY_DIR: mkdtempSync(join(tmpdir(), 'switchyard-e2e-oidc-')),
    },
    stdio: ['ignore', 'pipe', 'ignore'],
  });
  const issuer = await new Promise((ok, fail) => {
    let out = '';
    const timer = setTimeout(() => fail(new Error('the OpenID provider did not start within 20 s')), 20_000);
    child.stdout.on('data', (d) => {
      out += d;
      const m = out.match(/oidc-provider (\S+) ready on (\d+)/);
      if (m) { clearTimeout(timer); ok(m[1]); }
    });
    child.on('exit', (code) => { clearTimeout(timer); fail(new Error(`the OpenID provider exited with ${code}`)); });
  });
  return { issuer, stop: () => child.kill('SIGTERM') };
}
