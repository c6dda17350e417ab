// Package telemetry is what operators see of the service: one structured log line per request,
// request IDs, Prometheus metrics, and OpenTelemetry traces when OTEL_* variables ask for them.
// Every label value comes from a bounded set (route patterns, known methods, status codes, the
// schema's root fields, error codes), never from raw paths, user IDs or client-chosen names.
package telemetry

import (
	"context"
	"database/sql"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"go.opentelemetry.io/otel/propagation"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// Metrics are the service's Prometheus metrics, in a registry of their own.
type Metrics struct {
	registry      *prometheus.Registry
	httpRequests  *prometheus.CounterVec
	httpDuration  *prometheus.HistogramVec
	gqlOperations *prometheus.CounterVec
	gqlDuration   *prometheus.HistogramVec
}

// latencyBuckets suit requests that take from a fraction of a millisecond to seconds.
var latencyBuckets = []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10}

// NewMetrics returns the service's metrics, with Go runtime, process and connection pool
// statistics beside its own.
func NewMetrics(db *sql.DB) *Metrics {
	m := &Metrics{
		registry: prometheus.NewRegistry(),
		httpRequests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usergraph_http_requests_total",
			Help: "HTTP requests answered, by route pattern, method and status.",
		}, []string{"route", "method", "status"}),
		httpDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "usergraph_http_request_duration_seconds",
			Help:    "Time from a request's arrival to its answer, by route pattern, method and status.",
			Buckets: latencyBuckets,
		}, []string{"route", "method", "status"}),
		gqlOperations: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "usergraph_graphql_operations_total",
			Help: `GraphQL operations, by root field ("updateUser", or "multiple") and result code ("OK" or the first error's extensions.code).`,
		}, []string{"operation", "code"}),
		gqlDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "usergraph_graphql_operation_duration_seconds",
			Help:    "Time from a GraphQL request's arrival to its answer, by root field and result code.",
			Buckets: latencyBuckets,
		}, []string{"operation", "code"}),
	}
	m.registry.MustRegister(
		m.httpRequests, m.httpDuration, m.gqlOperations, m.gqlDuration,
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(db, "usergraph"),
	)
	return m
}

// Handler serves the metrics in Prometheus text format, or in OpenMetrics when the scraper asks
// for it: only OpenMetrics carries the exemplars that link a latency to a trace.
func (m *Metrics) Handler() http.Handler {
	return promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{Registry: m.registry, EnableOpenMetrics: true})
}

// StatusClientClosedRequest is the status Middleware logs and counts a request with when its
// client went away before the answer: nginx's 499, as no status of HTTP's own means it. Nobody
// receives it, and it is not a failure of the service, so it must not look like a 500 in the
// metrics.
const StatusClientClosedRequest = 499

// ClientGone reports whether the client of the request whose context is ctx went away: its
// context was cancelled, rather than past a deadline of the service's own, which is an outage.
// Whatever error a request then met came of that, and is no failure of the service.
func ClientGone(ctx context.Context) bool {
	return errors.Is(ctx.Err(), context.Canceled)
}

// RequestInfo is what the handlers of a request tell the log line and the metrics about it.
type RequestInfo struct {
	// ID is the request's ID: the caller's X-Request-ID if it is sane, otherwise a new one.
	ID string
	// Operation names the GraphQL operation by its root field, if the request carried one.
	Operation string
	// Code is the GraphQL result: "OK", or the first error's code.
	Code string
}

type infoKey struct{}

// InfoFrom returns the request's RequestInfo, or nil outside Middleware.
func InfoFrom(ctx context.Context) *RequestInfo {
	info, _ := ctx.Value(infoKey{}).(*RequestInfo)
	return info
}

// quietRoutes are the routes that probes and scrapers call every few seconds: logged at debug
// level, so that they do not drown the requests of users.
var quietRoutes = map[string]bool{"GET /healthz": true, "GET /readyz": true, "GET /metrics": true}

// knownMethods bounds the method label: a client may send any token as a method.
var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true,
	http.MethodPatch: true, http.MethodDelete: true, http.MethodOptions: true,
}

// Middleware gives each request an ID (echoed in X-Request-ID), and when it has been answered,
// writes its log line and counts it. It must wrap the ServeMux, whose route pattern it reports.
// The log line holds method, route, GraphQL operation and code, status, duration and request
// ID; never a token, a body or an address.
//
// In a traced request (inside Tracing.Handler) it also names the server span after the route
// pattern, which only the ServeMux knows, answers with the trace context in traceparent, and,
// when the trace is sampled, gives the duration histograms its trace ID as an exemplar.
func Middleware(logger *slog.Logger, metrics *Metrics) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			start := time.Now()
			// One allocation for both: this runs for every request.
			st := &requestState{
				info: RequestInfo{ID: requestID(r.Header.Get("X-Request-ID"))},
				rec:  statusRecorder{ResponseWriter: w, status: http.StatusOK},
			}
			info, rec := &st.info, &st.rec
			w.Header().Set("X-Request-ID", info.ID)
			span := trace.SpanFromContext(r.Context())
			sc := span.SpanContext()
			if sc.IsValid() {
				// As X-Request-ID is echoed: the caller learns which trace to look for.
				traceResponse.Inject(r.Context(), propagation.HeaderCarrier(w.Header()))
			}
			r = r.WithContext(context.WithValue(r.Context(), infoKey{}, info))
			next.ServeHTTP(rec, r)
			if ClientGone(r.Context()) {
				// Whatever the handler wrote, nobody read it: the request is the client's 499,
				// whichever route it took and whatever its handler made of the cancellation.
				rec.status = StatusClientClosedRequest
			}

			elapsed := time.Since(start)
			route := r.Pattern // set by the ServeMux on this very request
			if route == "" {
				route = "unmatched"
			}
			method := r.Method
			if !knownMethods[method] {
				method = "other"
			}
			status := strconv.Itoa(rec.status)
			if span.IsRecording() {
				nameSpan(span, r.Method, r.Pattern)
			}
			var exemplar prometheus.Labels
			if sc.IsSampled() {
				exemplar = prometheus.Labels{"trace_id": sc.TraceID().String()}
			}
			metrics.httpRequests.WithLabelValues(route, method, status).Inc()
			observe(metrics.httpDuration.WithLabelValues(route, method, status), elapsed.Seconds(), exemplar)
			if info.Operation != "" {
				metrics.gqlOperations.WithLabelValues(info.Operation, info.Code).Inc()
				observe(metrics.gqlDuration.WithLabelValues(info.Operation, info.Code), elapsed.Seconds(), exemplar)
			}

			level := slog.LevelInfo
			if quietRoutes[route] {
				level = slog.LevelDebug
			}
			if !logger.Enabled(r.Context(), level) {
				return
			}
			attrs := []slog.Attr{
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.Int("status", rec.status),
				slog.Float64("duration_ms", float64(elapsed.Microseconds())/1000),
			}
			if info.Operation != "" {
				attrs = append(attrs, slog.String("operation", info.Operation), slog.String("code", info.Code))
			}
			logger.LogAttrs(r.Context(), level, "request", attrs...)
		})
	}
}

// traceResponse writes the trace context into a response: W3C Trace Context alone, whatever
// OTEL_PROPAGATORS reads, so that no baggage a caller sent is echoed back.
var traceResponse propagation.TextMapPropagator = propagation.TraceContext{}

// nameSpan names a request's server span after its route, as OpenTelemetry's HTTP conventions do
// ("PUT /users/{id}"), and sets http.route: never the raw path, which would make a name per user.
// A request that matched no route keeps the name of its method alone.
func nameSpan(span trace.Span, method, pattern string) {
	_, path, found := strings.Cut(pattern, "/")
	if !found {
		return
	}
	path = "/" + path
	if !knownMethods[method] {
		method = "HTTP"
	}
	span.SetName(method + " " + path)
	span.SetAttributes(semconv.HTTPRoute(path))
}

// observe records v in o, with the exemplar if there is one.
func observe(o prometheus.Observer, v float64, exemplar prometheus.Labels) {
	if eo, ok := o.(prometheus.ExemplarObserver); ok && exemplar != nil {
		eo.ObserveWithExemplar(v, exemplar)
		return
	}
	o.Observe(v)
}

// requestID returns the caller's request ID if it is a sane one (1 to 64 characters of letters,
// digits and - _ . :), so that it can be followed across services, and a new one otherwise: a log
// line must not carry whatever a client chose to send.
func requestID(given string) string {
	if n := len(given); n >= 1 && n <= 64 {
		sane := true
		for i := 0; i < n && sane; i++ {
			c := given[i]
			sane = 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == ':'
		}
		if sane {
			return given
		}
	}
	// Unique, not secret: the runtime's generator, which costs no system call, as crypto/rand
	// does.
	var b [12]byte
	binary.LittleEndian.PutUint64(b[:8], rand.Uint64())
	binary.LittleEndian.PutUint32(b[8:], rand.Uint32())
	return hex.EncodeToString(b[:])
}

// requestState is what Middleware keeps for a request.
type requestState struct {
	info RequestInfo
	rec  statusRecorder
}

// statusRecorder remembers the status a handler wrote.
type statusRecorder struct {
	http.ResponseWriter
	status      int
	wroteHeader bool
}

func (r *statusRecorder) WriteHeader(status int) {
	if !r.wroteHeader {
		r.status, r.wroteHeader = status, true
	}
	r.ResponseWriter.WriteHeader(status)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	r.wroteHeader = true
	return r.ResponseWriter.Write(b)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// LogHandler adds the request ID of the context to every record it handles, so that a line
// logged deep in a request (an internal error, say) can be matched to the request's own line; and
// in a traced request, the trace and span IDs, so that the line can be found from the trace and
// the trace from the line.
type LogHandler struct{ slog.Handler }

// Handle implements slog.Handler.
func (h LogHandler) Handle(ctx context.Context, r slog.Record) error {
	if info := InfoFrom(ctx); info != nil {
		r.AddAttrs(slog.String("request_id", info.ID))
	}
	if sc := trace.SpanContextFromContext(ctx); sc.IsValid() {
		r.AddAttrs(slog.String("trace_id", sc.TraceID().String()), slog.String("span_id", sc.SpanID().String()))
	}
	return h.Handler.Handle(ctx, r)
}

// WithAttrs implements slog.Handler.
func (h LogHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return LogHandler{h.Handler.WithAttrs(attrs)}
}

// WithGroup implements slog.Handler.
func (h LogHandler) WithGroup(name string) slog.Handler {
	return LogHandler{h.Handler.WithGroup(name)}
}
