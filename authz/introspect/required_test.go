package introspect

import (
	"strings"
	"testing"
	"time"
)

// required fills what New demands and a test left unset with package config's defaults
// (written out: this package must not import config), so each test says only what it is about.
func required(c Config) Config {
	if c.AuthMethod == "" {
		c.AuthMethod = "client_secret_basic"
	}
	if c.Timeout == 0 {
		c.Timeout = 2 * time.Second
	}
	if c.MaxConcurrent == 0 {
		c.MaxConcurrent = 64
	}
	if c.Breaker.Failures == 0 {
		c.Breaker.Failures = 5
	}
	if c.Breaker.OpenFor == 0 {
		c.Breaker.OpenFor = 5 * time.Second
	}
	return c
}

// Defaults have one home, package config: New takes no zero for what the configuration sets.
func TestNewRequiresWhatConfigSets(t *testing.T) {
	_, err := New(Config{Issuer: "https://as.example", ClientID: "a", ClientSecret: "b"})
	if err == nil {
		t.Fatal("New accepted a config without timeout, max concurrent, breaker and auth method")
	}
	for _, want := range []string{"auth method", "timeout is not set", "max concurrent is not set", "breaker failures is not set", "breaker open_for is not set"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := New(required(Config{Issuer: "https://as.example", ClientID: "a", ClientSecret: "b"})); err != nil {
		t.Fatal(err)
	}
}
