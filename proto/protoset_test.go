package proto

import (
	"bytes"
	"os"
	"testing"

	gproto "google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/descriptorpb"
)

func TestProtosetIsFresh(t *testing.T) {
	want, err := Protoset()
	if err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile("authz.protoset")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("stale protoset: run go generate ./proto")
	}
	// It must stand alone: every file's imports are in the set.
	var set descriptorpb.FileDescriptorSet
	if err := gproto.Unmarshal(got, &set); err != nil {
		t.Fatal(err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		t.Fatalf("protoset is not self-contained: %v", err)
	}
	for _, name := range []string{"envoy.service.auth.v3.Authorization", "grpc.health.v1.Health"} {
		if _, err := files.FindDescriptorByName(protoreflect.FullName(name)); err != nil {
			t.Errorf("%s missing: %v", name, err)
		}
	}
}
