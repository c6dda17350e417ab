package models_test

import (
	"context"
	"slices"
	"testing"

	"usergraph/database"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

var asAdmin = models.ContextWithCaller(context.Background(), &models.Caller{UserID: "admin", Admin: true})

// An update costs the database two statements, the UPDATE and one read, and no transaction,
// whether it succeeds or fails on the expected version.
func TestUpdateStatements(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, url string) {
		db, counter := dbtest.OpenCounting(t, url)
		s := models.NewUserService(database.NewUserStore(db))
		u, err := s.Create(asAdmin, models.UserCreate{Username: "counted", Email: "counted@example.com"})
		if err != nil {
			t.Fatal(err)
		}
		id := models.IDString(u.ID)
		name, stale := "recounted", int64(99)
		for _, tc := range []struct {
			name     string
			upd      models.UserUpdate
			wantCode models.Code
		}{
			{"Success", models.UserUpdate{Username: &name}, ""},
			{"StaleVersion", models.UserUpdate{Username: &name, IfVersion: &stale}, models.PreconditionFailed},
		} {
			t.Run(tc.name, func(t *testing.T) {
				counter.Reset()
				_, err := s.Update(asAdmin, id, tc.upd)
				if models.ErrorCode(err) != tc.wantCode {
					t.Fatalf("code %q, want %q (%v)", models.ErrorCode(err), tc.wantCode, err)
				}
				// Counted at the driver: prepared executions, statements and BEGINs alike.
				if n := counter.Count(); n != 2 {
					t.Errorf("%d statements, want 2", n)
				}
			})
		}
	})
}

// contestedStore is a UserStore whose writes find a key taken a number of times before they
// succeed, and whose Taken answers what a test scripts: the conflicts that a store cannot provoke
// on demand, such as a holder who lets go between the write and the look at who holds the key.
type contestedStore struct {
	models.UserStore
	refusedWrites int
	held          [2]bool
	writes        int
}

func (s *contestedStore) write() error {
	s.writes++
	if s.writes <= s.refusedWrites {
		return models.ErrKeyTaken
	}
	return nil
}

func (s *contestedStore) Insert(_ context.Context, u models.User, _ models.Keys) (*models.User, error) {
	if err := s.write(); err != nil {
		return nil, err
	}
	u.ID = 1
	return &u, nil
}

func (s *contestedStore) Update(context.Context, int64, models.UserChange) (bool, error) {
	return true, s.write()
}

func (s *contestedStore) Get(_ context.Context, id int64) (*models.User, error) {
	return &models.User{ID: id, Version: 2}, nil
}

func (s *contestedStore) Taken(_ context.Context, _ int64, keys models.Keys) (bool, bool, error) {
	return s.held[0] && keys.Username != nil, s.held[1] && keys.Email != nil, nil
}

func TestConflict(t *testing.T) {
	name, email := "contested", "contested@example.com"
	create := func(s *models.UserService) error {
		_, err := s.Create(asAdmin, models.UserCreate{Username: name, Email: email})
		return err
	}
	update := func(upd models.UserUpdate) func(s *models.UserService) error {
		return func(s *models.UserService) error {
			_, err := s.Update(asAdmin, "1", upd)
			return err
		}
	}
	const always = 1000
	for _, tc := range []struct {
		name          string
		op            func(s *models.UserService) error
		refusedWrites int
		held          [2]bool
		wantCode      models.Code
		wantFields    []string
		wantWrites    int
	}{
		{"CreateNamesTheUsernameHeld", create, always, [2]bool{true, false}, models.Conflict, []string{"username"}, 1},
		{"CreateNamesTheEmailHeld", create, always, [2]bool{false, true}, models.Conflict, []string{"email"}, 1},
		{"CreateNamesBothHeld", create, always, [2]bool{true, true}, models.Conflict, []string{"username", "email"}, 1},
		{"CreateRetriesWhenTheHolderLetGo", create, 2, [2]bool{false, false}, "", nil, 3},
		{"CreateGivesUpNamingEveryField", create, always, [2]bool{false, false}, models.Conflict, []string{"username", "email"}, 3},
		{"UpdateNamesTheEmailHeld", update(models.UserUpdate{Username: &name, Email: &email}), always, [2]bool{false, true}, models.Conflict, []string{"email"}, 1},
		{"UpdateRetriesWhenTheHolderLetGo", update(models.UserUpdate{Email: &email}), 1, [2]bool{false, false}, "", nil, 2},
		{"UpdateGivesUpNamingTheFieldsWritten", update(models.UserUpdate{Username: &name}), always, [2]bool{false, false}, models.Conflict, []string{"username"}, 3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			store := &contestedStore{refusedWrites: tc.refusedWrites, held: tc.held}
			err := tc.op(models.NewUserService(store))
			if models.ErrorCode(err) != tc.wantCode {
				t.Fatalf("code %q, want %q (%v)", models.ErrorCode(err), tc.wantCode, err)
			}
			var fields []string
			for _, f := range models.ErrorFields(err) {
				fields = append(fields, f.Field)
			}
			if !slices.Equal(fields, tc.wantFields) {
				t.Errorf("fields %q, want %q", fields, tc.wantFields)
			}
			if store.writes != tc.wantWrites {
				t.Errorf("%d writes, want %d", store.writes, tc.wantWrites)
			}
		})
	}
}
