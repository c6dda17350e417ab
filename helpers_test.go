package main

import (
	"bytes"
	"context"
	"database/sql"
	"log/slog"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
	"usergraph/internal/apitest"
	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
	"usergraph/models"
	"usergraph/telemetry"
)

// testSecret is the HS256 key of the test servers: the one authtest signs with, so that its
// tokens are valid there.
const testSecret = authtest.Secret

// testAuth is the token settings of the test servers.
var testAuth = auth.Config{Secret: []byte(testSecret), RolesClaim: authtest.RolesClaim}

// testServer is the service's whole HTTP handler on a real database, served on a loopback port.
type testServer struct {
	// Client speaks to the server, with a valid admin token.
	apitest.Client
	DB *gorm.DB
	// log holds what the server logged, for assertions on it.
	log *syncBuffer
}

// newTestServer serves NewServer, as run builds it, on the database at databaseURL.
func newTestServer(t testing.TB, databaseURL string) *testServer {
	t.Helper()
	return newTestServerWith(t, databaseURL, testAuth, graph.DefaultLimits)
}

// newTestServerWith is newTestServer with other token settings and GraphQL limits.
func newTestServerWith(t testing.TB, databaseURL string, authCfg auth.Config, limits graph.Limits) *testServer {
	t.Helper()
	db := dbtest.Open(t, databaseURL)
	sqlDB, _ := db.DB()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	verifier, err := auth.NewVerifier(ctx, authCfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := newLogger(logs, slog.LevelInfo)
	srv := httptest.NewServer(NewServer(deps{
		Logger:         logger,
		Users:          models.NewUserService(database.NewUserStore(db)),
		Verifier:       verifier,
		DB:             sqlDB,
		Metrics:        telemetry.NewMetrics(sqlDB),
		GraphQL:        limits,
		RequestTimeout: 10 * time.Second,
	}))
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &testServer{Client: apitest.Client{URL: srv.URL, AdminToken: token(t, "admin", auth.AdminRole)}, DB: db, log: logs}
}

// token signs a token for sub, valid for an hour, with the given roles.
func token(t testing.TB, sub string, roles ...string) string {
	t.Helper()
	return authtest.Token(t, sub, roles...)
}

// stored reads a user straight from the database, bypassing the API, or returns nil if there is
// none with that ID.
func (s *testServer) stored(t testing.TB, id string) *database.UserRow {
	t.Helper()
	var users []database.UserRow
	if err := s.DB.Where("id = ?", id).Find(&users).Error; err != nil {
		t.Fatal(err)
	}
	if len(users) == 0 {
		return nil
	}
	return &users[0]
}

// syncBuffer is a bytes.Buffer safe for a server's goroutines to write while a test reads it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// newUser creates a user with unique names and returns it with a token of its own.
func (s *testServer) newUser(t testing.TB) (*apitest.User, string) {
	t.Helper()
	name := apitest.Uniq("user")
	u := s.CreateUser(t, name, strings.ToLower(name)+"@example.com")
	return u, token(t, u.ID)
}

// signClaims signs exactly these claims with the test key, for tokens that token does not make,
// such as expired ones.
func signClaims(t testing.TB, claims map[string]any) string {
	t.Helper()
	return authtest.SignClaims(t, claims)
}

// openDB opens the database at databaseURL directly, as the service does, for a test to look at.
func openDB(t testing.TB, databaseURL string) *gorm.DB {
	t.Helper()
	return dbtest.Open(t, databaseURL)
}

// newLockableSQLiteServer starts a test server on a SQLite file of its own whose connections give
// up on a held lock after 100 ms, and returns what takes that file's write lock (lockSQLite).
func newLockableSQLiteServer(t testing.TB) (s *testServer, lock func() (release func())) {
	path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
	s = newTestServer(t, "sqlite:"+path+"?_pragma=busy_timeout(100)")
	return s, func() func() { return lockSQLite(t, path) }
}

// lockSQLite takes the write lock of the SQLite file at path from another connection, as another
// process's write transaction would, and returns what releases it.
func lockSQLite(t testing.TB, path string) (release func()) {
	t.Helper()
	locker, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	conn, err := locker.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	return func() {
		conn.ExecContext(context.Background(), "ROLLBACK")
		conn.Close()
		locker.Close()
	}
}
