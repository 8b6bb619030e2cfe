// The MCP TypeScript SDK's client through the gateway's authorization front,
// end to end, against a minimal MCP server that this script also runs.
// Usage: node front-flow.mjs GATEWAY_ISSUER PROVIDER_ISSUER [CERT_PEM KEY_PEM]
// Environment: INTROSPECTION_CLIENT=id:secret, a client of the provider that
// the MCP server introspects tokens with instead of registering its own (for
// a provider with registration off, as in broker mode). GATEWAY_TOKENS=1: the
// gateway issues its own tokens (RFC 9068 JWTs), which the MCP server checks
// with `jose` against the gateway's /jwks (issuer the gateway, audience its
// own resource URL, typ at+jwt, ES256) instead of introspecting them; the
// outcome then also says whether the token is refused for another audience
// (other_audience_refused).
//
// With a certificate and key, the client is a Client ID Metadata Document
// client: the script serves its document over https on 127.0.0.1 and the
// SDK uses the document's URL as its client_id; without, it registers (DCR).
//
// The MCP server publishes protected resource metadata (RFC 9728) naming the
// gateway, answers 401 without a token, and checks tokens by introspection
// at the provider (node oidc-provider), registering itself there first
// unless INTROSPECTION_CLIENT names one. The client discovers, registers
// (DCR), is sent to /authorize; the script plays the user through the
// gateway's consent page if it shows one (allowing, as a browser posts the
// form: the page's cookies, the gateway's Origin) and the provider's login
// step (server.mjs's interaction routes), hands the code to the SDK and calls
// a tool. Then the SDK's auth() runs again with the saved tokens holding a
// refresh token, which makes the SDK refresh, and the tool is called again
// with what it got; last, the old refresh token is posted to the gateway's
// /token once more. Prints one JSON line: { client_id,
// authorization_endpoint, resource, iss, state_matches, consent_page, tool,
// refreshed, refresh_error, tool_after_refresh, new_token_used,
// old_refresh_token_error }.
import { readFileSync } from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { UnauthorizedError, auth } from '@modelcontextprotocol/sdk/client/auth.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const [gateway, providerIssuer, certPem, keyPem] = process.argv.slice(2);

// The resource server's own client at the provider, for introspection: the
// one named, or one it registers.
async function introspectionClient() {
  const named = process.env.INTROSPECTION_CLIENT;
  if (named) {
    const at = named.indexOf(':');
    return { client_id: named.slice(0, at), client_secret: named.slice(at + 1) };
  }
  const answer = await fetch(`${providerIssuer}/reg`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }),
  });
  if (!answer.ok) throw new Error(`registering at the provider: ${answer.status} ${await answer.text()}`);
  return answer.json();
}
const gatewayTokens = process.env.GATEWAY_TOKENS === '1';
const gatewayKeys = gatewayTokens ? createRemoteJWKSet(new URL(`${gateway}/jwks`)) : undefined;

// A gateway token checked as any resource server would, for `audience`.
async function verifyGatewayToken(token, audience) {
  try {
    const { payload } = await jwtVerify(token, gatewayKeys, {
      issuer: gateway, audience, typ: 'at+jwt', algorithms: ['ES256'],
    });
    return { active: true, client_id: payload.client_id, sub: payload.sub, scope: payload.scope };
  } catch {
    return { active: false };
  }
}

const registered = gatewayTokens ? { client_id: '', client_secret: '' } : await introspectionClient();
const introspectionAuth = `Basic ${Buffer.from(`${registered.client_id}:${registered.client_secret}`).toString('base64')}`;
// The last bearer token the MCP server let in.
let lastToken;

async function introspect(token) {
  const answer = await fetch(`${providerIssuer}/token/introspection`, {
    method: 'POST',
    headers: { authorization: introspectionAuth, 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }),
  });
  return answer.json();
}

async function readBody(req) {
  let text = '';
  for await (const chunk of req) text += chunk;
  return text ? JSON.parse(text) : undefined;
}

const mcp = http.createServer(async (req, res) => {
  const base = `http://127.0.0.1:${mcp.address().port}`;
  if (req.url.startsWith('/.well-known/oauth-protected-resource')) {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ resource: `${base}/mcp`, authorization_servers: [gateway], scopes_supported: ['openid'] }));
    return;
  }
  const token = /^Bearer (.+)$/.exec(req.headers.authorization || '')?.[1];
  let info = { active: false };
  if (token) info = gatewayTokens ? await verifyGatewayToken(token, `${base}/mcp`) : await introspect(token);
  if (!info.active) {
    res.statusCode = 401;
    res.setHeader('www-authenticate', `Bearer resource_metadata="${base}/.well-known/oauth-protected-resource/mcp"`);
    res.end();
    return;
  }
  lastToken = token;
  req.auth = { token, clientId: info.client_id, scopes: (info.scope || '').split(' '), extra: { sub: info.sub } };
  const server = new McpServer({ name: 'front-test-server', version: '1.0.0' });
  server.registerTool('whoami', { description: 'The signed-in user' }, async (extra) => ({
    content: [{ type: 'text', text: `sub=${extra.authInfo?.extra?.sub}` }],
  }));
  const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
  await server.connect(transport);
  await transport.handleRequest(req, res, await readBody(req));
});
await new Promise((resolve) => { mcp.listen(0, '127.0.0.1', resolve); });
const mcpUrl = new URL(`http://127.0.0.1:${mcp.address().port}/mcp`);

// The app's side: what a native MCP client keeps.
const redirectUrl = 'http://127.0.0.1:33418/callback';
const clientMetadata = {
  client_name: 'MCP SDK through the front',
  redirect_uris: ['http://127.0.0.1/callback'],
  grant_types: ['authorization_code', 'refresh_token'],
  response_types: ['code'],
  token_endpoint_auth_method: 'none',
  application_type: 'native',
};
let clientMetadataUrl;
let documents;
if (certPem) {
  documents = https.createServer({ cert: readFileSync(certPem), key: readFileSync(keyPem) }, (_req, res) => {
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'max-age=300');
    res.end(JSON.stringify({ client_id: clientMetadataUrl, ...clientMetadata }));
  });
  await new Promise((resolve) => { documents.listen(0, '127.0.0.1', resolve); });
  clientMetadataUrl = `https://127.0.0.1:${documents.address().port}/mcp-client.json`;
  documents.unref();
}
const kept = {};
const authProvider = {
  get redirectUrl() { return redirectUrl; },
  get clientMetadata() { return clientMetadata; },
  clientMetadataUrl,
  state: () => 'sdk-state',
  clientInformation: () => kept.client,
  saveClientInformation: (client) => { kept.client = client; },
  tokens: () => kept.tokens,
  saveTokens: (tokens) => { kept.tokens = tokens; },
  redirectToAuthorization: (url) => { kept.authorizationUrl = url; },
  saveCodeVerifier: (verifier) => { kept.verifier = verifier; },
  codeVerifier: () => kept.verifier,
};

// The user's side: follows redirects by hand, keeping the cookies (the
// gateway's and the provider's: both on 127.0.0.1, as a browser keeps them),
// and allows on the gateway's consent page when it shows one.
let consentPage = false;
async function signIn(start) {
  const cookies = new Map();
  const get = async (url, init = {}) => {
    const answer = await fetch(url, {
      ...init,
      redirect: 'manual',
      headers: { ...(init.headers || {}), cookie: [...cookies].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const cookie of answer.headers.getSetCookie()) {
      const [pair] = cookie.split(';');
      const at = pair.indexOf('=');
      cookies.set(pair.slice(0, at), pair.slice(at + 1));
    }
    return answer;
  };
  let url = new URL(start);
  for (let hop = 0; hop < 10 && !url.href.startsWith(redirectUrl); hop += 1) {
    let answer;
    if (url.pathname.startsWith('/interaction/')) {
      answer = await get(`${url.href}/login`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: 'login=carol',
      });
    } else {
      answer = await get(url.href);
    }
    if (answer.status === 200 && url.href.startsWith(gateway)) {
      const page = await answer.text();
      const form = /name="consent" value="([^"]+)"/.exec(page);
      if (!form) throw new Error(`${url.href} answered 200 without a consent form: ${page}`);
      consentPage = true;
      answer = await get(`${gateway}/consent`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', origin: new URL(gateway).origin },
        body: new URLSearchParams({ consent: form[1], decision: 'allow' }).toString(),
      });
    }
    if (answer.status < 300 || answer.status >= 400) {
      throw new Error(`${url.href} answered ${answer.status}: ${await answer.text()}`);
    }
    url = new URL(answer.headers.get('location'), url);
  }
  return url;
}

const client = new Client({ name: 'front-test-client', version: '1.0.0' });
try {
  await client.connect(new StreamableHTTPClientTransport(mcpUrl, { authProvider }));
  throw new Error('the MCP server let an unauthenticated client in');
} catch (error) {
  if (!(error instanceof UnauthorizedError)) throw error;
}
const back = await signIn(kept.authorizationUrl);
const transport = new StreamableHTTPClientTransport(mcpUrl, { authProvider });
await transport.finishAuth(back.searchParams.get('code'));
await client.connect(transport);
const result = await client.callTool({ name: 'whoami', arguments: {} });

// A refresh as the SDK does it: auth() with saved tokens holding a refresh
// token posts it to the token endpoint (no redirect), then the tool again.
const before = kept.tokens;
let refreshError;
let afterRefresh;
try {
  if (!before?.refresh_token) throw new Error(`no refresh token: ${JSON.stringify(Object.keys(before || {}))}`);
  const outcome = await auth(authProvider, { serverUrl: mcpUrl });
  if (outcome !== 'AUTHORIZED') throw new Error(`auth() answered ${outcome}`);
  afterRefresh = await client.callTool({ name: 'whoami', arguments: {} });
} catch (error) {
  refreshError = String(error?.stack || error);
}
const after = kept.tokens;
const refreshed = !refreshError && !!after?.refresh_token && after.refresh_token !== before.refresh_token
  && !!after.access_token && after.access_token !== before.access_token;
// The old refresh token once more, at the gateway's token endpoint.
let oldRefreshTokenError;
if (refreshed) {
  const answer = await fetch(`${gateway}/token`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: before.refresh_token,
      client_id: kept.client.client_id,
    }).toString(),
  });
  oldRefreshTokenError = answer.ok ? null : (await answer.json().catch(() => ({}))).error;
}
const otherAudienceRefused = gatewayTokens
  ? !(await verifyGatewayToken(lastToken, 'https://other-mcp.example.com/mcp')).active
  : undefined;
console.log(JSON.stringify({
  other_audience_refused: otherAudienceRefused,
  client_id: kept.client.client_id,
  authorization_endpoint: `${kept.authorizationUrl.origin}${kept.authorizationUrl.pathname}`,
  resource: kept.authorizationUrl.searchParams.get('resource'),
  iss: back.searchParams.get('iss'),
  state_matches: back.searchParams.get('state') === 'sdk-state',
  consent_page: consentPage,
  tool: result.content[0].text,
  refreshed,
  refresh_error: refreshError,
  tool_after_refresh: afterRefresh?.content?.[0]?.text,
  new_token_used: !!after?.access_token && lastToken === after.access_token,
  old_refresh_token_error: oldRefreshTokenError,
}));
await client.close();
mcp.close();
// The gateway keeps its connection to the document server alive; without
// this node would wait out the server's keep-alive timeout (5 s) to exit.
documents?.closeAllConnections();
