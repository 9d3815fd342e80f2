package envoy

import (
	"os"
	"strings"
	"testing"
)

func TestCheckSenderConstrained(t *testing.T) {
	read := func(f string) string {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	grpc, mtlsFile, http := read("envoy.yaml"), read("envoy-client-mtls.yaml"), read("envoy-http.yaml")
	cases := []struct {
		name, src  string
		dpop, mtls bool
		want       []string // substrings, one per expected problem
	}{
		{"gRPC, DPoP", grpc, true, false, nil},
		{"gRPC without the certificate, mTLS", grpc, false, true, []string{"no include_peer_certificate"}},
		{"the client-certificate example, both", mtlsFile, true, true, nil},
		{"HTTP service, DPoP", http, true, false, nil},
		{"HTTP service without dpop", strings.Replace(http, "- exact: dpop\n", "- exact: x-unrelated\n", 1), true, false, []string{`lacks "dpop"`}},
		{"HTTP service, mTLS", http, false, true, []string{`lacks "x-forwarded-client-cert"`, "SANITIZE_SET"}},
		{"nothing asked", grpc, false, false, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := CheckSenderConstrained([]byte(tc.src), tc.dpop, tc.mtls)
			if err != nil {
				t.Fatal(err)
			}
			if len(p) != len(tc.want) {
				t.Fatalf("problems %q, want %d", p, len(tc.want))
			}
			for i, w := range tc.want {
				if !strings.Contains(p[i], w) {
					t.Errorf("problem %q, want %q", p[i], w)
				}
			}
		})
	}
	if _, err := CheckSenderConstrained([]byte("{{{"), true, true); err == nil {
		t.Error("garbage accepted")
	}
	if p, _ := CheckSenderConstrained([]byte("static_resources: {}\n"), true, false); len(p) != 1 || !strings.Contains(p[0], "no ext_authz filter") {
		t.Errorf("no filter: %q", p)
	}
}
