package main

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
	"usergraph/idempotency"
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
	log *apitest.SyncBuffer
}

// newTestServer serves NewServer, as run builds it, on the database at databaseURL.
func newTestServer(t testing.TB, databaseURL string) *testServer {
	t.Helper()
	return newTestServerWith(t, databaseURL, testAuth)
}

// newTestServerWith is newTestServer with other token settings.
func newTestServerWith(t testing.TB, databaseURL string, authCfg auth.Config) *testServer {
	t.Helper()
	db := dbtest.Open(t, databaseURL)
	sqlDB, _ := db.DB()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	verifier, err := auth.NewVerifier(ctx, authCfg)
	if err != nil {
		t.Fatal(err)
	}
	logs := &apitest.SyncBuffer{}
	logger := newLogger(logs, slog.LevelInfo)
	srv := httptest.NewServer(NewServer(deps{
		Logger:         logger,
		Users:          models.NewUserService(database.NewUserStore(db)),
		Keys:           idempotency.NewKeeper(database.NewKeyStore(db), idempotency.DefaultTTL, 10*time.Second+keyLockMargin),
		Verifier:       verifier,
		DB:             sqlDB,
		Metrics:        telemetry.NewMetrics(sqlDB),
		GraphQL:        graph.DefaultLimits,
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

// newUser creates a user with unique names and returns it with a token of its own.
func (s *testServer) newUser(t testing.TB) (*apitest.User, string) {
	t.Helper()
	name := apitest.Uniq("user")
	u := s.CreateUser(t, name, strings.ToLower(name)+"@example.com")
	return u, token(t, u.ID)
}

// newLockableSQLiteServer starts a test server on a SQLite file of its own whose connections give
// up on a held lock after 100 ms, and returns what takes that file's write lock (dbtest.LockSQLite).
func newLockableSQLiteServer(t testing.TB) (s *testServer, lock func() (release func())) {
	path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
	s = newTestServer(t, "sqlite:"+path+"?_pragma=busy_timeout(100)")
	return s, func() func() { return dbtest.LockSQLite(t, path) }
}
