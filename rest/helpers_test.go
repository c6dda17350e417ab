package rest_test

import (
	"bytes"
	"context"
	"database/sql"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"gorm.io/gorm"

	"usergraph/auth"
	"usergraph/database"
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
// middleware as the service mounts them, so that what a caller sees here is what it sees there.
// What the routes log is shown if the test fails.
func newServer(t testing.TB, databaseURL string) *server {
	t.Helper()
	db := dbtest.Open(t, databaseURL)
	users := models.NewUserService(database.NewUserStore(db))
	verifier, err := auth.NewVerifier(t.Context(), auth.Config{Secret: []byte(authtest.Secret), RolesClaim: authtest.RolesClaim})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	logger := slog.New(slog.NewTextHandler(logs, nil))

	api := func(h http.Handler) http.Handler { return verifier.Middleware(h, 10*time.Second) }
	mux := http.NewServeMux()
	mux.Handle("GET /users/{id}", api(rest.GetUser(users, logger)))
	mux.Handle("PUT /users/{id}", api(rest.UpdateUser(users, logger)))
	mux.Handle("/users/{id}", rest.MethodNotAllowed(http.MethodGet, http.MethodHead, http.MethodPut))
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

// stored reads a user straight from the database, so that a test sees what was written rather
// than what the routes answered; it returns nil if there is no user with that ID.
func (s *server) stored(t testing.TB, id string) *database.UserRow {
	t.Helper()
	var rows []database.UserRow
	if err := s.db.Where("id = ?", id).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return nil
	}
	return &rows[0]
}

// unchanged fails the test if the user's stored row differs from before: a refused request must
// leave no trace.
func (s *server) unchanged(t testing.TB, id string, before database.UserRow) {
	t.Helper()
	if after := s.stored(t, id); after == nil || *after != before {
		t.Errorf("the stored user changed:\n got %+v\nwant %+v", after, before)
	}
}

// syncBuffer is a bytes.Buffer that a server's goroutines may write while a test reads it.
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

// lockSQLite takes the write lock of the SQLite file at path from a connection of its own, as
// another process's write transaction would, and returns what releases it.
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

// tcpProxy forwards connections to a database server until it is cut, so that a test can take the
// database away from a running server, as a network failure would, and give it back.
type tcpProxy struct {
	t      *testing.T
	target string
	addr   string

	mu    sync.Mutex
	ln    net.Listener // nil while cut
	conns []net.Conn
}

// newTCPProxy starts a proxy to target on a loopback port of its own.
func newTCPProxy(t *testing.T, target string) *tcpProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &tcpProxy{t: t, target: target, addr: ln.Addr().String(), ln: ln}
	go p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

// Addr is the address to connect to instead of the target.
func (p *tcpProxy) Addr() string { return p.addr }

func (p *tcpProxy) serve(ln net.Listener) {
	for {
		client, err := ln.Accept()
		if err != nil {
			return
		}
		server, err := net.Dial("tcp", p.target)
		if err != nil {
			client.Close()
			continue
		}
		p.mu.Lock()
		if p.ln != ln {
			// Cut while this connection was being made: it must not outlive the cut.
			p.mu.Unlock()
			client.Close()
			server.Close()
			return
		}
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go func() { io.Copy(server, client); server.Close() }()
		go func() { io.Copy(client, server); client.Close() }()
	}
}

// Cut closes every connection and refuses new ones.
func (p *tcpProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln == nil {
		return
	}
	p.ln.Close()
	p.ln = nil
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Resume accepts connections again, on the same address, which the server's connection pool
// still dials.
func (p *tcpProxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("listening again on %s: %v", p.addr, err)
	}
	p.ln = ln
	go p.serve(ln)
}
