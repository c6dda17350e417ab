// Package database opens the service's database, SQLite or MySQL, through GORM, keeps its schema
// up to date, and keeps the users in it (UserStore).
package database

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/glebarez/go-sqlite"
	gormsqlite "github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	"go.opentelemetry.io/otel/trace"
	gormmysql "gorm.io/driver/mysql"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"
)

func init() {
	// The MySQL driver prints its own lines ("closing bad idle connection") to stderr, outside the
	// service's JSON log. Every failure they tell of also reaches the service as an error, which
	// it logs in its own format.
	mysql.SetLogger(log.New(io.Discard, "", 0))
}

// Dialect names the kind of database.
type Dialect string

// The dialects the service runs on.
const (
	SQLite Dialect = "sqlite"
	MySQL  Dialect = "mysql"
)

// Config says which database to open and how; ParseURL makes one from a DATABASE_URL.
type Config struct {
	Dialect Dialect
	// DSN is the driver's data source name.
	DSN string
	// Memory is true for an in-memory SQLite database, which lives exactly as long as its one
	// connection.
	Memory bool
	// DriverName is the database/sql driver to open, when not the dialect's own: tests wrap the
	// driver to see what reaches the database.
	DriverName string
	// TracerProvider, when set, makes every statement a span of the request that made it; nil
	// traces nothing and wraps nothing.
	TracerProvider trace.TracerProvider
	// Pool settings, for MySQL; SQLite's pool is fixed by what SQLite can do.
	MaxOpenConns    int
	MaxIdleConns    int
	ConnMaxLifetime time.Duration
}

// ParseURL parses a DATABASE_URL: "sqlite:PATH" (PATH may be ":memory:", and may end in
// "?_pragma=..." options) or "mysql://USER:PASS@HOST:PORT/DB?params".
func ParseURL(raw string) (Config, error) {
	switch {
	case strings.HasPrefix(raw, "sqlite:"):
		return parseSQLite(strings.TrimPrefix(raw, "sqlite:"))
	case strings.HasPrefix(raw, "mysql://"):
		return parseMySQL(raw)
	}
	return Config{}, errors.New(`must start with "sqlite:" or "mysql://"`)
}

func parseSQLite(rest string) (Config, error) {
	path, query, _ := strings.Cut(rest, "?")
	if path == "" {
		return Config{}, errors.New(`"sqlite:" needs a file path, such as sqlite:usergraph.db, or :memory:`)
	}
	if _, err := url.ParseQuery(query); err != nil {
		return Config{}, fmt.Errorf("bad options after the path: %v", err)
	}
	// WAL lets readers go on while one connection writes; the busy timeout makes a writer wait for
	// another instead of failing at once. Options given in the URL come after and so win.
	params := "_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_pragma=foreign_keys(1)&_time_format=sqlite"
	if query != "" {
		params += "&" + query
	}
	memory := path == ":memory:"
	return Config{Dialect: SQLite, DSN: "file:" + path + "?" + params, Memory: memory}, nil
}

func parseMySQL(raw string) (Config, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse's message repeats the whole URL, password included.
		return Config{}, errors.New("is not a valid URL: expected mysql://USER:PASS@HOST:PORT/DB")
	}
	db := strings.TrimPrefix(u.Path, "/")
	if u.Host == "" || db == "" || strings.Contains(db, "/") {
		return Config{}, errors.New("needs a host and a database name: mysql://USER:PASS@HOST:PORT/DB")
	}
	// The driver checks its own parameters; the address and credentials are set below, from the
	// URL's parts, so that a password may hold any character.
	cfg, err := mysql.ParseDSN("/" + url.PathEscape(db) + "?" + u.RawQuery)
	if err != nil {
		return Config{}, fmt.Errorf("bad parameters: %v", err)
	}
	cfg.DBName = db
	cfg.Net = "tcp"
	cfg.Addr = u.Host
	if u.Port() == "" {
		cfg.Addr = net.JoinHostPort(u.Hostname(), "3306")
	}
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	// Times are stored and read as UTC, whatever the server's or the client's time zone.
	cfg.ParseTime = true
	cfg.Loc = time.UTC
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	if _, ok := cfg.Params["charset"]; !ok {
		cfg.Params["charset"] = "utf8mb4"
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 5 * time.Second
	}
	// Parameters are interpolated into the statement by the driver (safely: the connection's
	// character set is utf8mb4), so that a statement is one round trip. Otherwise each one is a
	// prepare, an execute and a close: three round trips, and three times the server's work.
	if _, set := u.Query()["interpolateParams"]; !set {
		cfg.InterpolateParams = true
	}
	return Config{Dialect: MySQL, DSN: cfg.FormatDSN()}, nil
}

// Open connects to the database and brings its schema up to date.
func Open(ctx context.Context, cfg Config) (*gorm.DB, error) {
	gcfg := &gorm.Config{
		// Every write the service makes is one statement; GORM's default transaction around it
		// would cost two more round trips.
		SkipDefaultTransaction: true,
		// Duplicate keys come back as gorm.ErrDuplicatedKey on either database, for UserStore to
		// report as models.ErrKeyTaken.
		TranslateError: true,
		NowFunc:        func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) },
		Logger:         logger.Discard,
	}
	// Traced, the pool is opened here, on an instrumented driver, and handed to GORM.
	var traced *sql.DB
	var pool gorm.ConnPool
	if name, known := defaultDriverNames[cfg.Dialect]; cfg.TracerProvider != nil && known {
		var err error
		if traced, err = openTraced(cfg, cmp.Or(cfg.DriverName, name)); err != nil {
			return nil, err
		}
		pool = traced
	}
	var dialector gorm.Dialector
	switch cfg.Dialect {
	case SQLite:
		dialector = &gormsqlite.Dialector{DSN: cfg.DSN, DriverName: cfg.DriverName, Conn: pool}
	case MySQL:
		dialector = gormmysql.New(gormmysql.Config{DSN: cfg.DSN, DriverName: cmp.Or(cfg.DriverName, mysqlDriverName), Conn: pool})
	default:
		return nil, fmt.Errorf("unknown database dialect %q", cfg.Dialect)
	}
	db, err := gorm.Open(dialector, gcfg)
	if err != nil {
		if traced != nil {
			traced.Close()
		}
		return nil, err
	}
	sqlDB, err := db.DB()
	if err != nil {
		return nil, err
	}
	configurePool(sqlDB, cfg)
	if err := migrate(ctx, db, cfg.Dialect); err != nil {
		sqlDB.Close()
		return nil, fmt.Errorf("updating the schema: %w", err)
	}
	return db, nil
}

// DefaultMaxOpenConns is the MySQL pool's size when none is configured. More connections than
// the database can run at once do not make it faster: the surplus statements wait inside the
// server, where the waiting costs its CPU (spinning on contended locks, switching threads) and
// stretches every transaction's commit, rather than in the pool, where it costs little. Measured
// with cmd/loadbench on 2 cores shared with MariaDB, 32 concurrent updates through 32 connections
// had a p99 latency 3 to 6 times the database's own; through 16, 1.3 to 1.7 times; through 12,
// at most 1.2 times, at the same rate within the machine's noise (through 8, the rate fell).
const DefaultMaxOpenConns = 12

func configurePool(db *sql.DB, cfg Config) {
	switch {
	case cfg.Memory:
		// Each connection to ":memory:" is a database of its own: keep exactly one, forever.
		db.SetMaxOpenConns(1)
		db.SetMaxIdleConns(1)
		db.SetConnMaxLifetime(0)
		db.SetConnMaxIdleTime(0)
	case cfg.Dialect == SQLite:
		// SQLite runs one writer at a time; a few connections let reads go on beside it.
		db.SetMaxOpenConns(4)
		db.SetMaxIdleConns(4)
	default:
		db.SetMaxOpenConns(cmp.Or(cfg.MaxOpenConns, DefaultMaxOpenConns))
		db.SetMaxIdleConns(cmp.Or(cfg.MaxIdleConns, cfg.MaxOpenConns, DefaultMaxOpenConns))
		db.SetConnMaxLifetime(cmp.Or(cfg.ConnMaxLifetime, 30*time.Minute))
		db.SetConnMaxIdleTime(5 * time.Minute)
	}
}

// Connect opens the database as Open does, retrying with backoff for as long as timeout while
// the database cannot be reached: in a deployment the service often starts before its database
// is ready. Any other failure (bad credentials, an unknown database) ends it at once.
func Connect(ctx context.Context, cfg Config, timeout time.Duration, logger *slog.Logger) (*gorm.DB, error) {
	deadline := time.Now().Add(timeout)
	wait := 200 * time.Millisecond
	for attempt := 1; ; attempt++ {
		db, err := Open(ctx, cfg)
		if err == nil || !IsUnavailable(err) {
			return db, err
		}
		if time.Now().Add(wait).After(deadline) {
			return nil, fmt.Errorf("the database did not answer within %s: %w", timeout, err)
		}
		logger.Warn("the database does not answer yet; retrying", "attempt", attempt, "retry_in", wait.String(), "err", err)
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(wait):
		}
		wait = min(wait*2, 5*time.Second)
	}
}

// isDeadlock reports whether err is InnoDB's refusal of a statement chosen as a deadlock's victim.
func isDeadlock(err error) bool {
	e, ok := errors.AsType[*mysql.MySQLError](err)
	return ok && e.Number == 1213
}

// vitessUnavailable are what vtgate's messages say, under its catch-all error 1105, when the
// cluster cannot serve a statement for now: no tablet of a shard is healthy or serving (a primary
// in failover, a tablet restarting), or vtgate does not know the schema of tables just created
// (VT09015, until its schema tracking catches up). Vitess gives them no number of their own, so
// that its message is all there is to tell them from a bad statement.
// They are in lower case, as messages are compared: vttablet says NOT_SERVING, vtgate not serving.
var vitessUnavailable = []string{
	"no healthy tablet",
	"not serving",
	"operation not allowed in state", // a tablet NOT_SERVING, SHUTTING_DOWN or in transition
	"code = unavailable",
	"vt09015",
	"vt14", // VT14xxx: no connection to a tablet or its keyspace
	"vt15001",
	"vt09032", // a session whose transaction failed, as when its tablet's mysqld restarted
}

// isVitessUnavailable reports whether msg, the message of a 1105 from vtgate, is one of
// vitessUnavailable.
func isVitessUnavailable(msg string) bool {
	msg = strings.ToLower(msg)
	for _, s := range vitessUnavailable {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

// IsUnavailable reports whether err means that the database could not be reached, or was too busy
// to answer in time: a failure that retrying later may cure, unlike a bad statement.
func IsUnavailable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, driver.ErrBadConn) || errors.Is(err, mysql.ErrInvalidConn) ||
		errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if _, ok := errors.AsType[net.Error](err); ok {
		return true
	}
	if e, ok := errors.AsType[*mysql.MySQLError](err); ok {
		switch e.Number {
		case 1040, // too many connections
			1053, // server shutdown in progress
			1205, // lock wait timeout
			1213, // deadlock, after UserStore's retries
			1290, // read-only (--read-only), as during a failover
			1836, // read-only mode
			1927, // connection killed
			// Vitess's vtgate answers a tablet's RESOURCE_EXHAUSTED (its transaction pool is full)
			// with 1203 or, when throttled, 1041, and a transaction it had to abort or time out
			// with 1317.
			1203, 1041, 1317,
			// vtgate passes on a tablet's lost connection to its mysqld with the client's own
			// numbers (VT15001, "transaction error, issue ROLLBACK and retry").
			2002, 2003, 2006, 2013:
			return true
		case 1105:
			return isVitessUnavailable(e.Message)
		}
	}
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		switch e.Code() & 0xff {
		case 5, 6: // SQLITE_BUSY, SQLITE_LOCKED: another writer held on past the busy timeout
			return true
		}
	}
	return false
}
