package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"usergraph/internal/dbtest"
)

// The validation rules of the contract (§4), at their edges, through updateUser on each database:
// a valid value is stored exactly as sent, and an invalid one is refused with the field named and
// nothing changed.
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
		s := newTestServer(t, databaseURL)
		check := func(t *testing.T, field, value string, valid bool) {
			u, tok := s.newUser(t)
			before := s.stored(t, u.ID)
			r := s.updateUser(t, tok, u.ID, map[string]any{field: value})
			after := s.stored(t, u.ID)
			if valid {
				if r.code() != "" {
					t.Fatalf("%q refused: %+v", value, r.Errors)
				}
				got := map[string]string{"username": after.Username, "email": after.Email}[field]
				if got != value {
					t.Errorf("stored %q, want %q", got, value)
				}
				return
			}
			if r.code() != "BAD_USER_INPUT" || r.field() != field {
				t.Fatalf("%q: got code %q field %q, want BAD_USER_INPUT %s; errors: %+v", value, r.code(), r.field(), field, r.Errors)
			}
			if *after != *before {
				t.Errorf("stored user changed: %+v", after)
			}
		}
		for _, tc := range usernames {
			t.Run("Username"+tc.name, func(t *testing.T) { check(t, "username", tc.value, tc.valid) })
		}
		for _, tc := range emails {
			t.Run("Email"+tc.name, func(t *testing.T) { check(t, "email", tc.value, tc.valid) })
		}

		// Bytes that are not UTF-8 never reach validation as U+FFFD: the whole request is refused.
		for _, field := range []string{"username", "email"} {
			t.Run("InvalidUTF8In"+field, func(t *testing.T) {
				u, tok := s.newUser(t)
				before := s.stored(t, u.ID)
				body, _ := json.Marshal(map[string]any{"query": updateMutation, "variables": map[string]any{"id": u.ID, "in": map[string]any{field: "MARKER"}}})
				body = bytes.Replace(body, []byte("MARKER"), []byte("ab\xffcd@example.com"), 1)
				r := s.postGraphQL(t, tok, body)
				if r.Status != 400 || r.code() != "BAD_USER_INPUT" {
					t.Fatalf("got %d %q, want 400 BAD_USER_INPUT; errors: %+v", r.Status, r.code(), r.Errors)
				}
				if after := s.stored(t, u.ID); *after != *before {
					t.Errorf("stored user changed: %+v", after)
				}
			})
		}
	})
}
