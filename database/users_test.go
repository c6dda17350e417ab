package database_test

import (
	"context"
	"errors"
	"slices"
	"testing"

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
