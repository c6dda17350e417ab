package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"usergraph/auth"
	"usergraph/database"
	"usergraph/graph"
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
	URL string
	DB  *gorm.DB
	// log holds what the server logged, for assertions on it.
	log *syncBuffer
	// adminToken is a valid token with the admin role.
	adminToken string
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
	return &testServer{URL: srv.URL, DB: db, log: logs, adminToken: token(t, "admin", auth.AdminRole)}
}

// token signs a token for sub, valid for an hour, with the given roles.
func token(t testing.TB, sub string, roles ...string) string {
	t.Helper()
	return authtest.Token(t, sub, roles...)
}

// gqlResponse is a GraphQL response as a client reads it.
type gqlResponse struct {
	Status int
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

// code returns the first error's extensions.code, or "" if there is no error.
func (r gqlResponse) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	code, _ := r.Errors[0].Extensions["code"].(string)
	return code
}

// field returns the first error's extensions.field.
func (r gqlResponse) field() string {
	if len(r.Errors) == 0 {
		return ""
	}
	field, _ := r.Errors[0].Extensions["field"].(string)
	return field
}

// graphql POSTs a GraphQL request to /graphql; an empty bearer sends no Authorization header.
func (s *testServer) graphql(t testing.TB, bearer, query string, variables map[string]any) gqlResponse {
	t.Helper()
	body, err := json.Marshal(map[string]any{"query": query, "variables": variables})
	if err != nil {
		t.Fatal(err)
	}
	return s.postGraphQL(t, bearer, body)
}

func (s *testServer) postGraphQL(t testing.TB, bearer string, body []byte) gqlResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	return doGraphQL(t, req)
}

func doGraphQL(t testing.TB, req *http.Request) gqlResponse {
	t.Helper()
	return doGraphQLWith(t, http.DefaultClient, req)
}

// doGraphQLWith is doGraphQL with the given client.
func doGraphQLWith(t testing.TB, client *http.Client, req *http.Request) gqlResponse {
	t.Helper()
	resp, err := client.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	out := gqlResponse{Status: resp.StatusCode}
	if err := json.Unmarshal(raw, &out); err != nil {
		t.Fatalf("response is not JSON (status %d): %s", resp.StatusCode, raw)
	}
	for _, e := range out.Errors {
		if _, ok := e.Extensions["code"].(string); !ok {
			t.Errorf("error without extensions.code: %s", raw)
		}
	}
	return out
}

// userJSON is a User as the API renders it.
type userJSON struct {
	ID        string    `json:"id"`
	Username  string    `json:"username"`
	Email     string    `json:"email"`
	CreatedAt time.Time `json:"createdAt"`
	UpdatedAt time.Time `json:"updatedAt"`
	Version   int       `json:"version"`
}

const userFields = "id username email createdAt updatedAt version"

// user decodes the user at data[name].
func (r gqlResponse) user(t testing.TB, name string) *userJSON {
	t.Helper()
	raw, ok := r.Data[name]
	if !ok {
		t.Fatalf("no %q in data; errors: %+v", name, r.Errors)
	}
	var u *userJSON
	if err := json.Unmarshal(raw, &u); err != nil {
		t.Fatal(err)
	}
	return u
}

// createUser creates a user as an admin and returns it.
func (s *testServer) createUser(t testing.TB, username, email string) *userJSON {
	t.Helper()
	r := s.graphql(t, s.adminToken, `mutation($in: CreateUserInput!) { createUser(input: $in) { `+userFields+` } }`,
		map[string]any{"in": map[string]any{"username": username, "email": email}})
	if len(r.Errors) > 0 {
		t.Fatalf("createUser(%q, %q): %+v", username, email, r.Errors)
	}
	return r.user(t, "createUser")
}

const updateMutation = `mutation($id: ID!, $in: UpdateUserInput!) { updateUser(id: $id, input: $in) { ` + userFields + ` } }`

// updateUser sends the updateUser mutation with the given input.
func (s *testServer) updateUser(t testing.TB, bearer, id string, input map[string]any) gqlResponse {
	t.Helper()
	return s.graphql(t, bearer, updateMutation, map[string]any{"id": id, "in": input})
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

// uniq returns a name that no other call in this process returns, for usernames and emails.
var uniqCounter struct {
	sync.Mutex
	n int
}

func uniq(prefix string) string {
	uniqCounter.Lock()
	defer uniqCounter.Unlock()
	uniqCounter.n++
	return fmt.Sprintf("%s%d", prefix, uniqCounter.n)
}

// newUser creates a user with unique names and returns it with a token of its own.
func (s *testServer) newUser(t testing.TB) (*userJSON, string) {
	t.Helper()
	name := uniq("user")
	u := s.createUser(t, name, strings.ToLower(name)+"@example.com")
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
