package jwt

import (
	"strings"
	"testing"
	"time"
)

// required fills what New demands and a test left unset with package config's defaults
// (written out: this package must not import config), so each test says only what it is about.
func required(c Config) Config {
	if c.Algorithms == nil {
		c.Algorithms = []string{"RS256", "ES256", "PS256", "EdDSA"}
	}
	if c.RefreshInterval == 0 {
		c.RefreshInterval = 30 * time.Second
	}
	if c.MaxStale == 0 {
		c.MaxStale = 24 * time.Hour
	}
	return c
}

// Defaults have one home, package config: New takes no zero for what the configuration sets.
func TestNewRequiresWhatConfigSets(t *testing.T) {
	for name, c := range map[string]Config{
		"no algorithms":       {Issuer: "https://as.example", RefreshInterval: time.Minute},
		"no refresh interval": {Issuer: "https://as.example", Algorithms: []string{"ES256"}},
	} {
		if _, err := New(c); err == nil {
			t.Errorf("%s: accepted", name)
		} else if !strings.Contains(err.Error(), strings.TrimPrefix(name, "no ")) && !strings.Contains(err.Error(), "under 1s") {
			t.Errorf("%s: error %q does not say what is missing", name, err)
		}
	}
}
