package main

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"usergraph/internal/dbtest"
)

// What the real handlers give the operator: the service's route patterns, GraphQL operations by
// root field and result code, and the log that the whole service writes. How telemetry turns
// what handlers report into labels and log lines is pinned in package telemetry; this is that it
// is wired around every route, with the service's own logger and connection pool.
func TestMetricsAndLogsNameRealRoutesAndOperations(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, dbtest.SQLiteURL(t))
	u, own := s.newUser(t)
	_, other := s.newUser(t)

	send := func(method, path, bearer, requestID, body string) *http.Response {
		req, _ := http.NewRequest(method, s.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if bearer != "" {
			req.Header.Set("Authorization", "Bearer "+bearer)
		}
		if requestID != "" {
			req.Header.Set("X-Request-ID", requestID)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp
	}
	secretEmail := "private.person@example.com"
	gql := func(operationName, query string) string {
		return mustJSON(map[string]any{"operationName": operationName, "query": query})
	}
	update := fmt.Sprintf(`mutation Rename%s { updateUser(id: "%s", input: {email: "%s"}) { id } }`, u.ID, u.ID, secretEmail)

	if resp := send("PUT", "/users/"+u.ID, own, "trace-abc.123", `{"username": "metered"}`); resp.StatusCode != 200 || resp.Header.Get("X-Request-ID") != "trace-abc.123" {
		t.Errorf("PUT: got %d, X-Request-ID %q; want 200, trace-abc.123", resp.StatusCode, resp.Header.Get("X-Request-ID"))
	}
	if resp := send("POST", "/graphql", own, "", gql("Rename"+u.ID, update)); resp.StatusCode != 200 {
		t.Errorf("GraphQL: got %d, want 200", resp.StatusCode)
	}
	send("POST", "/graphql", other, "", gql("Rename"+u.ID, update))                        // FORBIDDEN
	send("POST", "/graphql", own, "", gql("Probe", `{ me { id } nosuchfield123 { id } }`)) // invalid
	send("GET", "/users/"+u.ID, own, "", "")
	send("BREW", "/users/"+u.ID, own, "", "")
	const requests = 8 // the two newUser calls, and the six above

	resp, err := http.Get(s.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	metrics := string(raw)
	t.Run("MetricsNameRoutesAndOperations", func(t *testing.T) {
		for _, want := range []string{
			`usergraph_http_requests_total{method="PUT",route="PUT /users/{id}",status="200"} 1`,
			`usergraph_http_requests_total{method="GET",route="GET /users/{id}",status="200"} 1`,
			`usergraph_http_requests_total{method="POST",route="/graphql",status="200"} 5`,
			`usergraph_http_requests_total{method="other",route="/users/{id}",status="405"} 1`,
			`usergraph_graphql_operations_total{code="OK",operation="updateUser"} 1`,
			`usergraph_graphql_operations_total{code="FORBIDDEN",operation="updateUser"} 1`,
			`usergraph_graphql_operations_total{code="GRAPHQL_VALIDATION_FAILED",operation="none"} 1`,
			`usergraph_graphql_operations_total{code="OK",operation="createUser"} 2`,
			`go_sql_max_open_connections{db_name="usergraph"} 4`,
		} {
			if !strings.Contains(metrics, want) {
				t.Errorf("/metrics lacks %s", want)
			}
		}
	})
	t.Run("NoLabelTakesAValueTheClientChose", func(t *testing.T) {
		for _, leak := range []string{"/users/" + u.ID, "Rename" + u.ID, "Probe", "nosuchfield123", "BREW", "trace-abc"} {
			if strings.Contains(metrics, leak) {
				t.Errorf("/metrics holds %q", leak)
			}
		}
	})

	logged := s.log.String()
	lines := requestLines(t, logged)
	t.Run("OneLinePerRequestWithItsID", func(t *testing.T) {
		if len(lines) != requests {
			t.Errorf("got %d request lines, want %d:\n%s", len(lines), requests, logged)
		}
		var sawPUT, sawForbidden bool
		for _, l := range lines {
			for _, field := range []string{"method", "route", "status", "duration_ms", "request_id"} {
				if _, ok := l[field]; !ok {
					t.Errorf("line without %s: %v", field, l)
				}
			}
			if l["route"] == "PUT /users/{id}" && l["request_id"] == "trace-abc.123" && l["status"] == 200.0 {
				sawPUT = true
			}
			if l["operation"] == "updateUser" && l["code"] == "FORBIDDEN" {
				sawForbidden = true
			}
		}
		if !sawPUT || !sawForbidden {
			t.Errorf("missing lines: PUT with its request ID %v, FORBIDDEN updateUser %v", sawPUT, sawForbidden)
		}
	})
	t.Run("LogHoldsNoTokenNorBody", func(t *testing.T) {
		for _, secret := range []string{own, other, s.AdminToken, secretEmail, "metered", testSecret} {
			if strings.Contains(logged, secret) {
				t.Errorf("the log holds %.40q", secret)
			}
		}
	})
}

// LOG_LEVEL reaches the running service's logger: at warn, the info lines of requests are not
// written. That a request line is info, and a probe's debug, is pinned in package telemetry.
func TestLogLevel(t *testing.T) {
	cases := []struct {
		name             string
		level            string
		wantRequestLines bool
	}{
		{"InfoWritesRequestLines", "info", true},
		{"WarnDropsRequestLines", "warn", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startRun(t, map[string]string{"DATABASE_URL": "sqlite::memory:", "JWT_SECRET": testSecret, "LOG_LEVEL": tc.level})
			for _, path := range []string{"/readyz", "/users/1"} {
				if resp, err := http.Get(r.URL + path); err == nil {
					resp.Body.Close()
				}
			}
			// The log is written out in batches; stopping the service writes out the last one,
			// so that a line the level let through cannot go unseen.
			r.cancel()
			if err := <-r.done; err != nil {
				t.Fatalf("run returned %v", err)
			}
			r.done <- nil // the cleanup waits on it too
			if got := strings.Contains(r.stderr.String(), `"msg":"request"`); got != tc.wantRequestLines {
				t.Errorf("request lines written: got %v, want %v:\n%s", got, tc.wantRequestLines, r.stderr.String())
			}
		})
	}
}

// Several instances started at once on an empty database all come up: the schema is created
// once, under a lock, and no instance needs state that another holds.
func TestReplicasStartTogether(t *testing.T) {
	if !dbtest.MySQLConfigured(t) {
		t.Skip("needs TEST_MYSQL_DSN: replicas share a MySQL database")
	}
	url := dbtest.MySQLURL(t)
	env := map[string]string{"DATABASE_URL": url, "JWT_SECRET": testSecret}
	replicas := make([]*running, 3)
	for i := range replicas {
		replicas[i] = launchRun(t, env)
	}
	for _, r := range replicas {
		r.waitHealthy(t)
	}
	a := replicas[0].adminClient(t)
	u := a.CreateUser(t, "replicated", "replicated@example.com")
	for i, r := range replicas {
		got := r.client().GraphQL(t, token(t, u.ID), `{ me { id } }`, nil)
		if !strings.Contains(string(got.Data["me"]), `"`+u.ID+`"`) {
			t.Errorf("replica %d: %s %+v", i, got.Data["me"], got.Errors)
		}
		name := fmt.Sprintf("replica-%d", i)
		if resp := r.client().Put(t, token(t, u.ID), u.ID, `{"username": "`+name+`"}`); resp.Status != 200 {
			t.Errorf("replica %d: PUT %d %s", i, resp.Status, resp.Body)
		}
	}
	db := dbtest.Open(t, url)
	var versions []int
	db.Raw("SELECT version FROM schema_migrations ORDER BY version").Scan(&versions)
	if !slices.Equal(versions, []int{1, 2}) {
		t.Errorf("schema_migrations = %v, want [1 2]", versions)
	}
}

// SIGTERM under load: the server stops taking connections, every request it had accepted
// completes with its answer, and run returns nil (the process exits 0).
func TestSIGTERMUnderLoad(t *testing.T) {
	url := dbtest.SQLiteURL(t)
	if dbtest.MySQLConfigured(t) {
		url = dbtest.MySQLURL(t)
	}
	r := startRun(t, map[string]string{"DATABASE_URL": url, "JWT_SECRET": testSecret})
	c := r.adminClient(t)

	type result struct {
		status int
		err    error
	}
	results := make(chan result, 100000)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 8 {
		u := c.CreateUser(t, fmt.Sprintf("loaded%d", w), fmt.Sprintf("loaded%d@example.com", w))
		bearer := "Bearer " + token(t, u.ID)
		// A connection per request: one refused after SIGTERM was never accepted, so it is not
		// a request the server dropped.
		client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 20 * time.Second}
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				req, _ := http.NewRequest(http.MethodPut, r.URL+"/users/"+u.ID, strings.NewReader(fmt.Sprintf(`{"username": "w%d-%d"}`, w, i)))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", bearer)
				resp, err := client.Do(req)
				if err != nil {
					results <- result{err: err}
					if errors.Is(err, syscall.ECONNREFUSED) {
						return
					}
					continue
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				results <- result{status: resp.StatusCode}
			}
		})
	}
	time.Sleep(500 * time.Millisecond)
	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Errorf("run returned %v, want nil", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
	close(stop)
	wg.Wait()
	close(results)
	ok, refused := 0, 0
	for res := range results {
		switch {
		case res.err == nil && res.status == 200:
			ok++
		case res.err != nil:
			// Refused, or reset while waiting in the kernel's accept queue when the listener
			// closed: never accepted by the server. The count below tells those from a request
			// the server took and then dropped.
			refused++
		default:
			t.Errorf("a request failed: status %d", res.status)
		}
	}
	if ok == 0 || refused == 0 {
		t.Errorf("%d requests succeeded and %d were refused: the load did not span the SIGTERM", ok, refused)
	}
	// Every request the server took in got its answer to the client.
	served := strings.Count(r.stderr.String(), `"route":"PUT /users/{id}"`)
	if served != ok {
		t.Errorf("the server answered %d PUTs, the clients received %d", served, ok)
	}
	if !regexp.MustCompile(`shutting down`).MatchString(r.stderr.String()) {
		t.Error("no shutdown line in the log")
	}
}
