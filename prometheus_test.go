package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
	"usergraph/internal/testenv"
)

// prometheusWait bounds every wait on Prometheus: it finds a new target within about 5 s, and
// then scrapes it every second.
const prometheusWait = 30 * time.Second

// A real Prometheus, configured by deploy/prometheus/prometheus.yml (with the running service as
// its target, and a scrape and an evaluation every second), scrapes the service, loads the alert
// rules, and answers the queries an operator would send it with what the service counted.
func TestPrometheusScrapesTheService(t *testing.T) {
	t.Parallel()
	bin, err := exec.LookPath("prometheus")
	if err != nil {
		testenv.Require(t, "the Prometheus scrape test", "prometheus (Debian package prometheus)")
	}
	// Traced, so that the histograms carry exemplars: the console exporter writes the spans to
	// run's stdout, which the test keeps.
	r := startRun(t, map[string]string{"DATABASE_URL": dbtest.SQLiteURL(t), "JWT_SECRET": testSecret, "OTEL_TRACES_EXPORTER": "console"})
	prom := startPrometheus(t, bin, r.URL)

	c := r.adminClient(t)
	u := c.CreateUser(t, "scraped", "scraped@example.com")
	own := token(t, u.ID)
	const puts = 3
	for i := range puts {
		if resp := c.Put(t, own, u.ID, fmt.Sprintf(`{"username": "scraped%d"}`, i)); resp.Status != http.StatusOK {
			t.Fatalf("PUT: %d %s", resp.Status, resp.Body)
		}
	}
	if resp := c.UpdateUser(t, own, u.ID, map[string]any{"email": "scraped@example.org"}); resp.Code() != "" {
		t.Fatalf("updateUser: %+v", resp.Errors)
	}

	for _, tc := range []struct {
		name  string
		query string
		want  float64
	}{
		{"TargetIsUp", `up{job="usergraph"}`, 1},
		{"RequestsAreCountedByRouteAndStatus", `sum(usergraph_http_requests_total{route="PUT /users/{id}", status="200"})`, puts},
		{"LatencyHistogramCountsEachRequest", `sum(usergraph_http_request_duration_seconds_count{route="PUT /users/{id}"})`, puts},
		{"LatencyPercentileIsComputable", `histogram_quantile(0.99, sum by (le) (usergraph_http_request_duration_seconds_bucket{route="PUT /users/{id}"})) > bool 0`, 1},
		{"GraphQLOperationsAreCountedByCode", `sum(usergraph_graphql_operations_total{operation="updateUser", code="OK"})`, 1},
		{"GraphQLLatencyHistogramCountsThem", `sum(usergraph_graphql_operation_duration_seconds_count{operation="updateUser"})`, 1},
		{"ConnectionPoolIsScraped", `go_sql_max_open_connections{job="usergraph", db_name="usergraph"}`, 4}, // a SQLite file's pool
	} {
		t.Run(tc.name, func(t *testing.T) {
			prom.waitForValue(t, tc.query, tc.want)
		})
	}
	t.Run("AlertRulesEvaluate", func(t *testing.T) {
		prom.waitForRulesHealthy(t)
	})
	t.Run("NoAlertFiresOnAHealthyService", func(t *testing.T) {
		prom.waitForNoAlerts(t)
	})
	t.Run("ExemplarsCarryTraceIDs", func(t *testing.T) {
		requireTraceExemplars(t, prom)
	})
}

// promServer is a Prometheus server that a test started.
type promServer struct {
	URL string
}

// startPrometheus starts Prometheus with deploy/prometheus/prometheus.yml and the rules it names,
// scraping the service at serviceURL every second, on a port of its own and a database in a
// temporary directory, with exemplar storage; and stops it when the test ends.
func startPrometheus(t *testing.T, bin, serviceURL string) *promServer {
	t.Helper()
	dir := t.TempDir()
	u, err := url.Parse(serviceURL)
	if err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(config, scrapeConfig(t, "127.0.0.1:"+u.Port()), 0o644); err != nil {
		t.Fatal(err)
	}
	rules, err := os.ReadFile("deploy/prometheus/alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "alerts.yml"), rules, 0o644); err != nil {
		t.Fatal(err)
	}

	addr := "127.0.0.1:" + strconv.Itoa(freePort(t))
	cmd := exec.Command(bin,
		"--config.file="+config,
		"--storage.tsdb.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--enable-feature=exemplar-storage",
	)
	log := &apitest.SyncBuffer{}
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})

	p := &promServer{URL: "http://" + addr}
	for deadline := time.Now().Add(prometheusWait); ; time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("prometheus exited: %v\n%s", err, log.String())
		default:
		}
		if resp, err := http.Get(p.URL + "/-/ready"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus was not ready after %s\n%s", prometheusWait, log.String())
		}
	}
}

// scrapeConfig returns deploy/prometheus/prometheus.yml with target as its only target, scraped
// and its rules evaluated every second: the example an operator starts from, so that a mistake in
// it fails here rather than in their Prometheus.
func scrapeConfig(t *testing.T, target string) []byte {
	t.Helper()
	raw, err := os.ReadFile("deploy/prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	// A map, so that whatever else the example holds is kept as it is.
	var cfg map[string]any
	if err := yaml.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	global, _ := cfg["global"].(map[string]any)
	scrapes, _ := cfg["scrape_configs"].([]any)
	var job map[string]any
	if len(scrapes) == 1 {
		job, _ = scrapes[0].(map[string]any)
	}
	if global == nil || job == nil || job["job_name"] != "usergraph" {
		t.Fatalf("deploy/prometheus/prometheus.yml: want a global section and one scrape config, of job usergraph; got %v", cfg)
	}
	global["scrape_interval"], global["evaluation_interval"] = "1s", "1s"
	job["static_configs"] = []any{map[string]any{"targets": []string{target}}}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// get sends a GET to Prometheus's HTTP API and decodes its data into v; it returns the error
// that Prometheus answered, if any.
func (p *promServer) get(t *testing.T, path string, params url.Values, v any) error {
	t.Helper()
	resp, err := http.Get(p.URL + path + "?" + params.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string          `json:"status"`
		Error  string          `json:"error"`
		Data   json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if body.Status != "success" {
		return fmt.Errorf("%s: %s", path, body.Error)
	}
	if err := json.Unmarshal(body.Data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return nil
}

// waitFor calls done every 200 ms until it returns true, and fails t with what it last reported
// if it has not after prometheusWait.
func waitFor(t *testing.T, done func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(prometheusWait)
	for {
		ok, last := done()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", prometheusWait, last)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitForValue waits until query answers one sample whose value is want.
func (p *promServer) waitForValue(t *testing.T, query string, want float64) {
	t.Helper()
	waitFor(t, func() (bool, string) {
		var data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"` // [time, "value"]
			} `json:"result"`
		}
		if err := p.get(t, "/api/v1/query", url.Values{"query": {query}}, &data); err != nil {
			return false, err.Error()
		}
		if len(data.Result) != 1 {
			return false, fmt.Sprintf("%s: got %d series %v, want one of value %v", query, len(data.Result), data.Result, want)
		}
		got, _ := strconv.ParseFloat(fmt.Sprint(data.Result[0].Value[1]), 64)
		return got == want, fmt.Sprintf("%s: got %v, want %v", query, got, want)
	})
}

// waitForRulesHealthy waits until Prometheus has evaluated every alert rule without an error.
func (p *promServer) waitForRulesHealthy(t *testing.T) {
	t.Helper()
	waitFor(t, func() (bool, string) {
		var data struct {
			Groups []struct {
				Rules []struct {
					Name      string `json:"name"`
					Health    string `json:"health"`
					LastError string `json:"lastError"`
				} `json:"rules"`
			} `json:"groups"`
		}
		if err := p.get(t, "/api/v1/rules", url.Values{"type": {"alert"}}, &data); err != nil {
			return false, err.Error()
		}
		rules, unhealthy := 0, ""
		for _, g := range data.Groups {
			for _, r := range g.Rules {
				rules++
				if r.Health != "ok" {
					unhealthy += fmt.Sprintf("\n  %s: %s %s", r.Name, r.Health, r.LastError)
				}
			}
		}
		if rules == 0 {
			return false, "no alert rules loaded"
		}
		return unhealthy == "", "rules not evaluated, or in error:" + unhealthy
	})
}

// waitForNoAlerts waits until no alert is pending or firing: UsergraphAbsent is pending from
// Prometheus's start until its first scrape of the service.
func (p *promServer) waitForNoAlerts(t *testing.T) {
	t.Helper()
	waitFor(t, func() (bool, string) {
		var data struct {
			Alerts []struct {
				Labels map[string]string `json:"labels"`
				State  string            `json:"state"`
			} `json:"alerts"`
		}
		if err := p.get(t, "/api/v1/alerts", nil, &data); err != nil {
			return false, err.Error()
		}
		return len(data.Alerts) == 0, fmt.Sprintf("alerts: %+v", data.Alerts)
	})
}

// latencyExemplarsQuery selects the duration histograms, whose observations are the ones that
// carry exemplars.
const latencyExemplarsQuery = `{__name__=~"usergraph_(http_request|graphql_operation)_duration_seconds_bucket"}`

// traceIDLabel is the exemplar label that holds a trace ID, as OpenTelemetry's Prometheus
// exporters and Grafana's exemplar links name it.
const traceIDLabel = "trace_id"

// traceID is a W3C trace ID: 16 bytes in lower-case hex.
var traceID = regexp.MustCompile(`^[0-9a-f]{32}$`)

// exemplar is one of the exemplars Prometheus stored.
type exemplar struct {
	Series    map[string]string
	Labels    map[string]string
	Value     string
	Timestamp float64
}

// queryExemplars returns the exemplars Prometheus holds for the series of query, from the last
// hour. Prometheus keeps exemplars only with --enable-feature=exemplar-storage, and only from a
// scrape in OpenMetrics, which it asks for first.
func (p *promServer) queryExemplars(t *testing.T, query string) []exemplar {
	t.Helper()
	var data []struct {
		SeriesLabels map[string]string `json:"seriesLabels"`
		Exemplars    []struct {
			Labels    map[string]string `json:"labels"`
			Value     string            `json:"value"`
			Timestamp float64           `json:"timestamp"`
		} `json:"exemplars"`
	}
	now := time.Now()
	params := url.Values{
		"query": {query},
		"start": {now.Add(-time.Hour).Format(time.RFC3339)},
		"end":   {now.Add(time.Minute).Format(time.RFC3339)},
	}
	if err := p.get(t, "/api/v1/query_exemplars", params, &data); err != nil {
		t.Fatal(err)
	}
	var out []exemplar
	for _, s := range data {
		for _, e := range s.Exemplars {
			out = append(out, exemplar{Series: s.SeriesLabels, Labels: e.Labels, Value: e.Value, Timestamp: e.Timestamp})
		}
	}
	return out
}

// requireTraceExemplars waits until Prometheus holds an exemplar of the duration histograms, and
// fails t unless each one it holds carries a trace ID: the histograms carry the trace IDs of the
// requests they observe, which /metrics sends in OpenMetrics, the only format with exemplars.
func requireTraceExemplars(t *testing.T, p *promServer) {
	t.Helper()
	var exemplars []exemplar
	waitFor(t, func() (bool, string) {
		exemplars = p.queryExemplars(t, latencyExemplarsQuery)
		return len(exemplars) > 0, "no exemplar of " + latencyExemplarsQuery
	})
	checkTraceIDs(t, exemplars)
}

// checkTraceIDs fails t unless each exemplar carries a trace ID.
func checkTraceIDs(t *testing.T, exemplars []exemplar) {
	t.Helper()
	for _, e := range exemplars {
		if !traceID.MatchString(e.Labels[traceIDLabel]) {
			t.Errorf("exemplar %+v: %s is not a trace ID", e, traceIDLabel)
		}
	}
}
