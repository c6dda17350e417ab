package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
	"usergraph/internal/testenv"
)

// mariaDB is a MariaDB server of the test's own, on a temporary data directory and a free port,
// which the test can kill and start again, as a crash or a failover would.
type mariaDB struct {
	t       *testing.T
	bin     string
	datadir string
	port    int
	cmd     *exec.Cmd
	log     *apitest.SyncBuffer
}

// startMariaDB starts a fresh MariaDB server. Where mariadbd is not installed, the test is
// skipped, except in CI, where that is a failure.
func startMariaDB(t *testing.T) *mariaDB {
	t.Helper()
	bin, err := exec.LookPath("mariadbd")
	if err != nil {
		bin = "/usr/sbin/mariadbd"
	}
	install, err := exec.LookPath("mariadb-install-db")
	if _, statErr := os.Stat(bin); statErr != nil || err != nil {
		testenv.Require(t, "a database the test can stop", "mariadbd and mariadb-install-db (Debian's mariadb-server package)")
	}
	m := &mariaDB{t: t, bin: bin, datadir: t.TempDir(), port: freePort(t), log: &apitest.SyncBuffer{}}
	args := []string{"--no-defaults", "--datadir=" + m.datadir, "--auth-root-authentication-method=normal", "--skip-test-db"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	if out, err := exec.Command(install, args...).CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.start()
	t.Cleanup(m.kill)
	return m
}

func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// start runs mariadbd and waits until it answers.
func (m *mariaDB) start() {
	m.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + m.datadir, "--port=" + strconv.Itoa(m.port),
		"--bind-address=127.0.0.1", "--socket=" + m.datadir + "/mysqld.sock", "--pid-file=" + m.datadir + "/mysqld.pid",
		"--skip-log-bin", "--innodb-buffer-pool-size=32M"}
	if os.Geteuid() == 0 {
		args = append(args, "--user=root")
	}
	m.cmd = exec.Command(m.bin, args...)
	m.cmd.Stdout, m.cmd.Stderr = m.log, m.log
	if err := m.cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	db, _ := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.port))
	defer db.Close()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if db.Ping() == nil {
			return
		}
	}
	m.t.Fatalf("mariadbd did not start:\n%s", m.log.String())
}

// kill stops mariadbd at once, as a crash would: no clean shutdown.
func (m *mariaDB) kill() {
	if m.cmd == nil || m.cmd.Process == nil {
		return
	}
	m.cmd.Process.Kill()
	m.cmd.Wait()
	m.cmd = nil
}

func (m *mariaDB) exec(query string) {
	m.t.Helper()
	db, _ := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.port))
	defer db.Close()
	if _, err := db.Exec(query); err != nil {
		m.t.Fatal(err)
	}
}

// The database crashes mid-traffic and comes back: while it is down, /readyz is 503, REST 503
// with Retry-After and GraphQL SERVICE_UNAVAILABLE, and no request hangs past its deadline; when
// it is back, the service recovers without a restart, and no acknowledged update is lost.
func TestDatabaseOutageAndRecovery(t *testing.T) {
	m := startMariaDB(t)
	m.exec("CREATE DATABASE usergraph")
	const requestTimeout = 2 * time.Second
	r := startRun(t, map[string]string{
		"DATABASE_URL":    fmt.Sprintf("mysql://root@127.0.0.1:%d/usergraph", m.port),
		"JWT_SECRET":      testSecret,
		"REQUEST_TIMEOUT": requestTimeout.String(),
	})
	c := r.adminClient(t)
	// A deadline plus generous room: a request that takes longer hangs.
	client := &http.Client{Timeout: 3 * requestTimeout}

	type writer struct {
		id, bearer string
		mu         sync.Mutex
		acked      string   // the last username a 200 acknowledged
		since      []string // usernames tried since, whose fate is unknown
		statuses   map[int]int
	}
	writers := make([]*writer, 4)
	for i := range writers {
		u := c.CreateUser(t, fmt.Sprintf("outage%d", i), fmt.Sprintf("outage%d@example.com", i))
		writers[i] = &writer{id: u.ID, bearer: "Bearer " + token(t, u.ID), acked: u.Username, statuses: map[int]int{}}
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for i, w := range writers {
		wg.Go(func() {
			for seq := 0; ; seq++ {
				select {
				case <-stop:
					return
				default:
				}
				name := fmt.Sprintf("w%d-%d", i, seq)
				w.mu.Lock()
				w.since = append(w.since, name)
				w.mu.Unlock()
				req, _ := http.NewRequest(http.MethodPut, r.URL+"/users/"+w.id, strings.NewReader(`{"username": "`+name+`"}`))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", w.bearer)
				resp, err := client.Do(req)
				if err != nil {
					t.Errorf("writer %d: %v", i, err)
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				w.mu.Lock()
				w.statuses[resp.StatusCode]++
				if resp.StatusCode == http.StatusOK {
					w.acked, w.since = name, nil
				} else if resp.StatusCode == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "" {
					t.Errorf("writer %d: 503 without Retry-After", i)
				}
				w.mu.Unlock()
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	status := func(method, path, body string) (int, http.Header, []byte) {
		req, _ := http.NewRequest(method, r.URL+path, strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+c.AdminToken)
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, b
	}
	waitFor := func(what string, cond func() bool) {
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if cond() {
				return
			}
		}
		t.Fatalf("waited 30 s for %s", what)
	}

	time.Sleep(300 * time.Millisecond)
	m.kill()
	waitFor("/readyz to turn 503", func() bool { s, _, _ := status("GET", "/readyz", ""); return s == 503 })
	if s, h, body := status("PUT", "/users/"+writers[0].id, `{"username": "during-outage"}`); s != 503 || h.Get("Retry-After") == "" || !strings.Contains(string(body), `"SERVICE_UNAVAILABLE"`) {
		t.Errorf("REST during the outage: %d %q %s", s, h.Get("Retry-After"), body)
	}
	if _, _, body := status("POST", "/graphql", `{"query": "{ users(first: 1) { edges { cursor } } }"}`); !strings.Contains(string(body), `"code":"SERVICE_UNAVAILABLE"`) {
		t.Errorf("GraphQL during the outage: %s", body)
	}
	time.Sleep(time.Second)

	m.start()
	waitFor("/readyz to turn 200", func() bool { s, _, _ := status("GET", "/readyz", ""); return s == 200 })
	for _, w := range writers {
		waitFor("an update to succeed after the outage", func() bool {
			w.mu.Lock()
			defer w.mu.Unlock()
			return w.statuses[200] > 0 && len(w.since) < 3
		})
	}
	close(stop)
	wg.Wait()

	for i, w := range writers {
		for code := range w.statuses {
			if code != 200 && code != 503 {
				t.Errorf("writer %d: %d answers of %d", i, w.statuses[code], code)
			}
		}
		if w.statuses[503] == 0 {
			t.Errorf("writer %d never saw the outage: %v", i, w.statuses)
		}
		_, _, body := status("GET", "/users/"+w.id, "")
		var got struct{ Username string }
		json.Unmarshal(body, &got)
		// The last acknowledged name, or one tried after it whose answer did not arrive.
		if got.Username != w.acked && !slices.Contains(w.since, got.Username) {
			t.Errorf("writer %d: stored %q, last acknowledged %q (then tried %v)", i, got.Username, w.acked, w.since)
		}
	}
}

// A service started while its database is down waits for it, retrying, and comes up when it
// does: in a deployment the service often starts first.
func TestStartUpWaitsForTheDatabase(t *testing.T) {
	m := startMariaDB(t)
	m.exec("CREATE DATABASE usergraph")
	m.kill()
	r := launchRun(t, map[string]string{
		"DATABASE_URL":       fmt.Sprintf("mysql://root@127.0.0.1:%d/usergraph", m.port),
		"JWT_SECRET":         testSecret,
		"DB_CONNECT_TIMEOUT": "60s",
	})
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(r.stderr.String(), "does not answer yet") {
		if time.Now().After(deadline) {
			t.Fatalf("no retry in the log:\n%s", r.stderr.String())
		}
		select {
		case err := <-r.done:
			t.Fatalf("run gave up at once: %v", err)
		case <-time.After(50 * time.Millisecond):
		}
	}
	m.start()
	r.waitHealthy(t)
	c := r.adminClient(t)
	c.CreateUser(t, "latecomer", "latecomer@example.com")
}

// Retrying is for a database that cannot be reached; one that refuses the credentials will not
// change its mind, and start-up fails at once.
func TestStartUpFailsAtOnceOnBadCredentials(t *testing.T) {
	if !dbtest.MySQLConfigured(t) {
		t.Skip("needs TEST_MYSQL_DSN: a MySQL server to refuse the credentials")
	}
	u, _ := url.Parse(dbtest.MySQLURL(t))
	u.User = url.UserPassword("nobody", "wrong-password")
	env := map[string]string{"DATABASE_URL": u.String(), "JWT_SECRET": testSecret, "DB_CONNECT_TIMEOUT": "10m", "PORT": "0"}
	err := run(context.Background(), []string{"usergraph"}, func(k string) string { return env[k] }, &apitest.SyncBuffer{}, &apitest.SyncBuffer{})
	if err == nil || !strings.Contains(err.Error(), "Access denied") || strings.Contains(err.Error(), "did not answer within") {
		t.Errorf("got %v, want an immediate access-denied error", err)
	}
	if err != nil && strings.Contains(err.Error(), "wrong-password") {
		t.Errorf("the error repeats the password: %v", err)
	}
}
