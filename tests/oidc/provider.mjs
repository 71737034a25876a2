// A real OpenID Connect provider for tests/test_oidc.py: panva's oidc-provider (certified by the OpenID
// Foundation) on 127.0.0.1 at the port given, with the clients fairimage's tests sign in through.
//
//   node provider.mjs --port 9123
//
// Accounts: any login name signs in with any password (the package's development interactions); the
// account's subject is its login name, with an email and (scope "orcid") an ORCID iD. A sign-in is: the
// authorization request, the login form, the consent form (asked of loopback clients every time), and the
// redirect back with a code.
//
// Clients (all confidential, client_secret_basic, PKCE S256 required; redirect URIs on the loopback
// address match any port, as RFC 8252 section 7.3 has it for loopback redirects):
//   fairimage          the repository under test
//   fairimage-late     the same, but its ID tokens are stamped by a clock two hours slow (issued 2 h ago,
//                      expired 1 h ago): an expired ID token, signed with the provider's real key
//   fairimage-mixup    the same, but its ID tokens are issued for another client (aud "other-app"): a
//                      real, validly signed token meant for someone else
//   other-app          another relying party of the same provider
import { parseArgs } from 'node:util';

import Provider from 'oidc-provider';

const { values } = parseArgs({ options: { port: { type: 'string' } } });
const port = Number(values.port);
const issuer = `http://127.0.0.1:${port}`;
const SECRET = 'fairimage-test-client-secret';
const CALLBACK = 'http://127.0.0.1/auth/oidc/callback';

const client = (id) => ({
  client_id: id,
  client_secret: SECRET,
  application_type: 'native', // loopback redirect URIs: any port (RFC 8252, 7.3)
  redirect_uris: [CALLBACK],
  grant_types: ['authorization_code'],
  response_types: ['code'],
  token_endpoint_auth_method: 'client_secret_basic',
});

// ORCID iDs with right check digits (ISO 7064 MOD 11-2); "mallory" gets a wrong one.
const ORCIDS = { ada: '0000-0002-1825-0097', grace: '0000-0001-5109-3700', mallory: '0000-0002-1825-0098' };

const provider = new Provider(issuer, {
  clients: [client('fairimage'), client('fairimage-late'), client('fairimage-mixup'), client('other-app')],
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email', 'orcid'],
  claims: {
    openid: ['sub'],
    profile: ['name', 'preferred_username'],
    email: ['email', 'email_verified'],
    orcid: ['orcid'],
  },
  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          name: id.charAt(0).toUpperCase() + id.slice(1),
          preferred_username: id,
          email: `${id}@example.org`,
          email_verified: true,
          ...(ORCIDS[id] ? { orcid: ORCIDS[id] } : {}),
        };
      },
    };
  },
  features: { devInteractions: { enabled: true } },
  ttl: { IdToken: 3600, AuthorizationCode: 60 },
  cookies: { keys: ['fairimage-test-cookie-key'] },
});

// The misbehaving clients: their token responses carry an ID token re-issued, with the provider's own
// signing key, either with an old clock or for another audience.
provider.use(async (ctx, next) => {
  await next();
  const clientId = ctx.oidc?.client?.clientId;
  if (ctx.oidc?.route !== 'token' || !ctx.body?.id_token) return;
  if (clientId === 'fairimage-late') {
    const now = Math.floor(Date.now() / 1000);
    ctx.body.id_token = await reissue(ctx, ctx.oidc.client, { iat: now - 7200, expiresAt: now - 3600 });
  } else if (clientId === 'fairimage-mixup') {
    ctx.body.id_token = await reissue(ctx, await provider.Client.find('other-app'), {});
  }
});

async function reissue(ctx, forClient, { iat, expiresAt }) {
  const original = JSON.parse(Buffer.from(ctx.body.id_token.split('.')[1], 'base64url'));
  const token = new provider.IdToken({ sub: original.sub }, { ctx, client: forClient });
  token.scope = 'openid';
  token.set('nonce', original.nonce);
  if (iat !== undefined) token.set('iat', iat);
  return token.issue({ use: 'idtoken', expiresAt });
}

provider.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening at ${issuer}`);
});
