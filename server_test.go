package main

import (
	"context"
	"net/http"
	"net/http/httptest"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"usergraph/auth"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// running is the program as run starts it, for end-to-end tests.
type running struct {
	URL    string
	stdout *apitest.SyncBuffer
	stderr *apitest.SyncBuffer
	cancel context.CancelFunc
	done   chan error
}

var servingLine = regexp.MustCompile(`serving on (http://localhost:\d+)/`)

// startRun calls run as main would, with env as the whole environment and PORT 0, and waits until
// /healthz answers.
func startRun(t *testing.T, env map[string]string) *running {
	t.Helper()
	r := launchRun(t, env)
	r.waitHealthy(t)
	return r
}

// launchRun calls run as main would, with env as the whole environment and PORT 0, and returns at
// once.
func launchRun(t *testing.T, env map[string]string) *running {
	own := map[string]string{"PORT": "0"}
	for k, v := range env {
		if k != "PORT" {
			own[k] = v
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{stdout: &apitest.SyncBuffer{}, stderr: &apitest.SyncBuffer{}, cancel: cancel, done: make(chan error, 1)}
	go func() {
		r.done <- run(ctx, []string{"usergraph"}, func(k string) string { return own[k] }, r.stdout, r.stderr)
	}()
	t.Cleanup(func() {
		cancel()
		<-r.done
	})
	return r
}

// waitHealthy waits until the program prints its address and answers /healthz there.
func (r *running) waitHealthy(t *testing.T) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		select {
		case err := <-r.done:
			r.done <- err // for the cleanup, which waits for it
			t.Fatalf("run returned early: %v\nstderr:\n%s", err, r.stderr.String())
		default:
		}
		if m := servingLine.FindStringSubmatch(r.stdout.String()); m != nil {
			r.URL = m[1]
			if resp, err := http.Get(r.URL + "/healthz"); err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					return
				}
			}
		}
	}
	t.Fatalf("the server did not become healthy\nstdout:\n%s\nstderr:\n%s", r.stdout.String(), r.stderr.String())
}

// stop cancels run's context, as SIGTERM does, and returns what run returned.
func (r *running) stop(t *testing.T) error {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		r.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after its context was cancelled")
		return nil
	}
}

// client talks to a running program as the test helpers talk to a test server.
func (r *running) client() *testServer {
	return &testServer{Client: apitest.Client{URL: r.URL}, log: r.stderr}
}

// adminClient is client with a valid admin token, for the requests that set up a test.
func (r *running) adminClient(t testing.TB) *testServer {
	c := r.client()
	c.AdminToken = token(t, "admin", "admin")
	return c
}

func TestRunPersistsAcrossRestarts(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		env := map[string]string{"DATABASE_URL": databaseURL, "JWT_SECRET": testSecret}
		first := startRun(t, env)
		c := first.adminClient(t)
		u := c.CreateUser(t, "persistent", "persistent@example.com")
		r := c.UpdateUser(t, token(t, u.ID), u.ID, map[string]any{"email": "kept@example.com"})
		if r.Code() != "" {
			t.Fatal(r.Errors)
		}
		if err := first.stop(t); err != nil {
			t.Fatalf("run returned %v after cancel, want nil", err)
		}

		second := startRun(t, env)
		r = second.client().GraphQL(t, token(t, u.ID), `{ me { `+apitest.UserFields+` } }`, nil)
		got := r.User(t, "me")
		if got == nil || got.Username != "persistent" || got.Email != "kept@example.com" || got.Version != 2 {
			t.Errorf("after a restart: %+v", got)
		}
	})
}

// Not parallel: the garbage collector's setting is the process's.
func TestRunSetsTheGCUnlessGOGCIsSet(t *testing.T) {
	for _, tc := range []struct {
		name, gogc string
		want       int
	}{
		{"DefaultWhenUnset", "", defaultGCPercent},
		{"OperatorsGOGCKept", "50", 100}, // the runtime applied GOGC itself; run must not undo it
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := debug.SetGCPercent(100)
			t.Cleanup(func() { debug.SetGCPercent(before) })
			startRun(t, map[string]string{"DATABASE_URL": "sqlite::memory:", "JWT_SECRET": testSecret, "GOGC": tc.gogc})
			if got := debug.SetGCPercent(100); got != tc.want {
				t.Errorf("GC percent %d, want %d", got, tc.want)
			}
		})
	}
}

func TestRunWithoutKeyPrintsAdminToken(t *testing.T) {
	r := startRun(t, map[string]string{"DATABASE_URL": "sqlite::memory:"})
	m := regexp.MustCompile(`(?m)^  (eyJ[\w-]+\.[\w-]+\.[\w-]+)$`).FindStringSubmatch(r.stdout.String())
	if m == nil {
		t.Fatalf("no token in stdout:\n%s", r.stdout.String())
	}
	if !strings.Contains(r.stderr.String(), `"level":"WARN"`) || !strings.Contains(r.stderr.String(), "JWT_SECRET") {
		t.Errorf("no warning about the ephemeral key in the log:\n%s", r.stderr.String())
	}
	c := r.client()
	c.AdminToken = m[1]
	u := c.CreateUser(t, "firstuser", "first@example.com")
	resp := c.UpdateUser(t, m[1], u.ID, map[string]any{"username": "renamed"})
	if got := resp.User(t, "updateUser"); got.Username != "renamed" {
		t.Errorf("got %+v", got)
	}
}

func TestRunRefusesBadConfiguration(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		want []string // one line naming each bad variable
	}{
		{"PortNotANumber", map[string]string{"PORT": "http"}, []string{"PORT: "}},
		{"PortTooLarge", map[string]string{"PORT": "65536"}, []string{"PORT: "}},
		{"ShortSecret", map[string]string{"JWT_SECRET": "short"}, []string{"JWT_SECRET: must be at least 32 bytes"}},
		{"UnknownDatabase", map[string]string{"DATABASE_URL": "postgres://localhost/users"}, []string{"DATABASE_URL: "}},
		{"MySQLWithoutDatabaseName", map[string]string{"DATABASE_URL": "mysql://root@localhost:3306"}, []string{"DATABASE_URL: "}},
		{"EmptySQLitePath", map[string]string{"DATABASE_URL": "sqlite:"}, []string{"DATABASE_URL: "}},
		{"BadRolesClaim", map[string]string{"JWT_ROLES_CLAIM": "realm..roles"}, []string{"JWT_ROLES_CLAIM: "}},
		{"JWKSURLNotHTTP", map[string]string{"JWKS_URL": "file:///etc/keys.json"}, []string{"JWKS_URL: must be an http(s) URL"}},
		{"JWKSUnreachableAndNoSecret", map[string]string{"JWKS_URL": "http://127.0.0.1:1/jwks.json", "DATABASE_URL": "sqlite::memory:"}, []string{"JWKS_URL: fetching the key set"}},
		{"SeveralAtOnce", map[string]string{"PORT": "x", "JWT_SECRET": "short"}, []string{"PORT: ", "JWT_SECRET: "}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr apitest.SyncBuffer
			err := run(context.Background(), []string{"usergraph"}, func(k string) string { return tc.env[k] }, &stdout, &stderr)
			if err == nil {
				t.Fatal("run accepted the configuration")
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tc.want) {
				t.Fatalf("error %q: %d lines, want %d", err, len(lines), len(tc.want))
			}
			for i, want := range tc.want {
				if !strings.HasPrefix(lines[i], want) {
					t.Errorf("line %d = %q, want it to start with %q", i, lines[i], want)
				}
			}
			if strings.Contains(err.Error(), "secret-password") {
				t.Errorf("error reveals a password: %q", err)
			}
		})
	}
	t.Run("PasswordNotRepeated", func(t *testing.T) {
		env := map[string]string{"DATABASE_URL": "mysql://root:secret-password@localhost:3306/db?parseTime=maybe"}
		err := run(context.Background(), []string{"usergraph"}, func(k string) string { return env[k] }, &apitest.SyncBuffer{}, &apitest.SyncBuffer{})
		if err == nil || !strings.HasPrefix(err.Error(), "DATABASE_URL: ") || strings.Contains(err.Error(), "secret-password") {
			t.Errorf("got %v", err)
		}
	})
}

func TestTokenCommand(t *testing.T) {
	env := map[string]string{"JWT_SECRET": testSecret}
	var stdout, stderr apitest.SyncBuffer
	err := run(context.Background(), []string{"usergraph", "token", "-sub", "42", "-roles", "admin", "-ttl", "2h"},
		func(k string) string { return env[k] }, &stdout, &stderr)
	if err != nil {
		t.Fatal(err, stderr.String())
	}
	v, _ := auth.NewVerifier(context.Background(), testAuth)
	caller, err := v.Verify(context.Background(), strings.TrimSpace(stdout.String()))
	if err != nil {
		t.Fatalf("the printed token does not verify: %v", err)
	}
	if caller.UserID != "42" || !caller.Admin {
		t.Errorf("caller = %+v, want user 42, admin", caller)
	}

	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"NoSubject", []string{"usergraph", "token"}, env, "-sub is required"},
		{"NoSecret", []string{"usergraph", "token", "-sub", "1"}, map[string]string{}, "JWT_SECRET: "},
		{"BadTTL", []string{"usergraph", "token", "-sub", "1", "-ttl", "soon"}, env, "invalid value"},
		{"NegativeTTL", []string{"usergraph", "token", "-sub", "1", "-ttl", "-1h"}, env, "lifetime must be positive"},
		{"UnknownCommand", []string{"usergraph", "serve"}, env, `unknown command "serve"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), tc.args, func(k string) string { return tc.env[k] }, &apitest.SyncBuffer{}, &apitest.SyncBuffer{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// SIGTERM while a request is in flight: the server stops taking new connections, the request
// completes, and run returns nil.
func TestSIGTERMDrainsInFlightRequests(t *testing.T) {
	path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
	r := startRun(t, map[string]string{"DATABASE_URL": "sqlite:" + path + "?_pragma=busy_timeout(5000)", "JWT_SECRET": testSecret})
	c := r.adminClient(t)
	u := c.CreateUser(t, "inflight", "inflight@example.com")

	// Hold the write lock, so that the update waits inside the server.
	release := dbtest.LockSQLite(t, path)
	defer release()
	result := make(chan apitest.GraphQLResponse, 1)
	go func() { result <- c.UpdateUser(t, token(t, u.ID), u.ID, map[string]any{"username": "drained"}) }()
	time.Sleep(200 * time.Millisecond) // the request is now waiting on the lock

	if err := syscall.Kill(syscall.Getpid(), syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	time.Sleep(200 * time.Millisecond)
	if _, err := http.Get(r.URL + "/healthz"); err == nil {
		t.Error("the server still accepts connections after SIGTERM")
	}
	release()

	select {
	case resp := <-result:
		if got := resp.User(t, "updateUser"); got.Username != "drained" {
			t.Errorf("in-flight update: %+v", resp)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the in-flight request did not complete")
	}
	select {
	case err := <-r.done:
		r.done <- err
		if err != nil {
			t.Errorf("run returned %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("run did not return after SIGTERM")
	}
}

// The healthcheck command, which container health checks run: it succeeds against a ready
// server on PORT, and fails where none answers.
func TestHealthcheckCommand(t *testing.T) {
	r := startRun(t, map[string]string{"DATABASE_URL": "sqlite::memory:", "JWT_SECRET": testSecret})
	port := r.URL[strings.LastIndex(r.URL, ":")+1:]
	for _, tc := range []struct {
		name, port string
		ok         bool
	}{
		{"ReadyServer", port, true},
		{"NothingListening", strconv.Itoa(freePort(t)), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(context.Background(), []string{"usergraph", "healthcheck"}, func(k string) string {
				return map[string]string{"PORT": tc.port}[k]
			}, &apitest.SyncBuffer{}, &apitest.SyncBuffer{})
			if (err == nil) != tc.ok {
				t.Errorf("healthcheck on port %s: %v, want success %v", tc.port, err, tc.ok)
			}
		})
	}
}

// Every API request carries REQUEST_TIMEOUT as its deadline, which the database calls it makes
// obey; a request without one could wait on a hung database for ever.
func TestAPIRequestsHaveADeadline(t *testing.T) {
	const timeout = time.Minute
	var got time.Time
	var ok bool
	srv := httptest.NewServer(withDeadline(timeout, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok = r.Context().Deadline()
	})))
	defer srv.Close()
	start := time.Now()
	resp, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if !ok || got.Before(start.Add(timeout)) || got.After(time.Now().Add(timeout)) {
		t.Errorf("deadline %v (set: %v), want %s after the request", got, ok, timeout)
	}
}
