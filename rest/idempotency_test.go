package rest_test

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"

	"usergraph/idempotency"
	"usergraph/internal/apitest"
	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
)

// keyedPut sends a PUT with an Idempotency-Key, and If-Match if ifMatch is not empty.
func (s *server) keyedPut(t testing.TB, bearer, id, key, body string) apitest.RESTResponse {
	t.Helper()
	return s.Put(t, bearer, id, body, idempotency.Header, key)
}

// keysStored counts the rows of the idempotency_keys table.
func keysStored(t testing.TB, db *gorm.DB) int64 {
	t.Helper()
	var n int64
	if err := db.Table("idempotency_keys").Count(&n).Error; err != nil {
		t.Fatal(err)
	}
	return n
}

// wantReplay fails t unless got is want sent again: the same status, body and ETag, said to be a
// replay.
func wantReplay(t testing.TB, got, want apitest.RESTResponse) {
	t.Helper()
	if got.Status != want.Status || string(got.Body) != string(want.Body) || got.Header.Get("ETag") != want.Header.Get("ETag") {
		t.Errorf("retry: got %d %s ETag %q\nwant the first outcome again: %d %s ETag %q",
			got.Status, got.Body, got.Header.Get("ETag"), want.Status, want.Body, want.Header.Get("ETag"))
	}
	if h := got.Header.Get(idempotency.ReplayedHeader); h != "true" {
		t.Errorf("retry: %s: got %q, want \"true\"", idempotency.ReplayedHeader, h)
	}
	if h := want.Header.Get(idempotency.ReplayedHeader); h != "" {
		t.Errorf("first request: %s: got %q, want none", idempotency.ReplayedHeader, h)
	}
}

func TestRESTIdempotencyKeys(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		db, counter := dbtest.OpenCounting(t, databaseURL)
		s := newServerWith(t, db, serverConfig{})

		t.Run("ReplayIsIdenticalAndWritesNothing", func(t *testing.T) {
			u, token := s.newUser(t)
			key, name := apitest.Uniq("key"), apitest.Uniq("replayed")
			first := s.keyedPut(t, token, u.ID, key, `{"username": "`+name+`"}`)
			if first.Status != http.StatusOK {
				t.Fatalf("first: got %d %s, want 200", first.Status, first.Body)
			}
			before := *dbtest.Stored(t, db, u.ID)
			counter.Reset()
			retry := s.keyedPut(t, token, u.ID, key, `{"username": "`+name+`"}`)
			statements := counter.Count()
			wantReplay(t, retry, first)
			dbtest.Unchanged(t, db, u.ID, before)
			// The key's insert, which finds it taken, and the read of its record: nothing written.
			if statements != 2 {
				t.Errorf("the replay cost %d statements, want 2", statements)
			}
		})

		t.Run("ReplayShowsTheFirstOutcomeAfterLaterChanges", func(t *testing.T) {
			u, token := s.newUser(t)
			key, first, later := apitest.Uniq("key"), apitest.Uniq("first"), apitest.Uniq("later")
			r1 := s.keyedPut(t, token, u.ID, key, `{"username": "`+first+`"}`)
			if r := s.Put(t, token, u.ID, `{"username": "`+later+`"}`); r.Status != http.StatusOK {
				t.Fatalf("unkeyed update: got %d %s", r.Status, r.Body)
			}
			wantReplay(t, s.keyedPut(t, token, u.ID, key, `{"username": "`+first+`"}`), r1)
			if got := dbtest.Stored(t, db, u.ID).Username; got != later {
				t.Errorf("stored username %q, want %q: the retry must not apply again", got, later)
			}
		})

		t.Run("RefusalsFromTheRequestAreKept", func(t *testing.T) {
			holder, holderToken := s.newUser(t)
			u, token := s.newUser(t)
			key := apitest.Uniq("key")
			body := `{"username": "` + holder.Username + `"}`
			first := s.keyedPut(t, token, u.ID, key, body)
			if first.Status != http.StatusConflict {
				t.Fatalf("first: got %d %s, want 409", first.Status, first.Body)
			}
			// The name is free now: the retry still gets the first outcome, which it repeats.
			if r := s.Put(t, holderToken, holder.ID, `{"username": "`+apitest.Uniq("moved")+`"}`); r.Status != http.StatusOK {
				t.Fatalf("freeing the name: got %d %s", r.Status, r.Body)
			}
			wantReplay(t, s.keyedPut(t, token, u.ID, key, body), first)
			if got := dbtest.Stored(t, db, u.ID).Username; got != u.Username {
				t.Errorf("stored username %q, want %q", got, u.Username)
			}
		})

		t.Run("MismatchIsRefused", func(t *testing.T) {
			u, token := s.newUser(t)
			key := apitest.Uniq("key")
			if r := s.keyedPut(t, token, u.ID, key, `{"username": "`+apitest.Uniq("one")+`"}`); r.Status != http.StatusOK {
				t.Fatalf("first: got %d %s", r.Status, r.Body)
			}
			before := *dbtest.Stored(t, db, u.ID)
			for _, tc := range []struct {
				name   string
				method string
				header http.Header
				body   string
			}{
				{"OtherBody", http.MethodPut, nil, `{"username": "` + apitest.Uniq("two") + `"}`},
				{"OtherMethod", http.MethodPatch, nil, `{"username": "` + before.Username + `"}`},
				{"OtherIfMatch", http.MethodPut, http.Header{"If-Match": {`"1"`}}, `{"username": "` + before.Username + `"}`},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + token}, idempotency.Header: {key}}
					for k, v := range tc.header {
						h[k] = v
					}
					r := s.REST(t, tc.method, "/users/"+u.ID, h, tc.body)
					if got := r.Problem(t); r.Status != http.StatusUnprocessableEntity || got.Code != "IDEMPOTENCY_KEY_MISMATCH" {
						t.Errorf("got %d %s, want 422 IDEMPOTENCY_KEY_MISMATCH", r.Status, r.Body)
					}
					dbtest.Unchanged(t, db, u.ID, before)
				})
			}
		})

		t.Run("KeysOfTwoCallersDoNotMeet", func(t *testing.T) {
			a, aToken := s.newUser(t)
			b, bToken := s.newUser(t)
			key := apitest.Uniq("shared-key")
			for _, c := range []struct{ id, token string }{{a.ID, aToken}, {b.ID, bToken}} {
				name := apitest.Uniq("own")
				r := s.keyedPut(t, c.token, c.id, key, `{"username": "`+name+`"}`)
				if r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
					t.Errorf("user %s: got %d %s (replayed %q), want a fresh 200", c.id, r.Status, r.Body, r.Header.Get(idempotency.ReplayedHeader))
				}
				if got := dbtest.Stored(t, db, c.id).Username; got != name {
					t.Errorf("user %s: stored %q, want %q", c.id, got, name)
				}
			}
		})

		t.Run("AuthFailuresAreNotKept", func(t *testing.T) {
			u, token := s.newUser(t)
			_, otherToken := s.newUser(t)
			key, name := apitest.Uniq("key"), apitest.Uniq("after-auth")
			body := `{"username": "` + name + `"}`
			for _, bearer := range []string{"", authtest.SignClaims(t, map[string]any{"sub": u.ID, "exp": time.Now().Add(-time.Minute).Unix()}), otherToken} {
				if r := s.keyedPut(t, bearer, u.ID, key, body); r.Status != http.StatusUnauthorized {
					t.Fatalf("got %d %s, want 401", r.Status, r.Body)
				}
			}
			r := s.keyedPut(t, token, u.ID, key, body)
			if r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
				t.Errorf("with a good token: got %d %s, want the update to run", r.Status, r.Body)
			}
			if got := dbtest.Stored(t, db, u.ID).Username; got != name {
				t.Errorf("stored %q, want %q", got, name)
			}
		})

		t.Run("MalformedKeyIsRefused", func(t *testing.T) {
			u, token := s.newUser(t)
			before := *dbtest.Stored(t, db, u.ID)
			for _, tc := range []struct {
				name string
				keys []string
			}{
				{"Empty", []string{""}},
				{"TooLong", []string{strings.Repeat("k", idempotency.MaxKeyLength+1)}},
				{"NotASCII", []string{"clé"}},
				{"Tab", []string{"a\tb"}},
				{"GivenTwice", []string{"one", "two"}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + token}, idempotency.Header: tc.keys}
					r := s.REST(t, http.MethodPut, "/users/"+u.ID, h, `{"username": "`+apitest.Uniq("bad-key")+`"}`)
					p := r.Problem(t)
					if r.Status != http.StatusBadRequest || p.Code != "BAD_USER_INPUT" || strings.Join(p.Fields(), ",") != idempotency.Header {
						t.Errorf("got %d %s, want 400 BAD_USER_INPUT naming %s", r.Status, r.Body, idempotency.Header)
					}
					dbtest.Unchanged(t, db, u.ID, before)
				})
			}
			longest := strings.Repeat("k", idempotency.MaxKeyLength)
			if r := s.keyedPut(t, token, u.ID, longest, `{"username": "`+apitest.Uniq("longest-key")+`"}`); r.Status != http.StatusOK {
				t.Errorf("a key of %d characters: got %d %s, want 200", idempotency.MaxKeyLength, r.Status, r.Body)
			}
		})

		t.Run("ConcurrentRetriesMakeOneUpdate", func(t *testing.T) {
			u, token := s.newUser(t)
			key, body := apitest.Uniq("key"), `{"username": "`+apitest.Uniq("racing")+`"}`
			const n = 8
			responses := make([]apitest.RESTResponse, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { responses[i] = s.keyedPut(t, token, u.ID, key, body) })
			}
			wg.Wait()
			var ran, replayed, inUse int
			var ok []byte
			for _, r := range responses {
				switch {
				case r.Status == http.StatusOK && r.Header.Get(idempotency.ReplayedHeader) == "":
					ran++
					ok = r.Body
				case r.Status == http.StatusOK:
					replayed++
				case r.Status == http.StatusConflict && r.Problem(t).Code == "IDEMPOTENCY_KEY_IN_USE":
					inUse++
				default:
					t.Errorf("got %d %s, want 200 or 409 IDEMPOTENCY_KEY_IN_USE", r.Status, r.Body)
				}
			}
			if ran != 1 {
				t.Fatalf("%d requests ran the update (%d replays, %d in use), want 1", ran, replayed, inUse)
			}
			for _, r := range responses {
				if r.Status == http.StatusOK && string(r.Body) != string(ok) {
					t.Errorf("a replay differs: %s, want %s", r.Body, ok)
				}
			}
			if got := dbtest.Stored(t, db, u.ID).Version; got != 2 {
				t.Errorf("version %d, want 2: one update", got)
			}
			t.Logf("%d requests: 1 ran, %d replayed, %d in use", n, replayed, inUse)
		})
	})
}

// pausingStore holds each transaction of the Idempotency-Key store, before anything is written in
// it, until the test lets it go: the request is running, its key taken.
type pausingStore struct {
	idempotency.Store
	entered chan struct{}
	proceed chan struct{}
}

func (p *pausingStore) InTx(ctx context.Context, fn func(context.Context) error) error {
	return p.Store.InTx(ctx, func(ctx context.Context) error {
		p.entered <- struct{}{}
		<-p.proceed
		return fn(ctx)
	})
}

func TestRESTIdempotencyKeyInUse(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		db := dbtest.Open(t, databaseURL)
		pause := &pausingStore{entered: make(chan struct{}), proceed: make(chan struct{})}
		s := newServerWith(t, db, serverConfig{keyStore: func(st idempotency.Store) idempotency.Store {
			pause.Store = st
			return pause
		}})
		u, token := s.newUser(t)
		key, name := apitest.Uniq("key"), apitest.Uniq("slow")
		body := `{"username": "` + name + `"}`

		first := make(chan apitest.RESTResponse, 1)
		go func() { first <- s.keyedPut(t, token, u.ID, key, body) }()
		<-pause.entered

		r := s.keyedPut(t, token, u.ID, key, body)
		if got := r.Problem(t); r.Status != http.StatusConflict || got.Code != "IDEMPOTENCY_KEY_IN_USE" {
			t.Errorf("while the first runs: got %d %s, want 409 IDEMPOTENCY_KEY_IN_USE", r.Status, r.Body)
		}
		close(pause.proceed)
		go func() {
			for range pause.entered {
			}
		}()
		r1 := <-first
		if r1.Status != http.StatusOK {
			t.Fatalf("first: got %d %s, want 200", r1.Status, r1.Body)
		}
		wantReplay(t, s.keyedPut(t, token, u.ID, key, body), r1)
		if got := dbtest.Stored(t, db, u.ID); got.Username != name || got.Version != 2 {
			t.Errorf("stored %q at version %d, want %q at 2", got.Username, got.Version, name)
		}
	})
}

// abandoningStore makes the first request under a key stop after taking it, as one whose server
// died then would: nothing more happens, and the key stays taken until its lock runs out.
type abandoningStore struct {
	idempotency.Store
}

var errServerDied = context.Canceled

func (a abandoningStore) InTx(context.Context, func(context.Context) error) error {
	return errServerDied
}

func (a abandoningStore) Release(context.Context, []byte, []byte) error { return nil }

func TestRESTIdempotencyKeyOfADeadRequest(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		db := dbtest.Open(t, databaseURL)
		const lock = 300 * time.Millisecond
		dead := newServerWith(t, db, serverConfig{keyLock: lock, keyStore: func(st idempotency.Store) idempotency.Store {
			return abandoningStore{st}
		}})
		live := newServerWith(t, db, serverConfig{keyLock: lock})
		u, token := dead.newUser(t)
		key, name := apitest.Uniq("key"), apitest.Uniq("after-death")
		body := `{"username": "` + name + `"}`

		if r := dead.keyedPut(t, token, u.ID, key, body); r.Status == http.StatusOK {
			t.Fatalf("the dying request: got %d %s", r.Status, r.Body)
		}
		if r := live.keyedPut(t, token, u.ID, key, body); r.Status != http.StatusConflict {
			t.Errorf("within the lock: got %d %s, want 409 IDEMPOTENCY_KEY_IN_USE", r.Status, r.Body)
		}
		time.Sleep(lock + 100*time.Millisecond)
		r := live.keyedPut(t, token, u.ID, key, body)
		if r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
			t.Errorf("after the lock: got %d %s, want the update to run", r.Status, r.Body)
		}
		if got := dbtest.Stored(t, db, u.ID); got.Username != name || got.Version != 2 {
			t.Errorf("stored %q at version %d, want %q at 2", got.Username, got.Version, name)
		}
	})
}

func TestRESTIdempotencyKeyExpires(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		db := dbtest.Open(t, databaseURL)
		const ttl = 300 * time.Millisecond
		s := newServerWith(t, db, serverConfig{keyTTL: ttl})
		u, token := s.newUser(t)
		key := apitest.Uniq("key")
		if r := s.keyedPut(t, token, u.ID, key, `{"username": "`+apitest.Uniq("before")+`"}`); r.Status != http.StatusOK {
			t.Fatalf("first: got %d %s", r.Status, r.Body)
		}
		time.Sleep(ttl + 100*time.Millisecond)
		name := apitest.Uniq("after")
		r := s.keyedPut(t, token, u.ID, key, `{"username": "`+name+`"}`)
		if r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
			t.Errorf("an expired key with another body: got %d %s, want the update to run", r.Status, r.Body)
		}
		if got := dbtest.Stored(t, db, u.ID); got.Username != name || got.Version != 3 {
			t.Errorf("stored %q at version %d, want %q at 3", got.Username, got.Version, name)
		}
	})
}

// A failure between the update and the storing of its outcome, in the database itself, leaves
// neither: the update is rolled back with the transaction, and a retry applies it once.
func TestRESTIdempotencyKeyStoreFails(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		if dbtest.Shared(databaseURL) {
			t.Skip("vtgate does not take CREATE TRIGGER; TestVitessPrimaryRestarts loses the connection mid-transaction instead")
		}
		db := dbtest.Open(t, databaseURL)
		s := newServerWith(t, db, serverConfig{})
		u, token := s.newUser(t)
		before := *dbtest.Stored(t, db, u.ID)

		trigger := `CREATE TRIGGER fail_outcome BEFORE UPDATE ON idempotency_keys BEGIN SELECT RAISE(ABORT, 'injected failure'); END`
		if db.Dialector.Name() == "mysql" {
			trigger = `CREATE TRIGGER fail_outcome BEFORE UPDATE ON idempotency_keys FOR EACH ROW SIGNAL SQLSTATE '45000' SET MESSAGE_TEXT = 'injected failure'`
		}
		if err := db.Exec(trigger).Error; err != nil {
			t.Fatal(err)
		}
		key, name := apitest.Uniq("key"), apitest.Uniq("once")
		body := `{"username": "` + name + `"}`
		r := s.keyedPut(t, token, u.ID, key, body)
		if got := r.Problem(t); r.Status != http.StatusInternalServerError || got.Code != "INTERNAL_SERVER_ERROR" || strings.Contains(string(r.Body), "injected") {
			t.Errorf("got %d %s, want 500 INTERNAL_SERVER_ERROR revealing nothing", r.Status, r.Body)
		}
		dbtest.Unchanged(t, db, u.ID, before)
		if n := keysStored(t, db); n != 0 {
			t.Errorf("%d keys stored, want none", n)
		}

		if err := db.Exec("DROP TRIGGER fail_outcome").Error; err != nil {
			t.Fatal(err)
		}
		r = s.keyedPut(t, token, u.ID, key, body)
		if r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
			t.Errorf("retry: got %d %s, want the update to run", r.Status, r.Body)
		}
		if got := dbtest.Stored(t, db, u.ID); got.Username != name || got.Version != before.Version+1 {
			t.Errorf("stored %q at version %d, want %q at %d: applied once", got.Username, got.Version, name, before.Version+1)
		}
	})
}

// The connection is lost between the update and the storing of its outcome, as when the network
// fails or the server's process dies there: MySQL rolls the update back with the transaction, and
// once the key's lock has run out a retry applies the update once.
func TestRESTIdempotencyConnectionLostBeforeOutcome(t *testing.T) {
	t.Parallel()
	if !dbtest.MySQLConfigured(t) {
		t.Skip("needs TEST_MYSQL_DSN: a lost connection rolls back a transaction on a database server")
	}
	databaseURL := dbtest.MySQLURL(t)
	direct := dbtest.Open(t, databaseURL)
	u, _ := url.Parse(databaseURL)
	proxy := dbtest.NewProxy(t, u.Host)
	u.Host = proxy.Addr()
	const lock = 500 * time.Millisecond
	s := newServerWith(t, dbtest.Open(t, u.String()), serverConfig{keyLock: lock})
	user, token := s.newUser(t)
	before := *dbtest.Stored(t, direct, user.ID)

	proxy.CutOnSend([]byte("UPDATE idempotency_keys SET status"))
	key, name := apitest.Uniq("key"), apitest.Uniq("cut")
	body := `{"username": "` + name + `"}`
	r := s.keyedPut(t, token, user.ID, key, body)
	if got := r.Problem(t); r.Status != http.StatusServiceUnavailable || got.Code != "SERVICE_UNAVAILABLE" {
		t.Errorf("got %d %s, want 503 SERVICE_UNAVAILABLE", r.Status, r.Body)
	}
	dbtest.Unchanged(t, direct, user.ID, before)

	proxy.Resume()
	if r := s.keyedPut(t, token, user.ID, key, body); r.Status != http.StatusConflict {
		t.Errorf("within the lock: got %d %s, want 409 IDEMPOTENCY_KEY_IN_USE", r.Status, r.Body)
	}
	time.Sleep(lock + 100*time.Millisecond)
	if r := s.keyedPut(t, token, user.ID, key, body); r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
		t.Errorf("after the lock: got %d %s, want the update to run", r.Status, r.Body)
	}
	if got := dbtest.Stored(t, direct, user.ID); got.Username != name || got.Version != before.Version+1 {
		t.Errorf("stored %q at version %d, want %q at %d: applied once", got.Username, got.Version, name, before.Version+1)
	}
}

// A keyed request that cannot take its key, because the database is unavailable, is a 503 with
// Retry-After, keeps nothing, and its retry runs once the database is back.
func TestRESTIdempotencyKeyDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	check := func(t *testing.T, s *server, db *gorm.DB, takeAway func() (giveBack func())) {
		t.Helper()
		u, token := s.newUser(t)
		before := *dbtest.Stored(t, db, u.ID)
		key, name := apitest.Uniq("key"), apitest.Uniq("after-outage")
		body := `{"username": "` + name + `"}`
		giveBack := takeAway()
		r := s.keyedPut(t, token, u.ID, key, body)
		giveBack()
		if got := r.Problem(t); r.Status != http.StatusServiceUnavailable || got.Code != "SERVICE_UNAVAILABLE" || r.Header.Get("Retry-After") == "" {
			t.Errorf("during the outage: got %d %s (Retry-After %q), want 503 SERVICE_UNAVAILABLE with Retry-After", r.Status, r.Body, r.Header.Get("Retry-After"))
		}
		dbtest.Unchanged(t, db, u.ID, before)
		r = s.keyedPut(t, token, u.ID, key, body)
		if r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
			t.Errorf("after it: got %d %s, want the update to run", r.Status, r.Body)
		}
		if got := dbtest.Stored(t, db, u.ID).Username; got != name {
			t.Errorf("stored %q, want %q", got, name)
		}
	}
	t.Run("SQLiteLocked", func(t *testing.T) {
		path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
		db := dbtest.Open(t, "sqlite:"+path+"?_pragma=busy_timeout(100)")
		s := newServerWith(t, db, serverConfig{})
		check(t, s, db, func() func() { return dbtest.LockSQLite(t, path) })
	})
	if dbtest.MySQLConfigured(t) {
		t.Run("MySQLCut", func(t *testing.T) {
			databaseURL := dbtest.MySQLURL(t)
			direct := dbtest.Open(t, databaseURL)
			u, _ := url.Parse(databaseURL)
			proxy := dbtest.NewProxy(t, u.Host)
			u.Host = proxy.Addr()
			s := newServerWith(t, dbtest.Open(t, u.String()), serverConfig{})
			check(t, s, direct, func() func() { proxy.Cut(); return proxy.Resume })
		})
	}
}

// stealingStore has another request take each key over while the request that took it runs, as
// one whose server thought the first dead would: the first one's outcome must then not count.
type stealingStore struct {
	idempotency.Store
	mu sync.Mutex
	id []byte
}

func (s *stealingStore) Insert(ctx context.Context, id []byte, rec idempotency.Record) (bool, error) {
	s.mu.Lock()
	s.id = id
	s.mu.Unlock()
	return s.Store.Insert(ctx, id, rec)
}

func (s *stealingStore) InTx(ctx context.Context, fn func(context.Context) error) error {
	s.mu.Lock()
	id := s.id
	s.mu.Unlock()
	held, err := s.Store.Get(ctx, id)
	if err != nil || held == nil {
		return fmt.Errorf("the key's record: %v, %v", held, err)
	}
	thief := *held
	thief.Token = []byte("another request")
	if ok, err := s.Store.Replace(ctx, id, held.Token, thief); !ok || err != nil {
		return fmt.Errorf("taking the key over: %v, %v", ok, err)
	}
	return s.Store.InTx(ctx, fn)
}

// A request whose key another took over while it ran has its update rolled back rather than
// stored under the other's key, and is told that the key is in use.
func TestRESTIdempotencyKeyTakenOverWhileRunning(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		db := dbtest.Open(t, databaseURL)
		s := newServerWith(t, db, serverConfig{keyStore: func(st idempotency.Store) idempotency.Store {
			return &stealingStore{Store: st}
		}})
		u, token := s.newUser(t)
		before := *dbtest.Stored(t, db, u.ID)
		r := s.keyedPut(t, token, u.ID, apitest.Uniq("key"), `{"username": "`+apitest.Uniq("lost")+`"}`)
		if got := r.Problem(t); r.Status != http.StatusConflict || got.Code != "IDEMPOTENCY_KEY_IN_USE" {
			t.Errorf("got %d %s, want 409 IDEMPOTENCY_KEY_IN_USE", r.Status, r.Body)
		}
		dbtest.Unchanged(t, db, u.ID, before)
	})
}

// awaitingStore holds the first transaction, once begun, until its request's context ends: the
// server has seen the client go away, and the update then runs in a transaction of a request
// nobody waits for.
type awaitingStore struct {
	idempotency.Store
	entered chan struct{}
	held    atomic.Bool
}

func (a *awaitingStore) InTx(ctx context.Context, fn func(context.Context) error) error {
	if a.held.Swap(true) {
		return a.Store.InTx(ctx, fn)
	}
	return a.Store.InTx(ctx, func(txCtx context.Context) error {
		close(a.entered)
		<-ctx.Done()
		return fn(txCtx)
	})
}

// A keyed request whose client went away while it ran keeps nothing: the update rolls back, the
// key is let go, and the client's retry runs.
func TestRESTIdempotencyKeyClientGoneAway(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		db := dbtest.Open(t, databaseURL)
		entered := make(chan struct{})
		s := newServerWith(t, db, serverConfig{keyStore: func(st idempotency.Store) idempotency.Store {
			return &awaitingStore{Store: st, entered: entered}
		}})
		u, token := s.newUser(t)
		before := *dbtest.Stored(t, db, u.ID)
		key, name := apitest.Uniq("key"), apitest.Uniq("gone")
		body := `{"username": "` + name + `"}`

		ctx, cancel := context.WithCancel(context.Background())
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.URL+"/users/"+u.ID, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set(idempotency.Header, key)
		done := make(chan struct{})
		go func() {
			defer close(done)
			if resp, err := http.DefaultClient.Do(req); err == nil {
				resp.Body.Close()
			}
		}()
		<-entered
		cancel()
		<-done

		// The abandoned run lets go of the key as it ends: until then, the key is in use.
		deadline := time.Now().Add(5 * time.Second)
		for {
			r := s.keyedPut(t, token, u.ID, key, body)
			if r.Status == http.StatusConflict && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			if r.Status != http.StatusOK || r.Header.Get(idempotency.ReplayedHeader) != "" {
				t.Fatalf("the retry: got %d %s (replayed %q), want the update to run", r.Status, r.Body, r.Header.Get(idempotency.ReplayedHeader))
			}
			break
		}
		if got := dbtest.Stored(t, db, u.ID); got.Username != name || got.Version != before.Version+1 {
			t.Errorf("stored %q at version %d, want %q at %d: applied once", got.Username, got.Version, name, before.Version+1)
		}
	})
}
