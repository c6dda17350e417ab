package database

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"net"
	"strconv"
	"strings"

	"github.com/XSAM/otelsql"
	"github.com/glebarez/go-sqlite"
	gormsqlite "github.com/glebarez/sqlite"
	"github.com/go-sql-driver/mysql"
	"go.opentelemetry.io/otel/attribute"
	noopmetric "go.opentelemetry.io/otel/metric/noop"
	semconv "go.opentelemetry.io/otel/semconv/v1.43.0"
	"go.opentelemetry.io/otel/trace"
)

// defaultDriverNames are the database/sql drivers of the dialects, when Config names none.
var defaultDriverNames = map[Dialect]string{SQLite: gormsqlite.DriverName, MySQL: mysqlDriverName}

// openTraced opens a pool on the driver named driverName whose every statement, prepared or not,
// GORM's or UserStore's own, is a span of the request that made it: instrumenting the driver
// rather than GORM's callbacks is what reaches the prepared statements that UserStore runs past
// GORM. A span holds the statement's text, whose values are all placeholders, and never its
// arguments.
func openTraced(cfg Config, driverName string) (*sql.DB, error) {
	return otelsql.Open(driverName, cfg.DSN,
		otelsql.WithTracerProvider(cfg.TracerProvider),
		// The pool's statistics are Prometheus's already (telemetry.NewMetrics).
		otelsql.WithMeterProvider(noopmetric.NewMeterProvider()),
		otelsql.WithAttributes(serverAttributes(cfg)...),
		otelsql.WithSpanNameFormatter(spanName),
		otelsql.WithAttributesGetter(statementAttributes),
		otelsql.WithSpanErrorAttributesGetter(errorAttributes),
		otelsql.WithSpanOptions(otelsql.SpanOptions{
			DisableErrSkip: true,
			// A span per row read, or per connection handed back to the pool, would outnumber the
			// statements and tell nothing that the statement's span does not.
			OmitRows:             true,
			OmitConnResetSession: true,
			RecordError:          errorMayBeRecorded,
			// Statements outside any request (the migrations at start-up) would each be a trace
			// of their own.
			SpanFilter: func(ctx context.Context, _ otelsql.Method, _ string, _ []driver.NamedValue) bool {
				return trace.SpanContextFromContext(ctx).IsValid()
			},
		}),
	)
}

// serverAttributes are the attributes of every span of the database: which system, and for MySQL
// which database on which server.
func serverAttributes(cfg Config) []attribute.KeyValue {
	if cfg.Dialect != MySQL {
		return []attribute.KeyValue{semconv.DBSystemNameSQLite}
	}
	attrs := []attribute.KeyValue{semconv.DBSystemNameMySQL}
	if m, err := mysql.ParseDSN(cfg.DSN); err == nil {
		attrs = append(attrs, semconv.DBNamespace(m.DBName))
		if host, port, err := net.SplitHostPort(m.Addr); err == nil {
			attrs = append(attrs, semconv.ServerAddress(host))
			if p, err := strconv.Atoi(port); err == nil {
				attrs = append(attrs, semconv.ServerPort(p))
			}
		}
	}
	return attrs
}

// isStatement reports whether method runs a statement, as opposed to preparing one, connecting
// or ending a transaction.
func isStatement(method otelsql.Method) bool {
	switch method {
	case otelsql.MethodConnExec, otelsql.MethodConnQuery, otelsql.MethodStmtExec, otelsql.MethodStmtQuery:
		return true
	}
	return false
}

// spanName names a statement's span as OpenTelemetry's database conventions do, by its operation
// and table ("UPDATE users"); other calls keep the name of the database/sql method.
func spanName(_ context.Context, method otelsql.Method, query string) string {
	if !isStatement(method) {
		return string(method)
	}
	op, table := summarize(query)
	if op == "" {
		return string(method)
	}
	if table == "" {
		return op
	}
	return op + " " + table
}

// statementAttributes names a statement's operation and table; the arguments are never read.
func statementAttributes(_ context.Context, method otelsql.Method, query string, _ []driver.NamedValue) []attribute.KeyValue {
	if !isStatement(method) {
		return nil
	}
	op, table := summarize(query)
	var attrs []attribute.KeyValue
	if op != "" {
		attrs = append(attrs, semconv.DBOperationName(op))
	}
	if table != "" {
		attrs = append(attrs, semconv.DBCollectionName(table))
	}
	return attrs
}

// summarize returns a statement's operation (its first keyword) and the table it works on, for
// the statements the service makes: SELECT ... FROM t, INSERT INTO t, UPDATE t, DELETE FROM t.
// It returns no table where it cannot tell.
func summarize(query string) (op, table string) {
	words := strings.Fields(query)
	if len(words) == 0 {
		return "", ""
	}
	op = strings.ToUpper(words[0])
	after := ""
	switch op {
	case "UPDATE":
		after = op
	case "INSERT", "REPLACE":
		after = "INTO"
	case "SELECT", "DELETE":
		after = "FROM"
	default:
		return op, ""
	}
	for i, w := range words[:len(words)-1] {
		if strings.EqualFold(w, after) {
			table = strings.Trim(words[i+1], "`\"")
			if strings.ContainsAny(table, "(),") {
				table = ""
			}
			return op, table
		}
	}
	return op, ""
}

// errorAttributes tells a failed statement's error by the database's own code, which, unlike the
// message, never quotes the data.
func errorAttributes(err error) []attribute.KeyValue {
	if e, ok := errors.AsType[*mysql.MySQLError](err); ok {
		return []attribute.KeyValue{semconv.DBResponseStatusCode(strconv.Itoa(int(e.Number)))}
	}
	if e, ok := errors.AsType[*sqlite.Error](err); ok {
		return []attribute.KeyValue{semconv.DBResponseStatusCode(strconv.Itoa(e.Code()))}
	}
	return nil
}

// errorMayBeRecorded reports whether a statement's error may be recorded on its span, message and
// all, and the span marked as failed. A MySQL server's messages may quote the row's values
// ("Duplicate entry 'alice@example.com' for key ...", "Incorrect string value: ..."), so of its
// errors only those that say the database is unavailable are recorded; the others are told by
// their code alone (errorAttributes), and the request's spans say how the service answered.
// SQLite's messages name columns, never values.
func errorMayBeRecorded(err error) bool {
	if _, ok := errors.AsType[*mysql.MySQLError](err); ok {
		return IsUnavailable(err)
	}
	return true
}
