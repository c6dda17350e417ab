package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"sync/atomic"

	"github.com/go-sql-driver/mysql"
)

// mysqlDriverName is the driver the service opens MySQL with: Go's MySQL driver, whose
// connections are retired once Vitess says that their session is stuck.
const mysqlDriverName = "usergraph-mysql"

func init() {
	sql.Register(mysqlDriverName, retiringDriver{mysql.MySQLDriver{}})
}

// stuckSession reports whether err says that the connection's session on vtgate cannot run
// statements any more: after a tablet lost its mysqld in the middle of a statement (a primary
// restarting, or failing over), vtgate keeps the session's failed transaction and refuses every
// later statement on that connection (VT09032) until it is rolled back. database/sql would hand
// the connection out again and again, and the service would answer 503 until restarted.
func stuckSession(err error) bool {
	e, ok := err.(*mysql.MySQLError)
	if !ok {
		return false
	}
	return isVitessUnavailable(e.Message) && (e.Number == 1105 || e.Number == 2002 || e.Number == 2013)
}

// retiringDriver opens connections that database/sql closes, rather than reuses, once a statement
// on them failed with stuckSession: the request that met it gets its 503, and the next ones a
// fresh session.
type retiringDriver struct {
	driver.Driver
}

// mysqlConn is what Go's MySQL driver's connections do, all of which retiringConn passes on.
type mysqlConn interface {
	driver.Conn
	driver.ConnBeginTx
	driver.ConnPrepareContext
	driver.ExecerContext
	driver.QueryerContext
	driver.Pinger
	driver.SessionResetter
	driver.Validator
	driver.NamedValueChecker
}

// Open implements driver.Driver.
func (d retiringDriver) Open(dsn string) (driver.Conn, error) {
	return retiring(d.Driver.Open(dsn))
}

// OpenConnector implements driver.DriverContext, which database/sql prefers to Open: the MySQL
// driver's connector connects within the context of the request that needs the connection, so
// that a database that stopped answering holds it no longer than the request's deadline.
func (d retiringDriver) OpenConnector(dsn string) (driver.Connector, error) {
	c, err := mysql.MySQLDriver{}.OpenConnector(dsn)
	if err != nil {
		return nil, err
	}
	return retiringConnector{c, d}, nil
}

// retiringConnector is the MySQL driver's connector, whose connections are retiringConns.
type retiringConnector struct {
	driver.Connector
	driver retiringDriver
}

// Connect implements driver.Connector.
func (c retiringConnector) Connect(ctx context.Context) (driver.Conn, error) {
	return retiring(c.Connector.Connect(ctx))
}

// Driver implements driver.Connector.
func (c retiringConnector) Driver() driver.Driver { return c.driver }

// retiring wraps a connection of the MySQL driver as a retiringConn.
func retiring(c driver.Conn, err error) (driver.Conn, error) {
	if err != nil {
		return nil, err
	}
	mc, ok := c.(mysqlConn)
	if !ok {
		return c, nil
	}
	return &retiringConn{mysqlConn: mc}, nil
}

// retiringConn is a connection that reports itself invalid, so that database/sql closes it when
// it comes back to the pool, once a statement on it failed with stuckSession.
type retiringConn struct {
	mysqlConn
	stuck atomic.Bool
}

func (c *retiringConn) check(err error) error {
	if err != nil && stuckSession(err) {
		c.stuck.Store(true)
	}
	return err
}

// IsValid implements driver.Validator.
func (c *retiringConn) IsValid() bool { return !c.stuck.Load() && c.mysqlConn.IsValid() }

// ExecContext implements driver.ExecerContext.
func (c *retiringConn) ExecContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Result, error) {
	r, err := c.mysqlConn.ExecContext(ctx, query, args)
	return r, c.check(err)
}

// QueryContext implements driver.QueryerContext.
func (c *retiringConn) QueryContext(ctx context.Context, query string, args []driver.NamedValue) (driver.Rows, error) {
	r, err := c.mysqlConn.QueryContext(ctx, query, args)
	return r, c.check(err)
}

// BeginTx implements driver.ConnBeginTx.
func (c *retiringConn) BeginTx(ctx context.Context, opts driver.TxOptions) (driver.Tx, error) {
	tx, err := c.mysqlConn.BeginTx(ctx, opts)
	return tx, c.check(err)
}

// PrepareContext implements driver.ConnPrepareContext.
func (c *retiringConn) PrepareContext(ctx context.Context, query string) (driver.Stmt, error) {
	s, err := c.mysqlConn.PrepareContext(ctx, query)
	if err != nil {
		return nil, c.check(err)
	}
	ms, ok := s.(mysqlStmt)
	if !ok {
		return s, nil
	}
	return &retiringStmt{mysqlStmt: ms, conn: c}, nil
}

// mysqlStmt is what Go's MySQL driver's prepared statements do.
type mysqlStmt interface {
	driver.Stmt
	driver.StmtExecContext
	driver.StmtQueryContext
	driver.NamedValueChecker
}

// retiringStmt is a prepared statement of a retiringConn, which it tells of a stuck session.
type retiringStmt struct {
	mysqlStmt
	conn *retiringConn
}

// ExecContext implements driver.StmtExecContext.
func (s *retiringStmt) ExecContext(ctx context.Context, args []driver.NamedValue) (driver.Result, error) {
	r, err := s.mysqlStmt.ExecContext(ctx, args)
	return r, s.conn.check(err)
}

// QueryContext implements driver.StmtQueryContext.
func (s *retiringStmt) QueryContext(ctx context.Context, args []driver.NamedValue) (driver.Rows, error) {
	r, err := s.mysqlStmt.QueryContext(ctx, args)
	return r, s.conn.check(err)
}
