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
//
// For broker mode (a provider without dynamic registration), environment
// variables turn registration off and name fixed clients, and make the
// provider behave like a vendor's in what the gateway's presets handle:
//   OIDC_STATIC_CLIENTS  JSON array of client metadata (registration off)
//   OIDC_LIKE=entra      any `resource` at the authorization endpoint is
//                        refused (Entra's AADSTS9010010); the scope must
//                        hold a `{resource}/.default` scope; a refresh must
//                        repeat the scope
//   OIDC_LIKE=google     `offline_access` is an unknown scope (invalid_scope);
//                        a refresh token is issued only for an authorization
//                        request with access_type=offline and prompt=consent
import Provider from 'oidc-provider';

const port = Number(process.argv[2]);
const initialAccessToken = process.argv[3] || false;
const issuer = `http://127.0.0.1:${port}`;
const staticClients = process.env.OIDC_STATIC_CLIENTS ? JSON.parse(process.env.OIDC_STATIC_CLIENTS) : undefined;
const like = process.env.OIDC_LIKE || '';
// Google: grants whose authorization asked for offline access.
const offlineGrants = new Set();

const provider = new Provider(issuer, {
  ...(staticClients ? { clients: staticClients } : {}),
  extraParams: ['access_type'],
  scopes: ['openid', 'offline_access', 'profile', 'email', 'api://mcp/.default'],
  clientAuthMethods: ['none', 'client_secret_basic', 'client_secret_post', 'private_key_jwt'],
  features: {
    registration: { enabled: !staticClients, initialAccessToken },
    registrationManagement: { enabled: !staticClients, rotateRegistrationAccessToken: true },
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
  issueRefreshToken: async (_ctx, client, code) => {
    if (!client.grantTypeAllowed('refresh_token')) return false;
    return like !== 'google' || offlineGrants.has(code.grantId);
  },
});

// The vendors' rules on authorization and token requests.
provider.use(async (ctx, next) => {
  if (ctx.path === '/auth' && like) {
    const query = ctx.query;
    const refuse = (error, description) => {
      const back = new URL(query.redirect_uri);
      back.searchParams.set('error', error);
      back.searchParams.set('error_description', description);
      if (query.state) back.searchParams.set('state', query.state);
      back.searchParams.set('iss', issuer);
      ctx.redirect(back.href);
    };
    const scopes = (query.scope || '').split(' ');
    if (like === 'entra' && query.resource) {
      return refuse('invalid_target', 'AADSTS9010010: The resource parameter provided in the request doesn\'t match with the requested scopes.');
    }
    if (like === 'entra' && !scopes.some((scope) => scope.endsWith('/.default'))) {
      return refuse('invalid_scope', 'the scope names no resource (.default)');
    }
    if (like === 'google' && scopes.includes('offline_access')) {
      return refuse('invalid_scope', 'Some requested scopes were invalid. {invalid=[offline_access]}');
    }
  }
  if (ctx.path === '/token' && ctx.method === 'POST' && like === 'entra') {
    let text = '';
    for await (const chunk of ctx.req) text += chunk;
    const form = new URLSearchParams(text);
    if (form.get('grant_type') === 'refresh_token' && !form.get('scope')) {
      ctx.status = 400;
      ctx.body = { error: 'invalid_request', error_description: 'AADSTS90014: The required field \'scope\' is missing.' };
      return undefined;
    }
    // Hand the form on: oidc-provider reads a body already read from here.
    ctx.request.body = text;
  }
  return next();
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
  if (scope && like === 'entra') {
    for (const resourceScope of scope.split(' ').filter((s) => s.endsWith('/.default'))) {
      grant.addResourceScope(resourceScope.slice(0, -'/.default'.length), 'openid');
    }
  }
  if (details.params.resource) grant.addResourceScope(details.params.resource, scope || 'openid');
  const grantId = await grant.save();
  const prompts = (details.params.prompt || '').split(' ');
  if (details.params.access_type === 'offline' && prompts.includes('consent')) offlineGrants.add(grantId);
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
