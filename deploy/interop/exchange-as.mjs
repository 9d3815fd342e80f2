// A real OAuth 2.1 authorization server for the token-exchange interop scenario: oidc-provider
// (panva) with client_credentials (the MCP client's token), RFC 8707 resource indicators, RFC
// 9068 JWT access tokens, and the RFC 8693 token-exchange grant registered through
// provider.registerGrantType (oidc-provider ships no token exchange of its own).
//
// Usage: node exchange-as.mjs PORT MCP_RESOURCE DOWNSTREAM_API
//   MCP_RESOURCE    the URL MCP clients call (the front door's /mcp): the caller's tokens' aud
//   DOWNSTREAM_API  the API the MCP server calls on the caller's behalf: exchanged tokens' aud
//
// Clients (client_secret_basic):
//   agent / agent-secret       the MCP client: JWTs for MCP_RESOURCE, may hold mcp:tools api:read
//   mcp-authz / mcp-authz-secret  mcp-authz itself: may only exchange tokens (no token of its own)
//
// The exchange (§2.1): subject_token must be a JWT access token this server issued and still
// valid (signature checked against its own JWKS, iss, exp, typ at+jwt); exactly one target
// (resource or audience) naming DOWNSTREAM_API; scope no broader than the subject token's.
// The new token is a JWT for DOWNSTREAM_API whose sub is the subject token's sub and whose act
// (§4.1) names the exchanging client, nesting any act the subject token carried.
import crypto from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const [PORT, MCP_RESOURCE, DOWNSTREAM] = [Number(process.argv[2]), process.argv[3], process.argv[4]];
if (!PORT || !MCP_RESOURCE || !DOWNSTREAM) throw new Error('usage: node exchange-as.mjs PORT MCP_RESOURCE DOWNSTREAM_API');
const ISSUER = `http://127.0.0.1:${PORT}`;
const GRANT = 'urn:ietf:params:oauth:grant-type:token-exchange';
const ACCESS_TOKEN = 'urn:ietf:params:oauth:token-type:access_token';

const SERVERS = {
  [MCP_RESOURCE]: { scope: 'mcp:tools api:read', audience: MCP_RESOURCE },
  [DOWNSTREAM]: { scope: 'api:read', audience: DOWNSTREAM },
};
function resourceServer(resource) {
  const rs = SERVERS[resource];
  if (!rs) throw new errors.InvalidTarget('unknown resource');
  return { ...rs, accessTokenTTL: 300, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
}

// What an exchanged token says beyond a client_credentials token: its sub and act.
const exchanged = new WeakMap();

const provider = new Provider(ISSUER, {
  clients: [
    { client_id: 'agent', client_secret: 'agent-secret', scope: 'mcp:tools api:read', grant_types: ['client_credentials'], redirect_uris: [], response_types: [] },
    { client_id: 'mcp-authz', client_secret: 'mcp-authz-secret', scope: 'api:read', grant_types: [GRANT], redirect_uris: [], response_types: [] },
  ],
  scopes: ['mcp:tools', 'api:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => MCP_RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource) => resourceServer(resource),
    },
  },
  formats: {
    customizers: {
      jwt(ctx, token, jwt) {
        const x = exchanged.get(token);
        if (x) Object.assign(jwt.payload, { sub: x.sub, act: x.act });
      },
    },
  },
});

// The subject token: a JWT this server signed, still valid.
async function verifyOwn(value) {
  const parts = String(value).split('.');
  if (parts.length !== 3) return null;
  let header, payload;
  try {
    header = JSON.parse(Buffer.from(parts[0], 'base64url'));
    payload = JSON.parse(Buffer.from(parts[1], 'base64url'));
  } catch { return null; }
  if (header.alg !== 'RS256' || header.typ !== 'at+jwt') return null;
  const jwks = await (await fetch(`${ISSUER}/jwks`)).json();
  const jwk = jwks.keys.find((k) => k.kid === header.kid);
  if (!jwk) return null;
  const ok = crypto.verify('RSA-SHA256', Buffer.from(`${parts[0]}.${parts[1]}`),
    crypto.createPublicKey({ key: jwk, format: 'jwk' }), Buffer.from(parts[2], 'base64url'));
  if (!ok || payload.iss !== ISSUER || !(payload.exp > Date.now() / 1000)) return null;
  return payload;
}

const parameters = ['audience', 'resource', 'scope', 'requested_token_type', 'subject_token', 'subject_token_type', 'actor_token', 'actor_token_type'];
provider.registerGrantType(GRANT, async (ctx) => {
  const p = ctx.oidc.params;
  if (p.subject_token_type !== ACCESS_TOKEN) throw new errors.InvalidRequest('subject_token_type must be an access token');
  if (p.requested_token_type && p.requested_token_type !== ACCESS_TOKEN) throw new errors.InvalidRequest('only access tokens are issued');
  const subject = await verifyOwn(p.subject_token);
  if (!subject) throw new errors.InvalidGrant('the subject token is not valid');
  const targets = [].concat(p.resource ?? [], p.audience ?? []);
  if (targets.length !== 1) throw new errors.InvalidTarget('name exactly one resource or audience');
  const rs = resourceServer(targets[0]);
  const held = new Set(String(subject.scope ?? '').split(' '));
  const allowed = new Set(rs.scope.split(' '));
  const scopes = String(p.scope ?? '').split(' ').filter(Boolean);
  for (const s of scopes) {
    if (!held.has(s) || !allowed.has(s)) throw new errors.InvalidScope(`scope ${s} is broader than the subject token's`);
  }
  const { client } = ctx.oidc;
  const token = new provider.ClientCredentials({ client, scope: scopes.join(' ') || undefined });
  token.resourceServer = rs;
  const act = { sub: client.clientId, ...(subject.act ? { act: subject.act } : {}) };
  exchanged.set(token, { sub: subject.sub, act });
  const value = await token.save();
  console.log(JSON.stringify({ token_exchange: { client: client.clientId, sub: subject.sub, aud: rs.audience, scope: token.scope ?? null } }));
  ctx.body = {
    access_token: value, issued_token_type: ACCESS_TOKEN, token_type: 'Bearer',
    expires_in: token.expiration, ...(token.scope ? { scope: token.scope } : {}),
  };
}, parameters, ['audience', 'resource']);

provider.listen(PORT, '127.0.0.1', () => console.log(`oidc-provider issuer ${ISSUER}`));
