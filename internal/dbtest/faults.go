package dbtest

import (
	"bytes"
	"context"
	"database/sql"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	// The SQLite driver the service uses, registered as "sqlite".
	_ "github.com/glebarez/go-sqlite"
)

// LockSQLite takes the write lock of the SQLite file at path from a connection of its own, as
// another process's write transaction would, and returns what releases it: a service on that file
// then waits for the lock and, past its busy timeout, fails as it would under a real writer.
func LockSQLite(t testing.TB, path string) (release func()) {
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

// Proxy forwards connections to a database server until it is cut, so that a test can take the
// database away from a running service, as a network failure would, and give it back; or make it
// hang, as a database that stops answering would.
type Proxy struct {
	t      testing.TB
	target string
	ln     net.Listener
	addr   string

	mu    sync.Mutex
	conns []net.Conn
	cut   bool
	// stalled holds back everything the server sends.
	stalled atomic.Bool
	// trip, when set, cuts the proxy at the first bytes from a client that hold it.
	trip atomic.Pointer[[]byte]
}

// NewProxy starts a proxy to target on a loopback port of its own, cut when the test ends.
func NewProxy(t testing.TB, target string) *Proxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &Proxy{t: t, target: target, ln: ln, addr: ln.Addr().String()}
	go p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

// Addr is the address to connect to instead of the target.
func (p *Proxy) Addr() string { return p.addr }

func (p *Proxy) serve(ln net.Listener) {
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
		p.conns = append(p.conns, client, server)
		p.mu.Unlock()
		go func() { p.forward(server, client); server.Close() }()
		go func() { p.relay(client, server); client.Close() }()
	}
}

// forward copies what the client sends to the server, until it sends the bytes CutOnSend waits
// for: those never arrive, and the proxy is cut.
func (p *Proxy) forward(server, client net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := client.Read(buf)
		if n > 0 {
			if trip := p.trip.Load(); trip != nil && bytes.Contains(buf[:n], *trip) {
				p.trip.Store(nil)
				p.Cut()
				return
			}
			if _, werr := server.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// CutOnSend makes the proxy cut every connection, as a network failure would, when a client next
// sends bytes that contain pattern, such as a statement's text: the statement never reaches the
// server, and whatever that client's connection had begun there, such as a transaction, is
// rolled back by the server as the connection drops. The proxy stays cut until Resume.
func (p *Proxy) CutOnSend(pattern []byte) { p.trip.Store(&pattern) }

// relay copies what the server sends to the client, holding it back while the proxy is stalled.
func (p *Proxy) relay(client, server net.Conn) {
	buf := make([]byte, 32<<10)
	for {
		n, err := server.Read(buf)
		for p.stalled.Load() {
			time.Sleep(10 * time.Millisecond)
		}
		if n > 0 {
			if _, werr := client.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// Stall makes the database appear to hang: connections stay open, and nothing it answers
// arrives, until Unstall.
func (p *Proxy) Stall() { p.stalled.Store(true) }

// Unstall lets answers through again.
func (p *Proxy) Unstall() { p.stalled.Store(false) }

// Cut closes every connection and refuses new ones.
func (p *Proxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cut {
		return
	}
	p.cut = true
	p.ln.Close()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Resume accepts connections again, on the same address.
func (p *Proxy) Resume() {
	p.mu.Lock()
	defer p.mu.Unlock()
	ln, err := net.Listen("tcp", p.addr)
	if err != nil {
		p.t.Fatalf("listening again on %s: %v", p.addr, err)
	}
	p.ln, p.cut = ln, false
	go p.serve(ln)
}
