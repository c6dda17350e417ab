package main

import (
	"bytes"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"

	"usergraph/database"
	"usergraph/idempotency"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// vitessName returns a name for a test on the shared keyspace that no other run of the tests
// uses: the keyspace outlives a run when the cluster is not restarted.
func vitessName(prefix string) string {
	b := make([]byte, 4)
	rand.Read(b)
	return apitest.Uniq(prefix + hex.EncodeToString(b) + "-")
}

// The service on a sharded Vitess keyspace (deploy/vitess): the behaviours that depend on the
// database hold there as on one MySQL server.
func TestVitess(t *testing.T) {
	vitessURL := dbtest.VitessURL(t)
	r := startRun(t, map[string]string{"DATABASE_URL": vitessURL, "JWT_SECRET": testSecret})
	c := r.adminClient(t)
	newUser := func(t *testing.T) (*apitest.User, string) {
		t.Helper()
		name := vitessName("vt")
		u := c.CreateUser(t, name, strings.ToLower(name)+"@example.com")
		return u, token(t, u.ID)
	}

	t.Run("IDsFromTheSequence", func(t *testing.T) {
		var ids []int
		for range 3 {
			u, _ := newUser(t)
			var id int
			fmt.Sscan(u.ID, &id)
			ids = append(ids, id)
		}
		if !slices.IsSorted(ids) || ids[0] == ids[1] || ids[1] == ids[2] {
			t.Errorf("IDs %v, want three, increasing", ids)
		}
	})

	t.Run("RenamesToOneNameOneWinner", func(t *testing.T) {
		const n = 16
		type caller struct{ id, token string }
		callers := make([]caller, n)
		for i := range callers {
			u, tok := newUser(t)
			callers[i] = caller{u.ID, tok}
		}
		name := vitessName("contested")
		statuses := make([]int, n)
		codes := make([]string, n)
		var wg sync.WaitGroup
		for i, cl := range callers {
			wg.Go(func() {
				resp := c.Put(t, cl.token, cl.id, `{"username": "`+name+`"}`)
				statuses[i] = resp.Status
				if resp.Status != http.StatusOK {
					codes[i] = resp.Problem(t).Code
				}
			})
		}
		wg.Wait()
		wantOneWinner(t, statuses, codes)
	})

	t.Run("CreatesOfOneNameOneWinner", func(t *testing.T) {
		const n = 16
		name := vitessName("created")
		statuses := make([]int, n)
		codes := make([]string, n)
		var wg sync.WaitGroup
		for i := range n {
			wg.Go(func() {
				resp := c.GraphQL(t, c.AdminToken, `mutation($in: CreateUserInput!) { createUser(input: $in) { id } }`,
					map[string]any{"in": map[string]any{"username": name, "email": fmt.Sprintf("%s-%d@example.com", strings.ToLower(name), i)}})
				statuses[i], codes[i] = http.StatusOK, resp.Code()
				if codes[i] != "" {
					statuses[i] = http.StatusConflict
				}
			})
		}
		wg.Wait()
		wantOneWinner(t, statuses, codes)
	})

	t.Run("PagingAcrossShards", func(t *testing.T) {
		own := map[string]bool{}
		for range 10 {
			u, _ := newUser(t)
			own[u.ID] = false
		}
		var last int
		after := ""
		for page := 0; ; page++ {
			vars := map[string]any{"first": 7}
			if after != "" {
				vars["after"] = after
			}
			resp := c.GraphQL(t, c.AdminToken, `query($first: Int, $after: String) { users(first: $first, after: $after) { edges { node { id } } pageInfo { hasNextPage endCursor } } }`, vars)
			var got struct {
				Edges []struct {
					Node struct{ ID string } `json:"node"`
				} `json:"edges"`
				PageInfo struct {
					HasNextPage bool   `json:"hasNextPage"`
					EndCursor   string `json:"endCursor"`
				} `json:"pageInfo"`
			}
			if resp.Code() != "" || json.Unmarshal(resp.Data["users"], &got) != nil {
				t.Fatalf("page %d: %s %+v", page, resp.Data["users"], resp.Errors)
			}
			for _, e := range got.Edges {
				var id int
				fmt.Sscan(e.Node.ID, &id)
				if id <= last {
					t.Fatalf("page %d: ID %d after %d: not in ID order", page, id, last)
				}
				last = id
				if seen, ok := own[e.Node.ID]; ok {
					if seen {
						t.Errorf("user %s listed twice", e.Node.ID)
					}
					own[e.Node.ID] = true
				}
			}
			if !got.PageInfo.HasNextPage {
				break
			}
			after = got.PageInfo.EndCursor
		}
		for id, seen := range own {
			if !seen {
				t.Errorf("user %s never listed", id)
			}
		}
	})

	t.Run("IfMatch", func(t *testing.T) {
		u, tok := newUser(t)
		got := c.REST(t, http.MethodGet, "/users/"+u.ID, http.Header{"Authorization": {"Bearer " + tok}}, "")
		etag := got.Header.Get("ETag")
		if r := c.Put(t, tok, u.ID, `{"username": "`+vitessName("matched")+`"}`, "If-Match", etag); r.Status != http.StatusOK {
			t.Errorf("with the current ETag: %d %s", r.Status, r.Body)
		}
		if r := c.Put(t, tok, u.ID, `{"username": "`+vitessName("stale")+`"}`, "If-Match", etag); r.Status != http.StatusPreconditionFailed {
			t.Errorf("with a stale ETag: %d %s, want 412", r.Status, r.Body)
		}
	})

	t.Run("IdempotencyKeyReplayed", func(t *testing.T) {
		u, tok := newUser(t)
		key, body := vitessName("key"), `{"username": "`+vitessName("once")+`"}`
		first := c.Put(t, tok, u.ID, body, idempotency.Header, key)
		retry := c.Put(t, tok, u.ID, body, idempotency.Header, key)
		if first.Status != http.StatusOK || string(retry.Body) != string(first.Body) || retry.Header.Get(idempotency.ReplayedHeader) != "true" {
			t.Errorf("got %d %s, then %d %s, want a replay", first.Status, first.Body, retry.Status, retry.Body)
		}
	})

	t.Run("ReplicasStartTogether", func(t *testing.T) {
		u, tok := newUser(t)
		replicas := make([]*running, 3)
		for i := range replicas {
			replicas[i] = launchRun(t, map[string]string{"DATABASE_URL": vitessURL, "JWT_SECRET": testSecret, "DB_MAX_OPEN_CONNS": "4"})
		}
		for i, rep := range replicas {
			rep.waitHealthy(t)
			if resp := rep.client().Put(t, tok, u.ID, `{"username": "`+vitessName("replica")+`"}`); resp.Status != http.StatusOK {
				t.Errorf("replica %d: PUT %d %s", i, resp.Status, resp.Body)
			}
		}
	})

	t.Run("StartUpWithoutTheSchemaSaysWhatToApply", func(t *testing.T) {
		// vtgate makes a new, empty keyspace of a database created through it.
		u, _ := url.Parse(vitessURL)
		bare := "usergraph_bare_" + strings.NewReplacer("-", "_", ".", "_").Replace(vitessName(""))
		admin := openVitess(t, u)
		if _, err := admin.Exec("CREATE DATABASE " + bare); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { admin.Exec("DROP DATABASE " + bare) })
		u.Path = "/" + bare
		r := launchRun(t, map[string]string{"DATABASE_URL": u.String(), "JWT_SECRET": testSecret})
		select {
		case err := <-r.done:
			r.done <- err
			if err == nil || !strings.Contains(err.Error(), "deploy/vitess") {
				t.Errorf("run returned %v, want a line saying to apply deploy/vitess", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("the service started on a keyspace without its schema")
		}
	})
}

// Twice as many renames at once as the tablets' transaction cap takes (deploy/vitess/cluster's
// 20), through a pool that lets them all through: each is answered 200 or 503 with Retry-After,
// never 500, and none outlives the request deadline.
func TestVitessOverload(t *testing.T) {
	vitessURL := dbtest.VitessURL(t)
	const timeout = 5 * time.Second
	r := startRun(t, map[string]string{"DATABASE_URL": vitessURL, "JWT_SECRET": testSecret,
		"DB_MAX_OPEN_CONNS": "64", "REQUEST_TIMEOUT": timeout.String()})
	c := r.adminClient(t)
	const n = 64
	type caller struct{ id, token string }
	callers := make([]caller, n)
	for i := range callers {
		name := vitessName("load")
		u := c.CreateUser(t, name, strings.ToLower(name)+"@example.com")
		callers[i] = caller{u.ID, token(t, u.ID)}
	}
	counts := map[int]int{}
	var mu sync.Mutex
	for round := range 3 {
		var wg sync.WaitGroup
		for _, cl := range callers {
			wg.Go(func() {
				start := time.Now()
				resp := c.Put(t, cl.token, cl.id, `{"username": "`+vitessName(fmt.Sprintf("r%d-", round))+`"}`)
				took := time.Since(start)
				mu.Lock()
				defer mu.Unlock()
				counts[resp.Status]++
				switch {
				case resp.Status == http.StatusServiceUnavailable && resp.Header.Get("Retry-After") == "":
					t.Errorf("503 without Retry-After: %s", resp.Body)
				case resp.Status != http.StatusOK && resp.Status != http.StatusServiceUnavailable:
					t.Errorf("got %d %s, want 200 or 503", resp.Status, resp.Body)
				}
				if took > timeout+2*time.Second {
					t.Errorf("a rename took %s, past the %s deadline", took, timeout)
				}
			})
		}
		wg.Wait()
	}
	t.Logf("%d renames, %d at a time: %v (status: count)", 3*n, n, counts)
}

// wantOneWinner fails t unless exactly one of the racing writes succeeded and every other was a
// CONFLICT.
func wantOneWinner(t *testing.T, statuses []int, codes []string) {
	t.Helper()
	won := 0
	for i, s := range statuses {
		switch {
		case s == http.StatusOK:
			won++
		case codes[i] != "CONFLICT":
			t.Errorf("a loser got %d %s, want CONFLICT", s, codes[i])
		}
	}
	if won != 1 {
		t.Errorf("%d writes won, want 1 (statuses %v, codes %v)", won, statuses, codes)
	}
}

// openVitess connects to the vtgate of u, for what a test does outside the service.
func openVitess(t *testing.T, u *url.URL) *sql.DB {
	t.Helper()
	cfg, err := database.ParseURL(u.String())
	if err != nil {
		t.Fatal(err)
	}
	mc, err := mysql.ParseDSN(cfg.DSN)
	if err != nil {
		t.Fatal(err)
	}
	mc.DBName = ""
	db, err := sql.Open("mysql", mc.FormatDSN())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

// The shard's primary goes away and comes back (the cluster's mysqld killed as a crash would, and
// started again): meanwhile updates are refused with 503, never 500; afterwards they succeed
// again with no restart of the service, and no update that was acknowledged is lost.
func TestVitessPrimaryRestarts(t *testing.T) {
	vitessURL := dbtest.VitessURL(t)
	r := startRun(t, map[string]string{"DATABASE_URL": vitessURL, "JWT_SECRET": testSecret,
		"DB_MAX_OPEN_CONNS": "4", "REQUEST_TIMEOUT": "3s"})
	t.Cleanup(func() {
		if t.Failed() {
			for line := range strings.Lines(r.stderr.String()) {
				if strings.Contains(line, `"level":"ERROR"`) {
					t.Logf("server: %s", line)
				}
			}
		}
	})
	c := r.adminClient(t)
	name := vitessName("restart")
	u := c.CreateUser(t, name, strings.ToLower(name)+"@example.com")
	own := token(t, u.ID)

	var acknowledged string
	rename := func() int {
		next := vitessName("restart")
		resp := c.Put(t, own, u.ID, `{"username": "`+next+`"}`)
		switch resp.Status {
		case http.StatusOK:
			acknowledged = next
		case http.StatusServiceUnavailable:
		default:
			t.Errorf("got %d %s, want 200 or 503", resp.Status, resp.Body)
		}
		return resp.Status
	}
	for range 8 { // every connection of the pool in use once
		if s := rename(); s != http.StatusOK {
			t.Fatalf("before the restart: %d", s)
		}
	}

	// Updates go on, from several callers at once, while mysqld dies: some are cut off in the
	// middle of their statements.
	var statuses []int
	var mu sync.Mutex
	record := func(s int) {
		mu.Lock()
		defer mu.Unlock()
		statuses = append(statuses, s)
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 4 {
		name := vitessName("bystander")
		b := c.CreateUser(t, name, strings.ToLower(name)+"@example.com")
		bearer := token(t, b.ID)
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				resp := c.Put(t, bearer, b.ID, `{"username": "`+vitessName("bystander")+`"}`)
				if resp.Status != http.StatusOK && resp.Status != http.StatusServiceUnavailable {
					t.Errorf("during the restart: got %d %s, want 200 or 503", resp.Status, resp.Body)
				}
				record(resp.Status)
			}
		})
	}
	time.Sleep(100 * time.Millisecond)
	out, err := exec.Command("deploy/vitess/cluster", "crash-mysqld").CombinedOutput()
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatalf("crash-mysqld: %v\n%s", err, out)
	}
	t.Logf("%s", bytes.TrimSpace(out))

	// Recovered: twenty updates in a row succeed, within a minute.
	for ok, deadline := 0, time.Now().Add(time.Minute); ok < 20; {
		if time.Now().After(deadline) {
			t.Fatalf("no recovery within a minute; statuses since the restart: %v", statuses)
		}
		s := rename()
		record(s)
		if s == http.StatusOK {
			ok++
		} else {
			ok = 0
			time.Sleep(200 * time.Millisecond)
		}
	}
	t.Logf("statuses since the restart: %v", statuses)
	got := c.REST(t, http.MethodGet, "/users/"+u.ID, http.Header{"Authorization": {"Bearer " + own}}, "")
	if !strings.Contains(string(got.Body), `"username":"`+acknowledged+`"`) {
		t.Errorf("stored %s, want the last acknowledged username %s", got.Body, acknowledged)
	}
}
