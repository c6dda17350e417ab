package graph

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"usergraph/auth"
	"usergraph/internal/apitest"
	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

func TestUpdateUser(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits)

		t.Run("SelfChangesUsername", func(t *testing.T) {
			u, tok := s.newUser(t)
			newName := apitest.Uniq("Renamed")
			r := s.UpdateUser(t, tok, u.ID, map[string]any{"username": newName})
			if r.Code() != "" {
				t.Fatalf("errors: %+v", r.Errors)
			}
			got := r.User(t, "updateUser")
			if got.ID != u.ID || got.Username != newName || got.Email != u.Email {
				t.Errorf("got %+v, want username %q and the rest unchanged", got, newName)
			}
			if got.Version != u.Version+1 {
				t.Errorf("version = %d, want %d", got.Version, u.Version+1)
			}
			if !got.UpdatedAt.After(u.UpdatedAt) || !got.CreatedAt.Equal(u.CreatedAt) {
				t.Errorf("times: created %v→%v, updated %v→%v", u.CreatedAt, got.CreatedAt, u.UpdatedAt, got.UpdatedAt)
			}
			if stored := dbtest.Stored(t, s.DB, u.ID); stored.Username != newName || stored.UsernameKey != strings.ToLower(newName) {
				t.Errorf("stored %q (key %q), want %q", stored.Username, stored.UsernameKey, newName)
			}
		})

		t.Run("SelfChangesEmailOnly", func(t *testing.T) {
			u, tok := s.newUser(t)
			email := apitest.Uniq("New.Address") + "@Example.org"
			got := s.UpdateUser(t, tok, u.ID, map[string]any{"email": email}).User(t, "updateUser")
			if got.Email != email || got.Username != u.Username {
				t.Errorf("got %+v, want email %q and username %q", got, email, u.Username)
			}
			if stored := dbtest.Stored(t, s.DB, u.ID); stored.Email != email || stored.EmailKey != strings.ToLower(email) {
				t.Errorf("stored %q (key %q)", stored.Email, stored.EmailKey)
			}
		})

		t.Run("AdminChangesAnyUser", func(t *testing.T) {
			u, _ := s.newUser(t)
			name, email := apitest.Uniq("byadmin"), apitest.Uniq("byadmin")+"@example.com"
			got := s.UpdateUser(t, s.AdminToken, u.ID, map[string]any{"username": name, "email": email}).User(t, "updateUser")
			if got.Username != name || got.Email != email {
				t.Errorf("got %+v", got)
			}
		})

		t.Run("SameValuesAgainSucceed", func(t *testing.T) {
			u, tok := s.newUser(t)
			r := s.UpdateUser(t, tok, u.ID, map[string]any{"username": u.Username, "email": u.Email})
			got := r.User(t, "updateUser")
			if got.Username != u.Username || got.Email != u.Email || got.Version != u.Version+1 {
				t.Errorf("got %+v, want the same values at version %d", got, u.Version+1)
			}
		})

		t.Run("OwnUsernameInAnotherCase", func(t *testing.T) {
			u, tok := s.newUser(t)
			upper := strings.ToUpper(u.Username)
			got := s.UpdateUser(t, tok, u.ID, map[string]any{"username": upper}).User(t, "updateUser")
			if got.Username != upper {
				t.Errorf("username = %q, want %q", got.Username, upper)
			}
		})

		t.Run("ExpectedVersionMatches", func(t *testing.T) {
			u, tok := s.newUser(t)
			name := apitest.Uniq("versioned")
			got := s.UpdateUser(t, tok, u.ID, map[string]any{"username": name, "expectedVersion": u.Version}).User(t, "updateUser")
			if got.Username != name || got.Version != u.Version+1 {
				t.Errorf("got %+v", got)
			}
		})

		s.CreateUser(t, "taken-name", "taken@example.com")
		errorCases := []struct {
			name      string
			caller    string // whose token: "none", "expired", "forged", "own", "other", "admin"
			target    string // which ID: "own", "absent", "not-a-number", "leading-zero"
			input     map[string]any
			wantCode  string
			wantField string
		}{
			{"UnauthenticatedWithoutToken", "none", "own", map[string]any{"username": "nobody1"}, "UNAUTHENTICATED", ""},
			{"UnauthenticatedExpiredToken", "expired", "own", map[string]any{"username": "nobody2"}, "UNAUTHENTICATED", ""},
			{"UnauthenticatedForgedToken", "forged", "own", map[string]any{"username": "nobody3"}, "UNAUTHENTICATED", ""},
			{"UnauthenticatedBeforeInvalidInput", "none", "own", map[string]any{"username": "x"}, "UNAUTHENTICATED", ""},
			{"ForbiddenOtherUser", "other", "own", map[string]any{"username": "intruder1"}, "FORBIDDEN", ""},
			{"ForbiddenOtherUserThatDoesNotExist", "own", "absent", map[string]any{"username": "intruder2"}, "FORBIDDEN", ""},
			{"ForbiddenIDThatIsNotANumber", "own", "not-a-number", map[string]any{"username": "intruder3"}, "FORBIDDEN", ""},
			{"ForbiddenBeforeInvalidInput", "other", "own", map[string]any{"username": "x"}, "FORBIDDEN", ""},
			{"NotFoundForAdmin", "admin", "absent", map[string]any{"username": "ghost1"}, "NOT_FOUND", ""},
			{"NotFoundIDThatIsNotANumber", "admin", "not-a-number", map[string]any{"username": "ghost2"}, "NOT_FOUND", ""},
			{"NotFoundIDWithLeadingZero", "admin", "leading-zero", map[string]any{"username": "ghost3"}, "NOT_FOUND", ""},
			{"InvalidInputBeforeNotFound", "admin", "absent", map[string]any{"username": "x"}, "BAD_USER_INPUT", "username"},
			{"NullUsername", "own", "own", map[string]any{"username": nil}, "BAD_USER_INPUT", "username"},
			{"NullEmail", "own", "own", map[string]any{"email": nil}, "BAD_USER_INPUT", "email"},
			{"NullUsernameBesideValidEmail", "own", "own", map[string]any{"username": nil, "email": "valid@example.com"}, "BAD_USER_INPUT", "username"},
			{"EmptyInput", "own", "own", map[string]any{}, "BAD_USER_INPUT", "input"},
			{"OnlyExpectedVersion", "own", "own", map[string]any{"expectedVersion": 1}, "BAD_USER_INPUT", "input"},
			{"InvalidUsername", "own", "own", map[string]any{"username": " padded "}, "BAD_USER_INPUT", "username"},
			{"InvalidEmail", "own", "own", map[string]any{"email": "Alice <alice@example.com>"}, "BAD_USER_INPUT", "email"},
			{"StaleExpectedVersion", "own", "own", map[string]any{"username": "stale1", "expectedVersion": 7}, "PRECONDITION_FAILED", ""},
			{"ConflictUsernameInAnotherCase", "own", "own", map[string]any{"username": "TAKEN-Name"}, "CONFLICT", "username"},
			{"ConflictEmailInAnotherCase", "own", "own", map[string]any{"email": "Taken@EXAMPLE.com"}, "CONFLICT", "email"},
			{"StaleVersionBeforeConflict", "own", "own", map[string]any{"username": "taken-name", "expectedVersion": 9}, "PRECONDITION_FAILED", ""},
		}
		for _, tc := range errorCases {
			t.Run(tc.name, func(t *testing.T) {
				u, own := s.newUser(t)
				before := dbtest.Stored(t, s.DB, u.ID)
				var bearer string
				switch tc.caller {
				case "expired":
					bearer = authtest.SignClaims(t, map[string]any{"sub": u.ID, "iat": time.Now().Add(-time.Hour).Unix(), "exp": time.Now().Add(-time.Minute).Unix()})
				case "forged":
					// Signed with another key than the server's.
					forged, err := auth.Sign(auth.Config{Secret: []byte(strings.Repeat("k", 32))}, auth.TokenRequest{Subject: u.ID, Roles: []string{"admin"}, TTL: time.Hour})
					if err != nil {
						t.Fatal(err)
					}
					bearer = forged
				case "own":
					bearer = own
				case "other":
					_, bearer = s.newUser(t)
				case "admin":
					bearer = s.AdminToken
				}
				id := map[string]string{"own": u.ID, "absent": "987654321", "not-a-number": "abc", "leading-zero": "0" + u.ID}[tc.target]
				r := s.UpdateUser(t, bearer, id, tc.input)
				if r.Code() != tc.wantCode || r.Field() != tc.wantField {
					t.Fatalf("got code %q field %q, want %q %q; errors: %+v", r.Code(), r.Field(), tc.wantCode, tc.wantField, r.Errors)
				}
				if got := string(r.Data["updateUser"]); got != "" && got != "null" {
					t.Errorf("data.updateUser = %s, want null", got)
				}
				if after := dbtest.Stored(t, s.DB, u.ID); *after != *before {
					t.Errorf("stored user changed:\n got %+v\nwant %+v", after, before)
				}
			})
		}

		t.Run("EveryInvalidFieldAtOnce", func(t *testing.T) {
			u, tok := s.newUser(t)
			r := s.UpdateUser(t, tok, u.ID, map[string]any{"username": "-bad", "email": "no-at-sign"})
			if r.Code() != "BAD_USER_INPUT" || r.Field() != "username" {
				t.Fatalf("got %q %q", r.Code(), r.Field())
			}
			got, _ := json.Marshal(r.Errors[0].Extensions["errors"])
			want := `[{"field":"username","message":"must start with a letter or a digit"},` +
				`{"field":"email","message":"must be an email address such as name@example.com"}]`
			if string(got) != want {
				t.Errorf("extensions.errors = %s\nwant %s", got, want)
			}
		})
	})
}

// A service that requires preconditions refuses an update without expectedVersion, after the
// checks of who asks and what they send, and before it looks for the account.
func TestUpdateUserRequiredVersion(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits, models.RequireIfVersion(true))
		s.CreateUser(t, "taken-required", "taken-required@example.com")
		cases := []struct {
			name      string
			caller    string // "none", "own", "other", "admin"
			target    string // "own", "absent"
			input     map[string]any
			wantCode  string
			wantField string
		}{
			{"OKWithExpectedVersion", "own", "own", map[string]any{"username": "required-ok", "expectedVersion": 1}, "", ""},
			{"OKForAdminWithExpectedVersion", "admin", "own", map[string]any{"email": "required-admin@example.com", "expectedVersion": 1}, "", ""},

			{"PreconditionRequiredWithoutExpectedVersion", "own", "own", map[string]any{"username": "no-version"}, "PRECONDITION_REQUIRED", ""},
			{"PreconditionRequiredForNullExpectedVersion", "own", "own", map[string]any{"username": "null-version", "expectedVersion": nil}, "PRECONDITION_REQUIRED", ""},
			{"PreconditionRequiredForAdmin", "admin", "own", map[string]any{"username": "admin-no-version"}, "PRECONDITION_REQUIRED", ""},
			{"PreconditionRequiredBeforeNotFound", "admin", "absent", map[string]any{"username": "ghost-user"}, "PRECONDITION_REQUIRED", ""},
			{"PreconditionRequiredBeforeConflict", "own", "own", map[string]any{"username": "taken-required"}, "PRECONDITION_REQUIRED", ""},

			{"UnauthenticatedBeforePreconditionRequired", "none", "own", map[string]any{"username": "anonymous"}, "UNAUTHENTICATED", ""},
			{"ForbiddenBeforePreconditionRequired", "other", "own", map[string]any{"username": "intruder"}, "FORBIDDEN", ""},
			{"BadUserInputBeforePreconditionRequired", "own", "own", map[string]any{"username": "x"}, "BAD_USER_INPUT", "username"},
			{"EmptyInputBeforePreconditionRequired", "own", "own", map[string]any{}, "BAD_USER_INPUT", "input"},
			{"NotFoundWithExpectedVersion", "admin", "absent", map[string]any{"username": "ghost-user", "expectedVersion": 1}, "NOT_FOUND", ""},
			{"PreconditionFailedOnStaleExpectedVersion", "own", "own", map[string]any{"username": "stale-required", "expectedVersion": 7}, "PRECONDITION_FAILED", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				u, own := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				bearer := map[string]string{"own": own, "admin": s.AdminToken}[tc.caller]
				if tc.caller == "other" {
					_, bearer = s.newUser(t)
				}
				id := map[string]string{"own": u.ID, "absent": "987654321"}[tc.target]

				r := s.UpdateUser(t, bearer, id, tc.input)
				if r.Status != http.StatusOK {
					t.Errorf("HTTP status %d, want 200", r.Status)
				}
				if r.Code() != tc.wantCode || r.Field() != tc.wantField {
					t.Fatalf("got code %q field %q, want %q %q; errors: %+v", r.Code(), r.Field(), tc.wantCode, tc.wantField, r.Errors)
				}
				if tc.wantCode == "" {
					got := r.User(t, "updateUser")
					after := dbtest.Stored(t, s.DB, u.ID)
					if got.Username != after.Username || got.Email != after.Email || after.Version != before.Version+1 || got.Version != int(after.Version) {
						t.Errorf("got %+v, stored %+v; want the stored user at version %d", got, after, before.Version+1)
					}
					return
				}
				if got := string(r.Data["updateUser"]); got != "" && got != "null" {
					t.Errorf("data.updateUser = %s, want null", got)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}
