package models

import (
	"context"
	"testing"

	"usergraph/database"
	"usergraph/internal/dbtest"
)

func openService(t *testing.T, url string) (*UserService, *dbtest.Counter) {
	t.Helper()
	cfg, err := database.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	var counter *dbtest.Counter
	cfg.DriverName, counter = dbtest.CountingDriver(string(cfg.Dialect))
	db, err := database.Open(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if sqlDB, err := db.DB(); err == nil {
			sqlDB.Close()
		}
	})
	return NewUserService(db), counter
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
				counter.Reset()
				_, err := s.Update(admin, id, tc.upd)
				if ErrorCode(err) != tc.wantCode {
					t.Fatalf("code %q, want %q (%v)", ErrorCode(err), tc.wantCode, err)
				}
				// Counted at the driver: prepared executions, statements and BEGINs alike.
				if n := counter.Count(); n != 2 {
					t.Errorf("%d statements, want 2", n)
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
