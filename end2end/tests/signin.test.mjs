import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, launchBrowser, shotsDir, signIn } from '../harness.mjs';

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

for (const javaScriptEnabled of [false, true]) {
  const how = javaScriptEnabled ? 'hydrated' : 'without JavaScript';
  test(`signed out, the console sends you to sign in; signed in, the header names you and your role (${how})`, async () => {
    const ctx = await browser.newContext({ javaScriptEnabled });
    const page = await ctx.newPage();
    await page.goto(server.base + '/');
    assert.equal(new URL(page.url()).pathname, '/signin');

    await page.getByLabel('Username').fill('bob');
    await page.getByLabel('Password').fill('wrong-password');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();

    await signIn(page, server.base, 'bob');
    const user = page.getByLabel('Signed in user');
    await user.getByText('bob').waitFor();
    await user.getByText('approver').waitFor();
    await page.screenshot({ path: join(shotsDir, `signed-in-${javaScriptEnabled ? 'js' : 'nojs'}.png`) });

    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL(server.base + '/signin');
    await page.goto(server.base + '/');
    assert.equal(new URL(page.url()).pathname, '/signin');
    await ctx.close();
  });
}
