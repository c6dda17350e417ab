package database

// SchemaVersion is the version that Open brings a database's schema to.
var SchemaVersion = len(migrations[MySQL])

// PurgeSQL is the statement that purges expired Idempotency-Keys on dialect.
func PurgeSQL(dialect string) string { return purgeSQL(Dialect(dialect)) }

// StuckSession reports whether err makes a connection be retired.
func StuckSession(err error) bool { return stuckSession(err) }
