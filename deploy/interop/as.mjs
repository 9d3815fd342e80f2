// A real OAuth 2.1 authorization server for the interop test: oidc-provider (panva), with
// RFC 8707 resource indicators, RFC 9068 JWT access tokens, opaque access tokens and RFC 7662
// introspection. Usage: PORT=4000 MCP_RESOURCE=http://127.0.0.1:8080/mcp node as.mjs
import Provider from 'oidc-provider';

const PORT = Number(process.env.PORT || 4000);
const RESOURCE = process.env.MCP_RESOURCE;
if (!RESOURCE) throw new Error('MCP_RESOURCE is required: the URL MCP clients call');

const cc = { grant_types: ['client_credentials'], redirect_uris: [], response_types: [] };
const provider = new Provider(`http://127.0.0.1:${PORT}`, {
  clients: [
    // JWT access tokens (RFC 9068) for the MCP resource.
    { client_id: 'agent', client_secret: 'agent-secret', scope: 'mcp:tools mcp:read', ...cc },
    // Opaque access tokens, checked by mcp-authz through introspection.
    { client_id: 'agent-opaque', client_secret: 'agent-opaque-secret', scope: 'mcp:tools mcp:read', ...cc },
    // May only ever hold mcp:read: the step-up case.
    { client_id: 'reader', client_secret: 'reader-secret', scope: 'mcp:read', ...cc },
    // mcp-authz itself, authenticating its introspection calls.
    { client_id: 'rs', client_secret: 'rs-secret', grant_types: [], redirect_uris: [], response_types: [] },
  ],
  scopes: ['mcp:tools', 'mcp:read'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    introspection: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => RESOURCE,
      useGrantedResource: () => true,
      getResourceServerInfo: (ctx, resource, client) => {
        if (resource !== RESOURCE) throw new Error(`unknown resource ${resource}`);
        const base = { scope: 'mcp:tools mcp:read', audience: RESOURCE, accessTokenTTL: 300 };
        return client.clientId === 'agent-opaque'
          ? { ...base, accessTokenFormat: 'opaque' }
          : { ...base, accessTokenFormat: 'jwt', jwt: { sign: { alg: 'RS256' } } };
      },
    },
  },
});
provider.listen(PORT, '127.0.0.1', () => console.log(`oidc-provider issuer http://127.0.0.1:${PORT}`));
