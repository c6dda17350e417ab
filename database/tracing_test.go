package database

import "testing"

// A statement's span is named by its operation and table, as OpenTelemetry's database
// conventions ask, for every statement the service makes, GORM's or its own; what cannot be told
// is left out rather than guessed.
func TestStatementSummary(t *testing.T) {
	cases := []struct {
		name, query       string
		wantOp, wantTable string
	}{
		{"OwnUpdate", updateUserSQL(true, true, true), "UPDATE", "users"},
		{"OwnSelect", selectUserSQL, "SELECT", "users"},
		{"GORMInsertWithQuotedTable", "INSERT INTO `users` (`username`,`email`) VALUES (?,?) RETURNING `id`", "INSERT", "users"},
		{"GORMSelectWithDoubleQuotes", `SELECT * FROM "users" WHERE id > ? ORDER BY id LIMIT 20`, "SELECT", "users"},
		{"GORMDelete", "DELETE FROM `users` WHERE `users`.`id` = ?", "DELETE", "users"},
		{"LowerCaseKeywords", "select version from schema_migrations", "SELECT", "schema_migrations"},
		{"SubqueryIsNoTable", "SELECT COUNT(*) FROM (SELECT id FROM users) AS t", "SELECT", ""},
		{"NoTableToTell", "SELECT VERSION()", "SELECT", ""},
		{"OtherStatement", "CREATE TABLE users (id INTEGER)", "CREATE", ""},
		{"Empty", "  ", "", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			op, table := summarize(tc.query)
			if op != tc.wantOp || table != tc.wantTable {
				t.Errorf("got %q %q, want %q %q", op, table, tc.wantOp, tc.wantTable)
			}
		})
	}
}
