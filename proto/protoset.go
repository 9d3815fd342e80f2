// Package proto holds authz.protoset: the descriptors of envoy.service.auth.v3 (and
// grpc.health.v1) with every dependency, so grpcurl and ghz can call mcp-authz without server
// reflection, which stays off by default:
//
//	grpcurl -plaintext -protoset proto/authz.protoset -d '{...}' 127.0.0.1:9191 envoy.service.auth.v3.Authorization/Check
//	ghz --insecure --protoset proto/authz.protoset --call envoy.service.auth.v3.Authorization.Check -d '{...}' 127.0.0.1:9191
//
// The file is generated from the go-control-plane registry compiled into this module, so it
// matches the types the service uses; a test fails when it is stale.
package proto

//go:generate go run ./gen -o authz.protoset

import (
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

// Protoset returns the serialized FileDescriptorSet, dependencies before dependents, encoded
// deterministically so the committed file can be compared byte for byte.
func Protoset() ([]byte, error) {
	seen := map[string]bool{}
	var files []*descriptorpb.FileDescriptorProto
	var walk func(fd protoreflect.FileDescriptor)
	walk = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		for i := 0; i < fd.Imports().Len(); i++ {
			walk(fd.Imports().Get(i).FileDescriptor)
		}
		files = append(files, protodesc.ToFileDescriptorProto(fd))
	}
	walk(authv3.File_envoy_service_auth_v3_external_auth_proto)
	walk(healthpb.File_grpc_health_v1_health_proto)
	return proto.MarshalOptions{Deterministic: true}.Marshal(&descriptorpb.FileDescriptorSet{File: files})
}
