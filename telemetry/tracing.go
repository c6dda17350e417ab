package telemetry

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/url"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracegrpc"
	"go.opentelemetry.io/otel/exporters/otlp/otlptrace/otlptracehttp"
	"go.opentelemetry.io/otel/exporters/stdout/stdouttrace"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Tracing is the service's OpenTelemetry tracing: a tracer provider exporting what the standard
// OTEL_* variables say, and the propagators that read a caller's trace context. A nil *Tracing is
// tracing off, and every method of it is then a no-op, so that a service without OTEL_* variables
// pays for no span, no wrapper and no exporter.
type Tracing struct {
	provider   *sdktrace.TracerProvider
	propagator propagation.TextMapPropagator
	// restoreErrorHandler puts back the OpenTelemetry error handler that StartTracing replaced.
	restoreErrorHandler func()
}

// StartTracing reads the standard OpenTelemetry variables through getenv and starts the tracer
// provider they describe. It returns nil, tracing off, unless OTEL_TRACES_EXPORTER names an
// exporter or OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set, and
// OTEL_SDK_DISABLED is not true: a service told only its name, say, is not thereby told that a
// collector listens on localhost. console is where OTEL_TRACES_EXPORTER=console writes spans;
// logger reports the exporter's failures, which never fail a request. Every bad variable is
// reported, each on a line of its own.
//
// The variables are read through getenv, and passed to the SDK as options, wherever the SDK takes
// one. The few it reads only from the process's environment (OTEL_EXPORTER_OTLP_CERTIFICATE and
// the client key and certificate, the span limits OTEL_SPAN_*_LIMIT and OTEL_ATTRIBUTE_*_LIMIT) it
// still reads from there.
func StartTracing(ctx context.Context, getenv func(string) string, console io.Writer, logger *slog.Logger) (*Tracing, error) {
	cfg, err := readTracingConfig(getenv)
	if err != nil || !cfg.enabled {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithSchemaURL(semconv.SchemaURL),
		resource.WithTelemetrySDK(),
		resource.WithAttributes(cfg.resource...),
	)
	if err != nil {
		return nil, fmt.Errorf("tracing: describing the service: %w", err)
	}
	opts := []sdktrace.TracerProviderOption{sdktrace.WithResource(res), sdktrace.WithSampler(cfg.sampler)}
	for _, name := range cfg.exporters {
		exp, err := cfg.newExporter(ctx, name, console)
		if err != nil {
			return nil, err
		}
		opts = append(opts, sdktrace.WithBatcher(exp, cfg.batch...))
	}
	t := &Tracing{provider: sdktrace.NewTracerProvider(opts...), propagator: cfg.propagator}

	// An exporter that cannot reach its collector says so through the global error handler, which
	// would otherwise print plain text to stderr beside the JSON log.
	previous := otel.GetErrorHandler()
	otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
		logger.Warn("tracing: spans were not exported", "err", err)
	}))
	t.restoreErrorHandler = func() { otel.SetErrorHandler(previous) }
	logger.Info("tracing", "exporters", strings.Join(cfg.exporters, ","), "endpoint", cfg.endpointForLog(),
		"sampler", cfg.sampler.Description(), "service", cfg.serviceName)
	return t, nil
}

// TracerProvider returns the provider that spans are made with, or nil when tracing is off.
func (t *Tracing) TracerProvider() trace.TracerProvider {
	if t == nil {
		return nil
	}
	return t.provider
}

// Handler wraps the service's handler, outside Middleware, in a server span per request that
// continues the caller's trace (W3C traceparent and tracestate, or what OTEL_PROPAGATORS names).
// Middleware names the span after the route pattern once the ServeMux has found it, and answers
// with the trace context. With tracing off it returns next itself.
func (t *Tracing) Handler(next http.Handler) http.Handler {
	if t == nil {
		return next
	}
	return otelhttp.NewHandler(next, "",
		otelhttp.WithTracerProvider(t.provider),
		otelhttp.WithPropagators(t.propagator),
		// The service's metrics are Prometheus's; OpenTelemetry's would be measured for nobody.
		otelhttp.WithMeterProvider(noopmetric.NewMeterProvider()),
		otelhttp.WithFilter(func(r *http.Request) bool { return !untracedPaths[r.URL.Path] }),
	)
}

// untracedPaths are the paths of the probes and the scrapes (quietRoutes), which come every few
// seconds and would fill the traces with spans that tell nothing.
var untracedPaths = map[string]bool{"/healthz": true, "/readyz": true, "/metrics": true}

// Shutdown exports the spans still buffered, within ctx's deadline, and stops the provider.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	defer t.restoreErrorHandler()
	return t.provider.Shutdown(ctx)
}

// tracingConfig is what the OTEL_* variables say about traces.
type tracingConfig struct {
	enabled     bool
	exporters   []string
	protocol    string
	endpoint    string // a full URL: for OTLP over HTTP, with the traces path
	headers     map[string]string
	timeout     time.Duration
	compression string
	serviceName string
	resource    []attribute.KeyValue
	sampler     sdktrace.Sampler
	propagator  propagation.TextMapPropagator
	batch       []sdktrace.BatchSpanProcessorOption
}

// readTracingConfig reads the OTEL_* variables that concern traces, as the OpenTelemetry
// specification defines them. Values the specification allows but this service cannot honour
// (the zipkin exporter, the b3 propagator) are errors rather than silently ignored.
func readTracingConfig(getenv func(string) string) (tracingConfig, error) {
	var errs []error
	bad := func(name, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", name, fmt.Sprintf(format, args...)))
	}
	var cfg tracingConfig

	if v := getenv("OTEL_SDK_DISABLED"); v != "" {
		disabled, err := strconv.ParseBool(v)
		if err != nil {
			bad("OTEL_SDK_DISABLED", "must be true or false, not %q", v)
		} else if disabled {
			return cfg, nil
		}
	}
	exporters := getenv("OTEL_TRACES_EXPORTER")
	endpoint := cmp.Or(getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"), getenv("OTEL_EXPORTER_OTLP_ENDPOINT"))
	if exporters == "" && endpoint == "" {
		return cfg, errors.Join(errs...)
	}
	for e := range strings.SplitSeq(cmp.Or(exporters, "otlp"), ",") {
		switch e = strings.TrimSpace(e); e {
		case "otlp", "console":
			if !slices.Contains(cfg.exporters, e) {
				cfg.exporters = append(cfg.exporters, e)
			}
		case "none", "":
		default:
			bad("OTEL_TRACES_EXPORTER", "must be otlp, console or none, or a comma-separated list of them, not %q", e)
		}
	}
	cfg.enabled = len(cfg.exporters) > 0

	cfg.protocol = signalVar(getenv, "PROTOCOL")
	switch cfg.protocol {
	case "":
		cfg.protocol = "http/protobuf"
	case "http/protobuf", "http/json", "grpc":
	default:
		bad(signalVarName(getenv, "PROTOCOL"), "must be http/protobuf, http/json or grpc, not %q", cfg.protocol)
	}
	cfg.endpoint = otlpEndpoint(getenv, cfg.protocol)
	if u, err := url.Parse(cfg.endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// url.Parse's message would repeat the URL, which may hold credentials.
		bad(signalVarName(getenv, "ENDPOINT"), "must be an http:// or https:// URL, such as http://localhost:4318")
	}
	if v := signalVar(getenv, "HEADERS"); v != "" {
		headers, err := parseKeyValues(v)
		if err != nil {
			// Not the value: headers carry credentials.
			bad(signalVarName(getenv, "HEADERS"), "must be key=value pairs separated by commas, with values URL-encoded")
		}
		cfg.headers = headers
	}
	cfg.timeout = 10 * time.Second
	millisVar(bad, signalVarName(getenv, "TIMEOUT"), signalVar(getenv, "TIMEOUT"), &cfg.timeout)
	switch cfg.compression = signalVar(getenv, "COMPRESSION"); cfg.compression {
	case "", "none", "gzip":
	default:
		bad(signalVarName(getenv, "COMPRESSION"), "must be gzip or none, not %q", cfg.compression)
	}

	cfg.serviceName = "usergraph"
	if v := getenv("OTEL_RESOURCE_ATTRIBUTES"); v != "" {
		attrs, err := parseKeyValues(v)
		if err != nil {
			bad("OTEL_RESOURCE_ATTRIBUTES", "must be key=value pairs separated by commas, with values URL-encoded")
		}
		for _, k := range slices.Sorted(maps.Keys(attrs)) {
			cfg.resource = append(cfg.resource, attribute.String(k, attrs[k]))
		}
		cfg.serviceName = cmp.Or(attrs[string(semconv.ServiceNameKey)], cfg.serviceName)
	}
	cfg.serviceName = cmp.Or(getenv("OTEL_SERVICE_NAME"), cfg.serviceName)
	cfg.resource = append(cfg.resource, semconv.ServiceName(cfg.serviceName))
	if info, ok := debug.ReadBuildInfo(); ok && info.Main.Version != "" && info.Main.Version != "(devel)" {
		cfg.resource = append(cfg.resource, semconv.ServiceVersion(info.Main.Version))
	}

	cfg.sampler = readSampler(getenv, bad)
	cfg.propagator = readPropagators(getenv, bad)

	bsp := []struct {
		name string
		opt  func(int) sdktrace.BatchSpanProcessorOption
	}{
		{"OTEL_BSP_SCHEDULE_DELAY", func(ms int) sdktrace.BatchSpanProcessorOption {
			return sdktrace.WithBatchTimeout(time.Duration(ms) * time.Millisecond)
		}},
		{"OTEL_BSP_EXPORT_TIMEOUT", func(ms int) sdktrace.BatchSpanProcessorOption {
			return sdktrace.WithExportTimeout(time.Duration(ms) * time.Millisecond)
		}},
		{"OTEL_BSP_MAX_QUEUE_SIZE", sdktrace.WithMaxQueueSize},
		{"OTEL_BSP_MAX_EXPORT_BATCH_SIZE", sdktrace.WithMaxExportBatchSize},
	}
	for _, v := range bsp {
		s := getenv(v.name)
		if s == "" {
			continue
		}
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 {
			bad(v.name, "must be a whole number of at least 1, not %q", s)
			continue
		}
		cfg.batch = append(cfg.batch, v.opt(n))
	}
	return cfg, errors.Join(errs...)
}

// signalVar reads OTEL_EXPORTER_OTLP_TRACES_<name>, or else OTEL_EXPORTER_OTLP_<name>: the
// specification lets the variable of one signal override the one of all.
func signalVar(getenv func(string) string, name string) string {
	return cmp.Or(getenv("OTEL_EXPORTER_OTLP_TRACES_"+name), getenv("OTEL_EXPORTER_OTLP_"+name))
}

// signalVarName names the variable that signalVar read, for an error about its value.
func signalVarName(getenv func(string) string, name string) string {
	if getenv("OTEL_EXPORTER_OTLP_TRACES_"+name) != "" {
		return "OTEL_EXPORTER_OTLP_TRACES_" + name
	}
	return "OTEL_EXPORTER_OTLP_" + name
}

// otlpEndpoint is the URL that spans are sent to. A signal's own endpoint is used as it is; the
// endpoint of all signals is a base, to which OTLP over HTTP adds the traces path.
func otlpEndpoint(getenv func(string) string, protocol string) string {
	if e := getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"); e != "" {
		return e
	}
	grpc := protocol == "grpc"
	base := getenv("OTEL_EXPORTER_OTLP_ENDPOINT")
	switch {
	case base == "" && grpc:
		return "http://localhost:4317"
	case base == "":
		base = "http://localhost:4318"
	case grpc:
		return base
	}
	return strings.TrimSuffix(base, "/") + "/v1/traces"
}

// endpointForLog is the endpoint without what a URL may hold of credentials or parameters.
func (cfg tracingConfig) endpointForLog() string {
	if !slices.Contains(cfg.exporters, "otlp") {
		return ""
	}
	u, err := url.Parse(cfg.endpoint)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host + u.Path
}

// newExporter returns the exporter that OTEL_TRACES_EXPORTER names.
func (cfg tracingConfig) newExporter(ctx context.Context, name string, console io.Writer) (sdktrace.SpanExporter, error) {
	if name == "console" {
		return stdouttrace.New(stdouttrace.WithWriter(console))
	}
	if cfg.protocol == "grpc" {
		opts := []otlptracegrpc.Option{otlptracegrpc.WithEndpointURL(cfg.endpoint), otlptracegrpc.WithTimeout(cfg.timeout)}
		if cfg.headers != nil {
			opts = append(opts, otlptracegrpc.WithHeaders(cfg.headers))
		}
		if cfg.compression == "gzip" {
			opts = append(opts, otlptracegrpc.WithCompressor("gzip"))
		}
		return otlptracegrpc.New(ctx, opts...)
	}
	opts := []otlptracehttp.Option{otlptracehttp.WithEndpointURL(cfg.endpoint), otlptracehttp.WithTimeout(cfg.timeout)}
	if cfg.protocol == "http/json" {
		opts = append(opts, otlptracehttp.WithEncoding(otlptracehttp.EncodingJSON))
	}
	if cfg.headers != nil {
		opts = append(opts, otlptracehttp.WithHeaders(cfg.headers))
	}
	if cfg.compression == "gzip" {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.GzipCompression))
	} else {
		opts = append(opts, otlptracehttp.WithCompression(otlptracehttp.NoCompression))
	}
	return otlptracehttp.New(ctx, opts...)
}

// readSampler reads OTEL_TRACES_SAMPLER and OTEL_TRACES_SAMPLER_ARG. The default, parentbased
// always_on, records every request that does not come with a caller's decision not to.
func readSampler(getenv func(string) string, bad func(name, format string, args ...any)) sdktrace.Sampler {
	ratio := 1.0
	if v := getenv("OTEL_TRACES_SAMPLER_ARG"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r < 0 || r > 1 {
			bad("OTEL_TRACES_SAMPLER_ARG", "must be a ratio from 0 to 1, not %q", v)
		} else {
			ratio = r
		}
	}
	switch v := getenv("OTEL_TRACES_SAMPLER"); v {
	case "always_on":
		return sdktrace.AlwaysSample()
	case "always_off":
		return sdktrace.NeverSample()
	case "traceidratio":
		return sdktrace.TraceIDRatioBased(ratio)
	case "parentbased_always_on", "":
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	case "parentbased_always_off":
		return sdktrace.ParentBased(sdktrace.NeverSample())
	case "parentbased_traceidratio":
		return sdktrace.ParentBased(sdktrace.TraceIDRatioBased(ratio))
	default:
		bad("OTEL_TRACES_SAMPLER", "must be always_on, always_off, traceidratio, parentbased_always_on, parentbased_always_off or parentbased_traceidratio, not %q", v)
		return sdktrace.ParentBased(sdktrace.AlwaysSample())
	}
}

// readPropagators reads OTEL_PROPAGATORS: by default W3C Trace Context and Baggage.
func readPropagators(getenv func(string) string, bad func(name, format string, args ...any)) propagation.TextMapPropagator {
	var props []propagation.TextMapPropagator
	for p := range strings.SplitSeq(cmp.Or(getenv("OTEL_PROPAGATORS"), "tracecontext,baggage"), ",") {
		switch p = strings.TrimSpace(p); p {
		case "tracecontext":
			props = append(props, propagation.TraceContext{})
		case "baggage":
			props = append(props, propagation.Baggage{})
		case "none", "":
		default:
			bad("OTEL_PROPAGATORS", "must be tracecontext, baggage or none, or a comma-separated list of them, not %q", p)
		}
	}
	return propagation.NewCompositeTextMapPropagator(props...)
}

// millisVar reads a duration in milliseconds, as OTEL_* timeouts are given.
func millisVar(bad func(name, format string, args ...any), name, v string, dst *time.Duration) {
	if v == "" {
		return
	}
	ms, err := strconv.Atoi(v)
	if err != nil || ms < 1 {
		bad(name, "must be a whole number of milliseconds of at least 1, not %q", v)
		return
	}
	*dst = time.Duration(ms) * time.Millisecond
}

// parseKeyValues parses the "key1=value1,key2=value2" lists of OTEL_EXPORTER_OTLP_HEADERS and
// OTEL_RESOURCE_ATTRIBUTES, whose values are URL-encoded.
func parseKeyValues(s string) (map[string]string, error) {
	kv := map[string]string{}
	for pair := range strings.SplitSeq(s, ",") {
		if strings.TrimSpace(pair) == "" {
			continue
		}
		k, v, ok := strings.Cut(pair, "=")
		k = strings.TrimSpace(k)
		if !ok || k == "" {
			return nil, errors.New("not key=value")
		}
		value, err := url.PathUnescape(strings.TrimSpace(v))
		if err != nil {
			return nil, err
		}
		kv[k] = value
	}
	return kv, nil
}
