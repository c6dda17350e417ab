package rest_test

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/idempotency"
	"usergraph/internal/apitest"
	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
	"usergraph/models"
	"usergraph/rest"
)

// server is the REST routes on a real database, served on a loopback port.
type server struct {
	// Client speaks to the server, with a valid admin token.
	apitest.Client
	db    *gorm.DB
	users *models.UserService
}

// newServer serves the REST routes on the database at databaseURL, mounted and behind the token
// middleware as the service mounts them, so that what a caller sees here is what it sees there;
// opts configure the operations behind them. What the routes log is shown if the test fails.
func newServer(t testing.TB, databaseURL string, opts ...models.Option) *server {
	t.Helper()
	return newServerWith(t, dbtest.Open(t, databaseURL), serverConfig{opts: opts})
}

// serverConfig is what a test may change in a server.
type serverConfig struct {
	// opts configure the operations.
	opts []models.Option
	// keyTTL and keyLock are the Idempotency-Keys' lifetime and lock, when not the defaults.
	keyTTL, keyLock time.Duration
	// keyStore wraps the store of Idempotency-Keys, when set.
	keyStore func(idempotency.Store) idempotency.Store
}

// newServerWith serves the REST routes on db, as newServer does, configured by cfg.
func newServerWith(t testing.TB, db *gorm.DB, cfg serverConfig) *server {
	t.Helper()
	users := models.NewUserService(database.NewUserStore(db), cfg.opts...)
	var store idempotency.Store = database.NewKeyStore(db)
	if cfg.keyStore != nil {
		store = cfg.keyStore(store)
	}
	keys := idempotency.NewKeeper(store, cmp.Or(cfg.keyTTL, idempotency.DefaultTTL), cmp.Or(cfg.keyLock, 30*time.Second))
	verifier, err := auth.NewVerifier(t.Context(), auth.Config{Secret: []byte(authtest.Secret), RolesClaim: authtest.RolesClaim})
	if err != nil {
		t.Fatal(err)
	}
	logs := &apitest.SyncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))

	api := func(h http.Handler) http.Handler { return verifier.Middleware(h) }
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", api(rest.GetUser(users, logger)))
	mux.Handle("PUT /users/{id}", api(rest.UpdateUser(users, keys, logger)))
	mux.Handle("PATCH /users/{id}", api(rest.PatchUser(users, keys, logger)))
	mux.Handle("/users/{id}", rest.MethodNotAllowed(http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPatch))
	mux.Handle("GET /openapi.yaml", rest.OpenAPI())

	srv := httptest.NewServer(mux)
	t.Cleanup(func() {
		srv.Close()
		if t.Failed() {
			t.Logf("server log:\n%s", logs.String())
		}
	})
	return &server{
		Client: apitest.Client{URL: srv.URL, AdminToken: authtest.Token(t, "admin", auth.AdminRole)},
		db:     db,
		users:  users,
	}
}

// createUser creates a user through the service, as an admin: these servers have no route that
// creates one.
func (s *server) createUser(t testing.TB, username, email string) *apitest.User {
	t.Helper()
	ctx := models.ContextWithCaller(context.Background(), &models.Caller{UserID: "admin", Admin: true})
	u, err := s.users.Create(ctx, models.UserCreate{Username: username, Email: email})
	if err != nil {
		t.Fatalf("creating %q, %q: %v", username, email, err)
	}
	return &apitest.User{
		ID:        models.IDString(u.ID),
		Username:  u.Username,
		Email:     u.Email,
		CreatedAt: u.CreatedAt,
		UpdatedAt: u.UpdatedAt,
		Version:   int(u.Version),
	}
}

// newUser creates a user with names no other test uses, and returns it with a token of its own.
func (s *server) newUser(t testing.TB) (*apitest.User, string) {
	t.Helper()
	name := apitest.Uniq("user")
	u := s.createUser(t, name, strings.ToLower(name)+"@example.com")
	return u, authtest.Token(t, u.ID)
}

// bearerOf returns the token of a caller a test names: "own" is own, the user's own token;
// "other" a new user's; "admin" an admin's; anything else no token at all.
func (s *server) bearerOf(t testing.TB, caller, own string) string {
	t.Helper()
	switch caller {
	case "own":
		return own
	case "other":
		_, other := s.newUser(t)
		return other
	case "admin":
		return s.AdminToken
	}
	return ""
}
