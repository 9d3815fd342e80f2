package telemetry

import (
	"context"
	"errors"
	"fmt"

	"go.opentelemetry.io/otel/exporters/otlp/otlptrace"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.26.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing configures span export. An empty Exporter turns tracing off.
type Tracing struct {
	Exporter    string  // "", "otlp-grpc" or "otlp-http"
	Endpoint    string  // host:port; empty: the OTEL_EXPORTER_OTLP_* environment, else the exporter's default
	Insecure    bool    // plaintext to the collector (loopback, sidecar)
	SampleRatio float64 // of root traces; a caller's sampled decision is always followed
	ServiceName string
	// IncludeSubject is read by the Check span's producer, not here.
	IncludeSubject bool
}

// NewTracerProvider returns the tracer provider and its shutdown (which flushes), or nil for
// no tracing. It does not wait for the collector: export happens in the background.
func NewTracerProvider(ctx context.Context, c Tracing) (trace.TracerProvider, func(context.Context) error, error) {
	if c.Exporter == "" {
		return nil, func(context.Context) error { return nil }, nil
	}
	var exp *otlptrace.Exporter
	var err error
	switch c.Exporter {
	case "otlp-grpc":
		var opts []otlptracegrpc.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracegrpc.WithEndpoint(c.Endpoint))
		}
		if c.Insecure {
			opts = append(opts, otlptracegrpc.WithInsecure())
		}
		exp, err = otlptracegrpc.New(ctx, opts...)
	case "otlp-http":
		var opts []otlptracehttp.Option
		if c.Endpoint != "" {
			opts = append(opts, otlptracehttp.WithEndpoint(c.Endpoint))
		}
		if c.Insecure {
			opts = append(opts, otlptracehttp.WithInsecure())
		}
		exp, err = otlptracehttp.New(ctx, opts...)
	default:
		return nil, nil, fmt.Errorf("tracing.exporter %q: use otlp-grpc or otlp-http", c.Exporter)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("tracing: %w", err)
	}
	name := c.ServiceName
	if name == "" {
		name = "mcp-authz"
	}
	ratio := c.SampleRatio
	if ratio < 0 || ratio > 1 {
		return nil, nil, errors.New("tracing.sample_ratio: between 0 and 1")
	}
	tp := sdktrace.NewTracerProvider(
		sdktrace.WithBatcher(exp),
		sdktrace.WithSampler(sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))),
		sdktrace.WithResource(resource.NewSchemaless(semconv.ServiceName(name))),
	)
	return tp, tp.Shutdown, nil
}
