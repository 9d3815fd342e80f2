package envoy

import (
	"encoding/json"
	"os"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	meshv1alpha1 "istio.io/api/mesh/v1alpha1"
	securityv1beta1 "istio.io/api/security/v1beta1"
)

// decodeStrict reads YAML into an Istio API message; protojson rejects unknown fields.
func decodeStrict(src []byte, m proto.Message) error {
	var y any
	if err := yaml.Unmarshal(src, &y); err != nil {
		return err
	}
	js, err := json.Marshal(y)
	if err != nil {
		return err
	}
	return protojson.Unmarshal(js, m)
}

// authorizationPolicy is the Kubernetes object; its spec is Istio's proto type.
type authorizationPolicy struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Metadata   json.RawMessage `json:"metadata"`
	Spec       json.RawMessage `json:"spec"`
}

func loadIstio(mesh, policy []byte) (*meshv1alpha1.MeshConfig, *securityv1beta1.AuthorizationPolicy, error) {
	var mc meshv1alpha1.MeshConfig
	if err := decodeStrict(mesh, &mc); err != nil {
		return nil, nil, err
	}
	var y any
	if err := yaml.Unmarshal(policy, &y); err != nil {
		return nil, nil, err
	}
	js, _ := json.Marshal(y)
	var obj authorizationPolicy
	dec := json.NewDecoder(strings.NewReader(string(js)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&obj); err != nil {
		return nil, nil, err
	}
	var ap securityv1beta1.AuthorizationPolicy
	if err := protojson.Unmarshal(obj.Spec, &ap); err != nil {
		return nil, nil, err
	}
	return &mc, &ap, nil
}

func TestIstioManifests(t *testing.T) {
	mesh, err := os.ReadFile(envoyDir + "istio/meshconfig.yaml")
	if err != nil {
		t.Fatal(err)
	}
	policy, err := os.ReadFile(envoyDir + "istio/authorizationpolicy.yaml")
	if err != nil {
		t.Fatal(err)
	}
	mc, ap, err := loadIstio(mesh, policy)
	if err != nil {
		t.Fatal(err)
	}
	var provider *meshv1alpha1.MeshConfig_ExtensionProvider_EnvoyExternalAuthorizationGrpcProvider
	for _, p := range mc.GetExtensionProviders() {
		if p.GetName() == ap.GetProvider().GetName() {
			provider = p.GetEnvoyExtAuthzGrpc()
		}
	}
	if provider == nil {
		t.Fatalf("the policy's provider %q is not an envoyExtAuthzGrpc extension provider", ap.GetProvider().GetName())
	}
	if provider.GetFailOpen() {
		t.Error("failOpen: true lets every request through when mcp-authz is down")
	}
	if provider.GetPort() != 9191 {
		t.Errorf("port %d, want mcp-authz's 9191", provider.GetPort())
	}
	if ap.GetAction() != securityv1beta1.AuthorizationPolicy_CUSTOM {
		t.Errorf("action %v, want CUSTOM", ap.GetAction())
	}

	for _, tc := range []struct{ name, file, from, to string }{
		{"misspelled mesh field", "mesh", "failOpen: false", "failOpn: false"},
		{"misspelled policy field", "policy", "matchLabels:", "matchLabel:"},
		{"bad action", "policy", "action: CUSTOM", "action: CUSTOMS"},
		{"misspelled top-level key", "policy", "metadata:", "metdata:"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, p := string(mesh), string(policy)
			if tc.file == "mesh" {
				m = strings.Replace(m, tc.from, tc.to, 1)
			} else {
				p = strings.Replace(p, tc.from, tc.to, 1)
			}
			if m == string(mesh) && p == string(policy) {
				t.Fatalf("fixture no longer contains %q", tc.from)
			}
			if _, _, err := loadIstio([]byte(m), []byte(p)); err == nil {
				t.Error("accepted")
			}
		})
	}
}
