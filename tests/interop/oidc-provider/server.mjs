// A real RFC 7591/7592 authorization server for the gateway's interop test:
// node-oidc-provider with dynamic registration, registration management, the
// client_credentials grant and the device flow (VS Code asks for it).
// Usage: node server.mjs PORT [INITIAL_ACCESS_TOKEN]
//
// For the authorization front's tests it also has a login step that a test
// drives over HTTP, without a browser:
//   GET  /interaction/:uid        JSON: the prompt, client and redirect URI
//   POST /interaction/:uid/login  form `login=<account>`: logs that account
//                                 in and grants the requested OIDC scopes,
//                                 then redirects back into the flow (303).
// Any account name logs in; its only claim is `sub`. Tokens may be
// introspected, and any resource indicator (RFC 8707) is accepted. Clients that registered
// the refresh_token grant get refresh tokens without `offline_access`.
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const initialAccessToken = process.argv[3] || false;
const issuer = `http://127.0.0.1:${port}`;

const provider = new Provider(issuer, {
  features: {
    registration: { enabled: true, initialAccessToken },
    registrationManagement: { enabled: true, rotateRegistrationAccessToken: true },
    clientCredentials: { enabled: true },
    deviceFlow: { enabled: true },
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    introspection: { enabled: true },
    // Any resource indicator names a resource server taking opaque tokens.
    resourceIndicators: {
      enabled: true,
      getResourceServerInfo: async () => ({ scope: 'openid', accessTokenFormat: 'opaque' }),
      useGrantedResource: async () => true,
    },
  },
  findAccount: async (_ctx, sub) => ({ accountId: sub, claims: async () => ({ sub }) }),
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
});

async function readForm(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return new URLSearchParams(text);
}

provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([^/]+)(\/login)?$/.exec(ctx.path);
  if (!match) return next();
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  const { client_id: clientId, redirect_uri: redirectUri, scope } = details.params;
  if (ctx.method === 'GET' && !match[2]) {
    ctx.body = { uid: details.uid, prompt: details.prompt.name, client_id: clientId, redirect_uri: redirectUri, scope };
    return undefined;
  }
  if (ctx.method !== 'POST' || !match[2]) return next();
  const accountId = (await readForm(ctx.req)).get('login');
  if (!accountId) {
    ctx.status = 400;
    ctx.body = { error: 'login is required' };
    return undefined;
  }
  const grant = new provider.Grant({ accountId, clientId });
  if (scope) grant.addOIDCScope(scope);
  if (details.params.resource) grant.addResourceScope(details.params.resource, scope || 'openid');
  const grantId = await grant.save();
  const returnTo = await provider.interactionResult(
    ctx.req,
    ctx.res,
    { login: { accountId }, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
  ctx.redirect(returnTo);
  ctx.status = 303;
  return undefined;
});

provider.listen(port, '127.0.0.1', () => {
  process.stdout.write(`ready ${issuer}\n`);
});
