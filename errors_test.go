package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"usergraph/auth"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// Two requests racing to give different users the same username, or email, in different letter
// cases: the database lets exactly one win, and the rest get CONFLICT naming the field.
func TestConcurrentWritersCannotBothWin(t *testing.T) {
	t.Parallel()
	const writers = 16
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		for _, field := range []string{"username", "email"} {
			t.Run(field, func(t *testing.T) {
				base := apitest.Uniq("racer")
				if field == "email" {
					base += "@example.com"
				}
				type contender struct{ id, token string }
				var contenders []contender
				for range writers {
					u, tok := s.newUser(t)
					contenders = append(contenders, contender{u.ID, tok})
				}
				results := make([]apitest.GraphQLResponse, writers)
				var wg sync.WaitGroup
				start := make(chan struct{})
				for i, c := range contenders {
					wg.Go(func() {
						<-start
						results[i] = s.UpdateUser(t, c.token, c.id, map[string]any{field: caseVariant(base, i)})
					})
				}
				close(start)
				wg.Wait()

				s.oneWonTheRest(t, results, field, base)
			})
		}

		// Many creates of one name at once: the unique index decides, and each loser hears
		// CONFLICT, never an error of the database's (InnoDB may make concurrent inserts of one
		// key deadlock, and the store makes the victim's insert again).
		t.Run("create", func(t *testing.T) {
			base := apitest.Uniq("founder")
			results := make([]apitest.GraphQLResponse, writers)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range writers {
				wg.Go(func() {
					<-start
					results[i] = s.GraphQL(t, s.AdminToken, `mutation($in: CreateUserInput!) { createUser(input: $in) { id } }`,
						map[string]any{"in": map[string]any{"username": caseVariant(base, i), "email": fmt.Sprintf("%s-%d@example.com", base, i)}})
				})
			}
			close(start)
			wg.Wait()
			s.oneWonTheRest(t, results, "username", base)
		})
	})
}

// oneWonTheRest fails the test unless exactly one of results succeeded, every other was refused
// with CONFLICT on field, and exactly one user holds value in field.
func (s *testServer) oneWonTheRest(t *testing.T, results []apitest.GraphQLResponse, field, value string) {
	t.Helper()
	won := 0
	for i, r := range results {
		switch {
		case r.Code() == "":
			won++
		case r.Code() != "CONFLICT" || r.Field() != field:
			t.Errorf("writer %d: got %q %q, want success or CONFLICT %s: %+v", i, r.Code(), r.Field(), field, r.Errors)
		}
	}
	var holders int64
	s.DB.Table("users").Where(field+"_key = ?", strings.ToLower(value)).Count(&holders)
	if won != 1 || holders != 1 {
		t.Errorf("%d writers won and %d users hold %q, want 1 and 1", won, holders, value)
	}
}

// caseVariant spells s with the letters upper-cased where the bits of i say.
func caseVariant(s string, i int) string {
	b := []byte(s)
	for j, bit := 0, 0; j < len(b) && bit < 8; j++ {
		if 'a' <= b[j] && b[j] <= 'z' {
			if i&(1<<bit) != 0 {
				b[j] -= 'a' - 'A'
			}
			bit++
		}
	}
	return string(b)
}

// When the database cannot be reached or is locked past the busy timeout, an operation fails
// with SERVICE_UNAVAILABLE and the user is unchanged.
func TestDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	t.Run("sqlite", func(t *testing.T) {
		s, lock := newLockableSQLiteServer(t)
		u, tok := s.newUser(t)

		release := lock()
		r := s.UpdateUser(t, tok, u.ID, map[string]any{"username": apitest.Uniq("locked")})
		release()
		if r.Code() != "SERVICE_UNAVAILABLE" {
			t.Fatalf("got %q, want SERVICE_UNAVAILABLE: %+v", r.Code(), r.Errors)
		}
		if got := dbtest.Stored(t, s.DB, u.ID).Username; got != u.Username {
			t.Errorf("username changed to %q", got)
		}
		if r := s.UpdateUser(t, tok, u.ID, map[string]any{"username": apitest.Uniq("unlocked")}); r.Code() != "" {
			t.Errorf("after the lock is released: %+v", r.Errors)
		}
	})
	if !dbtest.MySQLConfigured(t) {
		return
	}
	t.Run("mysql", func(t *testing.T) {
		direct := dbtest.MySQLURL(t)
		u, err := url.Parse(direct)
		if err != nil {
			t.Fatal(err)
		}
		proxy := dbtest.NewProxy(t, u.Host)
		u.Host = proxy.Addr()
		s := newTestServer(t, u.String())
		user, tok := s.newUser(t)

		ready := func() int {
			resp, err := http.Get(s.URL + "/readyz")
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			return resp.StatusCode
		}
		if got := ready(); got != http.StatusOK {
			t.Errorf("/readyz = %d before the cut, want 200", got)
		}
		proxy.Cut()
		if got := ready(); got != http.StatusServiceUnavailable {
			t.Errorf("/readyz = %d during the cut, want 503", got)
		}
		for _, q := range []struct{ name, query string }{
			{"Update", apitest.UpdateMutation},
			{"Me", `{ me { id } }`},
		} {
			r := s.GraphQL(t, tok, q.query, map[string]any{"id": user.ID, "in": map[string]any{"username": apitest.Uniq("cut")}})
			if r.Code() != "SERVICE_UNAVAILABLE" {
				t.Errorf("%s: got %q, want SERVICE_UNAVAILABLE: %+v", q.name, r.Code(), r.Errors)
			}
			if strings.Contains(r.Errors[0].Message, proxy.Addr()) || strings.Contains(r.Errors[0].Message, "tcp") {
				t.Errorf("%s: message reveals internals: %q", q.name, r.Errors[0].Message)
			}
		}

		proxy.Resume()
		if got := ready(); got != http.StatusOK {
			t.Errorf("/readyz = %d after the cut, want 200", got)
		}
		if r := s.UpdateUser(t, tok, user.ID, map[string]any{"username": apitest.Uniq("back")}); r.Code() != "" {
			t.Errorf("after the database is back: %+v", r.Errors)
		}
	})
}

// An error nobody planned for is INTERNAL_SERVER_ERROR, with a message that reveals nothing; the
// details go to the server's log.
func TestInternalErrorRevealsNothing(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		if dbtest.Shared(databaseURL) {
			t.Skip("takes the users table away, from every test that shares the keyspace")
		}
		s := newTestServer(t, databaseURL)
		u, tok := s.newUser(t)
		// The table disappears from under the running server.
		rename := "ALTER TABLE users RENAME TO users_gone"
		if err := s.DB.Exec(rename).Error; err != nil {
			t.Fatal(err)
		}
		r := s.UpdateUser(t, tok, u.ID, map[string]any{"username": apitest.Uniq("doomed")})
		if r.Code() != "INTERNAL_SERVER_ERROR" {
			t.Fatalf("got %q, want INTERNAL_SERVER_ERROR: %+v", r.Code(), r.Errors)
		}
		if msg := r.Errors[0].Message; msg != "internal error" {
			t.Errorf("message = %q, want %q", msg, "internal error")
		}
		if !strings.Contains(s.log.String(), "users") {
			t.Errorf("the server log does not hold the cause:\n%s", s.log.String())
		}
	})
}

// A database that stops answering, without closing its connections: no request outlives
// REQUEST_TIMEOUT. Each is answered SERVICE_UNAVAILABLE, and the service recovers when the
// database answers again.
func TestDatabaseThatHangs(t *testing.T) {
	if !dbtest.MySQLConfigured(t) {
		t.Skip("needs TEST_MYSQL_DSN: the database is reached through a TCP proxy that can stall")
	}
	u, err := url.Parse(dbtest.MySQLURL(t))
	if err != nil {
		t.Fatal(err)
	}
	proxy := dbtest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	r := startRun(t, map[string]string{"DATABASE_URL": u.String(), "JWT_SECRET": testSecret, "REQUEST_TIMEOUT": "1s"})
	c := r.adminClient(t)
	user := c.CreateUser(t, "hanging", "hanging@example.com")
	own := token(t, user.ID)

	proxy.Stall()
	// A client that waits 5 s for a request whose deadline is 1 s: a timeout here is a hang.
	c5 := &http.Client{Timeout: 5 * time.Second}
	req, _ := http.NewRequest(http.MethodPut, r.URL+"/users/"+user.ID, strings.NewReader(`{"username": "stuck"}`))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+own)
	resp, err := c5.Do(req)
	if err != nil {
		t.Fatalf("the request hung past its deadline: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || resp.Header.Get("Retry-After") == "" {
		t.Errorf("PUT while the database hangs: %d, Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	gql, _ := http.NewRequest(http.MethodPost, r.URL+"/graphql", strings.NewReader(`{"query": "{ me { id } }"}`))
	gql.Header.Set("Content-Type", "application/json")
	gql.Header.Set("Authorization", "Bearer "+own)
	if got := apitest.DoGraphQL(t, c5, gql); got.Code() != "SERVICE_UNAVAILABLE" {
		t.Errorf("GraphQL while the database hangs: %q", got.Code())
	}

	proxy.Unstall()
	if r := c.UpdateUser(t, own, user.ID, map[string]any{"username": "unstuck"}); r.Code() != "" {
		t.Errorf("after the database answers again: %+v", r.Errors)
	}
}

// A client that gives up on a request while the database is slow is not the service failing: the
// request is logged and counted as 499, with no error line, on both edges and both databases, and
// the service goes on serving.
func TestClientThatGoesAwayIsNotAnError(t *testing.T) {
	t.Parallel()
	type slowDatabase struct {
		url         string
		slow, ready func()
	}
	databases := map[string]func(t *testing.T) slowDatabase{
		"sqlite": func(t *testing.T) slowDatabase {
			path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
			var release func()
			return slowDatabase{
				url:   "sqlite:" + path + "?_pragma=busy_timeout(2000)",
				slow:  func() { release = dbtest.LockSQLite(t, path) },
				ready: func() { release() },
			}
		},
	}
	if dbtest.MySQLConfigured(t) {
		databases["mysql"] = func(t *testing.T) slowDatabase {
			u, err := url.Parse(dbtest.MySQLURL(t))
			if err != nil {
				t.Fatal(err)
			}
			proxy := dbtest.NewProxy(t, u.Host)
			u.Host = proxy.Addr()
			return slowDatabase{url: u.String(), slow: proxy.Stall, ready: proxy.Unstall}
		}
	}
	for name, open := range databases {
		t.Run(name, func(t *testing.T) {
			db := open(t)
			r := startRun(t, map[string]string{"DATABASE_URL": db.url, "JWT_SECRET": testSecret, "LOG_LEVEL": "info"})
			c := r.client()
			c.AdminToken = token(t, "admin", auth.AdminRole)
			user := c.CreateUser(t, apitest.Uniq("leaving"), apitest.Uniq("leaving")+"@example.com")
			own := token(t, user.ID)
			for _, tc := range []struct {
				name, path, contentType, body, route string
			}{
				{"REST", "/users/" + user.ID, "application/json", `{"username": "` + apitest.Uniq("gone") + `"}`, `"route":"PUT /users/{id}"`},
				{"GraphQL", "/graphql", "application/json", mustJSON(map[string]any{"query": apitest.UpdateMutation, "variables": map[string]any{"id": user.ID, "in": map[string]any{"username": apitest.Uniq("gone")}}}), `"route":"/graphql"`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					db.slow()
					ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
					defer cancel()
					req, _ := http.NewRequestWithContext(ctx, http.MethodPost, r.URL+tc.path, strings.NewReader(tc.body))
					if tc.name == "REST" {
						req.Method = http.MethodPut
					}
					req.Header.Set("Content-Type", tc.contentType)
					req.Header.Set("Authorization", "Bearer "+own)
					if resp, err := http.DefaultClient.Do(req); err == nil {
						resp.Body.Close()
						t.Fatalf("the request was answered (%d) while the database was held", resp.StatusCode)
					}
					db.ready()
					line := waitForLogLine(t, r, tc.route)
					if !strings.Contains(line, `"status":499`) {
						t.Errorf("the request's log line: %s, want status 499", line)
					}
					if strings.Contains(r.stderr.String(), `"level":"ERROR"`) {
						t.Errorf("an error was logged for a client that went away:\n%s", r.stderr.String())
					}
				})
			}
			if resp := c.UpdateUser(t, own, user.ID, map[string]any{"username": apitest.Uniq("back")}); resp.Code() != "" {
				t.Errorf("after the clients went away: %+v", resp.Errors)
			}
		})
	}
}

// waitForLogLine waits for the first request log line of the running program that holds route and
// a 499, and returns it, or the last line with route when none comes within 10 s.
func waitForLogLine(t *testing.T, r *running, route string) string {
	t.Helper()
	last := ""
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		for line := range strings.SplitSeq(r.stderr.String(), "\n") {
			if strings.Contains(line, `"msg":"request"`) && strings.Contains(line, route) {
				last = line
				if strings.Contains(line, `"status":499`) {
					return line
				}
			}
		}
	}
	return last
}
