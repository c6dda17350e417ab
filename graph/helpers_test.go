package graph

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"gorm.io/gorm"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/internal/apitest"
	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

// newTestHandler returns the GraphQL handler with the given limits on db, logging nowhere. It is
// the handler alone: a request reaches it as anonymous unless its context names a caller.
func newTestHandler(db *gorm.DB, limits Limits) http.Handler {
	users := models.NewUserService(database.NewUserStore(db))
	return NewHandler(users, slog.New(slog.NewTextHandler(io.Discard, nil)), limits)
}

// openWithAccount opens a new SQLite database as the service opens its own, with an account on it
// with ID 1, for requests that name an account without creating one.
func openWithAccount(t testing.TB) *gorm.DB {
	t.Helper()
	db := dbtest.Open(t, dbtest.SQLiteURL(t))
	users := models.NewUserService(database.NewUserStore(db))
	if _, err := users.Create(asAdmin(context.Background()), models.UserCreate{Username: "fuzzed", Email: "fuzzed@example.com"}); err != nil {
		t.Fatal(err)
	}
	return db
}

// asAdmin is ctx with an admin calling, who may run every operation.
func asAdmin(ctx context.Context) context.Context {
	return models.ContextWithCaller(ctx, &models.Caller{UserID: "admin", Admin: true})
}

// testServer is the GraphQL handler behind the token check, on a real database, served on a
// loopback port.
type testServer struct {
	// Client speaks to the server, with a valid admin token.
	apitest.Client
	DB *gorm.DB
}

// newTestServer serves newTestHandler on the database at databaseURL, with the given limits,
// behind auth's middleware as the service puts it in front of the handler, so that requests carry
// real tokens: authtest's are valid there. The handler answers on every path; clients use
// /graphql.
func newTestServer(t testing.TB, databaseURL string, limits Limits) *testServer {
	t.Helper()
	db := dbtest.Open(t, databaseURL)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	verifier, err := auth.NewVerifier(ctx, auth.Config{Secret: []byte(authtest.Secret), RolesClaim: authtest.RolesClaim})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(verifier.Middleware(newTestHandler(db, limits)))
	t.Cleanup(srv.Close)
	return &testServer{Client: apitest.Client{URL: srv.URL, AdminToken: authtest.Token(t, "admin", auth.AdminRole)}, DB: db}
}

// newUser creates a user with unique names and returns it with a token of its own.
func (s *testServer) newUser(t testing.TB) (*apitest.User, string) {
	t.Helper()
	name := apitest.Uniq("user")
	u := s.CreateUser(t, name, strings.ToLower(name)+"@example.com")
	return u, authtest.Token(t, u.ID)
}

// mustJSON encodes v, for request bodies built from values that always encode.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
