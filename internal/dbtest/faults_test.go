package dbtest_test

import (
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"usergraph/database"
	"usergraph/internal/dbtest"
)

// echoServer accepts connections on a loopback port and sends back what it reads.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	return ln.Addr().String()
}

// roundTrip sends msg through conn and returns what comes back within wait, or "".
func roundTrip(t *testing.T, conn net.Conn, msg string, wait time.Duration) string {
	t.Helper()
	if _, err := conn.Write([]byte(msg)); err != nil {
		return ""
	}
	conn.SetReadDeadline(time.Now().Add(wait))
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(conn, buf); err != nil {
		return ""
	}
	return string(buf)
}

// The tests of outages rely on the proxy doing to a connection what a network failure and a hung
// database do.
func TestProxy(t *testing.T) {
	p := dbtest.NewProxy(t, echoServer(t))
	conn, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if got := roundTrip(t, conn, "ping", time.Second); got != "ping" {
		t.Fatalf("through the proxy: %q, want ping", got)
	}

	p.Stall()
	if got := roundTrip(t, conn, "held", 100*time.Millisecond); got != "" {
		t.Errorf("while stalled, %q came back", got)
	}
	p.Unstall()
	conn.SetReadDeadline(time.Now().Add(time.Second))
	buf := make([]byte, 4)
	if _, err := io.ReadFull(conn, buf); err != nil || string(buf) != "held" {
		t.Errorf("after Unstall: %q, %v; want what was held back", buf, err)
	}

	p.Cut()
	if got := roundTrip(t, conn, "gone", 200*time.Millisecond); got != "" {
		t.Errorf("a cut connection answered %q", got)
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Error("the cut proxy accepted a connection")
	}

	p.Resume()
	again, err := net.Dial("tcp", p.Addr())
	if err != nil {
		t.Fatalf("after Resume: %v", err)
	}
	defer again.Close()
	if got := roundTrip(t, again, "back", time.Second); got != "back" {
		t.Errorf("after Resume: %q, want back", got)
	}

	p.CutOnSend([]byte("COMMIT"))
	if got := roundTrip(t, again, "pass", time.Second); got != "pass" {
		t.Errorf("before the pattern: %q, want pass", got)
	}
	if got := roundTrip(t, again, "COMMIT", 200*time.Millisecond); got != "" {
		t.Errorf("the bytes that cut the proxy arrived: %q", got)
	}
	if c, err := net.Dial("tcp", p.Addr()); err == nil {
		c.Close()
		t.Error("the proxy cut on the pattern accepted a connection")
	}
}

// While LockSQLite holds the lock, a write past the busy timeout fails as unavailable, as under
// a real writer; once released, it goes through.
func TestLockSQLite(t *testing.T) {
	path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
	db := dbtest.Open(t, "sqlite:"+path+"?_pragma=busy_timeout(50)")
	write := func() error {
		return db.Exec("UPDATE users SET version = version + 1 WHERE id = 0").Error
	}
	release := dbtest.LockSQLite(t, path)
	if err := write(); !database.IsUnavailable(err) {
		t.Errorf("a write while locked: %v, want an unavailable database", err)
	}
	release()
	if err := write(); err != nil {
		t.Errorf("a write after release: %v", err)
	}
}
