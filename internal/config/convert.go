package config

import (
	"net/http"
	"slices"

	"github.com/mcp-authz/mcp-authz/authz"
)

// AuthzResources turns the validated resources into the decision core's form.
func (c *Config) AuthzResources() []authz.Resource {
	out := make([]authz.Resource, 0, len(c.Resources))
	for _, r := range c.Resources {
		h := r.IdentityHeaders
		out = append(out, authz.Resource{
			Name:                 r.Name,
			ID:                   r.Resource,
			Hosts:                r.Hosts,
			PathPrefix:           r.PathPrefix,
			AuthorizationServers: r.AuthorizationServers,
			Issuers:              r.Issuers,
			Audiences:            r.Audiences,
			RequiredScopes:       r.Scopes.Required,
			ScopesSupported:      r.Scopes.Supported,
			PublicPaths:          r.PublicPaths,
			Headers: authz.IdentityHeaders{
				Subject:  enabled(h.Subject),
				ClientID: enabled(h.ClientID),
				Scopes:   enabled(h.Scopes),
				Issuer:   enabled(h.Issuer),
				Binding:  enabled(h.Binding),
				Claims:   h.Claims,
			},
			ForwardAuthorization:  r.ForwardAuthorization,
			Realm:                 r.Realm,
			ResourceName:          r.ResourceName,
			ResourceDocumentation: r.Documentation,
			ResourcePolicyURI:     r.PolicyURI,
			ResourceTOSURI:        r.TOSURI,
			AllowCORSPreflight:    r.CORSPreflight == nil || *r.CORSPreflight,
			AllowAPIKeys:          r.AllowAPIKeys,
			MCP:                   mcpScopes(r.MCP),
			Rules:                 authzRules(r.Rules),
			DPoP:                  bindingMode(r.DPoP),
			MTLSBound:             bindingMode(r.MTLSBound),
		})
	}
	return out
}

func mcpScopes(m *MCP) *authz.MCPScopes {
	if m == nil || len(m.Tools)+len(m.Methods) == 0 {
		return nil
	}
	return &authz.MCPScopes{Tools: m.Tools, Methods: m.Methods}
}

func enabled(h string) string {
	if h == "-" {
		return ""
	}
	return h
}

// AuthzUnavailable is the configured answer when no verifier can decide.
func (c *Config) AuthzUnavailable() authz.Unavailable {
	u := authz.Unavailable{Status: http.StatusUnauthorized}
	if c.Unavailable.Status == http.StatusServiceUnavailable {
		u.Status = http.StatusServiceUnavailable
		u.RetryAfter = int(c.Unavailable.RetryAfter.D().Seconds())
	}
	return u
}

// ClaimsFor lists the claims any resource maps to headers: verifiers keep only these.
func (c *Config) ClaimsFor() []string {
	seen := map[string]bool{}
	var out []string
	add := func(claim string) {
		if !seen[claim] {
			seen[claim] = true
			out = append(out, claim)
		}
	}
	for _, r := range c.Resources {
		for claim := range r.IdentityHeaders.Claims {
			add(claim)
		}
		for _, rule := range r.Rules {
			if rule.prog != nil {
				for _, claim := range rule.prog.Claims {
					add(claim)
				}
			}
		}
	}
	slices.Sort(out)
	return out
}
