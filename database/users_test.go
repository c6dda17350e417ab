package database_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"usergraph/database"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

// keys returns Keys holding exactly the keys given, "" for one left out.
func keys(username, email string) models.Keys {
	var k models.Keys
	if username != "" {
		k.Username = &username
	}
	if email != "" {
		k.Email = &email
	}
	return k
}

// The contract of models.UserStore that UserService relies on, on each database.
func TestUserStore(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, url string) {
		if dbtest.Shared(url) {
			t.Skip("lists the whole table and counts on IDs no other user has: it needs a database of its own")
		}
		ctx := context.Background()
		store := database.NewUserStore(dbtest.Open(t, url))
		insert := func(t *testing.T, name string) *models.User {
			t.Helper()
			u, err := store.Insert(ctx, models.User{Username: name, Email: name + "@example.com", Version: 1}, keys(name, name+"@example.com"))
			if err != nil {
				t.Fatal(err)
			}
			return u
		}
		alice, bob := insert(t, "alice"), insert(t, "bob")

		t.Run("InsertReturnsTheUserAsGetReadsIt", func(t *testing.T) {
			got, err := store.Get(ctx, alice.ID)
			if err != nil {
				t.Fatal(err)
			}
			if alice.ID == 0 || alice.CreatedAt.IsZero() || !got.CreatedAt.Equal(alice.CreatedAt) || got.Username != "alice" || got.Version != 1 {
				t.Errorf("inserted %+v, read %+v", alice, got)
			}
		})

		t.Run("WritesRefusedForATakenKey", func(t *testing.T) {
			other := "other@example.com"
			version := bob.Version
			for _, tc := range []struct {
				name  string
				write func() error
			}{
				{"InsertUsername", func() error {
					_, err := store.Insert(ctx, models.User{Username: "Alice", Email: other, Version: 1}, keys("alice", other))
					return err
				}},
				{"InsertEmail", func() error {
					_, err := store.Insert(ctx, models.User{Username: "carol", Email: "ALICE@example.com", Version: 1}, keys("carol", "alice@example.com"))
					return err
				}},
				{"UpdateUsername", func() error {
					name := "ALICE"
					_, err := store.Update(ctx, bob.ID, models.UserChange{Username: &name, Keys: keys("alice", "")})
					return err
				}},
				{"UpdateEmailAtTheExpectedVersion", func() error {
					email := "alice@example.com"
					_, err := store.Update(ctx, bob.ID, models.UserChange{Email: &email, Keys: keys("", email), IfVersion: &version})
					return err
				}},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if err := tc.write(); !errors.Is(err, models.ErrKeyTaken) {
						t.Errorf("err = %v, want models.ErrKeyTaken", err)
					}
				})
			}
			if got, _ := store.Get(ctx, bob.ID); got.Username != "bob" || got.Email != "bob@example.com" || got.Version != bob.Version {
				t.Errorf("a refused update changed the user: %+v", got)
			}
		})

		t.Run("UpdateThatMatchesNoUser", func(t *testing.T) {
			// Existence and the expected version come before uniqueness: these name a key that
			// alice holds, and must not report it.
			name, stale := "alice", bob.Version+1
			for _, tc := range []struct {
				name      string
				id        int64
				ifVersion *int64
			}{
				{"NoSuchID", bob.ID + 1000, nil},
				{"StaleVersion", bob.ID, &stale},
			} {
				t.Run(tc.name, func(t *testing.T) {
					applied, err := store.Update(ctx, tc.id, models.UserChange{Username: &name, Keys: keys(name, ""), IfVersion: tc.ifVersion})
					if applied || err != nil {
						t.Errorf("applied %v, err %v; want false, nil", applied, err)
					}
				})
			}
		})

		t.Run("UpdateAppliesAndBumpsTheVersion", func(t *testing.T) {
			name, version := "Bobby", bob.Version
			applied, err := store.Update(ctx, bob.ID, models.UserChange{Username: &name, Keys: keys("bobby", ""), IfVersion: &version})
			if !applied || err != nil {
				t.Fatalf("applied %v, err %v", applied, err)
			}
			got, err := store.Get(ctx, bob.ID)
			if err != nil {
				t.Fatal(err)
			}
			if got.Username != "Bobby" || got.Email != "bob@example.com" || got.Version != bob.Version+1 || got.UpdatedAt.Before(bob.UpdatedAt) {
				t.Errorf("after the update: %+v", got)
			}
			if u, _, _ := store.Taken(ctx, alice.ID, keys("bobby", "")); !u {
				t.Error("the new username's key is not stored")
			}
		})

		t.Run("Taken", func(t *testing.T) {
			for _, tc := range []struct {
				name                    string
				excludeID               int64
				keys                    models.Keys
				wantUsername, wantEmail bool
			}{
				{"BothByOthers", bob.ID, keys("alice", "alice@example.com"), true, true},
				{"UsernameOnly", bob.ID, keys("alice", "free@example.com"), true, false},
				{"EmailOnly", bob.ID, keys("free", "alice@example.com"), false, true},
				{"ByTwoUsers", 0, keys("alice", "bob@example.com"), true, true},
				{"NotByTheExcludedUser", alice.ID, keys("alice", "alice@example.com"), false, false},
				{"NilKeyNotAskedAbout", bob.ID, keys("", "free@example.com"), false, false},
			} {
				t.Run(tc.name, func(t *testing.T) {
					username, email, err := store.Taken(ctx, tc.excludeID, tc.keys)
					if err != nil || username != tc.wantUsername || email != tc.wantEmail {
						t.Errorf("Taken = %v, %v, %v; want %v, %v", username, email, err, tc.wantUsername, tc.wantEmail)
					}
				})
			}
		})

		t.Run("ListInIDOrderAfterAnID", func(t *testing.T) {
			for _, tc := range []struct {
				name    string
				afterID int64
				limit   int
				want    []int64
			}{
				{"FromTheStart", 0, 10, []int64{alice.ID, bob.ID}},
				{"Limited", 0, 1, []int64{alice.ID}},
				{"AfterTheFirst", alice.ID, 10, []int64{bob.ID}},
				{"AfterTheLast", bob.ID, 10, nil},
			} {
				t.Run(tc.name, func(t *testing.T) {
					users, err := store.List(ctx, tc.afterID, tc.limit)
					if err != nil {
						t.Fatal(err)
					}
					var ids []int64
					for _, u := range users {
						ids = append(ids, u.ID)
						if u.Username == "" || u.Email == "" || u.Version == 0 || u.CreatedAt.IsZero() {
							t.Errorf("listed %+v", u)
						}
					}
					if !slices.Equal(ids, tc.want) {
						t.Errorf("listed %v, want %v", ids, tc.want)
					}
				})
			}
		})

		t.Run("NoSuchUser", func(t *testing.T) {
			if err := store.Delete(ctx, alice.ID); err != nil {
				t.Fatal(err)
			}
			for _, tc := range []struct {
				name string
				call func() error
			}{
				{"Get", func() error { _, err := store.Get(ctx, alice.ID); return err }},
				{"Delete", func() error { return store.Delete(ctx, alice.ID) }},
			} {
				t.Run(tc.name, func(t *testing.T) {
					if err := tc.call(); !errors.Is(err, models.ErrNoSuchUser) {
						t.Errorf("err = %v, want models.ErrNoSuchUser", err)
					}
				})
			}
		})
	})
}

// A write that InnoDB picks as a deadlock's victim is made again, and then says what the data
// says: done once the other transaction let go of the name, or the key taken once it kept it;
// never an error of the database's. The deadlocks are real ones: another transaction takes a name,
// the store's write locks a row and waits for the name, and the other transaction then wants that
// row. It is made heavier than the write, so that InnoDB rolls the write back rather than it.
func TestWritesOutliveADeadlock(t *testing.T) {
	if !dbtest.MySQLConfigured(t) {
		t.Skip("needs TEST_MYSQL_DSN: SQLite runs one writer at a time, and has no deadlocks")
	}
	const wanted = "wanted"
	type write struct {
		// statement is how the write's statement starts, to find it waiting in the process list.
		statement string
		// do makes the write, and reports whether it was made.
		do func(ctx context.Context, store *database.UserStore, renamed *models.User) (bool, error)
		// email is that of the user who holds the name when the write is done.
		email string
		// lockRow is what the other transaction runs to want the row the write has locked.
		lockRow func(renamed *models.User, lastOwnID int64) (string, []any)
	}
	writes := map[string]write{
		"Rename": {
			statement: "UPDATE users SET username",
			email:     "renamed@example.com",
			do: func(ctx context.Context, store *database.UserStore, renamed *models.User) (bool, error) {
				name := wanted
				return store.Update(ctx, renamed.ID, models.UserChange{Username: &name, Keys: keys(name, "")})
			},
			lockRow: func(renamed *models.User, _ int64) (string, []any) {
				return "UPDATE users SET version = version + 1 WHERE id = ?", []any{renamed.ID}
			},
		},
		"Insert": {
			statement: "INSERT INTO `users`",
			email:     "new-" + wanted + "@example.com",
			do: func(ctx context.Context, store *database.UserStore, _ *models.User) (bool, error) {
				_, err := store.Insert(ctx, models.User{Username: wanted, Email: "new-" + wanted + "@example.com", Version: 1}, keys(wanted, "new-"+wanted+"@example.com"))
				return err == nil, err
			},
			// The insert's row comes after every row the other transaction made.
			lockRow: func(_ *models.User, lastOwnID int64) (string, []any) {
				return "SELECT id FROM users WHERE id > ? FOR UPDATE", []any{lastOwnID}
			},
		},
	}
	for writeName, w := range writes {
		for _, tc := range []struct {
			name        string
			otherCommit bool
			wantDone    bool
			wantErr     error
		}{
			{"DoneOnceTheOtherRollsBack", false, true, nil},
			{"KeyTakenOnceTheOtherCommits", true, false, models.ErrKeyTaken},
		} {
			t.Run(writeName+"/"+tc.name, func(t *testing.T) {
				ctx := context.Background()
				url := dbtest.MySQLURL(t)
				db := dbtest.Open(t, url)
				store := database.NewUserStore(db)
				renamed, err := store.Insert(ctx, models.User{Username: "renamed", Email: "renamed@example.com", Version: 1}, keys("renamed", "renamed@example.com"))
				if err != nil {
					t.Fatal(err)
				}
				deadlocks := func() (n int) {
					db.Raw("SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'INNODB_DEADLOCKS'").Scan(&n)
					return n
				}
				before := deadlocks()

				sqlDB, err := dbtest.Open(t, url).DB()
				if err != nil {
					t.Fatal(err)
				}
				other, err := sqlDB.Conn(ctx)
				if err != nil {
					t.Fatal(err)
				}
				defer other.Close()
				exec := func(q string, args ...any) sql.Result {
					t.Helper()
					res, err := other.ExecContext(ctx, q, args...)
					if err != nil {
						t.Fatalf("%s: %v", q, err)
					}
					return res
				}
				insert := "INSERT INTO users (username, email, username_key, email_key, version, created_at, updated_at) VALUES (?, ?, ?, ?, 1, NOW(6), NOW(6))"
				exec("BEGIN")
				for i := range 50 {
					name := fmt.Sprintf("ballast%d", i)
					exec(insert, name, name+"@example.com", name, name+"@example.com")
				}
				lastOwnID, err := exec(insert, wanted, wanted+"@example.com", wanted, wanted+"@example.com").LastInsertId()
				if err != nil {
					t.Fatal(err)
				}

				// The write locks its row, then waits for the name the other transaction holds.
				result := make(chan error, 1)
				var done bool
				go func() {
					var err error
					done, err = w.do(ctx, store, renamed)
					result <- err
				}()
				for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
					// A second in, the write is waiting for a lock: it has nothing else to wait for.
					var waiting int
					if err := db.Raw("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE INFO LIKE ? AND TIME >= 1", w.statement+"%").Scan(&waiting).Error; err != nil {
						t.Fatal(err)
					}
					if waiting > 0 {
						break
					}
					select {
					case err := <-result:
						t.Fatalf("the write ended (done %v, err %v) before it waited for the name", done, err)
					default:
					}
					if time.Now().After(deadline) {
						t.Fatal("the write never waited for the name")
					}
				}
				// The other transaction now wants the write's row: a cycle, and the write its victim.
				q, args := w.lockRow(renamed, lastOwnID)
				exec(q, args...)
				if tc.otherCommit {
					exec("COMMIT")
				} else {
					exec("ROLLBACK")
				}

				err = <-result
				if got := deadlocks() - before; got < 1 {
					t.Fatalf("no deadlock happened (%d), so this tested nothing", got)
				}
				if done != tc.wantDone || !errors.Is(err, tc.wantErr) && err != tc.wantErr {
					t.Errorf("done %v, err %v; want %v, %v", done, err, tc.wantDone, tc.wantErr)
				}
				// The name is the write's when it was done, the other transaction's when not.
				wantHolder := wanted + "@example.com"
				if tc.wantDone {
					wantHolder = w.email
				}
				var holders []string
				db.Raw("SELECT email FROM users WHERE username_key = ?", wanted).Scan(&holders)
				if len(holders) != 1 || holders[0] != wantHolder {
					t.Errorf("the name is held by %v, want %s alone", holders, wantHolder)
				}
			})
		}
	}
}
