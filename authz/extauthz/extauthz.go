// Package extauthz is the Envoy external-authorization (ext_authz v3 gRPC) adapter: it turns a
// CheckRequest into an authz.Request and an authz.Decision into a CheckResponse, and nothing
// more. It is the only package that imports go-control-plane's auth types.
//
// Envoy semantics it relies on (envoy source, ext_authz_grpc_impl.cc): allow or deny is decided
// from CheckResponse.status alone, so every denial, including a metadata document answered with
// HTTP 200, carries a non-OK status; a HeaderValueOption with neither the deprecated append
// nor append_action set appends (APPEND_IF_EXISTS_OR_ADD), so every header we set says
// OVERWRITE_IF_EXISTS_OR_ADD and a client-forged copy cannot survive next to ours.
package extauthz

import (
	"context"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync"
	"time"

	corev3 "github.com/envoyproxy/go-control-plane/envoy/config/core/v3"
	authv3 "github.com/envoyproxy/go-control-plane/envoy/service/auth/v3"
	typev3 "github.com/envoyproxy/go-control-plane/envoy/type/v3"
	rpcstatus "google.golang.org/genproto/googleapis/rpc/status"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/structpb"

	"go.opentelemetry.io/contrib/propagators/b3"
	"go.opentelemetry.io/otel/attribute"
	otelcodes "go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/mcp-authz/mcp-authz/authz"
)

// Checker is what the adapter needs from the decision core.
type Checker interface {
	Check(ctx context.Context, req *authz.Request) *authz.Decision
}

// Options configure a Server.
type Options struct {
	Logger *slog.Logger
	// OnDecision, if set, is called after every decision (logs, metrics).
	OnDecision func(ctx context.Context, req *authz.Request, d *authz.Decision, took time.Duration)
	// Tracer, if set, records one server span per Check. Its parent is the caller's context
	// from the gRPC metadata, else the traceparent the proxy forwarded in the CheckRequest's
	// HTTP headers, so the span lands in the client request's trace.
	Tracer trace.Tracer
	// SpanSubject adds the verified subject to the span as enduser.id.
	SpanSubject bool
}

// Server implements authv3.AuthorizationServer.
type Server struct {
	authv3.UnimplementedAuthorizationServer
	live    func() *Core
	log     *slog.Logger
	onDec   func(context.Context, *authz.Request, *authz.Decision, time.Duration)
	tracer  trace.Tracer
	subject bool
}

// Core is a decision core as a Server decides with it: the core with the converted responses
// of its shared answers. Whoever reloads the configuration keeps one Core beside each core it
// builds, so a reload drops the converted answers together with the core that numbered them.
type Core struct {
	c Checker
	// denied: Decision.Shared → *authv3.CheckResponse. The numbers come from the core's
	// configuration (a few per resource, at most 256 step-up challenges each), so this holds
	// at most that many; never keyed on an address, never filled by traffic.
	denied sync.Map
}

// NewCore wraps c for a Server.
func NewCore(c Checker) *Core { return &Core{c: c} }

// New returns a Server that always decides with c.
func New(c Checker, o Options) *Server {
	core := NewCore(c)
	return NewLive(func() *Core { return core }, o)
}

// NewLive returns a Server that asks live for the current core once per Check and decides the
// whole Check with it. The Server holds no pointer of its own: the caller's live configuration
// (one atomic pointer, swapped on reload) is the only one, so a reload applies to the next
// Check and never pairs one configuration's core with another's converted answers.
func NewLive(live func() *Core, o Options) *Server {
	s := &Server{live: live, log: o.Logger, onDec: o.OnDecision, tracer: o.Tracer, subject: o.SpanSubject}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	return s
}

// Register registers the Authorization service on g.
func Register(g *grpc.Server, s *Server) { authv3.RegisterAuthorizationServer(g, s) }

// Check never returns an error: a gRPC error would make Envoy apply status_on_error, and a
// crash would take every request down. A panic in the core becomes a clean 503.
func (s *Server) Check(ctx context.Context, in *authv3.CheckRequest) (resp *authv3.CheckResponse, _ error) {
	start := time.Now()
	core := s.live()
	req := Request(in)
	var d *authz.Decision
	var span trace.Span
	if s.tracer != nil {
		ctx, span = s.startSpan(ctx, req)
	}
	defer func() {
		if p := recover(); p != nil {
			s.log.Error("check panicked; answered 503", "panic", p, "stack", string(debug.Stack()))
			d = authz.Internal()
			resp = core.response(d)
		}
		if s.onDec != nil {
			s.onDec(ctx, req, d, time.Since(start))
		}
		if span != nil {
			if s.subject && d != nil && d.Identity != nil && d.Identity.Subject != "" {
				span.SetAttributes(attribute.String("enduser.id", d.Identity.Subject))
			}
			endSpan(span, d)
		}
	}()
	d = core.c.Check(ctx, req)
	return core.response(d), nil
}

// propagator reads W3C traceparent and, for proxies traced with Zipkin, B3 in either its
// single-header or its x-b3-* form.
var propagator = propagation.NewCompositeTextMapPropagator(propagation.TraceContext{}, b3.New(b3.WithInjectEncoding(b3.B3MultipleHeader)))

// startSpan: gRPC metadata first (Envoy's own tracing), else the HTTP request's traceparent
// or B3 headers.
func (s *Server) startSpan(ctx context.Context, req *authz.Request) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		if md, ok := metadata.FromIncomingContext(ctx); ok {
			ctx = propagator.Extract(ctx, metadataCarrier(md))
		}
	}
	if !trace.SpanContextFromContext(ctx).IsValid() {
		ctx = propagator.Extract(ctx, propagation.MapCarrier(req.Headers))
	}
	return s.tracer.Start(ctx, "envoy.service.auth.v3.Authorization/Check", trace.WithSpanKind(trace.SpanKindServer),
		trace.WithAttributes(attribute.String("http.request.method", req.Method)))
}

// endSpan records what was decided and why, never the token or who the caller is.
func endSpan(span trace.Span, d *authz.Decision) {
	if d != nil {
		span.SetAttributes(
			attribute.String("mcp_authz.resource", d.Resource),
			attribute.Bool("mcp_authz.allow", d.Allow),
			attribute.String("mcp_authz.reason", d.Reason.String()),
		)
		if d.Status != 0 {
			span.SetAttributes(attribute.Int("http.response.status_code", d.Status))
		}
		if d.Identity != nil {
			span.SetAttributes(attribute.String("mcp_authz.issuer", d.Identity.Issuer), attribute.String("mcp_authz.token_source", d.Identity.Source.String()))
		}
		if d.Tier != "" {
			span.SetAttributes(attribute.String("mcp_authz.cache.tier", d.Tier))
		}
		if d.Reason == authz.ReasonInternal {
			span.SetStatus(otelcodes.Error, "internal fault")
		}
	}
	span.End()
}

type metadataCarrier metadata.MD

func (m metadataCarrier) Get(k string) string {
	if v := metadata.MD(m).Get(k); len(v) > 0 {
		return v[0]
	}
	return ""
}
func (m metadataCarrier) Set(k, v string) { metadata.MD(m).Set(k, v) }
func (m metadataCarrier) Keys() []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// Request translates a CheckRequest. It tolerates any missing part.
func Request(in *authv3.CheckRequest) *authz.Request {
	h := in.GetAttributes().GetRequest().GetHttp()
	r := &authz.Request{
		Method: h.GetMethod(),
		Scheme: h.GetScheme(),
		Host:   h.GetHost(),
		Path:   h.GetPath(),
		ID:     h.GetId(),
	}
	if hm := h.GetHeaderMap(); hm != nil && len(hm.GetHeaders()) > 0 {
		// encode_raw_headers: values come as raw bytes, repeats as separate entries. Repeats
		// are collected and joined once, so a header sent 50,000 times costs linear time.
		r.Headers = make(map[string]string, len(hm.GetHeaders()))
		var more map[string][]string
		for _, hv := range hm.GetHeaders() {
			k := strings.ToLower(hv.GetKey())
			v := hv.GetValue()
			if len(hv.GetRawValue()) > 0 {
				v = string(hv.GetRawValue())
			}
			if prev, ok := r.Headers[k]; ok {
				if more == nil {
					more = map[string][]string{}
				}
				if _, seen := more[k]; !seen {
					more[k] = []string{prev}
					r.Repeated = append(r.Repeated, k)
				}
				more[k] = append(more[k], v)
				continue
			}
			r.Headers[k] = v
		}
		for k, vs := range more {
			r.Headers[k] = strings.Join(vs, ",")
		}
	} else {
		r.Headers = h.GetHeaders()
		if r.Headers == nil {
			r.Headers = map[string]string{}
		}
	}
	if r.Host == "" {
		r.Host = r.Headers[":authority"]
	}
	if r.Method == "" {
		r.Method = r.Headers[":method"]
	}
	if r.Path == "" {
		r.Path = r.Headers[":path"]
	}
	// Envoy leaves the query inside path and never fills query; honour a caller who did.
	if q := h.GetQuery(); q != "" && !strings.Contains(r.Path, "?") {
		r.Path += "?" + q
	}
	if r.ID == "" {
		r.ID = r.Headers["x-request-id"]
	}
	if b := h.GetRawBody(); len(b) > 0 {
		r.Body = b
	} else if b := h.GetBody(); b != "" {
		r.Body = []byte(b)
	}
	// Envoy's include_peer_certificate: the client certificate of the TLS connection Envoy
	// terminated, URL-encoded PEM (RFC 8705 certificate-bound tokens).
	r.ClientCert = in.GetAttributes().GetSource().GetCertificate()
	if md := in.GetAttributes().GetMetadataContext().GetFilterMetadata()[mcpFilterNamespace]; md != nil {
		r.MCP = filterOperation(md)
	}
	return r
}

// mcpFilterNamespace is where Envoy's MCP filter puts what it read of a JSON-RPC request
// (method, id, params); ext_authz forwards it with metadata_context_namespaces.
const mcpFilterNamespace = "envoy.filters.http.mcp"

func filterOperation(md *structpb.Struct) *authz.FilterOperation {
	f := md.GetFields()
	op := &authz.FilterOperation{Method: f["method"].GetStringValue()}
	params := f["params"].GetStructValue().GetFields()
	if v, ok := params["name"].GetKind().(*structpb.Value_StringValue); ok {
		op.Name, op.HasName = v.StringValue, true
	}
	if v, ok := params["uri"].GetKind().(*structpb.Value_StringValue); ok {
		op.URI, op.HasURI = v.StringValue, true
	}
	if a := params["arguments"]; a != nil {
		if b, err := protojson.Marshal(a); err == nil {
			op.Arguments = b
		}
	}
	return op
}

// dynamicMetadata: Envoy files the dynamic_metadata of a CheckResponse under the ext_authz
// filter's name, where rate limit, RBAC and access logs read it
// (%DYNAMIC_METADATA(envoy.filters.http.ext_authz:subject)%).
func dynamicMetadata(d *authz.Decision) *structpb.Struct {
	// One allocation for all values and one for their kinds, instead of two per field: this
	// runs on every allow.
	var kv [10]struct{ k, v string }
	n := 0
	str := func(k, v string) {
		if v != "" {
			kv[n] = struct{ k, v string }{k, v}
			n++
		}
	}
	str("resource", d.Resource)
	if id := d.Identity; id != nil {
		str("subject", id.Subject)
		str("client_id", id.ClientID)
		str("issuer", id.Issuer)
		if len(id.Scopes) == 1 {
			str("scope", id.Scopes[0])
		} else if len(id.Scopes) > 1 {
			str("scope", strings.Join(id.Scopes, " "))
		}
		str("token_source", id.Source.String())
		str("token_binding", d.Binding)
	} else {
		str("token_source", "none")
	}
	if op := d.Operation; op != nil {
		str("mcp_method", op.Method)
		str("mcp_name", op.Name)
	}
	vals := make([]structpb.Value, n)
	kinds := make([]structpb.Value_StringValue, n)
	f := make(map[string]*structpb.Value, n)
	for i := range n {
		kinds[i].StringValue = kv[i].v
		vals[i].Kind = &kinds[i]
		f[kv[i].k] = &vals[i]
	}
	return &structpb.Struct{Fields: f}
}

var okStatus = &rpcstatus.Status{Code: int32(codes.OK)}

// response converts a decision. A shared answer (Decision.Shared) is converted once per core.
// An earlier memo was keyed on the address of a denial's header slice: every distinct 403
// grew it without bound, and HEAD's empty metadata answer replaced GET's (they shared the
// slice). The core's numbers have neither problem.
func (core *Core) response(d *authz.Decision) *authv3.CheckResponse {
	if d.Allow {
		ok := &authv3.OkHttpResponse{Headers: headerOptions(d.Headers), HeadersToRemove: d.Remove,
			ResponseHeadersToAdd: headerOptions(d.ResponseHeaders)}
		return &authv3.CheckResponse{Status: okStatus, HttpResponse: &authv3.CheckResponse_OkResponse{OkResponse: ok},
			DynamicMetadata: dynamicMetadata(d)}
	}
	if d.Shared == 0 {
		return denied(d)
	}
	if r, ok := core.denied.Load(d.Shared); ok {
		return r.(*authv3.CheckResponse)
	}
	r := denied(d)
	core.denied.Store(d.Shared, r)
	return r
}

func denied(d *authz.Decision) *authv3.CheckResponse {
	return &authv3.CheckResponse{
		Status: &rpcstatus.Status{Code: int32(grpcCode(d.Status))},
		HttpResponse: &authv3.CheckResponse_DeniedResponse{DeniedResponse: &authv3.DeniedHttpResponse{
			Status:  &typev3.HttpStatus{Code: typev3.StatusCode(d.Status)},
			Headers: headerOptions(d.Headers),
			Body:    string(d.Body),
		}},
	}
}

func headerOptions(hs []authz.Header) []*corev3.HeaderValueOption {
	if len(hs) == 0 {
		return nil
	}
	// One allocation for all options and one for all values.
	opts := make([]corev3.HeaderValueOption, len(hs))
	vals := make([]corev3.HeaderValue, len(hs))
	out := make([]*corev3.HeaderValueOption, len(hs))
	for i, h := range hs {
		vals[i].Key, vals[i].Value = h.Name, h.Value
		opts[i].Header = &vals[i]
		opts[i].AppendAction = corev3.HeaderValueOption_OVERWRITE_IF_EXISTS_OR_ADD
		out[i] = &opts[i]
	}
	return out
}

// grpcCode gives each denial a non-OK status; Envoy only distinguishes OK from not OK, the
// rest is for logs and dashboards.
func grpcCode(status int) codes.Code {
	switch status {
	case http.StatusUnauthorized:
		return codes.Unauthenticated
	case http.StatusForbidden:
		return codes.PermissionDenied
	case http.StatusBadRequest:
		return codes.InvalidArgument
	case http.StatusServiceUnavailable:
		return codes.Unavailable
	}
	return codes.PermissionDenied
}
