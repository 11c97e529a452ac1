// Single sign-on in the browser: through the real OpenID provider's login
// page (server/tests/oidc/provider.mjs), hydrated and without JavaScript.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { startServer, startProvider, freePort, launchBrowser, shotsDir, hydrated } from '../harness.mjs';

let server;
let provider;
let browser;

before(async () => {
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  provider = await startProvider(base);
  server = await startServer({
    port,
    env: {
      SWITCHYARD_OIDC_ISSUER: provider.issuer,
      SWITCHYARD_OIDC_CLIENT_ID: 'switchyard',
      SWITCHYARD_OIDC_CLIENT_SECRET: 'switchyard-secret',
      SWITCHYARD_OIDC_REDIRECT_URL: `${base}/auth/oidc/callback`,
      SWITCHYARD_OIDC_NAME: 'Example IdP',
      SWITCHYARD_OIDC_ROLE_MAP: 'ml-admins=admin,ml-risk=approver,platform=approver,data-science=deployer',
    },
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  server?.stop();
  provider?.stop();
});

for (const javaScriptEnabled of [false, true]) {
  const how = javaScriptEnabled ? 'hydrated' : 'without JavaScript';
  test(`signing in with the identity provider's login page makes a session with the role its groups give (${how})`, async () => {
    const ctx = await browser.newContext({ javaScriptEnabled });
    const page = await ctx.newPage();
    await page.goto(server.base + '/signin');
    // The local form stays (break-glass) beside the provider's button.
    await page.getByLabel('Username').waitFor();
    await page.getByRole('link', { name: 'Sign in with Example IdP' }).click();
    // The provider's own page.
    await page.getByRole('heading', { name: 'Example IdP' }).waitFor();
    assert.equal(new URL(page.url()).origin, provider.issuer);
    await page.getByLabel('Login').fill('dave');
    await page.getByLabel('Password').fill('dave-pw');
    await page.getByRole('button', { name: 'Continue' }).click();
    await page.waitForURL(server.base + '/');
    if (javaScriptEnabled) await hydrated(page);
    // Demo data has a local dave: the provider's dave gets a name of his own.
    const user = page.getByLabel('Signed in user');
    await user.getByText(/^dave-[0-9a-f]{8}$/).waitFor();
    await user.getByText('deployer').waitFor();
    await page.screenshot({ path: join(shotsDir, `sso-signed-in-${javaScriptEnabled ? 'js' : 'nojs'}.png`) });

    // Sign-out ends the session and goes through the provider's end-session page.
    await page.getByRole('button', { name: 'Sign out' }).click();
    await page.waitForURL((u) => u.origin === provider.issuer);
    await page.goto(server.base + '/');
    assert.equal(new URL(page.url()).pathname, '/signin');
    await ctx.close();
  });
}

test('a person whose groups map to no role is told which groups the provider sent', async () => {
  const ctx = await browser.newContext({ javaScriptEnabled: false });
  const page = await ctx.newPage();
  await page.goto(server.base + '/auth/oidc/start');
  await page.getByLabel('Login').fill('erin');
  await page.getByLabel('Password').fill('erin-pw');
  await page.getByRole('button', { name: 'Continue' }).click();
  await page.getByRole('alert').filter({ hasText: 'none of your groups gives a role' }).waitFor();
  await page.getByText('Groups the identity provider sent: marketing').waitFor();
  await ctx.close();
});
