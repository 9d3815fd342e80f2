// A real OAuth 2.1 authorization server for the interop run: oidc-provider (panva) with the
// client_credentials grant, RFC 8707 resource indicators, RFC 9068 JWT access tokens, opaque
// access tokens and RFC 7662 introspection.
//
// Usage: node as.mjs PORT RESOURCE [RESOURCE...]   (or PORT=... MCP_RESOURCE=... node as.mjs)
//   PORT      loopback port to listen on; the issuer is http://127.0.0.1:PORT
//   RESOURCE  the URLs MCP clients call (the front door's /mcp, then /mcp/payments): a token
//             gets the one it was requested for (RFC 8707 resource) as aud; the first is the
//             default for a token request without resource=
//
// Clients (client_secret_basic):
//   agent / agent-secret                 JWT access tokens, may hold mcp:tools mcp:read; groups ["support"]
//   agent-opaque / agent-opaque-secret   opaque access tokens, may hold mcp:tools mcp:read
//   reader / reader-secret               JWT access tokens, may hold mcp:read only
//   finance / finance-secret             JWT access tokens, may hold mcp:tools mcp:read; groups ["finance"]
//   agent-dpop / agent-dpop-secret       DPoP-bound JWT access tokens (RFC 9449: a proof is required
//                                        at the token endpoint; cnf.jkt), may hold mcp:tools mcp:read
//   agent-dpop-opaque / ...-secret       DPoP-bound opaque access tokens (introspection: token_type
//                                        DPoP, cnf.jkt)
//   agent-mtls / agent-mtls-secret       certificate-bound JWT access tokens (RFC 8705: cnf.x5t#S256 of
//                                        the TLS client certificate), from the https listener only
//
// With AS_TLS_PORT, AS_TLS_CERT and AS_TLS_KEY (PEM files) set, the same provider also listens on
// https://127.0.0.1:AS_TLS_PORT and asks for a client certificate there (any, unverified: only its
// thumbprint matters for RFC 8705 binding; client authentication stays client_secret_basic).
//   rs / rs-secret                       mcp-authz itself: the only client allowed to introspect
//
// The groups claim (extraTokenClaims) is what the refund rule of mcp-authz.yaml.in reads.
import { X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import https from 'node:https';
import Provider, { errors } from 'oidc-provider';

const PORT = Number(process.argv[2] || process.env.PORT || 4000);
const RESOURCES = process.argv.length > 3 ? process.argv.slice(3) : [process.env.MCP_RESOURCE].filter(Boolean);
const RESOURCE = RESOURCES[0];
if (!RESOURCE) throw new Error('RESOURCE (argument 2 or MCP_RESOURCE) is required: the URL MCP clients call');
// Per client: the groups claim put in its access tokens (none for clients not listed).
const GROUPS = { agent: ['support'], finance: ['finance'] };

const cc = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [] };
const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  clients: [
    { client_id: 'agent', client_secret: 'agent-secret', scope: 'mcp:tools mcp:read', ...cc },
    { client_id: 'agent-opaque', client_secret: 'agent-opaque-secret', scope: 'mcp:tools mcp:read', ...cc },
    // May only ever hold mcp:read: asking it for mcp:tools is invalid_scope at the token endpoint.
    { client_id: 'reader', client_secret: 'reader-secret', scope: 'mcp:read', ...cc },
    { client_id: 'finance', client_secret: 'finance-secret', scope: 'mcp:tools mcp:read', ...cc },
    // dpop_bound_access_tokens: oidc-provider refuses their token requests without a DPoP proof.
    { client_id: 'agent-dpop', client_secret: 'agent-dpop-secret', scope: 'mcp:tools mcp:read', dpop_bound_access_tokens: true, ...cc },
    { client_id: 'agent-dpop-opaque', client_secret: 'agent-dpop-opaque-secret', scope: 'mcp:tools mcp:read', dpop_bound_access_tokens: true, ...cc },
    // Refused without a TLS client certificate ("mutual TLS client certificate not provided").
    { client_id: 'agent-mtls', client_secret: 'agent-mtls-secret', scope: 'mcp:tools mcp:read', tls_client_certificate_bound_access_tokens: true, ...cc },
    { client_id: 'rs', client_secret: 'rs-secret', grant_types: [], redirect_uris: [], response_types: [] },
  ],
  scopes: ['mcp:tools', 'mcp:read'],
  ttl: { ClientCredentials: 300 },
  // A claim of the client's, in its JWT access tokens (and in the introspection answer of
  // opaque ones): what a per-tool rule's `when` condition reads.
  extraTokenClaims: (ctx, token) => (GROUPS[token.clientId] ? { groups: GROUPS[token.clientId] } : undefined),
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    // RFC 9449: a token request with a DPoP proof gets a token bound to the proof's key.
    dPoP: { enabled: true },
    // RFC 8705 certificate-bound tokens: the certificate of the TLS connection the request came
    // on (the https listener below; none on plain http).
    mTLS: {
      enabled: true,
      certificateBoundAccessTokens: true,
      getCertificate: (ctx) => {
        const raw = ctx.socket?.getPeerCertificate?.()?.raw;
        return raw ? new X509Certificate(raw) : undefined;
      },
    },
    introspection: {
      enabled: true,
      // Only the resource server may introspect (the default lets any authenticated client).
      allowedPolicy: (ctx, client) => client.clientId === 'rs',
    },
    resourceIndicators: {
      enabled: true,
      // A token request without resource= still gets a token for the MCP resource.
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      // Every token is audience-restricted to the resource it was requested for: aud in the
      // JWT, and aud in the introspection answer for opaque tokens (oidc-provider puts the
      // resource server's audience there; mcp-authz denies an opaque token whose
      // introspection has no aud).
      getResourceServerInfo: (ctx, resource, client) => {
        if (!RESOURCES.includes(resource)) throw new errors.InvalidTarget(`unknown resource ${resource}`);
        const base = { scope: 'mcp:tools mcp:read', audience: resource, accessTokenTTL: 300 };
        return ['agent-opaque', 'agent-dpop-opaque'].includes(client.clientId)
          ? { ...base, accessTokenFormat: 'opaque' }
          : { ...base, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } }; // typ at+jwt
      },
    },
  },
});
provider.listen(PORT, '127.0.0.1', () => console.log(`oidc-provider issuer http://127.0.0.1:${PORT}`));
const { AS_TLS_PORT, AS_TLS_CERT, AS_TLS_KEY } = process.env;
if (AS_TLS_PORT) {
  https.createServer({
    cert: readFileSync(AS_TLS_CERT), key: readFileSync(AS_TLS_KEY), requestCert: true, rejectUnauthorized: false,
  }, provider.callback()).listen(Number(AS_TLS_PORT), '127.0.0.1', () => console.log(`oidc-provider with client certificates on https://127.0.0.1:${AS_TLS_PORT}`));
}
