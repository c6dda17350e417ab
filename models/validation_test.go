package models_test

import (
	"context"
	"strings"
	"testing"

	"usergraph/database"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

// The validation rules at their edges, through Update on each database: a valid value is stored
// exactly as sent, and an invalid one is refused with the field named and nothing changed.
func TestValidationRules(t *testing.T) {
	t.Parallel()
	local64 := strings.Repeat("l", 64)
	// 63 + 1 + 63 + 1 + 61 = a 189-character domain: with "@" and a 64-character local part,
	// an address of exactly 254 characters.
	domain189 := strings.Repeat("a", 63) + "." + strings.Repeat("b", 63) + "." + strings.Repeat("c", 61)

	usernames := []struct {
		name  string
		value string
		valid bool
	}{
		{"ThreeCharacters", "abc", true},
		{"ThirtyTwoCharacters", "u" + strings.Repeat("x", 31), true},
		{"AllAllowedCharacters", "Az09_.-z", true},
		{"StartsWithDigit", "9lives", true},
		{"TwoCharacters", "ab", false},
		{"ThirtyThreeCharacters", "u" + strings.Repeat("x", 32), false},
		{"Empty", "", false},
		{"StartsWithUnderscore", "_abc", false},
		{"StartsWithDot", ".abc", false},
		{"StartsWithHyphen", "-abc", false},
		{"LeadingSpace", " abcd", false},
		{"TrailingSpace", "abcd ", false},
		{"InnerSpace", "ab cd", false},
		{"AtSign", "ab@cd", false},
		{"NonASCIILetter", "abçd", false},
		{"ThreeNonASCIILetters", "名前名", false},
		{"ReplacementCharacter", "ab\ufffdcd", false},
		{"Newline", "abc\n", false},
	}
	emails := []struct {
		name  string
		value string
		valid bool
	}{
		{"Short", "a@b.co", true},
		{"PlusAndDots", "first.last+tag@sub.example.com", true},
		{"LocalPart64", local64 + "@example.com", true},
		{"Total254", local64 + "@" + domain189, true},
		{"AccentedLocalPart", "ren\u00e9@example.com", true},
		{"DecomposedAccentStoredAsSent", "zoe\u0308@example.com", true},
		{"ChineseAddress", "用户@例子.广告", true},
		{"LocalPart65", local64 + "l@example.com", false},
		{"Total255", local64 + "@" + domain189 + "c", false},
		{"DisplayName", "Alice <alice@example.com>", false},
		{"QuotedDisplayName", `"Alice" <alice@example.com>`, false},
		{"AngleBrackets", "<alice@example.com>", false},
		{"Comment", "alice@example.com (Alice)", false},
		{"LeadingSpace", " alice@example.com", false},
		{"TrailingSpace", "alice@example.com ", false},
		{"DomainWithoutDot", "alice@localhost", false},
		{"NoAtSign", "alice.example.com", false},
		{"NoLocalPart", "@example.com", false},
		{"NoDomain", "alice@", false},
		{"TwoAtSigns", "alice@@example.com", false},
		{"TwoAddresses", "a@example.com, b@example.com", false},
		{"ReplacementCharacter", "al\ufffdce@example.com", false},
		{"Empty", "", false},
	}

	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := models.NewUserService(database.NewUserStore(dbtest.Open(t, databaseURL)))
		n := 0
		check := func(t *testing.T, field, value string, valid bool) {
			n++
			u, err := s.Create(asAdmin, models.UserCreate{Username: "valid" + models.IDString(int64(n)), Email: "valid" + models.IDString(int64(n)) + "@example.com"})
			if err != nil {
				t.Fatal(err)
			}
			id := models.IDString(u.ID)
			own := models.ContextWithCaller(context.Background(), &models.Caller{UserID: id})
			upd := models.UserUpdate{}
			if field == "username" {
				upd.Username = &value
			} else {
				upd.Email = &value
			}
			_, err = s.Update(own, id, upd)
			after, readErr := s.User(own, id)
			if readErr != nil {
				t.Fatal(readErr)
			}
			if valid {
				if err != nil {
					t.Fatalf("%q refused: %v", value, err)
				}
				got := map[string]string{"username": after.Username, "email": after.Email}[field]
				if got != value {
					t.Errorf("stored %q, want %q", got, value)
				}
				return
			}
			fields := models.ErrorFields(err)
			if models.ErrorCode(err) != models.BadUserInput || len(fields) == 0 || fields[0].Field != field {
				t.Fatalf("%q: got %v, want BAD_USER_INPUT on %s", value, err, field)
			}
			if *after != *u {
				t.Errorf("stored user changed: %+v, was %+v", after, u)
			}
		}
		for _, tc := range usernames {
			t.Run("Username"+tc.name, func(t *testing.T) { check(t, "username", tc.value, tc.valid) })
		}
		for _, tc := range emails {
			t.Run("Email"+tc.name, func(t *testing.T) { check(t, "email", tc.value, tc.valid) })
		}
	})
}
