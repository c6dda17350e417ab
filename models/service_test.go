package models

import (
	"context"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"usergraph/database"
	"usergraph/internal/dbtest"
)

// statementCounter is a GORM logger that counts the statements sent to the database.
type statementCounter struct {
	logger.Interface
	n atomic.Int64
	// sql holds the statements, for a failure message.
	sql []string
}

func (c *statementCounter) Trace(_ context.Context, _ time.Time, fc func() (string, int64), _ error) {
	c.n.Add(1)
	s, _ := fc()
	c.sql = append(c.sql, s)
}

func openService(t *testing.T, url string) (*UserService, *statementCounter) {
	t.Helper()
	cfg, err := database.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	db, err := database.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	counter := &statementCounter{Interface: logger.Discard}
	return NewUserService(db.Session(&gorm.Session{Logger: counter})), counter
}

// An update costs the database two statements, the UPDATE and one read, and no transaction,
// whether it succeeds or fails on the expected version.
func TestUpdateStatements(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, url string) {
		s, counter := openService(t, url)
		admin := ContextWithCaller(context.Background(), &Caller{UserID: "admin", Admin: true})
		u, err := s.Create(admin, UserCreate{Username: "counted", Email: "counted@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		id := IDString(u.ID)
		name, stale := "recounted", int64(99)
		for _, tc := range []struct {
			name     string
			upd      UserUpdate
			wantCode Code
		}{
			{"Success", UserUpdate{Username: &name}, ""},
			{"StaleVersion", UserUpdate{Username: &name, IfVersion: &stale}, PreconditionFailed},
		} {
			t.Run(tc.name, func(t *testing.T) {
				counter.n.Store(0)
				counter.sql = nil
				_, err := s.Update(admin, id, tc.upd)
				if ErrorCode(err) != tc.wantCode {
					t.Fatalf("code %q, want %q (%v)", ErrorCode(err), tc.wantCode, err)
				}
				if n := counter.n.Load(); n != 2 {
					t.Errorf("%d statements, want 2:\n%s", n, strings.Join(counter.sql, "\n"))
				}
				for _, stmt := range counter.sql {
					if strings.Contains(strings.ToUpper(stmt), "BEGIN") {
						t.Errorf("a transaction: %s", stmt)
					}
				}
			})
		}
	})
}

func TestParseID(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want int64
		ok   bool
	}{
		{"1", 1, true},
		{"12345", 12345, true},
		{"9223372036854775807", 9223372036854775807, true},
		{"9223372036854775808", 0, false},
		{"0", 0, false},
		{"012", 0, false},
		{"-1", 0, false},
		{"+1", 0, false},
		{" 1", 0, false},
		{"1e3", 0, false},
		{"", 0, false},
		{"１", 0, false},
	} {
		got, ok := parseID(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("parseID(%q) = %d, %v; want %d, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestCursorRoundTrip(t *testing.T) {
	u := &User{ID: 4711}
	id, ok := parseCursor(u.Cursor())
	if !ok || id != 4711 {
		t.Errorf("parseCursor(%q) = %d, %v", u.Cursor(), id, ok)
	}
	for _, bad := range []string{"", "4711", "dXNlcjo", "dXNlcjowMQ", "!!"} {
		if _, ok := parseCursor(bad); ok {
			t.Errorf("parseCursor(%q) accepted", bad)
		}
	}
}
