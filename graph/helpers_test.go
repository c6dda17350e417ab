package graph

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"mime"
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
)

// testKeyLock is how long a request holds its Idempotency-Key in tests: longer than any runs.
const testKeyLock = 30 * time.Second

// newTestHandler returns the GraphQL handler with the given limits on db, its operations
// configured by opts, logging nowhere. It is the handler alone: a request reaches it as anonymous
// unless its context names a caller.
func newTestHandler(db *gorm.DB, limits Limits, opts ...models.Option) http.Handler {
	users := models.NewUserService(database.NewUserStore(db), opts...)
	keys := idempotency.NewKeeper(database.NewKeyStore(db), idempotency.DefaultTTL, testKeyLock)
	return NewHandler(users, keys, slog.New(slog.NewTextHandler(io.Discard, nil)), limits)
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

// newTestServer serves newTestHandler on the database at databaseURL, with the given limits and
// options, behind auth's middleware as the service puts it in front of the handler, so that
// requests carry real tokens: authtest's are valid there. The handler answers on every path;
// clients use /graphql.
func newTestServer(t testing.TB, databaseURL string, limits Limits, opts ...models.Option) *testServer {
	t.Helper()
	db := dbtest.Open(t, databaseURL)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	verifier, err := auth.NewVerifier(ctx, auth.Config{Secret: []byte(authtest.Secret), RolesClaim: authtest.RolesClaim})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(verifier.Middleware(newTestHandler(db, limits, opts...)))
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

// rawResponse is a response of the GraphQL endpoint as it came, so that a test can tell an entry
// of its body that is left out from one that is null.
type rawResponse struct {
	Status int
	Header http.Header
	// Entries are the body's top-level entries (data, errors, extensions); nil if the body is
	// not a JSON object.
	Entries map[string]json.RawMessage
	Body    []byte
}

// Code returns the first error's extensions.code, or "" if there is none.
func (r rawResponse) Code() string { return r.firstError().Extensions.Code }

// Message returns the first error's message, or "" if there is none.
func (r rawResponse) Message() string { return r.firstError().Message }

type rawError struct {
	Message    string `json:"message"`
	Extensions struct {
		Code string `json:"code"`
	} `json:"extensions"`
}

func (r rawResponse) firstError() rawError {
	var errs []rawError
	if json.Unmarshal(r.Entries["errors"], &errs) != nil || len(errs) == 0 {
		return rawError{}
	}
	return errs[0]
}

// MediaType is the response's media type, without its parameters.
func (r rawResponse) MediaType() string {
	mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return mediaType
}

// doRaw sends req and reads the response whole.
func doRaw(t testing.TB, req *http.Request) rawResponse {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	r := rawResponse{Status: resp.StatusCode, Header: resp.Header, Body: body}
	json.Unmarshal(body, &r.Entries)
	return r
}
