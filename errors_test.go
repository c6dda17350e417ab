package main

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

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
				s.DB.Table("users").Where(field+"_key = ?", strings.ToLower(base)).Count(&holders)
				if won != 1 || holders != 1 {
					t.Errorf("%d writers won and %d users hold %q, want 1 and 1", won, holders, base)
				}
			})
		}
	})
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
	c := r.client()
	c.AdminToken = token(t, "admin", "admin")
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
