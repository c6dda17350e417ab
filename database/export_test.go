package database

// SchemaVersion is the version that Open brings a database's schema to.
var SchemaVersion = len(migrations[MySQL])
