package deploy_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"usergraph/internal/dbtest"
	"usergraph/internal/testenv"
	"usergraph/telemetry"
)

// The files an operator deploys beside the service: Prometheus's alerting rules and their unit
// tests, an example scrape configuration, and the Grafana dashboard the alerts point at. Each is
// checked by the tool that will read it where there is one (promtool), and against the metrics the
// service really exports, so that no panel stays empty and no alert waits for a series that never
// comes.
const (
	alertsFile     = "prometheus/alerts.yml"
	alertTestsFile = "prometheus/alerts_test.yml"
	configFile     = "prometheus/prometheus.yml"
	dashboardFile  = "grafana/usergraph.json"
)

// promtool returns the path of promtool, or skips the test (fails it in CI) without it.
func promtool(t *testing.T) string {
	t.Helper()
	path, err := exec.LookPath("promtool")
	if err != nil {
		testenv.Require(t, "the alert rules' checks", "promtool (Debian package prometheus)")
	}
	return path
}

// Prometheus would refuse what promtool refuses: rules or a configuration that do not load, and
// alerts that do not fire, or fire, on the series of their unit tests. The dashboard's queries
// go through the same PromQL parser, as recording rules, since no Grafana is at hand.
func TestPromtoolAcceptsTheFiles(t *testing.T) {
	bin := promtool(t)
	dashboardRules := filepath.Join(t.TempDir(), "dashboard_queries.yml")
	rules, where := dashboardAsRules(t)
	if err := os.WriteFile(dashboardRules, rules, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"AlertRulesLoad", []string{"check", "rules", alertsFile}},
		{"AlertsFireOnlyWhenTheirTestsSay", []string{"test", "rules", alertTestsFile}},
		{"ScrapeConfigAndTheRulesItNamesLoad", []string{"check", "config", configFile}},
		{"DashboardQueriesParse", []string{"check", "rules", dashboardRules}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, err := exec.Command(bin, tc.args...).CombinedOutput()
			if err != nil {
				t.Errorf("promtool %s: %v\n%s", strings.Join(tc.args, " "), err, out)
				for record, w := range where {
					if strings.Contains(string(out), `"`+record+`"`) {
						t.Errorf("%s is the dashboard's %s", record, w)
					}
				}
			}
		})
	}
}

// dashboardAsRules returns a rules file with each of the dashboard's queries as a recording rule,
// with Grafana's variables given values, for promtool to parse; and where each rule's query is on
// the dashboard, by the rule's name, which is all promtool's errors say of it.
func dashboardAsRules(t *testing.T) ([]byte, map[string]string) {
	t.Helper()
	type rule struct {
		Record string `yaml:"record"`
		Expr   string `yaml:"expr"`
	}
	var rules []rule
	where := map[string]string{}
	for i, q := range dashboardQueries(t, readDashboard(t)) {
		name := fmt.Sprintf("dashboard:query_%d", i)
		rules = append(rules, rule{Record: name, Expr: q.expr})
		where[name] = q.where
	}
	out, err := yaml.Marshal(map[string]any{"groups": []any{map[string]any{"name": "dashboard", "rules": rules}}})
	if err != nil {
		t.Fatal(err)
	}
	return out, where
}

// Every metric and label the dashboard and the alerts query is one the service exports: a typo,
// or a metric renamed in the code, leaves a panel empty and an alert silent without any error.
func TestQueriesNameOnlyExportedMetrics(t *testing.T) {
	exported := exportedSeries(t)
	for _, tc := range []struct {
		name    string
		queries []query
	}{
		{"Dashboard", dashboardQueries(t, readDashboard(t))},
		{"AlertRules", alertQueries(t)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.queries) == 0 {
				t.Fatal("no queries found")
			}
			for _, q := range tc.queries {
				for _, problem := range unknownNames(q.expr, exported) {
					t.Errorf("%s: %s\n  %s", q.where, problem, q.expr)
				}
			}
		})
	}
}

// targetLabels are the labels Prometheus gives every series it scrapes.
var targetLabels = []string{"job", "instance"}

// prometheusSeries are the series Prometheus records of every scrape itself, by name, with their
// labels.
var prometheusSeries = map[string][]string{"up": nil}

// unknownNames returns what expr names that exported has not: metrics, and labels of selectors
// and of grouping clauses.
func unknownNames(expr string, exported map[string][]string) []string {
	sels, grouping, err := scanPromQL(expr)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	known := slices.Clone(targetLabels) // every label of the expression's metrics
	for _, s := range sels {
		labels, ok := exported[s.name]
		if !ok {
			labels, ok = prometheusSeries[s.name]
		}
		if !ok {
			problems = append(problems, fmt.Sprintf("metric %s is not exported by the service", s.name))
			continue
		}
		labels = append(slices.Clone(targetLabels), labels...)
		known = append(known, labels...)
		for _, l := range s.labels {
			if !slices.Contains(labels, l) {
				problems = append(problems, fmt.Sprintf("metric %s has no label %s (it has %s)", s.name, l, strings.Join(labels, ", ")))
			}
		}
	}
	for _, l := range grouping {
		if !slices.Contains(known, l) {
			problems = append(problems, fmt.Sprintf("no metric of the query has the label %s it groups or matches by", l))
		}
	}
	return problems
}

// exportedSeries returns the series the service's /metrics serves, by name (a histogram's as
// NAME_bucket, NAME_sum and NAME_count, as Prometheus stores them), with their labels. The labelled
// families appear only once something was counted in them, so it first serves a REST request and
// a GraphQL operation through the service's middleware.
func exportedSeries(t *testing.T) map[string][]string {
	t.Helper()
	db, err := dbtest.Open(t, dbtest.SQLiteURL(t)).DB()
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Ping(); err != nil { // so that the pool has a connection to count
		t.Fatal(err)
	}
	metrics := telemetry.NewMetrics(db)
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /users/{id}", func(http.ResponseWriter, *http.Request) {})
	mux.HandleFunc("POST /graphql", func(_ http.ResponseWriter, r *http.Request) {
		info := telemetry.InfoFrom(r.Context())
		info.Operation, info.Code = "updateUser", "OK"
	})
	mux.Handle("GET /metrics", metrics.Handler())
	srv := httptest.NewServer(telemetry.Middleware(slog.New(slog.DiscardHandler), metrics)(mux))
	defer srv.Close()

	for _, r := range []struct{ method, path string }{{"PUT", "/users/1"}, {"POST", "/graphql"}} {
		req, _ := http.NewRequest(r.method, srv.URL+r.path, nil)
		if resp, err := http.DefaultClient.Do(req); err != nil {
			t.Fatal(err)
		} else {
			resp.Body.Close()
		}
	}
	resp, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	series, err := parseExposition(resp.Body)
	if err != nil {
		t.Fatalf("/metrics: %v", err)
	}
	return series
}

// parseExposition reads Prometheus's text format and returns each series name with the names of
// its labels.
func parseExposition(r io.Reader) (map[string][]string, error) {
	series := map[string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64*1024), 1024*1024)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		end := strings.IndexAny(line, "{ ")
		if end <= 0 {
			return nil, fmt.Errorf("a sample line without a value: %q", line)
		}
		name := line[:end]
		labels := series[name]
		if line[end] == '{' {
			names, err := labelNames(line[end+1:])
			if err != nil {
				return nil, fmt.Errorf("%w: %q", err, line)
			}
			for _, l := range names {
				if !slices.Contains(labels, l) {
					labels = append(labels, l)
				}
			}
		}
		series[name] = labels
	}
	return series, sc.Err()
}

// labelNames returns the names in a sample's label set, s being what follows its "{".
func labelNames(s string) ([]string, error) {
	var names []string
	for {
		s = strings.TrimLeft(s, " ,")
		if strings.HasPrefix(s, "}") {
			return names, nil
		}
		eq := strings.Index(s, `="`)
		if eq <= 0 {
			return nil, fmt.Errorf("a label without a value")
		}
		names = append(names, s[:eq])
		s = s[eq+2:]
		for i := 0; ; i++ { // the value: up to its closing quote, past escaped ones
			if i >= len(s) {
				return nil, fmt.Errorf("a label value without its closing quote")
			}
			if s[i] == '\\' {
				i++
			} else if s[i] == '"' {
				s = s[i+1:]
				break
			}
		}
	}
}

// query is a PromQL expression in one of the files, and where it is, for the messages of a test.
type query struct {
	where string
	expr  string
}

// alertRules is the part of a Prometheus rules file that the tests read.
type alertRules struct {
	Groups []struct {
		Name  string `yaml:"name"`
		Rules []struct {
			Alert       string            `yaml:"alert"`
			Record      string            `yaml:"record"`
			Expr        string            `yaml:"expr"`
			Annotations map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

func readAlertRules(t *testing.T) alertRules {
	t.Helper()
	raw, err := os.ReadFile(alertsFile)
	if err != nil {
		t.Fatal(err)
	}
	var rules alertRules
	if err := yaml.Unmarshal(raw, &rules); err != nil {
		t.Fatalf("%s: %v", alertsFile, err)
	}
	return rules
}

func alertQueries(t *testing.T) []query {
	t.Helper()
	var qs []query
	for _, g := range readAlertRules(t).Groups {
		for _, r := range g.Rules {
			qs = append(qs, query{where: "alert " + r.Alert + r.Record, expr: r.Expr})
		}
	}
	return qs
}

// dashboard is the part of a Grafana dashboard that the tests read.
type dashboard struct {
	UID        string  `json:"uid"`
	Title      string  `json:"title"`
	Panels     []panel `json:"panels"`
	Templating struct {
		List []variable `json:"list"`
	} `json:"templating"`
}

type panel struct {
	ID         int            `json:"id"`
	Type       string         `json:"type"`
	Title      string         `json:"title"`
	Datasource *datasourceRef `json:"datasource"`
	Targets    []struct {
		RefID      string         `json:"refId"`
		Expr       string         `json:"expr"`
		Datasource *datasourceRef `json:"datasource"`
	} `json:"targets"`
	// Panels are those of a collapsed row.
	Panels []panel `json:"panels"`
}

type datasourceRef struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

type variable struct {
	Name       string         `json:"name"`
	Type       string         `json:"type"`
	Query      any            `json:"query"` // a string, or an object with the string in "query"
	Datasource *datasourceRef `json:"datasource"`
}

// queryText returns a query variable's query.
func (v variable) queryText() string {
	switch q := v.Query.(type) {
	case string:
		return q
	case map[string]any:
		s, _ := q["query"].(string)
		return s
	}
	return ""
}

func readDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(dashboardFile)
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("%s: %v", dashboardFile, err)
	}
	return d
}

// allPanels returns the dashboard's panels, rows and those inside collapsed rows included.
func (d dashboard) allPanels() []panel {
	var all []panel
	for _, p := range d.Panels {
		all = append(all, p)
		all = append(all, p.Panels...)
	}
	return all
}

// grafanaVariable is $name or ${name} (with an optional :format).
var grafanaVariable = regexp.MustCompile(`\$(?:\{(\w+)(?::\w+)?\}|(\w+))`)

// labelValues is a query variable's label_values(selector, label).
var labelValues = regexp.MustCompile(`^\s*label_values\((.+),\s*(\w+)\s*\)\s*$`)

// dashboardQueries returns the dashboard's PromQL: its panels' queries and the selectors of its
// query variables, with Grafana's variables given values as a dashboard would give them. A
// variable the dashboard does not define is an error: Grafana would send it as it is.
func dashboardQueries(t *testing.T, d dashboard) []query {
	t.Helper()
	values := map[string]string{"__rate_interval": "1m", "__interval": "1m", "__range": "1h"}
	for _, v := range d.Templating.List {
		values[v.Name] = ".+"
	}
	expand := func(where, expr string) string {
		return grafanaVariable.ReplaceAllStringFunc(expr, func(m string) string {
			parts := grafanaVariable.FindStringSubmatch(m)
			v, ok := values[parts[1]+parts[2]]
			if !ok {
				t.Errorf("%s: %s is no variable of the dashboard", where, m)
			}
			return v
		})
	}
	var qs []query
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		where := fmt.Sprintf("variable %q", v.Name)
		m := labelValues.FindStringSubmatch(v.queryText())
		if m == nil {
			t.Errorf("%s: %q is not label_values(selector, label)", where, v.queryText())
			continue
		}
		// The label is one of the selector's, which a grouping by it checks.
		qs = append(qs, query{where: where, expr: fmt.Sprintf("count by (%s) (%s)", m[2], expand(where, m[1]))})
	}
	for _, p := range d.allPanels() {
		for _, tg := range p.Targets {
			where := fmt.Sprintf("panel %q query %s", p.Title, tg.RefID)
			qs = append(qs, query{where: where, expr: expand(where, tg.Expr)})
		}
	}
	return qs
}

// The dashboard imports into any Grafana with any Prometheus: every query goes to the Prometheus
// that its datasource variable names, and nothing refers to a datasource of the machine it was
// made on.
func TestDashboardImportsWithAnyPrometheus(t *testing.T) {
	d := readDashboard(t)
	isVariable := func(ds *datasourceRef) bool {
		return ds != nil && ds.Type == "prometheus" && (ds.UID == "${datasource}" || ds.UID == "$datasource")
	}
	t.Run("HasAPrometheusDatasourceVariable", func(t *testing.T) {
		i := slices.IndexFunc(d.Templating.List, func(v variable) bool { return v.Name == "datasource" })
		if i < 0 {
			t.Fatal("no variable named datasource")
		}
		if v := d.Templating.List[i]; v.Type != "datasource" || v.queryText() != "prometheus" {
			t.Errorf("variable datasource: got type %q, query %q; want datasource, prometheus", v.Type, v.queryText())
		}
	})
	t.Run("EveryQueryUsesTheVariable", func(t *testing.T) {
		for _, p := range d.allPanels() {
			if p.Type == "row" {
				continue
			}
			if !isVariable(p.Datasource) {
				t.Errorf("panel %q: datasource %+v, want the variable", p.Title, p.Datasource)
			}
			if len(p.Targets) == 0 {
				t.Errorf("panel %q has no query", p.Title)
			}
			for _, tg := range p.Targets {
				if !isVariable(tg.Datasource) {
					t.Errorf("panel %q query %s: datasource %+v, want the variable", p.Title, tg.RefID, tg.Datasource)
				}
			}
		}
		for _, v := range d.Templating.List {
			if v.Type == "query" && !isVariable(v.Datasource) {
				t.Errorf("variable %q: datasource %+v, want the variable", v.Name, v.Datasource)
			}
		}
	})
	t.Run("PanelsCanBeToldApart", func(t *testing.T) {
		if d.UID == "" || d.Title == "" {
			t.Errorf("uid %q, title %q: both are needed to import and to link to it", d.UID, d.Title)
		}
		ids, titles := map[int]bool{}, map[string]bool{}
		for _, p := range d.allPanels() {
			if ids[p.ID] {
				t.Errorf("panel ID %d is used twice", p.ID)
			}
			if titles[p.Title] {
				t.Errorf("panel title %q is used twice: the alerts name panels by title", p.Title)
			}
			ids[p.ID], titles[p.Title] = true, true
		}
	})
}

// panelReference is how an alert's description names what to look at: panel "A", panels "A" and
// "B", row "C".
var panelReference = regexp.MustCompile(`\b(panels?|row) ("[^"]+"(?:,? (?:and )?"[^"]+")*)`)

// Every alert tells the operator what it is about and where to look, and the panels and rows it
// names are on the dashboard.
func TestAlertsPointAtTheDashboard(t *testing.T) {
	d := readDashboard(t)
	panels, rows := map[string]bool{}, map[string]bool{}
	for _, p := range d.allPanels() {
		if p.Type == "row" {
			rows[p.Title] = true
		} else {
			panels[p.Title] = true
		}
	}
	for _, g := range readAlertRules(t).Groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			t.Run(r.Alert, func(t *testing.T) {
				if r.Annotations["summary"] == "" || r.Annotations["description"] == "" {
					t.Errorf("annotations %v: want a summary and a description", slices.Sorted(maps.Keys(r.Annotations)))
				}
				refs := panelReference.FindAllStringSubmatch(r.Annotations["description"], -1)
				namesAPanel := false
				for _, ref := range refs {
					titles := regexp.MustCompile(`"([^"]+)"`).FindAllStringSubmatch(ref[2], -1)
					for _, title := range titles {
						switch {
						case ref[1] == "row" && !rows[title[1]]:
							t.Errorf("names row %q, which the dashboard has not", title[1])
						case ref[1] != "row" && !panels[title[1]]:
							t.Errorf("names panel %q, which the dashboard has not", title[1])
						}
						namesAPanel = namesAPanel || ref[1] != "row"
					}
				}
				if !namesAPanel {
					t.Errorf("the description names no panel of the dashboard: %q", r.Annotations["description"])
				}
			})
		}
	}
}

// selector is a metric named in a PromQL expression, with the labels it matches on.
type selector struct {
	name   string
	labels []string
}

// promqlKeywords are PromQL's words that are no metrics: operators, aggregations (which a grouping
// may part from their "("), and constants. Grouping ones are followed by a list of labels.
var (
	promqlKeywords = []string{
		"and", "or", "unless", "bool", "offset", "inf", "nan",
		"sum", "min", "max", "avg", "group", "stddev", "stdvar", "count", "count_values",
		"bottomk", "topk", "quantile", "limitk", "limit_ratio",
	}
	promqlGroupings = []string{"by", "without", "on", "ignoring", "group_left", "group_right"}
)

// scanPromQL finds the metrics of a PromQL expression with the labels of their selectors, and the
// labels that its aggregations group by and its binary operators match on. It knows just enough
// of PromQL for that: a word followed by "(" is a function or an aggregation, a word in braces is
// a label, strings and ranges hold neither. The full grammar is promtool's to check.
func scanPromQL(expr string) (sels []selector, grouping []string, err error) {
	toks, err := tokenize(expr)
	if err != nil {
		return nil, nil, err
	}
	next := func(i int) string {
		if i+1 < len(toks) {
			return toks[i+1].text
		}
		return ""
	}
	// labelsUntil collects the words from toks[i] up to the closing token, and returns the index
	// of that token.
	labelsUntil := func(i int, closing string) ([]string, int, error) {
		var labels []string
		for ; i < len(toks); i++ {
			switch tk := toks[i]; {
			case tk.text == closing:
				return labels, i, nil
			case tk.kind == word:
				labels = append(labels, tk.text)
			}
		}
		return nil, i, fmt.Errorf("no %q closes a list of labels", closing)
	}
	for i := 0; i < len(toks); i++ {
		tk := toks[i]
		switch {
		case tk.text == "[": // a range or a subquery's: durations only
			for i < len(toks) && toks[i].text != "]" {
				i++
			}
		case tk.text == "{":
			return nil, nil, fmt.Errorf("a selector without a metric name")
		case tk.kind != word:
		case slices.Contains(promqlGroupings, strings.ToLower(tk.text)):
			if next(i) == "(" {
				var labels []string
				if labels, i, err = labelsUntil(i+2, ")"); err != nil {
					return nil, nil, err
				}
				grouping = append(grouping, labels...)
			}
		case slices.Contains(promqlKeywords, strings.ToLower(tk.text)):
		case next(i) == "(": // a function or an aggregation
		default:
			s := selector{name: tk.text}
			if next(i) == "{" {
				if s.labels, i, err = labelsUntil(i+2, "}"); err != nil {
					return nil, nil, err
				}
			}
			sels = append(sels, s)
		}
	}
	return sels, grouping, nil
}

type tokenKind int

const (
	word tokenKind = iota
	other
)

type token struct {
	kind tokenKind
	text string
}

// tokenize splits a PromQL expression into words (names and keywords), punctuation and
// operators, and numbers and durations; it drops strings, which hold label values and regular
// expressions, never names.
func tokenize(expr string) ([]token, error) {
	var toks []token
	isWordStart := func(c byte) bool { return c == '_' || c == ':' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' }
	isWord := func(c byte) bool { return isWordStart(c) || '0' <= c && c <= '9' }
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case c == ' ' || c == '\t' || c == '\n' || c == '\r':
			i++
		case c == '"' || c == '\'' || c == '`':
			j := i + 1
			for ; j < len(expr) && expr[j] != c; j++ {
				if expr[j] == '\\' && c != '`' {
					j++
				}
			}
			if j >= len(expr) {
				return nil, fmt.Errorf("a string without its closing %c", c)
			}
			i = j + 1
		case isWordStart(c):
			j := i
			for j < len(expr) && isWord(expr[j]) {
				j++
			}
			toks = append(toks, token{word, expr[i:j]})
			i = j
		case '0' <= c && c <= '9' || c == '.':
			j := i
			for j < len(expr) && (isWord(expr[j]) || expr[j] == '.') {
				j++
			}
			toks = append(toks, token{other, expr[i:j]})
			i = j
		default:
			toks = append(toks, token{other, string(c)})
			i++
		}
	}
	return toks, nil
}

// The scanner that the metric check relies on finds what a query names, and only that: label
// values, functions, keywords and durations are not metrics.
func TestScanPromQLFindsMetricsAndLabels(t *testing.T) {
	for _, tc := range []struct {
		name         string
		expr         string
		wantSels     []selector
		wantGrouping []string
	}{
		{
			"MatchersAreLabelsNotMetrics",
			`rate(a_total{route="GET /users/{id}", status=~"5..|x_total"}[5m])`,
			[]selector{{"a_total", []string{"route", "status"}}}, nil,
		},
		{
			"GroupingsEitherSide",
			`histogram_quantile(0.99, sum by (route, le) (rate(h_bucket[1m]))) / on(route) group_left sum(rate(b[5m:1m] offset 1h)) without (code)`,
			[]selector{{"h_bucket", nil}, {"b", nil}}, []string{"route", "le", "route", "code"},
		},
		{
			"KeywordsAndFunctionsAreNotMetrics",
			`absent(up{job="usergraph"}) or vector(1) > bool 0 and Inf unless NaN`,
			[]selector{{"up", []string{"job"}}}, nil,
		},
		{
			"ATypoIsAMetricOfItsOwn",
			`sum(rate(usergraph_http_request_total[1m]))`,
			[]selector{{"usergraph_http_request_total", nil}}, nil,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sels, grouping, err := scanPromQL(tc.expr)
			if err != nil {
				t.Fatal(err)
			}
			if fmt.Sprint(sels) != fmt.Sprint(tc.wantSels) || !slices.Equal(grouping, tc.wantGrouping) {
				t.Errorf("got %v, grouping %v; want %v, grouping %v", sels, grouping, tc.wantSels, tc.wantGrouping)
			}
		})
	}
}

// A misspelt or renamed metric or label is reported; the service's own names are not.
func TestUnknownNamesAreReported(t *testing.T) {
	exported := map[string][]string{"usergraph_http_requests_total": {"route", "method", "status"}}
	for _, tc := range []struct {
		name string
		expr string
		want int
	}{
		{"ExportedMetricAndLabels", `sum by (instance, route) (rate(usergraph_http_requests_total{status="500", job="x"}[1m]))`, 0},
		{"PrometheusOwnSeries", `up{job="usergraph"} == 0`, 0},
		{"MisspeltMetric", `rate(usergraph_http_request_total[1m])`, 1},
		{"MisspeltLabel", `usergraph_http_requests_total{code="500"}`, 1},
		{"GroupingByALabelNoMetricHas", `sum by (path) (usergraph_http_requests_total)`, 1},
		{"HistogramFamilyIsNoSeries", `usergraph_http_request_duration_seconds`, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := unknownNames(tc.expr, exported); len(got) != tc.want {
				t.Errorf("got %d problems %q, want %d", len(got), got, tc.want)
			}
		})
	}
}
