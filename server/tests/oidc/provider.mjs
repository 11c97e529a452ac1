// The real OpenID provider of the single sign-on tests: panva's certified
// `oidc-provider` (pinned in package.json, installed by scripts/peers.sh),
// on loopback, with test users in groups, a login form that works without
// JavaScript, and client_credentials clients that get JWT access tokens
// (workload identity for pipelines).
//
// Environment:
//   OIDC_PORT        listen on 127.0.0.1:OIDC_PORT (default 9400; 0 = any, printed)
//   OIDC_ISSUER      issuer identifier (default http://127.0.0.1:<port>)
//   RP_REDIRECT      Switchyard's redirect URI(s), comma-separated
//                    (default http://127.0.0.1:3000/auth/oidc/callback)
//   CLIENT_ID / CLIENT_SECRET   the console's client (default switchyard / switchyard-secret)
//   OIDC_USERS_FILE  JSON {"alice": {"password","name","email","groups":[..]}, ..};
//                    re-read at every login and token, so tests change groups by rewriting it
//   OIDC_KEY_DIR     where signing keys live (default <tmp>/switchyard-oidc-keys), one
//                    <kid>.json private JWK each, generated when missing
//   OIDC_KIDS        the key ids published in the JWKS, comma-separated; the first signs
//                    (default k1). Rotation: restart with "k2,k1".
//   API_AUDIENCE     audience of JWT access tokens for resource urn:switchyard (default switchyard)
//
// Prints "oidc-provider <issuer> ready" once listening.
import crypto from 'node:crypto';
import fs from 'node:fs';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import Provider, { errors } from 'oidc-provider';

const PORT = Number(process.env.OIDC_PORT ?? 9400);
const REDIRECTS = (process.env.RP_REDIRECT || 'http://127.0.0.1:3000/auth/oidc/callback')
  .split(',').map((s) => s.trim()).filter(Boolean);
const CLIENT_ID = process.env.CLIENT_ID || 'switchyard';
const CLIENT_SECRET = process.env.CLIENT_SECRET || 'switchyard-secret';
const USERS_FILE = process.env.OIDC_USERS_FILE || '';
const KEY_DIR = process.env.OIDC_KEY_DIR || path.join(os.tmpdir(), 'switchyard-oidc-keys');
const KIDS = (process.env.OIDC_KIDS || 'k1').split(',').map((s) => s.trim()).filter(Boolean);
const AUDIENCE = process.env.API_AUDIENCE || 'switchyard';

const DEFAULT_USERS = {
  alice: { password: 'alice-pw', name: 'Alice Admin', email: 'alice@example.test', groups: ['ml-admins', 'platform'] },
  bob: { password: 'bob-pw', name: 'Bob Risk', email: 'bob@example.test', groups: ['ml-risk'] },
  carol: { password: 'carol-pw', name: 'Carol Platform', email: 'carol@example.test', groups: ['platform'] },
  dave: { password: 'dave-pw', name: 'Dave Scientist', email: 'dave@example.test', groups: ['data-science'] },
  erin: { password: 'erin-pw', name: 'Erin Nogroup', email: 'erin@example.test', groups: ['marketing'] },
};

// Pipelines (client_credentials): the claims their access tokens carry.
const CI_CLIENTS = {
  'ci-deploy': { secret: 'ci-deploy-secret', repository: 'acme/models', ttl: 600 },
  'ci-short': { secret: 'ci-short-secret', repository: 'acme/models', ttl: 1 },
  'ci-other': { secret: 'ci-other-secret', repository: 'acme/website', ttl: 600 },
};

function users() {
  if (!USERS_FILE) return DEFAULT_USERS;
  try {
    return JSON.parse(fs.readFileSync(USERS_FILE, 'utf8'));
  } catch (err) {
    console.error(`cannot read ${USERS_FILE}: ${err.message}`);
    return {};
  }
}

function signingKey(kid) {
  const file = path.join(KEY_DIR, `${kid}.json`);
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    fs.mkdirSync(KEY_DIR, { recursive: true });
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = { ...privateKey.export({ format: 'jwk' }), kid, alg: 'RS256', use: 'sig' };
    // Written whole then renamed, so parallel test runs never read half a key.
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, JSON.stringify(jwk));
    fs.renameSync(tmp, file);
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  }
}

function account(id) {
  const u = users()[id];
  if (!u) return undefined;
  return {
    accountId: id,
    async claims() {
      const now = users()[id] || u;
      return {
        sub: id, name: now.name, preferred_username: id,
        email: now.email, email_verified: true, groups: now.groups || [],
      };
    },
  };
}

const SCOPES = 'openid profile email groups';
const origins = [...new Set(REDIRECTS.map((r) => new URL(r).origin))];

function start(port) {
  const issuer = process.env.OIDC_ISSUER || `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: CLIENT_ID,
        client_secret: CLIENT_SECRET,
        redirect_uris: REDIRECTS,
        post_logout_redirect_uris: origins.map((o) => `${o}/signin`),
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      ...Object.entries(CI_CLIENTS).map(([id, c]) => ({
        client_id: id,
        client_secret: c.secret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      })),
    ],
    jwks: { keys: KIDS.map(signingKey) },
    pkce: { required: () => true },
    scopes: ['openid', 'profile', 'email', 'groups'],
    claims: {
      openid: ['sub'],
      profile: ['name', 'preferred_username'],
      email: ['email', 'email_verified'],
      groups: ['groups'],
    },
    // Scope claims (groups) in the ID token too, not only at the userinfo endpoint.
    conformIdTokenClaims: false,
    findAccount: async (_ctx, sub) => account(sub),
    cookies: { keys: ['switchyard-test-provider-cookie-key'] },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        // Only pipelines ask for an API audience; the console's sign-in gets an opaque token.
        defaultResource: (ctx) => (ctx.oidc.params?.grant_type === 'client_credentials' ? 'urn:switchyard' : undefined),
        useGrantedResource: () => false,
        getResourceServerInfo: (_ctx, indicator, client) => {
          const audience = { 'urn:switchyard': AUDIENCE, 'urn:elsewhere': 'elsewhere' }[indicator];
          if (!audience) throw new errors.InvalidTarget();
          return {
            scope: 'deploy',
            audience,
            accessTokenFormat: 'jwt',
            accessTokenTTL: CI_CLIENTS[client.clientId]?.ttl ?? 600,
            jwt: { sign: { alg: 'RS256' } },
          };
        },
      },
    },
    extraTokenClaims: (_ctx, token) => {
      const ci = CI_CLIENTS[token.clientId];
      return token.kind === 'ClientCredentials' && ci ? { repository: ci.repository } : undefined;
    },
    interactions: { url: (_ctx, interaction) => `/interaction/${interaction.uid}` },
    // No consent screen for the test clients: grant what they ask for.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope(SCOPES);
      grant.addOIDCClaims(['sub', 'name', 'preferred_username', 'email', 'email_verified', 'groups']);
      await grant.save();
      return grant;
    },
    ttl: { AccessToken: 3600, AuthorizationCode: 60, IdToken: 3600, Interaction: 600, Session: 3600, Grant: 3600 },
  });
  provider.on('server_error', (_ctx, err) => console.error('server_error', err));
  return provider;
}

const esc = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
function readForm(req) {
  return new Promise((resolve, reject) => {
    let b = '';
    req.on('data', (d) => { b += d; if (b.length > 16384) req.destroy(); });
    req.on('end', () => resolve(new URLSearchParams(b)));
    req.on('error', reject);
  });
}

function loginPage(uid, failed) {
  return `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Example IdP sign-in</title></head>
<body><main><h1>Example IdP</h1>
<form method="post" action="/interaction/${esc(uid)}">
<label>Login <input name="login" autocomplete="username" required></label>
<label>Password <input name="password" type="password" autocomplete="current-password" required></label>
<button type="submit">Continue</button></form>
${failed ? '<p role="alert">Invalid login or password.</p>' : ''}</main></body></html>`;
}

async function interaction(provider, req, res) {
  try {
    const details = await provider.interactionDetails(req, res);
    const { uid, prompt } = details;
    if (prompt.name !== 'login') {
      return provider.interactionFinished(req, res, {}, { mergeWithLastSubmission: true });
    }
    if (req.method === 'POST') {
      const f = await readForm(req);
      const u = users()[f.get('login')];
      if (u && u.password === f.get('password')) {
        return provider.interactionFinished(req, res, { login: { accountId: f.get('login') } }, { mergeWithLastSubmission: false });
      }
    }
    res.writeHead(req.method === 'POST' ? 401 : 200, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
    res.end(loginPage(uid, req.method === 'POST'));
  } catch (err) {
    res.writeHead(400, { 'content-type': 'text/plain' });
    res.end(`interaction error: ${err.message}`);
  }
}

// Bind first (port 0 picks one), then build the provider for the real port.
const server = http.createServer();
server.listen(PORT, '127.0.0.1', () => {
  const port = server.address().port;
  const provider = start(port);
  const cb = provider.callback();
  server.on('request', (req, res) => (req.url.startsWith('/interaction/') ? interaction(provider, req, res) : cb(req, res)));
  console.log(`oidc-provider ${provider.issuer} ready on ${port}`);
});
for (const s of ['SIGTERM', 'SIGINT']) process.on(s, () => { server.closeAllConnections(); server.close(); process.exit(0); });
