package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
	"usergraph/models"
)

// Bytes that are not UTF-8 never reach validation as U+FFFD: the whole request is refused, on
// each database, and nothing is stored.
func TestInvalidUTF8NeverReachesValidation(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		for _, field := range []string{"username", "email"} {
			t.Run("InvalidUTF8In"+field, func(t *testing.T) {
				u, tok := s.newUser(t)
				before := dbtest.Stored(t, s.DB, u.ID)
				body, _ := json.Marshal(map[string]any{"query": apitest.UpdateMutation, "variables": map[string]any{"id": u.ID, "in": map[string]any{field: "MARKER"}}})
				body = bytes.Replace(body, []byte("MARKER"), []byte("ab\xffcd@example.com"), 1)
				r := s.PostGraphQL(t, tok, body)
				if r.Status != 400 || r.Code() != "BAD_USER_INPUT" {
					t.Fatalf("got %d %q, want 400 BAD_USER_INPUT; errors: %+v", r.Status, r.Code(), r.Errors)
				}
				if after := dbtest.Stored(t, s.DB, u.ID); *after != *before {
					t.Errorf("stored user changed: %+v", after)
				}
			})
		}
	})
}

// Characters that a reader cannot see, or that break lines, are refused in an email on both edges,
// wherever they are, and nothing is stored.
func TestEmailInvisibleCharacters(t *testing.T) {
	t.Parallel()
	const want = "must not contain control, format or space characters"
	characters := []struct {
		name string
		r    rune
	}{
		{"ZeroWidthSpace", '\u200b'},
		{"NextLine", '\u0085'},
		{"NoBreakSpace", '\u00a0'},
		{"RightToLeftOverride", '\u202e'},
		{"LineSeparator", '\u2028'},
		{"ByteOrderMark", '\ufeff'},
		{"Tab", '\t'},
	}
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		for _, c := range characters {
			email := "vic" + string(c.r) + "tim@example.com"
			t.Run("PUT"+c.name, func(t *testing.T) {
				u, tok := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				body, _ := json.Marshal(map[string]string{"email": email})
				r := s.Put(t, tok, u.ID, string(body))
				p := r.Problem(t)
				if r.Status != http.StatusBadRequest || p.Code != "BAD_USER_INPUT" || !slices.Equal(p.Fields(), []string{"email"}) {
					t.Fatalf("got %d %s %v, want 400 BAD_USER_INPUT [email]: %s", r.Status, p.Code, p.Fields(), r.Body)
				}
				if got := p.Errors[0].Message; got != want {
					t.Errorf("message %q, want %q", got, want)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
			t.Run("GraphQL"+c.name, func(t *testing.T) {
				u, tok := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				r := s.UpdateUser(t, tok, u.ID, map[string]any{"email": email})
				if r.Code() != "BAD_USER_INPUT" || r.Field() != "email" {
					t.Fatalf("got code %q field %q, want BAD_USER_INPUT email; errors: %+v", r.Code(), r.Field(), r.Errors)
				}
				if got := r.Errors[0].Message; !strings.Contains(got, want) {
					t.Errorf("message %q, want it to say %q", got, want)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}

// An email that differs from a user's only in its Unicode encoding, in compatibility forms or in
// case is that user's: creating or updating another user with it is a conflict, and nothing is
// stored.
func TestEmailEquivalentsConflict(t *testing.T) {
	t.Parallel()
	// Each pair is written with %s where a test puts a tag of its own, so that no subtest meets
	// another's address.
	pairs := []struct {
		name     string
		existing string
		sent     string
	}{
		{"DecomposedAccentMatchesComposed", "jos\u00e9%s@example.com", "jose\u0301%s@example.com"},
		{"ComposedAccentMatchesDecomposed", "jose\u0301%s@example.com", "JOS\u00c9%s@example.com"},
		{"FullwidthLetterMatchesASCII", "jose%s@example.com", "\uff4aose%s@example.com"},
		{"CapitalSharpSMatchesSS", "strasse%s@example.com", "STRA\u1e9eE%s@example.com"},
		{"LigatureMatchesLetters", "fiona%s@example.com", "\ufb01ona%s@example.com"},
	}
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		// prepare creates the user who holds the existing address, and returns the sent one.
		prepare := func(t *testing.T, existing, sent string) string {
			tag := apitest.Uniq(".")
			s.CreateUser(t, apitest.Uniq("holder"), fmt.Sprintf(existing, tag))
			return fmt.Sprintf(sent, tag)
		}
		// storedWith counts the users whose email is exactly email.
		storedWith := func(t *testing.T, email string) int64 {
			var n int64
			if err := s.DB.Model(&models.User{}).Where("email = ?", email).Count(&n).Error; err != nil {
				t.Fatal(err)
			}
			return n
		}
		for _, tc := range pairs {
			t.Run("Create"+tc.name, func(t *testing.T) {
				sent := prepare(t, tc.existing, tc.sent)
				r := s.GraphQL(t, s.AdminToken, `mutation($in: CreateUserInput!) { createUser(input: $in) { `+apitest.UserFields+` } }`,
					map[string]any{"in": map[string]any{"username": apitest.Uniq("second"), "email": sent}})
				if r.Code() != "CONFLICT" || r.Field() != "email" {
					t.Fatalf("got code %q field %q, want CONFLICT email; errors: %+v", r.Code(), r.Field(), r.Errors)
				}
				if n := storedWith(t, sent); n != 0 {
					t.Errorf("%d users stored with %+q, want none", n, sent)
				}
			})
			t.Run("PUT"+tc.name, func(t *testing.T) {
				sent := prepare(t, tc.existing, tc.sent)
				u, tok := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				body, _ := json.Marshal(map[string]string{"email": sent})
				r := s.Put(t, tok, u.ID, string(body))
				p := r.Problem(t)
				if r.Status != http.StatusConflict || p.Code != "CONFLICT" || !slices.Equal(p.Fields(), []string{"email"}) {
					t.Fatalf("got %d %s %v, want 409 CONFLICT [email]: %s", r.Status, p.Code, p.Fields(), r.Body)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
			t.Run("GraphQLUpdate"+tc.name, func(t *testing.T) {
				sent := prepare(t, tc.existing, tc.sent)
				u, tok := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				r := s.UpdateUser(t, tok, u.ID, map[string]any{"email": sent})
				if r.Code() != "CONFLICT" || r.Field() != "email" {
					t.Fatalf("got code %q field %q, want CONFLICT email; errors: %+v", r.Code(), r.Field(), r.Errors)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}
