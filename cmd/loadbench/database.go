package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	_ "github.com/glebarez/go-sqlite"
	"github.com/go-sql-driver/mysql"
)

// prepareDatabase makes a fresh database, unless -database names one, and returns its DSN for
// database/sql, its DATABASE_URL for the service, and what drops it.
func prepareDatabase(o options, tmp string) (dsn, databaseURL string, cleanup func(), err error) {
	if o.database == "sqlite" {
		path := filepath.Join(tmp, "load.db")
		return "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_time_format=sqlite", "sqlite:" + path, func() {}, nil
	}
	u, err := url.Parse(o.database)
	if err != nil || u.Scheme != "mysql" {
		return "", "", nil, fmt.Errorf("-database must be sqlite, mysql://USER:PASS@HOST:PORT/ or mysql://USER:PASS@HOST:PORT/DB")
	}
	cfg := mysql.NewConfig()
	cfg.Net, cfg.Addr, cfg.User = "tcp", u.Host, u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.ParseTime = true
	if name := strings.TrimPrefix(u.Path, "/"); name != "" {
		// A database that exists, with the service's schema, such as a Vitess keyspace that
		// deploy/vitess/cluster laid out: used as it is, and left as it is.
		cfg.DBName = name
		return cfg.FormatDSN(), o.database, func() {}, nil
	}
	admin, err := sql.Open("mysql", cfg.FormatDSN())
	if err != nil {
		return "", "", nil, err
	}
	name := "usergraph_load_" + strconv.FormatInt(time.Now().Unix(), 36)
	if _, err := admin.Exec("CREATE DATABASE " + name); err != nil {
		admin.Close()
		return "", "", nil, fmt.Errorf("creating a database on %s: %w", u.Host, err)
	}
	cfg.DBName = name
	u.Path = "/" + name
	return cfg.FormatDSN(), u.String(), func() {
		admin.Exec("DROP DATABASE " + name)
		admin.Close()
	}, nil
}

func driverOf(databaseURL string) string {
	if strings.HasPrefix(databaseURL, "sqlite:") {
		return "sqlite"
	}
	return "mysql"
}

// seed inserts n users, in batches, into a database that has none: their IDs are 1..n, given by
// the database, so that a Vitess keyspace's sequence hands out the next ones afterwards.
func seed(db *sql.DB, n int) error {
	now := time.Now().UTC()
	for start := 1; start <= n; start += 500 {
		var q strings.Builder
		var args []any
		q.WriteString("INSERT INTO users (username, email, username_key, email_key, version, created_at, updated_at) VALUES ")
		for id := start; id < start+500 && id <= n; id++ {
			if id > start {
				q.WriteString(",")
			}
			q.WriteString("(?, ?, ?, ?, 1, ?, ?)")
			name := fmt.Sprintf("seed%d", id)
			args = append(args, name, name+"@example.com", name, name+"@example.com", now, now)
		}
		if _, err := db.Exec(q.String(), args...); err != nil {
			return err
		}
	}
	return nil
}

// questions reads MySQL's Questions counter: statements the server received from clients.
func questions(db *sql.DB, mysqlServer bool) int64 {
	if !mysqlServer {
		return 0
	}
	var name string
	var n int64
	if err := db.QueryRowContext(context.Background(), "SHOW GLOBAL STATUS LIKE 'Questions'").Scan(&name, &n); err != nil {
		return 0
	}
	return n
}
