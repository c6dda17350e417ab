package main

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	commonpb "go.opentelemetry.io/proto/otlp/common/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
	"usergraph/models"
	"usergraph/telemetry"
)

// otlpReceiver is an OpenTelemetry collector's OTLP/HTTP traces endpoint, as much of it as the
// tests need: it decodes what it is sent and keeps it.
type otlpReceiver struct {
	URL string

	mu    sync.Mutex
	spans []*tracepb.Span
	// raw holds each request's body, and its JSON rendering, for a search of every byte sent.
	raw []string
	// resources holds the resource attributes each batch was sent with.
	resources [][]*commonpb.KeyValue
}

func newOTLPReceiver(t testing.TB) *otlpReceiver {
	t.Helper()
	rcv := &otlpReceiver{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost || r.URL.Path != "/v1/traces" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Content-Type") != "application/x-protobuf" {
			w.WriteHeader(http.StatusUnsupportedMediaType)
			return
		}
		var body io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" {
			gz, err := gzip.NewReader(r.Body)
			if err != nil {
				w.WriteHeader(http.StatusBadRequest)
				return
			}
			body = gz
		}
		raw, err := io.ReadAll(body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(raw, &req); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		asJSON, _ := protojson.Marshal(&req)
		rcv.mu.Lock()
		rcv.raw = append(rcv.raw, string(raw), string(asJSON))
		for _, rs := range req.ResourceSpans {
			rcv.resources = append(rcv.resources, rs.GetResource().GetAttributes())
			for _, ss := range rs.ScopeSpans {
				rcv.spans = append(rcv.spans, ss.Spans...)
			}
		}
		rcv.mu.Unlock()
		resp, _ := proto.Marshal(&coltracepb.ExportTraceServiceResponse{})
		w.Header().Set("Content-Type", "application/x-protobuf")
		w.Write(resp)
	}))
	t.Cleanup(srv.Close)
	rcv.URL = srv.URL
	return rcv
}

// received returns the spans received so far.
func (rcv *otlpReceiver) received() []*tracepb.Span {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return slices.Clone(rcv.spans)
}

// sent returns everything the receiver was sent, raw and as JSON.
func (rcv *otlpReceiver) sent() string {
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	return strings.Join(rcv.raw, "\n")
}

// waitForRoots waits until the spans that have no parent in their own trace have arrived for
// every one of traceIDs: a trace's root span ends last, so that its children have been sent by then.
func (rcv *otlpReceiver) waitForRoots(t *testing.T, traceIDs ...string) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		if slices.IndexFunc(traceIDs, func(id string) bool { return rootOf(rcv.received(), id) == nil }) < 0 {
			return
		}
	}
	t.Fatalf("the root spans of traces %v did not arrive within 10 s; received:\n%s", traceIDs, renderSpans(rcv.received()))
}

// rootOf returns the span of trace traceID whose parent is not in the trace: the server span of a
// request, whether or not the caller sent a trace context.
func rootOf(spans []*tracepb.Span, traceID string) *tracepb.Span {
	ids := map[string]bool{}
	for _, s := range spans {
		if hex.EncodeToString(s.TraceId) == traceID {
			ids[hex.EncodeToString(s.SpanId)] = true
		}
	}
	for _, s := range spans {
		if hex.EncodeToString(s.TraceId) == traceID && !ids[hex.EncodeToString(s.ParentSpanId)] {
			return s
		}
	}
	return nil
}

// childrenOf returns the spans whose parent is parent, in the order they started. Connecting and
// preparing, which happen or not depending on which connection of the pool a statement gets, are
// left out.
func childrenOf(spans []*tracepb.Span, parent *tracepb.Span) []*tracepb.Span {
	var out []*tracepb.Span
	for _, s := range spans {
		if bytes.Equal(s.ParentSpanId, parent.SpanId) && bytes.Equal(s.TraceId, parent.TraceId) && !strings.HasPrefix(s.Name, "sql.") {
			out = append(out, s)
		}
	}
	slices.SortFunc(out, func(a, b *tracepb.Span) int { return int(a.StartTimeUnixNano - b.StartTimeUnixNano) })
	return out
}

// attrs returns a span's attributes as Go values.
func attrs(kvs []*commonpb.KeyValue) map[string]any {
	out := map[string]any{}
	for _, kv := range kvs {
		switch v := kv.Value.Value.(type) {
		case *commonpb.AnyValue_StringValue:
			out[kv.Key] = v.StringValue
		case *commonpb.AnyValue_IntValue:
			out[kv.Key] = v.IntValue
		case *commonpb.AnyValue_BoolValue:
			out[kv.Key] = v.BoolValue
		case *commonpb.AnyValue_DoubleValue:
			out[kv.Key] = v.DoubleValue
		default:
			out[kv.Key] = kv.Value.String()
		}
	}
	return out
}

// renderSpans draws the spans as trees: each span's name, kind and duration, its children
// indented beneath it.
func renderSpans(spans []*tracepb.Span) string {
	var b strings.Builder
	var draw func(s *tracepb.Span, depth int)
	draw = func(s *tracepb.Span, depth int) {
		d := time.Duration(s.EndTimeUnixNano - s.StartTimeUnixNano)
		fmt.Fprintf(&b, "%s%s  [%s] %s\n", strings.Repeat("  ", depth), s.Name, strings.TrimPrefix(s.Kind.String(), "SPAN_KIND_"), d.Round(time.Microsecond))
		for _, c := range spans {
			if bytes.Equal(c.ParentSpanId, s.SpanId) && bytes.Equal(c.TraceId, s.TraceId) {
				draw(c, depth+1)
			}
		}
	}
	seen := map[string]bool{}
	for _, s := range spans {
		id := hex.EncodeToString(s.TraceId)
		if !seen[id] {
			seen[id] = true
			if root := rootOf(spans, id); root != nil {
				fmt.Fprintf(&b, "trace %s\n", id)
				draw(root, 1)
			}
		}
	}
	return b.String()
}

// wantSpan is a span a test expects: its name, kind, the attributes it must have (among
// others), and its children, in the order they start.
type wantSpan struct {
	name     string
	kind     tracepb.Span_SpanKind
	attrs    map[string]any
	prefixes map[string]string // attributes that must start with these
	children []wantSpan
}

// checkTree reports how the tree under got differs from want.
func checkTree(t *testing.T, spans []*tracepb.Span, got *tracepb.Span, want wantSpan) {
	t.Helper()
	if got.Name != want.name || got.Kind != want.kind {
		t.Errorf("span: got %q %s, want %q %s", got.Name, got.Kind, want.name, want.kind)
	}
	a := attrs(got.Attributes)
	for k, v := range want.attrs {
		if a[k] != v {
			t.Errorf("span %q: %s = %v, want %v", got.Name, k, a[k], v)
		}
	}
	for k, p := range want.prefixes {
		if s, _ := a[k].(string); !strings.HasPrefix(s, p) {
			t.Errorf("span %q: %s = %q, want it to start with %q", got.Name, k, s, p)
		}
	}
	children := childrenOf(spans, got)
	if len(children) != len(want.children) {
		var names []string
		for _, c := range children {
			names = append(names, c.Name)
		}
		t.Errorf("span %q: got children %q, want %d", got.Name, names, len(want.children))
		return
	}
	for i, c := range children {
		checkTree(t, spans, c, want.children[i])
	}
}

// send makes one request and returns the response, whose body it has read.
func send(t *testing.T, method, url, bearer, body string, header map[string]string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp, string(raw)
}

var traceparentPattern = regexp.MustCompile(`^00-([0-9a-f]{32})-([0-9a-f]{16})-0[01]$`)

// traceOf returns the trace and span IDs of the traceparent a response came with.
func traceOf(t *testing.T, resp *http.Response) (traceID, spanID string) {
	t.Helper()
	m := traceparentPattern.FindStringSubmatch(resp.Header.Get("Traceparent"))
	if m == nil {
		t.Fatalf("the response's traceparent is %q, want a W3C trace context", resp.Header.Get("Traceparent"))
	}
	return m[1], m[2]
}

// requestLines returns the log's request lines, decoded.
func requestLines(t *testing.T, log string) []map[string]any {
	t.Helper()
	var lines []map[string]any
	scanner := bufio.NewScanner(strings.NewReader(log))
	for scanner.Scan() {
		var line map[string]any
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			t.Fatalf("a log line is not JSON: %s", scanner.Text())
		}
		if line["msg"] == "request" {
			lines = append(lines, line)
		}
	}
	return lines
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the service sends its traces over OTLP: each request a
// server span named by its route, each GraphQL operation a span beneath it, each statement a span
// beneath that, with the statement's text and never its values; and it continues a caller's
// trace, names the trace in its log lines, and links its latency histograms to it.
func TestTraces(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		dbSystem := "sqlite"
		if strings.HasPrefix(databaseURL, "mysql:") {
			dbSystem = "mysql"
		}
		rcv := newOTLPReceiver(t)
		r := startRun(t, map[string]string{
			"DATABASE_URL":                databaseURL,
			"JWT_SECRET":                  testSecret,
			"OTEL_EXPORTER_OTLP_ENDPOINT": rcv.URL,
			"OTEL_SERVICE_NAME":           "usergraph-under-test",
			"OTEL_BSP_SCHEDULE_DELAY":     "20",
		})
		c := r.adminClient(t)
		u := c.CreateUser(t, apitest.Uniq("traced"), apitest.Uniq("traced")+"@example.com")
		own := token(t, u.ID)
		other := c.CreateUser(t, apitest.Uniq("taken"), apitest.Uniq("taken")+"@example.com")

		// Mixed case, so that the keys stored beside them (lower-cased) are values of their own
		// that must not leak either.
		newName := "Traced_" + strings.ToUpper(apitest.Uniq("n"))
		newEmail := "Secret.Person." + strings.ToUpper(apitest.Uniq("e")) + "@Example.COM"

		put, body := send(t, http.MethodPut, r.URL+"/users/"+u.ID, own, `{"username": "`+newName+`"}`, nil)
		if put.StatusCode != http.StatusOK {
			t.Fatalf("PUT: %d %s", put.StatusCode, body)
		}
		putTrace, _ := traceOf(t, put)

		conflict, body := send(t, http.MethodPut, r.URL+"/users/"+u.ID, own, `{"username": "`+other.Username+`"}`, nil)
		if conflict.StatusCode != http.StatusConflict {
			t.Fatalf("PUT of a taken name: %d %s", conflict.StatusCode, body)
		}
		conflictTrace, _ := traceOf(t, conflict)

		mutation, body := send(t, http.MethodPost, r.URL+"/graphql", own, mustJSON(map[string]any{
			"operationName": "Rename",
			"query":         `mutation Rename($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { id email } }`,
			"variables":     map[string]any{"id": u.ID, "in": map[string]any{"email": newEmail}},
		}), nil)
		if mutation.StatusCode != http.StatusOK || strings.Contains(body, `"errors"`) {
			t.Fatalf("mutation: %d %s", mutation.StatusCode, body)
		}
		mutationTrace, _ := traceOf(t, mutation)

		metricsResp, metrics := send(t, http.MethodGet, r.URL+"/metrics", "", "", map[string]string{"Accept": "application/openmetrics-text; version=1.0.0"})

		callerTrace, callerSpan := "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
		propagated, body := send(t, http.MethodGet, r.URL+"/users/"+u.ID, own, "", map[string]string{
			"Traceparent": "00-" + callerTrace + "-" + callerSpan + "-01",
			"Tracestate":  "vendor=opaque",
		})
		if propagated.StatusCode != http.StatusOK {
			t.Fatalf("GET: %d %s", propagated.StatusCode, body)
		}
		gotCallerTrace, _ := traceOf(t, propagated)

		rcv.waitForRoots(t, putTrace, conflictTrace, mutationTrace, callerTrace)
		if err := r.stop(t); err != nil {
			t.Fatalf("run returned %v", err)
		}
		spans := rcv.received()
		t.Logf("spans received:\n%s", renderSpans(spans))

		statement := func(name, text string) wantSpan {
			op, _, _ := strings.Cut(name, " ")
			return wantSpan{
				name: name, kind: tracepb.Span_SPAN_KIND_CLIENT,
				attrs:    map[string]any{"db.system.name": dbSystem, "db.operation.name": op, "db.collection.name": "users"},
				prefixes: map[string]string{"db.query.text": text},
			}
		}
		// The database's own code for a duplicate key; its message would quote the name.
		duplicateKey := map[string]string{"sqlite": "2067", "mysql": "1062"}[dbSystem]
		failedUpdate := statement("UPDATE users", "UPDATE users SET username = ?, username_key = ?, version")
		failedUpdate.attrs["db.response.status_code"] = duplicateKey
		selectUser := statement("SELECT users", "SELECT id, username, email, version, created_at, updated_at FROM users WHERE id = ?")

		t.Run("SpanTrees", func(t *testing.T) {
			cases := []struct {
				name    string
				traceID string
				want    wantSpan
			}{
				{"PUTIsAServerSpanOverItsUpdateAndItsRead", putTrace, wantSpan{
					name: "PUT /users/{id}", kind: tracepb.Span_SPAN_KIND_SERVER,
					attrs: map[string]any{"http.route": "/users/{id}", "http.request.method": "PUT", "http.response.status_code": int64(200)},
					children: []wantSpan{
						statement("UPDATE users", "UPDATE users SET username = ?, username_key = ?, version = version + 1, updated_at = ? WHERE id = ?"),
						selectUser,
					},
				}},
				{"ConflictIsTheUpdateRefusedByItsCodeThenTheLookForTheHolder", conflictTrace, wantSpan{
					name: "PUT /users/{id}", kind: tracepb.Span_SPAN_KIND_SERVER,
					attrs:    map[string]any{"http.route": "/users/{id}", "http.response.status_code": int64(409)},
					children: []wantSpan{failedUpdate, statement("SELECT users", "SELECT `username_key`,`email_key` FROM `users` WHERE")},
				}},
				{"MutationIsAServerSpanOverItsOperationOverItsUpdateAndItsRead", mutationTrace, wantSpan{
					name: "POST /graphql", kind: tracepb.Span_SPAN_KIND_SERVER,
					attrs: map[string]any{"http.route": "/graphql", "http.request.method": "POST", "http.response.status_code": int64(200)},
					children: []wantSpan{{
						name: "mutation", kind: tracepb.Span_SPAN_KIND_INTERNAL,
						attrs: map[string]any{"graphql.operation.type": "mutation", "graphql.operation.name": "Rename"},
						children: []wantSpan{
							statement("UPDATE users", "UPDATE users SET email = ?, email_key = ?, version = version + 1, updated_at = ? WHERE id = ?"),
							selectUser,
						},
					}},
				}},
				{"CallersRequestIsAServerSpanOverItsRead", callerTrace, wantSpan{
					name: "GET /users/{id}", kind: tracepb.Span_SPAN_KIND_SERVER,
					attrs:    map[string]any{"http.route": "/users/{id}", "http.response.status_code": int64(200)},
					children: []wantSpan{selectUser},
				}},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					root := rootOf(spans, tc.traceID)
					if root == nil {
						t.Fatalf("no span of trace %s", tc.traceID)
					}
					checkTree(t, spans, root, tc.want)
				})
			}
		})

		t.Run("ProbesAndScrapesAreNotTraced", func(t *testing.T) {
			for _, s := range spans {
				if route, _ := attrs(s.Attributes)["http.route"].(string); route == "/healthz" || route == "/metrics" {
					t.Errorf("got a span %q", s.Name)
				}
			}
		})

		t.Run("CallersTraceContextIsContinued", func(t *testing.T) {
			root := rootOf(spans, callerTrace)
			if root == nil {
				t.Fatal("no span continues the caller's trace")
			}
			if got := hex.EncodeToString(root.ParentSpanId); got != callerSpan {
				t.Errorf("parent span: got %s, want the caller's %s", got, callerSpan)
			}
			if root.TraceState != "vendor=opaque" {
				t.Errorf("tracestate: got %q, want the caller's", root.TraceState)
			}
			if gotCallerTrace != callerTrace {
				t.Errorf("response traceparent names trace %s, want the caller's %s", gotCallerTrace, callerTrace)
			}
		})

		t.Run("ResourceNamesTheService", func(t *testing.T) {
			rcv.mu.Lock()
			defer rcv.mu.Unlock()
			for _, res := range rcv.resources {
				if got := attrs(res)["service.name"]; got != "usergraph-under-test" {
					t.Errorf("service.name: got %v, want OTEL_SERVICE_NAME's", got)
				}
			}
		})

		t.Run("NoCredentialNorValueIsExported", func(t *testing.T) {
			sent := rcv.sent()
			lower := strings.ToLower(sent)
			for _, secret := range []string{own, c.AdminToken, testSecret, newName, newEmail, u.Username, u.Email, other.Username, other.Email} {
				if strings.Contains(sent, secret) || strings.Contains(lower, strings.ToLower(secret)) {
					t.Errorf("the exported spans hold %.40q", secret)
				}
			}
			for _, s := range spans {
				for k := range attrs(s.Attributes) {
					if strings.HasPrefix(k, "db.query.parameter") || k == "graphql.document" {
						t.Errorf("span %q has %s", s.Name, k)
					}
				}
			}
		})

		logged := r.stderr.String()
		t.Run("RequestLinesNameTheirTraceAndServerSpan", func(t *testing.T) {
			cases := []struct {
				name, route, traceID string
			}{
				{"PUT", "PUT /users/{id}", putTrace},
				{"Mutation", "/graphql", mutationTrace},
				{"CallersTrace", "GET /users/{id}", callerTrace},
			}
			lines := requestLines(t, logged)
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					root := rootOf(spans, tc.traceID)
					if root == nil {
						t.Fatal("no server span")
					}
					want := hex.EncodeToString(root.SpanId)
					for _, l := range lines {
						if l["route"] == tc.route && l["trace_id"] == tc.traceID {
							if l["span_id"] != want {
								t.Errorf("span_id: got %v, want the server span's %s", l["span_id"], want)
							}
							return
						}
					}
					t.Errorf("no %s line names trace %s:\n%s", tc.route, tc.traceID, logged)
				})
			}
		})

		t.Run("DurationsCarryTheirTraceAsExemplar", func(t *testing.T) {
			if ct := metricsResp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/openmetrics-text") {
				t.Errorf("/metrics answered %q to a scraper asking for OpenMetrics", ct)
			}
			cases := []struct {
				name, series, traceID string
			}{
				{"HTTPRequest", `usergraph_http_request_duration_seconds_bucket{method="PUT",route="PUT /users/{id}",status="200",`, putTrace},
				{"GraphQLOperation", `usergraph_graphql_operation_duration_seconds_bucket{code="OK",operation="updateUser",`, mutationTrace},
			}
			for _, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					want := `# {trace_id="` + tc.traceID + `"}`
					for line := range strings.SplitSeq(metrics, "\n") {
						if strings.HasPrefix(line, tc.series) && strings.Contains(line, want) {
							return
						}
					}
					t.Errorf("no %s... line with exemplar %s:\n%s", tc.series, want, metrics)
				})
			}
		})
	})
}

// Without OTEL_* variables that name an exporter or an endpoint, or with them switched off, there
// is no tracing at all: nothing is sent, responses carry no trace context, log lines no trace ID
// and histograms no exemplar.
func TestNoTracesUnlessAsked(t *testing.T) {
	cases := []struct {
		name string
		otel func(endpoint string) map[string]string
	}{
		{"NoVariables", func(string) map[string]string { return nil }},
		{"OnlyServiceName", func(string) map[string]string { return map[string]string{"OTEL_SERVICE_NAME": "usergraph"} }},
		{"SDKDisabled", func(e string) map[string]string {
			return map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": e}
		}},
		{"ExporterNone", func(e string) map[string]string {
			return map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": e}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rcv := newOTLPReceiver(t)
			env := map[string]string{"DATABASE_URL": dbtest.SQLiteURL(t), "JWT_SECRET": testSecret, "OTEL_BSP_SCHEDULE_DELAY": "20"}
			for k, v := range tc.otel(rcv.URL) {
				env[k] = v
			}
			r := startRun(t, env)
			c := r.adminClient(t)
			u := c.CreateUser(t, apitest.Uniq("untraced"), apitest.Uniq("untraced")+"@example.com")
			resp, body := send(t, http.MethodPut, r.URL+"/users/"+u.ID, token(t, u.ID), `{"username": "`+apitest.Uniq("renamed")+`"}`, nil)
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("PUT: %d %s", resp.StatusCode, body)
			}
			_, metrics := send(t, http.MethodGet, r.URL+"/metrics", "", "", map[string]string{"Accept": "application/openmetrics-text; version=1.0.0"})
			if err := r.stop(t); err != nil {
				t.Fatalf("run returned %v", err)
			}

			if got := resp.Header.Get("Traceparent"); got != "" {
				t.Errorf("the response has traceparent %q", got)
			}
			if got := rcv.received(); len(got) > 0 {
				t.Errorf("got %d spans exported, want none:\n%s", len(got), renderSpans(got))
			}
			lines := requestLines(t, r.stderr.String())
			if len(lines) == 0 {
				t.Fatal("no request lines")
			}
			for _, l := range lines {
				if _, ok := l["trace_id"]; ok {
					t.Errorf("a log line has a trace_id: %v", l)
				}
			}
			if strings.Contains(metrics, "trace_id") {
				t.Error("/metrics has exemplars")
			}
		})
	}
}

// A tracing variable the service cannot honour stops it at start-up, as its own variables do,
// with a line that names the variable.
func TestRunRefusesBadTracingVariables(t *testing.T) {
	env := map[string]string{
		"DATABASE_URL":                dbtest.SQLiteURL(t),
		"JWT_SECRET":                  testSecret,
		"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318",
		"OTEL_TRACES_SAMPLER":         "sometimes",
		"OTEL_PROPAGATORS":            "b3",
	}
	err := run(context.Background(), []string{"usergraph"}, func(k string) string { return env[k] }, io.Discard, io.Discard)
	if err == nil {
		t.Fatal("run started")
	}
	for _, want := range []string{"OTEL_TRACES_SAMPLER: ", "OTEL_PROPAGATORS: "} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
}

// A collector that cannot be reached costs the service its traces, never a request: the exporter's
// failures are warnings in the JSON log, and the service still stops cleanly.
func TestUnreachableCollectorFailsNoRequest(t *testing.T) {
	dead := httptest.NewServer(http.NotFoundHandler())
	dead.Close()
	r := startRun(t, map[string]string{
		"DATABASE_URL":                dbtest.SQLiteURL(t),
		"JWT_SECRET":                  testSecret,
		"OTEL_EXPORTER_OTLP_ENDPOINT": dead.URL,
		"OTEL_EXPORTER_OTLP_TIMEOUT":  "200",
		"OTEL_BSP_SCHEDULE_DELAY":     "20",
	})
	c := r.adminClient(t)
	u := c.CreateUser(t, apitest.Uniq("unexported"), apitest.Uniq("unexported")+"@example.com")
	for range 3 {
		resp, body := send(t, http.MethodPut, r.URL+"/users/"+u.ID, token(t, u.ID), `{"username": "`+apitest.Uniq("renamed")+`"}`, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("PUT: %d %s", resp.StatusCode, body)
		}
	}
	if err := r.stop(t); err != nil {
		t.Fatalf("run returned %v", err)
	}
	var warned bool
	for line := range strings.SplitSeq(strings.TrimSpace(r.stderr.String()), "\n") {
		var l map[string]any
		if err := json.Unmarshal([]byte(line), &l); err != nil {
			t.Fatalf("a line of stderr is not JSON: %s", line)
		}
		if l["level"] == "WARN" && strings.HasPrefix(l["msg"].(string), "tracing: ") {
			warned = true
		}
	}
	if !warned {
		t.Errorf("no warning that spans were not exported:\n%s", r.stderr.String())
	}
}

// BenchmarkTracing measures what tracing costs an update: PUT /users/{id} and the updateUser
// mutation through NewServer, as BenchmarkUpdateUser drives them, with tracing off (no OTEL_*
// variable) and on (every request sampled, its spans exported over OTLP/HTTP to a collector in
// this process that reads and drops them; and instrumented but sampling none). Run with
//
//	go test -run '^$' -bench Tracing -benchmem .
//
// The ratio of On to Off, per edge, is what tracing adds to a request.
func BenchmarkTracing(b *testing.B) {
	urls := map[string]func() string{"sqlite": func() string { return dbtest.SQLiteURL(b) }}
	if dbtest.MySQLConfigured(b) {
		urls["mysql"] = func() string { return dbtest.MySQLURL(b) }
	}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/x-protobuf")
	}))
	b.Cleanup(sink.Close)
	for _, db := range []string{"sqlite", "mysql"} {
		newURL, ok := urls[db]
		if !ok {
			continue
		}
		b.Run(db, func(b *testing.B) {
			for _, mode := range []struct {
				name string
				env  map[string]string
			}{
				{"Off", nil},
				{"On", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL, "OTEL_TRACES_SAMPLER": "always_on"}},
				// Instrumented, but no request sampled: what tracing costs the requests that a
				// sampling ratio leaves out.
				{"OnUnsampled", map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": sink.URL, "OTEL_TRACES_SAMPLER": "always_off"}},
			} {
				b.Run(mode.name, func(b *testing.B) { benchmarkTracing(b, newURL(), mode.env) })
			}
		})
	}
}

func benchmarkTracing(b *testing.B, databaseURL string, env map[string]string) {
	logger := newLogger(io.Discard, slog.LevelInfo)
	tracing, err := telemetry.StartTracing(context.Background(), func(k string) string { return env[k] }, io.Discard, logger)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { tracing.Shutdown(context.Background()) })
	cfg, err := database.ParseURL(databaseURL)
	if err != nil {
		b.Fatal(err)
	}
	cfg.TracerProvider = tracing.TracerProvider()
	db, err := database.Open(context.Background(), cfg)
	if err != nil {
		b.Fatal(err)
	}
	sqlDB, _ := db.DB()
	b.Cleanup(func() { sqlDB.Close() })
	verifier, _ := auth.NewVerifier(context.Background(), testAuth)
	users := models.NewUserService(database.NewUserStore(db))
	handler := NewServer(deps{
		Logger:         logger,
		Users:          users,
		Verifier:       verifier,
		DB:             sqlDB,
		Metrics:        telemetry.NewMetrics(sqlDB),
		GraphQL:        graph.DefaultLimits,
		RequestTimeout: 10 * time.Second,
		Tracing:        tracing,
	})

	benchmarkEdges(b, handler, users)
}
