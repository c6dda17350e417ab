package database_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/go-sql-driver/mysql"
	"gorm.io/gorm"

	"usergraph/database"
	"usergraph/internal/dbtest"
)

func TestParseURL(t *testing.T) {
	cases := []struct {
		name       string
		url        string
		wantErr    bool
		wantDSN    []string // parts the DSN must contain
		wantMemory bool
	}{
		{"SQLiteFile", "sqlite:usergraph.db", false, []string{"file:usergraph.db?", "journal_mode(WAL)", "busy_timeout(5000)"}, false},
		{"SQLiteAbsolutePath", "sqlite:/var/lib/usergraph/users.db", false, []string{"file:/var/lib/usergraph/users.db?"}, false},
		{"SQLiteMemory", "sqlite::memory:", false, []string{"file::memory:?"}, true},
		{"SQLiteOptionsComeLast", "sqlite:x.db?_pragma=busy_timeout(100)", false, []string{"busy_timeout(5000)&", "&_pragma=busy_timeout(100)"}, false},
		{"SQLiteNoPath", "sqlite:", true, nil, false},
		{"MySQL", "mysql://app:s3cret@db.internal:3307/users", false, []string{"app:s3cret@tcp(db.internal:3307)/users?", "parseTime=true", "charset=utf8mb4"}, false},
		{"MySQLDefaultPort", "mysql://app@db/users", false, []string{"app@tcp(db:3306)/users"}, false},
		{"MySQLPasswordWithSpecialCharacters", "mysql://app:p%40ss%2Fw%3Ard@db:3306/users", false, []string{"app:p@ss/w:rd@tcp(db:3306)/users"}, false},
		{"MySQLParams", "mysql://app@db/users?timeout=2s&readTimeout=3s", false, []string{"timeout=2s", "readTimeout=3s"}, false},
		{"MySQLBadParam", "mysql://app@db/users?parseTime=maybe", true, nil, false},
		{"MySQLNoDatabase", "mysql://app@db:3306/", true, nil, false},
		{"MySQLNoHost", "mysql:///users", true, nil, false},
		{"OtherScheme", "postgres://db/users", true, nil, false},
		{"Empty", "", true, nil, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := database.ParseURL(tc.url)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error: %v", err, tc.wantErr)
			}
			if err != nil {
				if strings.Contains(err.Error(), "s3cret") {
					t.Errorf("the error repeats the password: %v", err)
				}
				return
			}
			for _, part := range tc.wantDSN {
				if !strings.Contains(cfg.DSN, part) {
					t.Errorf("DSN %q lacks %q", cfg.DSN, part)
				}
			}
			if cfg.Memory != tc.wantMemory {
				t.Errorf("Memory = %v", cfg.Memory)
			}
		})
	}
}

func TestSchema(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, url string) {
		db := dbtest.Open(t, url)
		insert := func(username, email string) error {
			now := time.Now().UTC()
			return db.Exec("INSERT INTO users (username, email, username_key, email_key, version, created_at, updated_at) VALUES (?, ?, ?, ?, 1, ?, ?)",
				username, email, strings.ToLower(username), strings.ToLower(email), now, now).Error
		}

		t.Run("OpeningAgainKeepsData", func(t *testing.T) {
			if err := insert("keeper", "keeper@example.com"); err != nil {
				t.Fatal(err)
			}
			again := dbtest.Open(t, url)
			var n int64
			again.Table("users").Where("username_key = ?", "keeper").Count(&n)
			var version int
			again.Raw("SELECT MAX(version) FROM schema_migrations").Scan(&version)
			if n != 1 || version != database.SchemaVersion {
				t.Errorf("rows %d, schema version %d", n, version)
			}
		})

		t.Run("KeysAreUniqueByteForByte", func(t *testing.T) {
			if err := insert("Unique", "unique@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := insert("UNIQUE", "other@example.com"); !errors.Is(err, gorm.ErrDuplicatedKey) {
				t.Errorf("same username key: err = %v, want gorm.ErrDuplicatedKey", err)
			}
			if err := insert("another", "UNIQUE@example.com"); !errors.Is(err, gorm.ErrDuplicatedKey) {
				t.Errorf("same email key: err = %v, want gorm.ErrDuplicatedKey", err)
			}
			// MySQL's default collations would call these equal; the keys must not.
			if err := insert("accent1", "josé@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := insert("accent2", "jose@example.com"); err != nil {
				t.Errorf("an address differing only by an accent was refused: %v", err)
			}
		})

		t.Run("NumericUsernamesStayText", func(t *testing.T) {
			if err := insert("0123", "zero@example.com"); err != nil {
				t.Fatal(err)
			}
			if err := insert("123", "noughtless@example.com"); err != nil {
				t.Errorf("123 collided with 0123: %v", err)
			}
		})

		t.Run("RefusesNewerSchema", func(t *testing.T) {
			if dbtest.Shared(url) {
				t.Skip("records a newer schema, which would stop every service that shares the keyspace")
			}
			if err := db.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (99, 'later')").Error; err != nil {
				t.Fatal(err)
			}
			defer db.Exec("DELETE FROM schema_migrations WHERE version = 99")
			cfg, _ := database.ParseURL(url)
			_, err := database.Open(context.Background(), cfg)
			if err == nil || !strings.Contains(err.Error(), "newer") {
				t.Errorf("err = %v, want a refusal of a newer schema", err)
			}
		})
	})
}

func TestIsUnavailable(t *testing.T) {
	// A port nobody listens on.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	cfg, _ := database.ParseURL("mysql://root@" + addr + "/nothing?timeout=1s")
	_, err = database.Open(context.Background(), cfg)
	if !database.IsUnavailable(err) {
		t.Errorf("connection refused: IsUnavailable(%v) = false", err)
	}
	if database.IsUnavailable(errors.New("syntax error")) || database.IsUnavailable(nil) {
		t.Error("an ordinary error counted as unavailable")
	}
}

// What a MySQL server or Vitess's vtgate says when it cannot serve a statement for now is
// unavailable, and a refusal of the statement itself is not.
func TestIsUnavailableErrors(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"TooManyConnections", &mysql.MySQLError{Number: 1040, Message: "Too many connections"}, true},
		{"Deadlock", &mysql.MySQLError{Number: 1213, Message: "Deadlock found when trying to get lock; try restarting transaction"}, true},
		{"VitessTransactionPoolFull", &mysql.MySQLError{Number: 1203, Message: "target: usergraph.-80.primary: vttablet: rpc error: code = ResourceExhausted desc = transaction pool connection limit exceeded (CallerID: usergraph)"}, true},
		{"VitessThrottled", &mysql.MySQLError{Number: 1041, Message: "Transaction throttled"}, true},
		{"VitessAborted", &mysql.MySQLError{Number: 1317, Message: "vttablet: rpc error: code = Aborted desc = transaction 1700000000: ended at 2026-11-30 (exceeded timeout: 30s)"}, true},
		{"VitessNoHealthyTablet", &mysql.MySQLError{Number: 1105, Message: "target: usergraph.80-.primary: no healthy tablet available for 'keyspace:\"usergraph\" shard:\"80-\" tablet_type:PRIMARY'"}, true},
		{"VitessPrimaryNotServing", &mysql.MySQLError{Number: 1105, Message: "target: usergraph.-80.primary: vttablet: rpc error: code = FailedPrecondition desc = operation not allowed in state NOT_SERVING"}, true},
		{"VitessSchemaTrackingNotReady", &mysql.MySQLError{Number: 1105, Message: "VT09015: schema tracking required"}, true},
		{"VitessTabletShuttingDown", &mysql.MySQLError{Number: 1105, Message: "target: usergraph.-80.primary: vttablet: rpc error: code = Code(17) desc = operation not allowed in state SHUTTING_DOWN"}, true},
		{"VitessTabletLostItsDatabase", &mysql.MySQLError{Number: 2002, Message: "VT15001: transaction error, issue ROLLBACK and retry the transaction: target: usergraph.-80.primary: vttablet: rpc error: code = Unavailable desc = connection refused"}, true},
		{"VitessSessionAfterAFailedTransaction", &mysql.MySQLError{Number: 1105, Message: "VT09032: previous transaction failed. Issue a ROLLBACK to resolve the failure."}, true},
		{"DuplicateEntry", &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'x' for key 'users_username_key'"}, false},
		{"VitessUnknownColumn", &mysql.MySQLError{Number: 1105, Message: "VT03019: column nope not found"}, false},
		{"SyntaxError", &mysql.MySQLError{Number: 1064, Message: "You have an error in your SQL syntax"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := database.IsUnavailable(fmt.Errorf("a statement: %w", tc.err)); got != tc.want {
				t.Errorf("IsUnavailable(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}

// A connection whose Vitess session is stuck after a failed transaction is closed, not handed out
// again, so that the service recovers without a restart; any other failure leaves it in the pool.
func TestStuckSessionsAreRetired(t *testing.T) {
	cases := []struct {
		name string
		err  error
		want bool
	}{
		{"PreviousTransactionFailed", &mysql.MySQLError{Number: 1105, Message: "VT09032: previous transaction failed. Issue a ROLLBACK to resolve the failure."}, true},
		{"TransactionErrorOnBegin", &mysql.MySQLError{Number: 2002, Message: "VT15001: transaction error, issue ROLLBACK and retry the transaction: target: usergraph.-80.primary: vttablet: rpc error: code = Unavailable desc = connection refused"}, true},
		{"TransactionPoolFull", &mysql.MySQLError{Number: 1203, Message: "transaction pool connection limit exceeded"}, false},
		{"DuplicateEntry", &mysql.MySQLError{Number: 1062, Message: "Duplicate entry 'x' for key 'PRIMARY'"}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := database.StuckSession(tc.err); got != tc.want {
				t.Errorf("StuckSession(%v) = %v, want %v", tc.err, got, tc.want)
			}
		})
	}
}
