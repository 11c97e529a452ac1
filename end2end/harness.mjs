// Starts the real switchyard server on a free port with a fresh SQLite
// database filled with demo data, and launches Debian's Chromium.
import { spawn } from 'node:child_process';
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

export async function startServer() {
  const bin = process.env.SWITCHYARD_BIN ?? join(root, 'target/debug/switchyard');
  if (!existsSync(bin)) throw new Error(`no server binary at ${bin}: run cargo leptos build first`);
  const dir = mkdtempSync(join(tmpdir(), 'switchyard-e2e-'));
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const child = spawn(bin, ['serve', '--demo-if-empty'], {
    env: {
      ...process.env,
      DATABASE_URL: `sqlite://${dir}/switchyard.db`,
      SWITCHYARD_ADDR: `127.0.0.1:${port}`,
      LEPTOS_SITE_ROOT: join(root, 'target/site'),
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
  return { base, stop: () => child.kill('SIGTERM') };
}

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
