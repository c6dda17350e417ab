// Package dbtest gives tests real, empty databases: a SQLite file in a temporary directory always,
// and a fresh database on the MySQL server that TEST_MYSQL_DSN names when it is set. Open opens
// one as the service opens its own. It also makes a database fail as real ones do: a SQLite file
// whose write lock another connection holds, and a proxy that cuts or stalls a server's
// connections.
package dbtest

import (
	"context"
	"crypto/rand"
	"database/sql"
	"encoding/hex"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"usergraph/database"
	"usergraph/internal/testenv"
)

// Each runs fn once per database the tests can reach, as subtests named "sqlite" and "mysql",
// each given the DATABASE_URL of a new, empty database; and "vitess", given the sharded keyspace
// that TEST_VITESS_DSN names, when it is set, which every test shares (see Shared).
func Each(t *testing.T, fn func(t *testing.T, databaseURL string)) {
	t.Helper()
	t.Run("sqlite", func(t *testing.T) { fn(t, SQLiteURL(t)) })
	if MySQLConfigured(t) {
		t.Run("mysql", func(t *testing.T) { fn(t, MySQLURL(t)) })
	}
	if url := os.Getenv("TEST_VITESS_DSN"); url != "" {
		t.Run("vitess", func(t *testing.T) { fn(t, url) })
	}
}

// Open opens the database at databaseURL as the service opens its own, schema included, and closes
// it when the test ends.
func Open(t testing.TB, databaseURL string) *gorm.DB {
	t.Helper()
	db, _ := open(t, databaseURL, false)
	return db
}

// OpenCounting is Open through CountingDriver, and returns the counter of what reaches the
// database: one that every database opened this way on the same dialect shares.
func OpenCounting(t testing.TB, databaseURL string) (*gorm.DB, *Counter) {
	t.Helper()
	return open(t, databaseURL, true)
}

func open(t testing.TB, databaseURL string, counting bool) (*gorm.DB, *Counter) {
	t.Helper()
	cfg, err := database.ParseURL(databaseURL)
	if err != nil {
		t.Fatal(err)
	}
	var counter *Counter
	if counting {
		cfg.DriverName, counter = CountingDriver(string(cfg.Dialect))
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
	return db, counter
}

// SQLiteURL returns the DATABASE_URL of a new SQLite file, removed when the test ends.
func SQLiteURL(t testing.TB) string {
	return "sqlite:" + filepath.Join(t.TempDir(), "usergraph.db")
}

// MySQLConfigured reports whether TEST_MYSQL_DSN is set. In CI (CI=true) it must be: a CI run
// that quietly left out the MySQL tests would pass without testing half of what it claims.
func MySQLConfigured(t testing.TB) bool {
	if os.Getenv("TEST_MYSQL_DSN") != "" {
		return true
	}
	if testenv.InCI() {
		t.Fatal("CI=true but TEST_MYSQL_DSN is not set: the MySQL tests cannot run")
	}
	return false
}

// MySQLURL creates a database of its own for the test on the server that TEST_MYSQL_DSN names, and
// returns its DATABASE_URL; the database is dropped when the test ends. Tests run in parallel, so
// each needs its own. TEST_MYSQL_DSN is a DATABASE_URL (mysql://root@127.0.0.1:3306/usergraph_test)
// or a Go MySQL driver DSN (root@tcp(127.0.0.1:3306)/usergraph_test); its database name, if any,
// prefixes the names of the tests' databases, and its user needs the right to create them.
func MySQLURL(t testing.TB) string {
	t.Helper()
	cfg, prefix := serverConfig(t)
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		t.Fatalf("TEST_MYSQL_DSN: %v", err)
	}
	defer admin.Close()
	name := prefix + "_" + randomHex(6)
	if _, err := admin.Exec("CREATE DATABASE " + name + " CHARACTER SET utf8mb4"); err != nil {
		t.Fatalf("creating a test database on the TEST_MYSQL_DSN server: %v", err)
	}
	t.Cleanup(func() {
		admin, err := sql.Open("mysql", cfg.FormatDSN())
		if err != nil {
			t.Errorf("dropping %s: %v", name, err)
			return
		}
		defer admin.Close()
		if _, err := admin.Exec("DROP DATABASE IF EXISTS " + name); err != nil {
			t.Errorf("dropping %s: %v", name, err)
		}
	})
	u := url.URL{Scheme: "mysql", Host: cfg.Addr, Path: "/" + name}
	if cfg.Passwd != "" {
		u.User = url.UserPassword(cfg.User, cfg.Passwd)
	} else {
		u.User = url.User(cfg.User)
	}
	return u.String()
}

// serverConfig reads TEST_MYSQL_DSN, in either of its forms, and returns the server's connection
// settings without a database, and the prefix for the tests' databases.
func serverConfig(t testing.TB) (*mysql.Config, string) {
	t.Helper()
	dsn := os.Getenv("TEST_MYSQL_DSN")
	var cfg *mysql.Config
	if strings.HasPrefix(dsn, "mysql://") {
		u, err := url.Parse(dsn)
		if err != nil {
			t.Fatal("TEST_MYSQL_DSN: not a valid mysql:// URL")
		}
		cfg = mysql.NewConfig()
		cfg.Net, cfg.Addr = "tcp", u.Host
		if u.Port() == "" {
			cfg.Addr += ":3306"
		}
		cfg.User = u.User.Username()
		cfg.Passwd, _ = u.User.Password()
		cfg.DBName = strings.Trim(u.Path, "/")
	} else {
		var err error
		if cfg, err = mysql.ParseDSN(dsn); err != nil {
			t.Fatalf("TEST_MYSQL_DSN: %v", err)
		}
	}
	prefix := cfg.DBName
	if prefix == "" || strings.ContainsFunc(prefix, func(r rune) bool {
		return !(r == '_' || r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9')
	}) {
		prefix = "usergraph_test"
	}
	cfg.DBName = ""
	return cfg, prefix
}

func randomHex(n int) string {
	b := make([]byte, n)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Stored reads the user with this ID straight from db, so that a test sees what was written
// rather than what an edge answered; it returns nil if there is no such user.
func Stored(t testing.TB, db *gorm.DB, id string) *database.UserRow {
	t.Helper()
	var rows []database.UserRow
	if err := db.Where("id = ?", id).Find(&rows).Error; err != nil {
		t.Fatal(err)
	}
	if len(rows) == 0 {
		return nil
	}
	return &rows[0]
}

// Unchanged fails the test unless the user with this ID is stored in db exactly as before: a
// refused request must leave no trace.
func Unchanged(t testing.TB, db *gorm.DB, id string, before database.UserRow) {
	t.Helper()
	if after := Stored(t, db, id); after == nil || *after != before {
		t.Errorf("the stored user changed:\n got %+v\nwant %+v", after, before)
	}
}

// VitessURL returns the DATABASE_URL of the sharded keyspace that TEST_VITESS_DSN names (the last
// line `deploy/vitess/cluster up` prints), or skips t without it, and fails it in CI, where the
// Vitess lane must run. Tests share the keyspace, whose tables are laid out by deploy/vitess: a
// test writes only users of its own, with names of its own, and asserts only on them.
func VitessURL(t testing.TB) string {
	t.Helper()
	url := os.Getenv("TEST_VITESS_DSN")
	if url == "" {
		testenv.Require(t, "the Vitess tests", "TEST_VITESS_DSN: run deploy/vitess/cluster up, and set it to the URL it prints last")
	}
	return url
}

// Shared reports whether databaseURL, as Each gave it, is the Vitess keyspace that every test
// shares, on which a test may neither break the database nor assert on all of a table's rows.
func Shared(databaseURL string) bool {
	return databaseURL != "" && databaseURL == os.Getenv("TEST_VITESS_DSN")
}
