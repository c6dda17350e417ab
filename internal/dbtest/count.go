package dbtest

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync"
	"sync/atomic"

	"github.com/glebarez/go-sqlite"
	"github.com/go-sql-driver/mysql"
)

// Counter counts the statements a database/sql driver sends to the database: every execution,
// of a prepared statement or not. Preparing a statement is not an execution.
type Counter struct {
	n atomic.Int64
}

// Reset sets the count to zero.
func (c *Counter) Reset() { c.n.Store(0) }

// Count returns the statements executed since the last Reset.
func (c *Counter) Count() int64 { return c.n.Load() }

var (
	registerOnce sync.Once
	counters     = map[string]*Counter{}
)

// CountingDriver returns the name of a database/sql driver that wraps the given dialect's own
// ("sqlite" or "mysql") and counts what it sends, and its counter. Every database opened with the
// driver shares the counter, so a test that counts uses a database of its own.
func CountingDriver(dialect string) (string, *Counter) {
	registerOnce.Do(func() {
		for name, d := range map[string]driver.Driver{"sqlite": &sqlite.Driver{}, "mysql": &mysql.MySQLDriver{}} {
			c := &Counter{}
			counters[name] = c
			sql.Register(name+"-counting", countingDriver{d, c})
		}
	})
	return dialect + "-counting", counters[dialect]
}

type countingDriver struct {
	driver.Driver
	c *Counter
}

func (d countingDriver) Open(name string) (driver.Conn, error) {
	conn, err := d.Driver.Open(name)
	if err != nil {
		return nil, err
	}
	return &countingConn{conn, d.c}, nil
}

// countingConn offers the interfaces database/sql looks for, each passed on to the driver's own.
type countingConn struct {
	driver.Conn
	c *Counter
}

func (c *countingConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	st, err := c.Conn.(driver.ConnPrepareContext).PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	return &countingStmt{st, c.c}, nil
}

func (c *countingConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	c.c.n.Add(1)
	return c.Conn.(driver.ExecerContext).ExecContext(ctx, query, args)
}

func (c *countingConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	c.c.n.Add(1)
	return c.Conn.(driver.QueryerContext).QueryContext(ctx, query, args)
}

func (c *countingConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	c.c.n.Add(1) // BEGIN
	return c.Conn.(driver.ConnBeginTx).BeginTx(ctx, opts)
}

func (c *countingConn) Ping(ctx context.Context) error {
	if p, ok := c.Conn.(driver.Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

func (c *countingConn) ResetSession(ctx context.Context) error {
	if r, ok := c.Conn.(driver.SessionResetter); ok {
		return r.ResetSession(ctx)
	}
	return nil
}

func (c *countingConn) IsValid() bool {
	if v, ok := c.Conn.(driver.Validator); ok {
		return v.IsValid()
	}
	return true
}

func (c *countingConn) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := c.Conn.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}

type countingStmt struct {
	driver.Stmt
	c *Counter
}

func (s *countingStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	s.c.n.Add(1)
	return s.Stmt.(driver.StmtExecContext).ExecContext(ctx, args)
}

func (s *countingStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	s.c.n.Add(1)
	return s.Stmt.(driver.StmtQueryContext).QueryContext(ctx, args)
}

func (s *countingStmt) CheckNamedValue(nv *driver.NamedValue) error {
	if ch, ok := s.Stmt.(driver.NamedValueChecker); ok {
		return ch.CheckNamedValue(nv)
	}
	return driver.ErrSkip
}
