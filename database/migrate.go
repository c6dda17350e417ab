package database

import (
	"context"
	"fmt"
	"strings"

	"gorm.io/gorm"
)

// migrations are the schema's changes, in order, for each dialect. A migration is never edited once
// released: a change to the schema is a new migration at the end.
//
// Uniqueness of usernames and emails is case-insensitive, and enforced by the database itself
// through unique indexes on the *_key columns, which hold the keys that models computes (see
// models.Keys). Both databases compare those keys byte for byte (utf8mb4_bin on MySQL, TEXT on
// SQLite), so that what counts as a duplicate is the same on each; MySQL's default collations
// would also fold accents, and SQLite's NOCASE only ASCII.
var migrations = map[Dialect][]string{
	MySQL: {
		`CREATE TABLE IF NOT EXISTS users (
			id BIGINT NOT NULL AUTO_INCREMENT,
			username VARCHAR(32) NOT NULL,
			email VARCHAR(254) NOT NULL,
			username_key VARCHAR(32) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			email_key VARCHAR(254) CHARACTER SET utf8mb4 COLLATE utf8mb4_bin NOT NULL,
			version BIGINT NOT NULL DEFAULT 1,
			created_at DATETIME(6) NOT NULL,
			updated_at DATETIME(6) NOT NULL,
			PRIMARY KEY (id),
			UNIQUE KEY users_username_key (username_key),
			UNIQUE KEY users_email_key (email_key)
		) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4`,
		idempotencyKeysMySQL,
	},
	SQLite: {
		// AUTOINCREMENT: an ID is never handed out again after its user is deleted, so that a token
		// issued for a deleted user cannot come to mean a new one.
		`CREATE TABLE IF NOT EXISTS users (
			id INTEGER PRIMARY KEY AUTOINCREMENT,
			username TEXT NOT NULL,
			email TEXT NOT NULL,
			username_key TEXT NOT NULL,
			email_key TEXT NOT NULL,
			version INTEGER NOT NULL DEFAULT 1,
			created_at DATETIME NOT NULL,
			updated_at DATETIME NOT NULL
		);
		CREATE UNIQUE INDEX IF NOT EXISTS users_username_key ON users (username_key);
		CREATE UNIQUE INDEX IF NOT EXISTS users_email_key ON users (email_key)`,
		idempotencyKeysSQLite,
	},
}

// The idempotency_keys table keeps the outcomes of requests sent with an Idempotency-Key (see
// KeyStore). Its ID is a hash of the caller and the key; times are Unix milliseconds; the index
// on expires_at lets expired rows be purged without reading the others.
const (
	idempotencyKeysMySQL = `CREATE TABLE IF NOT EXISTS idempotency_keys (
			id BINARY(32) NOT NULL,
			fingerprint BINARY(32) NOT NULL,
			token BINARY(16) NOT NULL,
			locked_until BIGINT NOT NULL,
			expires_at BIGINT NOT NULL,
			status SMALLINT NOT NULL DEFAULT 0,
			headers BLOB NULL,
			body MEDIUMBLOB NULL,
			PRIMARY KEY (id),
			KEY idempotency_keys_expires_at (expires_at)
		) ENGINE=InnoDB`
	idempotencyKeysSQLite = `CREATE TABLE IF NOT EXISTS idempotency_keys (
			id BLOB NOT NULL PRIMARY KEY,
			fingerprint BLOB NOT NULL,
			token BLOB NOT NULL,
			locked_until INTEGER NOT NULL,
			expires_at INTEGER NOT NULL,
			status INTEGER NOT NULL DEFAULT 0,
			headers BLOB,
			body BLOB
		) WITHOUT ROWID;
		CREATE INDEX IF NOT EXISTS idempotency_keys_expires_at ON idempotency_keys (expires_at)`
)

// migrate applies the migrations that the database has not seen yet, recording each in
// schema_migrations. On MySQL, replicas starting together take turns through a named lock.
func migrate(ctx context.Context, db *gorm.DB, dialect Dialect) error {
	steps := migrations[dialect]
	// One connection throughout: MySQL's named locks belong to the session that takes them.
	return db.WithContext(ctx).Connection(func(conn *gorm.DB) error {
		if dialect == MySQL {
			if vitess, err := isVitess(conn); err != nil {
				return err
			} else if vitess {
				return checkVitessSchema(conn, len(steps))
			}
			var got *int
			if err := conn.Raw("SELECT GET_LOCK('usergraph.migrate', 60)").Scan(&got).Error; err != nil {
				return err
			}
			if got == nil || *got != 1 {
				return fmt.Errorf("another instance held the migration lock for 60 s")
			}
			defer conn.Exec("SELECT RELEASE_LOCK('usergraph.migrate')")
		}
		if err := conn.Exec(`CREATE TABLE IF NOT EXISTS schema_migrations (
			version INTEGER NOT NULL PRIMARY KEY,
			applied_at VARCHAR(40) NOT NULL)`).Error; err != nil {
			return err
		}
		var applied int
		if err := conn.Raw("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Scan(&applied).Error; err != nil {
			return err
		}
		if applied > len(steps) {
			return fmt.Errorf("the database's schema is version %d, newer than this build knows (%d): run a newer build", applied, len(steps))
		}
		for i := applied; i < len(steps); i++ {
			if err := conn.Exec(steps[i]).Error; err != nil {
				return fmt.Errorf("migration %d: %w", i+1, err)
			}
			if err := conn.Exec("INSERT INTO schema_migrations (version, applied_at) VALUES (?, ?)",
				i+1, conn.NowFunc().Format("2006-01-02T15:04:05.000000Z")).Error; err != nil {
				return fmt.Errorf("recording migration %d: %w", i+1, err)
			}
		}
		return nil
	})
}

// isVitess reports whether conn talks to Vitess's vtgate, which says so in its version.
func isVitess(conn *gorm.DB) (bool, error) {
	var version string
	if err := conn.Raw("SELECT @@version").Row().Scan(&version); err != nil {
		return false, err
	}
	return strings.HasSuffix(version, "-Vitess"), nil
}

// checkVitessSchema checks that a Vitess keyspace holds the schema this build needs, want
// migrations' worth, and changes nothing: a sharded keyspace cannot take the DDL of the migrations,
// which would create each table on every shard with no vindex to route it. Its schema, vschema and
// routing rules are applied from deploy/vitess by its operator instead.
func checkVitessSchema(conn *gorm.DB, want int) error {
	var applied int
	if err := conn.Raw("SELECT COALESCE(MAX(version), 0) FROM schema_migrations").Row().Scan(&applied); err != nil || applied < want {
		return fmt.Errorf("the database is a Vitess keyspace without usergraph's schema version %d: apply deploy/vitess/schema with vtctldclient, as deploy/vitess/README.md says", want)
	}
	if applied > want {
		return fmt.Errorf("the database's schema is version %d, newer than this build knows (%d): run a newer build", applied, want)
	}
	return nil
}
