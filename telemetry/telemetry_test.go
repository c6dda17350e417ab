package telemetry_test

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"regexp"
	"slices"
	"strings"
	"testing"

	"usergraph/internal/apitest"
	"usergraph/internal/authtest"
	"usergraph/telemetry"
)

// idleConnector stands in for the database: the metrics read the pool's statistics, which no
// connection is needed for.
type idleConnector struct{}

func (idleConnector) Connect(context.Context) (driver.Conn, error) {
	return nil, errors.New("these tests have no database")
}

func (idleConnector) Driver() driver.Driver { return nil }

// service is telemetry's Middleware around a ServeMux, as the service's NewServer builds it, in
// front of handlers that do to the RequestInfo and the logger what the graph and rest handlers do.
type service struct {
	handler http.Handler
	metrics *telemetry.Metrics
	log     *apitest.SyncBuffer
}

// maxOpenConns is the pool size the metrics must report.
const maxOpenConns = 4

func newService(t *testing.T, level slog.Level) *service {
	t.Helper()
	db := sql.OpenDB(idleConnector{})
	db.SetMaxOpenConns(maxOpenConns)
	t.Cleanup(func() { db.Close() })
	logs := &apitest.SyncBuffer{}
	logger := slog.New(telemetry.LogHandler{Handler: slog.NewJSONHandler(logs, &slog.HandlerOptions{Level: level})})
	metrics := telemetry.NewMetrics(db)

	mux := http.NewServeMux()
	mux.HandleFunc("PUT /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		w.Write([]byte(`{"id": "42"}`))
	})
	mux.HandleFunc("/users/{id}", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", "GET, HEAD, PUT")
		w.WriteHeader(http.StatusMethodNotAllowed)
	})
	// A refused updateUser, as the graph package reports it: by its root field and error code.
	mux.HandleFunc("/graphql", func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		if info := telemetry.InfoFrom(r.Context()); info != nil {
			info.Operation, info.Code = "updateUser", "FORBIDDEN"
		}
		w.Write([]byte(`{"errors": [{"message": "forbidden", "extensions": {"code": "FORBIDDEN"}}]}`))
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) { w.Write([]byte("ready\n")) })
	// An internal error, logged where it happens, as the rest package logs one.
	mux.HandleFunc("GET /broken", func(w http.ResponseWriter, r *http.Request) {
		logger.ErrorContext(r.Context(), "rest: internal error", "err", "disk full")
		w.WriteHeader(http.StatusInternalServerError)
	})
	// A handler whose database call fails once its client has gone, as the edges' would.
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) {
		if r.Context().Err() != nil {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.Write([]byte(`{"id": "42"}`))
	})
	return &service{handler: telemetry.Middleware(logger, metrics)(mux), metrics: metrics, log: logs}
}

// request is what a client sends.
type request struct {
	method, path string
	header       map[string]string
	body         string
}

func (s *service) do(req request) *http.Response {
	r := httptest.NewRequest(req.method, req.path, strings.NewReader(req.body))
	for k, v := range req.header {
		r.Header.Set(k, v)
	}
	w := httptest.NewRecorder()
	s.handler.ServeHTTP(w, r)
	return w.Result()
}

// scrape returns the metrics as Prometheus reads them.
func (s *service) scrape(t *testing.T) string {
	t.Helper()
	w := httptest.NewRecorder()
	s.metrics.Handler().ServeHTTP(w, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	if w.Code != http.StatusOK {
		t.Fatalf("/metrics answered %d", w.Code)
	}
	return w.Body.String()
}

// lines returns the log's lines, each decoded from JSON.
func (s *service) lines(t *testing.T) []map[string]any {
	t.Helper()
	var lines []map[string]any
	scanner := bufio.NewScanner(strings.NewReader(s.log.String()))
	for scanner.Scan() {
		var line map[string]any
		if err := json.Unmarshal(scanner.Bytes(), &line); err != nil {
			t.Fatalf("a log line is not JSON: %s", scanner.Text())
		}
		lines = append(lines, line)
	}
	return lines
}

var generatedID = regexp.MustCompile(`^[0-9a-f]{24}$`)

// A request ID lets an operator follow a request across services: a sane one from the caller is
// kept, anything else is replaced, and the response and the log line name the same ID.
func TestRequestIDs(t *testing.T) {
	cases := []struct {
		name     string
		sent     string
		wantEcho bool // the sent ID is kept; otherwise a new one replaces it
	}{
		{"SaneIDIsEchoed", "trace-abc.123", true},
		{"MissingIDIsGenerated", "", false},
		{"InsaneIDIsReplaced", "bad id with spaces\u00e9", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, slog.LevelInfo)
			header := map[string]string{}
			if tc.sent != "" {
				header["X-Request-ID"] = tc.sent
			}
			got := s.do(request{method: http.MethodPut, path: "/users/42", header: header, body: `{}`}).Header.Get("X-Request-ID")
			if tc.wantEcho && got != tc.sent {
				t.Errorf("X-Request-ID: got %q, want %q", got, tc.sent)
			}
			if !tc.wantEcho && !generatedID.MatchString(got) {
				t.Errorf("X-Request-ID: got %q, want 24 new hex digits", got)
			}
			lines := s.lines(t)
			if len(lines) != 1 || lines[0]["request_id"] != got {
				t.Errorf("log: got %v, want one line with request_id %q", lines, got)
			}
		})
	}
}

// Every label takes its value from a bounded set: route patterns, known methods, status codes,
// the operations and codes the handlers report. Paths, IDs and client-chosen names never become
// labels, or each would make a new time series.
func TestMetricLabels(t *testing.T) {
	cases := []struct {
		name   string
		req    request
		want   []string // lines, or the start of lines, /metrics must hold
		absent []string
	}{
		{
			"RouteIsThePatternNotThePath",
			request{method: http.MethodPut, path: "/users/42", body: `{}`},
			[]string{
				`usergraph_http_requests_total{method="PUT",route="PUT /users/{id}",status="200"} 1`,
				`usergraph_http_request_duration_seconds_count{method="PUT",route="PUT /users/{id}",status="200"} 1`,
			},
			[]string{"/users/42"},
		},
		{
			"UnmatchedPathIsOneRoute",
			request{method: http.MethodGet, path: "/no/such/path/42"},
			[]string{`usergraph_http_requests_total{method="GET",route="unmatched",status="404"} 1`},
			[]string{"/no/such/path"},
		},
		{
			"UnknownMethodIsOther",
			request{method: "BREW", path: "/users/42"},
			[]string{`usergraph_http_requests_total{method="other",route="/users/{id}",status="405"} 1`},
			[]string{"BREW"},
		},
		{
			"GraphQLOperationIsCountedByRootFieldAndCode",
			request{method: http.MethodPost, path: "/graphql", body: `{"operationName": "Rename42", "query": "mutation Rename42 { updateUser(id: \"42\", input: {}) { id } }"}`},
			[]string{
				`usergraph_http_requests_total{method="POST",route="/graphql",status="200"} 1`,
				`usergraph_graphql_operations_total{code="FORBIDDEN",operation="updateUser"} 1`,
				`usergraph_graphql_operation_duration_seconds_count{code="FORBIDDEN",operation="updateUser"} 1`,
			},
			[]string{"Rename42"},
		},
		{
			"RequestWithoutAnOperationCountsNoGraphQLOperation",
			request{method: http.MethodPut, path: "/users/42", body: `{}`},
			nil,
			[]string{`usergraph_graphql_operations_total{`, `usergraph_graphql_operation_duration_seconds_count{`},
		},
		{
			"RequestIDIsNoLabel",
			request{method: http.MethodPut, path: "/users/42", header: map[string]string{"X-Request-ID": "trace-abc.123"}, body: `{}`},
			nil,
			[]string{"trace-abc"},
		},
		{
			"RuntimeAndPoolStatisticsAreExported",
			request{method: http.MethodGet, path: "/readyz"},
			[]string{`go_goroutines `, `go_sql_max_open_connections{db_name="usergraph"} 4`},
			nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, slog.LevelInfo)
			s.do(tc.req)
			metrics := s.scrape(t)
			for _, want := range tc.want {
				if !strings.Contains(metrics, "\n"+want) {
					t.Errorf("/metrics lacks %s", want)
				}
			}
			for _, leak := range tc.absent {
				if strings.Contains(metrics, leak) {
					t.Errorf("/metrics holds %q", leak)
				}
			}
		})
	}
}

// varies stands for a log field whose value differs from run to run: only its presence is
// asserted.
type varies struct{}

// A request is logged in one JSON line, at info level (debug for the probes that come every few
// seconds), with what an operator needs and nothing a client would not want kept: never a token,
// never a body. A line logged while serving a request names the request's ID.
func TestRequestLog(t *testing.T) {
	token := authtest.Token(t, "7", "admin")
	requestLine := func(fields map[string]any) map[string]any {
		line := map[string]any{"time": varies{}, "level": "INFO", "msg": "request", "duration_ms": varies{}, "request_id": varies{}}
		maps.Copy(line, fields)
		return line
	}
	cases := []struct {
		name   string
		level  slog.Level
		req    request
		want   []map[string]any
		absent []string
	}{
		{
			"OneLinePerRequestWithItsFields",
			slog.LevelInfo,
			request{method: http.MethodPut, path: "/users/42", header: map[string]string{"X-Request-ID": "trace-abc.123"}, body: `{}`},
			[]map[string]any{requestLine(map[string]any{"method": "PUT", "route": "PUT /users/{id}", "status": 200.0, "request_id": "trace-abc.123"})},
			nil,
		},
		{
			"GraphQLLineNamesOperationAndCode",
			slog.LevelInfo,
			request{method: http.MethodPost, path: "/graphql", body: `{"query": "mutation { updateUser(id: \"42\", input: {}) { id } }"}`},
			[]map[string]any{requestLine(map[string]any{"method": "POST", "route": "/graphql", "status": 200.0, "operation": "updateUser", "code": "FORBIDDEN"})},
			nil,
		},
		{
			"NeverTheTokenNorTheBody",
			slog.LevelInfo,
			request{
				method: http.MethodPut, path: "/users/42",
				header: map[string]string{"Authorization": "Bearer " + token, "Content-Type": "application/json"},
				body:   `{"username": "metered", "email": "private.person@example.com"}`,
			},
			[]map[string]any{requestLine(map[string]any{"method": "PUT", "route": "PUT /users/{id}", "status": 200.0})},
			[]string{token, "metered", "private.person@example.com", authtest.Secret},
		},
		{
			"LinesLoggedWhileServingNameTheRequest",
			slog.LevelInfo,
			request{method: http.MethodGet, path: "/broken", header: map[string]string{"X-Request-ID": "trace-xyz"}},
			[]map[string]any{
				{"time": varies{}, "level": "ERROR", "msg": "rest: internal error", "err": "disk full", "request_id": "trace-xyz"},
				requestLine(map[string]any{"method": "GET", "route": "GET /broken", "status": 500.0, "request_id": "trace-xyz"}),
			},
			nil,
		},
		{
			"ProbesAreLoggedAtDebug",
			slog.LevelDebug,
			request{method: http.MethodGet, path: "/readyz"},
			[]map[string]any{requestLine(map[string]any{"level": "DEBUG", "method": "GET", "route": "GET /readyz", "status": 200.0})},
			nil,
		},
		{
			"ProbesAreSilentAtInfo",
			slog.LevelInfo,
			request{method: http.MethodGet, path: "/readyz"},
			nil,
			nil,
		},
		{
			"RequestsAreSilentAtWarn",
			slog.LevelWarn,
			request{method: http.MethodPut, path: "/users/42", body: `{}`},
			nil,
			nil,
		},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s := newService(t, tc.level)
			s.do(tc.req)
			got := s.lines(t)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d lines, want %d:\n%s", len(got), len(tc.want), s.log.String())
			}
			for i, want := range tc.want {
				if !matches(got[i], want) {
					t.Errorf("line %d:\n got %v\nwant %v", i, got[i], want)
				}
			}
			for _, secret := range tc.absent {
				if strings.Contains(s.log.String(), secret) {
					t.Errorf("the log holds %.40q", secret)
				}
			}
		})
	}
}

// matches reports whether line has exactly want's fields, with want's values where they do not
// vary.
func matches(line, want map[string]any) bool {
	if !slices.Equal(slices.Sorted(maps.Keys(line)), slices.Sorted(maps.Keys(want))) {
		return false
	}
	for k, v := range want {
		if _, ok := v.(varies); !ok && line[k] != v {
			return false
		}
	}
	return true
}

// A request whose client went away is logged and counted as 499, whatever its handler wrote:
// nobody read it, and it is no failure of the service's.
func TestClientThatGoesAwayIsCountedAs499(t *testing.T) {
	s := newService(t, slog.LevelInfo)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	s.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/users/42", nil).WithContext(ctx))
	s.handler.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest(http.MethodGet, "/users/43", nil))

	var got []float64
	for _, line := range s.lines(t) {
		if line["route"] == "GET /users/{id}" {
			got = append(got, line["status"].(float64))
		}
	}
	if want := []float64{499, 200}; !slices.Equal(got, want) {
		t.Errorf("logged statuses %v, want %v", got, want)
	}
	metrics := s.scrape(t)
	if !strings.Contains(metrics, `usergraph_http_requests_total{method="GET",route="GET /users/{id}",status="499"} 1`) || strings.Contains(metrics, `status="500"`) {
		t.Errorf("the request is not counted as 499:\n%s", metrics)
	}
}
