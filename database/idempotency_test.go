package database_test

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"usergraph/database"
	"usergraph/idempotency"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// Expired keys go in bounded batches, the live ones stay, and the database finds the expired ones
// through the index on their expiry, never by reading the whole table.
func TestKeyStorePurge(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, url string) {
		ctx := context.Background()
		db := dbtest.Open(t, url)
		store := database.NewKeyStore(db)
		// Long ago, so that a purge "now" reaches only this test's keys, where other tests share
		// the table (dbtest.Shared): theirs expire in the present.
		now := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
		caller := apitest.Uniq("caller")
		insert := func(name string, expiresAt time.Time) {
			t.Helper()
			rec := idempotency.Record{
				Fingerprint: idempotency.Fingerprint([]byte(name)),
				Token:       []byte(name[:min(len(name), 16)]),
				LockedUntil: now,
				ExpiresAt:   expiresAt,
			}
			if ok, err := store.Insert(ctx, idempotency.ID(caller, name), rec); err != nil || !ok {
				t.Fatalf("inserting %s: %v, %v", name, ok, err)
			}
		}
		for i := range 25 {
			insert(fmt.Sprintf("expired-%d", i), now.Add(-time.Duration(i+1)*time.Minute))
		}
		for i := range 5 {
			insert(fmt.Sprintf("live-%d", i), now.Add(time.Hour))
		}

		var removed []int
		for {
			n, err := store.Purge(ctx, now, 10)
			if err != nil {
				t.Fatal(err)
			}
			removed = append(removed, n)
			if n < 10 {
				break
			}
		}
		if got, want := fmt.Sprint(removed), "[10 10 5]"; got != want {
			t.Errorf("removed per batch: got %s, want %s", got, want)
		}
		for i := range 5 {
			if rec, err := store.Get(ctx, idempotency.ID(caller, fmt.Sprintf("live-%d", i))); err != nil || rec == nil {
				t.Errorf("live-%d: got %v, %v; want it kept", i, rec, err)
			}
		}

		if dbtest.Shared(url) {
			return // vtgate answers EXPLAIN with a plan of its own, not the database's
		}
		// A table of a real size: on a few rows, a database may rightly read them all.
		sqlDB, _ := db.DB()
		for batch := range 20 {
			var values []string
			var args []any
			for i := batch * 100; i < (batch+1)*100; i++ {
				values = append(values, "(?, ?, ?, ?, ?)")
				args = append(args, idempotency.ID("many", fmt.Sprint(i)), idempotency.Fingerprint(), []byte("token"), now.UnixMilli(), now.Add(time.Hour).UnixMilli()+int64(i))
			}
			if _, err := sqlDB.Exec("INSERT INTO idempotency_keys (id, fingerprint, token, locked_until, expires_at) VALUES "+strings.Join(values, ", "), args...); err != nil {
				t.Fatal(err)
			}
		}
		analyze := "ANALYZE"
		if db.Dialector.Name() == "mysql" {
			analyze = "ANALYZE TABLE idempotency_keys"
		}
		if err := db.Exec(analyze).Error; err != nil {
			t.Fatal(err)
		}
		plan := planOf(t, db.Dialector.Name(), db, now)
		// SQLite says it searches USING INDEX; MySQL names the index it uses in its key column,
		// where possible_keys names those it merely could.
		if !strings.Contains(plan, "INDEX idempotency_keys_expires_at") && !strings.Contains(plan, "key=idempotency_keys_expires_at ") {
			t.Errorf("the purge's plan does not use the expiry index:\n%s", plan)
		}
	})
}

// planOf returns the database's plan for the purge statement, each row's columns joined.
func planOf(t *testing.T, dialect string, db *gorm.DB, now time.Time) string {
	t.Helper()
	rows, err := db.Raw("EXPLAIN QUERY PLAN "+database.PurgeSQL(dialect), now.UnixMilli(), 10).Rows()
	if dialect == "mysql" {
		rows, err = db.Raw("EXPLAIN "+database.PurgeSQL(dialect), now.UnixMilli(), 10).Rows()
	}
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, _ := rows.Columns()
	var plan strings.Builder
	for rows.Next() {
		values := make([]sql.NullString, len(cols))
		ptrs := make([]any, len(cols))
		for i := range values {
			ptrs[i] = &values[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		for i, v := range values {
			fmt.Fprintf(&plan, "%s=%s ", cols[i], v.String)
		}
		plan.WriteString("\n")
	}
	return plan.String()
}
