// Package envoyload reads Envoy bootstraps for tests the way Envoy would refuse them: strictly
// (an unknown field is an error) and validated, typed_config included. The envoy package's tests
// and the deploy/k8s module's proxy-timeout tests read the same shipped files with it.
package envoyload

import (
	"encoding/json"
	"fmt"
	"testing"

	bootstrapv3 "github.com/envoyproxy/go-control-plane/envoy/config/bootstrap/v3"
	"go.yaml.in/yaml/v3"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/known/anypb"

	// Every typed_config type the shipped bootstraps (envoy/*.yaml) use, so that their Anys
	// resolve whichever test binary loads them.
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/access_loggers/stream/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ext_authz/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/mcp/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/ratelimit/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/http/router/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/filters/network/http_connection_manager/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/transport_sockets/tls/v3"
	_ "github.com/envoyproxy/go-control-plane/envoy/extensions/upstreams/http/v3"
)

type validator interface{ ValidateAll() error }

// Bootstrap decodes a bootstrap (YAML or JSON) strictly (unknown fields are errors),
// validates it, and unpacks and validates every Any inside it: Bootstrap.ValidateAll does not
// look into typed_config.
func Bootstrap(src []byte) (*bootstrapv3.Bootstrap, error) {
	var y any
	if err := yaml.Unmarshal(src, &y); err != nil {
		return nil, err
	}
	js, err := json.Marshal(y)
	if err != nil {
		return nil, err
	}
	var b bootstrapv3.Bootstrap
	if err := (protojson.UnmarshalOptions{}).Unmarshal(js, &b); err != nil {
		return nil, err
	}
	if err := b.ValidateAll(); err != nil {
		return nil, err
	}
	if err := validateAnys(b.ProtoReflect()); err != nil {
		return nil, err
	}
	return &b, nil
}
func validateAnys(m protoreflect.Message) error {
	var firstErr error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		check := func(msg protoreflect.Message) {
			if firstErr != nil {
				return
			}
			if a, ok := msg.Interface().(*anypb.Any); ok {
				inner, err := a.UnmarshalNew()
				if err != nil {
					firstErr = fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
					return
				}
				if val, ok := inner.(validator); ok {
					if err := val.ValidateAll(); err != nil {
						firstErr = fmt.Errorf("%s: %w", a.GetTypeUrl(), err)
						return
					}
				}
				firstErr = validateAnys(inner.ProtoReflect())
				return
			}
			firstErr = validateAnys(msg)
		}
		switch {
		case fd.IsList() && fd.Kind() == protoreflect.MessageKind:
			l := v.List()
			for i := 0; i < l.Len(); i++ {
				check(l.Get(i).Message())
			}
		case fd.IsMap() && fd.MapValue().Kind() == protoreflect.MessageKind:
			v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
				check(mv.Message())
				return firstErr == nil
			})
		case fd.Kind() == protoreflect.MessageKind:
			check(v.Message())
		}
		return firstErr == nil
	})
	return firstErr
}

// Unpack unpacks a into m, or ends the test.
func Unpack[T proto.Message](t testing.TB, a *anypb.Any, m T) T {
	t.Helper()
	if err := a.UnmarshalTo(m); err != nil {
		t.Fatalf("%s: %v", a.GetTypeUrl(), err)
	}
	return m
}
