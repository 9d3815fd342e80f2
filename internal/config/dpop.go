package config

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"
	"time"

	"github.com/mcp-authz/mcp-authz/authz"
	"github.com/mcp-authz/mcp-authz/authz/dpop"
)

// DPoP configures how DPoP proofs (RFC 9449) are checked, for the resources with
// dpop: allowed or required.
type DPoP struct {
	// Algs are the proof algorithms accepted (asymmetric only); default ES256, EdDSA, ES384,
	// PS256, RS256. Advertised as the PRM's dpop_signing_alg_values_supported.
	Algs []string `yaml:"algs"`
	// IATWindow: how far a proof's iat may be from now, either way (clock_skew is added);
	// default 5m, as the MCP DPoP conformance scenarios expect.
	IATWindow Duration `yaml:"iat_window"`
	// OnReplayStoreUnavailable: when Redis cannot record a proof's jti, deny (default) or
	// iat_window (accept, with only the iat window and this replica's memory against replays).
	OnReplayStoreUnavailable string `yaml:"on_replay_store_unavailable"`
	// ReplayMemory: how many proofs each replica remembers itself (without Redis, or while it
	// is down); default 65536, about 100 bytes each.
	ReplayMemory int `yaml:"replay_memory"`
	// Nonce: require server-issued nonces in proofs (RFC 9449 §9).
	Nonce bool `yaml:"nonce"`
	// NonceLifetime: how long a nonce is good for; a new one is sent once it is half used.
	// Default 5m.
	NonceLifetime Duration `yaml:"nonce_lifetime"`
}

// Binding modes of resources[].dpop and resources[].mtls_bound.
const (
	BindingOff      = "off"
	BindingAllowed  = "allowed"
	BindingRequired = "required"
)

// DefaultBindingHeader names the upstream header saying how the token was bound.
const DefaultBindingHeader = "x-auth-token-binding"

func (f *ForwardAuth) applyDefaults() {
	if f.ClientCertificateHeader != "" && len(f.TrustedProxies) == 0 {
		f.TrustedProxies = []string{"127.0.0.1/32", "::1/128"}
	}
	f.ClientCertificateHeader = strings.ToLower(f.ClientCertificateHeader)
}

func (d *DPoP) applyDefaults() {
	if len(d.Algs) == 0 {
		d.Algs = slices.Clone(dpop.DefaultAlgs)
	}
	if d.IATWindow == 0 {
		d.IATWindow = Duration(5 * time.Minute)
	}
	if d.OnReplayStoreUnavailable == "" {
		d.OnReplayStoreUnavailable = "deny"
	}
	if d.ReplayMemory == 0 {
		d.ReplayMemory = dpop.DefaultMemory
	}
	if d.NonceLifetime == 0 {
		d.NonceLifetime = Duration(5 * time.Minute)
	}
}

func (c *Config) validateDPoP(bad func(key, format string, args ...any)) {
	d := &c.DPoP
	c.validateForwardAuth(bad)
	for i, a := range d.Algs {
		if !dpop.Supported[a] {
			bad(fmt.Sprintf("dpop.algs[%d]", i), "%q: use asymmetric JWS algorithms (ES256, ES384, ES512, EdDSA, RS256, RS384, RS512, PS256, PS384, PS512); none and HS* are never accepted", a)
		}
	}
	if w := d.IATWindow.D(); w < 10*time.Second || w > time.Hour {
		bad("dpop.iat_window", "%s: between 10s and 1h (default 5m)", w)
	}
	switch d.OnReplayStoreUnavailable {
	case "deny", "iat_window":
	default:
		bad("dpop.on_replay_store_unavailable", "%q: use deny or iat_window", d.OnReplayStoreUnavailable)
	}
	if d.ReplayMemory < 1 || d.ReplayMemory > 10_000_000 {
		bad("dpop.replay_memory", "%d: between 1 and 10000000 entries (default 65536)", d.ReplayMemory)
	}
	if l := d.NonceLifetime.D(); l < 10*time.Second || l > time.Hour {
		bad("dpop.nonce_lifetime", "%s: between 10s and 1h (default 5m)", l)
	}
	for i, r := range c.Resources {
		key := fmt.Sprintf("resources[%d]", i)
		for _, m := range []struct{ name, v string }{{"dpop", r.DPoP}, {"mtls_bound", r.MTLSBound}} {
			switch m.v {
			case "", BindingOff, BindingAllowed, BindingRequired:
			default:
				bad(key+"."+m.name, "%q: use off, allowed or required", m.v)
			}
		}
	}
}

func (c *Config) validateForwardAuth(bad func(key, format string, args ...any)) {
	f := &c.ForwardAuth
	if f.ClientCertificateHeader != "" {
		checkHeaderName(bad, "forward_auth.client_certificate_header", f.ClientCertificateHeader)
	}
	for i, p := range f.TrustedProxies {
		if _, err := netip.ParsePrefix(p); err != nil {
			bad(fmt.Sprintf("forward_auth.trusted_proxies[%d]", i), "%q is not a CIDR (e.g. 10.0.0.0/8 or 127.0.0.1/32)", p)
		}
	}
}

// TrustedProxies is forward_auth.trusted_proxies parsed (validated before).
func (c *Config) TrustedProxies() []netip.Prefix {
	var out []netip.Prefix
	for _, p := range c.ForwardAuth.TrustedProxies {
		if pp, err := netip.ParsePrefix(p); err == nil {
			out = append(out, pp)
		}
	}
	return out
}

// UsesDPoP reports whether any resource accepts DPoP.
func (c *Config) UsesDPoP() bool {
	for _, r := range c.Resources {
		if r.DPoP == BindingAllowed || r.DPoP == BindingRequired {
			return true
		}
	}
	return false
}

func bindingMode(s string) authz.BindingMode {
	switch strings.ToLower(s) {
	case BindingAllowed:
		return authz.BindingAllowed
	case BindingRequired:
		return authz.BindingRequired
	}
	return authz.BindingOff
}
