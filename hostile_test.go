package main

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"usergraph/auth"
	"usergraph/internal/apitest"
	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
)

// What an attacker probing an update-user endpoint tries first (OWASP API Security Top 10:
// broken authentication, broken object level authorization, mass assignment, bytes that are not
// what they seem), through both edges, which must answer alike. Every case asserts the answer and
// that the database did not change. Each edge's own limits on what a request may cost are tested
// beside it, in graph and rest.

// A token the verifier refuses is refused alike by both edges, GraphQL with UNAUTHENTICATED and
// REST with 401 and a Bearer challenge, and the request changes nothing. Which tokens are refused,
// and why, is auth's to pin; these headers stand for the stages a refusal comes from: the scheme,
// the signature, the claims.
func TestBothEdgesRefuseBadTokensAlike(t *testing.T) {
	t.Parallel()
	authCfg := testAuth
	authCfg.Issuer, authCfg.Audience = "https://id.example.com", "usergraph"

	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServerWith(t, databaseURL, authCfg)
		valid := map[string]any{"iss": authCfg.Issuer, "aud": authCfg.Audience, "iat": time.Now().Unix(), "exp": time.Now().Add(time.Hour).Unix()}
		with := func(changes map[string]any) map[string]any {
			c := map[string]any{}
			for k, v := range valid {
				c[k] = v
			}
			for k, v := range changes {
				c[k] = v
			}
			return c
		}
		s.AdminToken = authtest.SignClaims(t, with(map[string]any{"sub": "admin", "roles": []string{auth.AdminRole}}))
		u := s.CreateUser(t, apitest.Uniq("victim"), apitest.Uniq("victim")+"@example.com")
		valid["sub"] = u.ID
		if r := s.UpdateUser(t, authtest.SignClaims(t, valid), u.ID, map[string]any{"username": apitest.Uniq("accepted")}); r.Code() != "" {
			t.Fatalf("a valid token was refused: %+v", r.Errors)
		}

		cases := []struct {
			name          string
			authorization string
		}{
			{"AnotherScheme", "Basic " + base64.StdEncoding.EncodeToString([]byte("admin:admin"))},
			{"AlgNone", "Bearer " + authtest.Unsigned(t, map[string]any{"alg": "none"}, valid)},
			{"Expired", "Bearer " + authtest.SignClaims(t, with(map[string]any{"exp": time.Now().Add(-time.Minute).Unix()}))},
			{"WrongIssuer", "Bearer " + authtest.SignClaims(t, with(map[string]any{"iss": "https://evil.example.com"}))},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := *dbtest.Stored(t, s.DB, u.ID)

				body := mustJSON(map[string]any{"query": apitest.UpdateMutation, "variables": map[string]any{"id": u.ID, "in": map[string]any{"username": "hijacked"}}})
				req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				req.Header.Set("Authorization", tc.authorization)
				if got := apitest.DoGraphQL(t, http.DefaultClient, req).Code(); got != "UNAUTHENTICATED" {
					t.Errorf("GraphQL: got %q, want UNAUTHENTICATED", got)
				}

				h := http.Header{"Content-Type": {"application/json"}, "Authorization": {tc.authorization}}
				r := s.REST(t, http.MethodPut, "/users/"+u.ID, h, `{"username": "hijacked"}`)
				if r.Status != 401 || r.Problem(t).Code != "UNAUTHENTICATED" || !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
					t.Errorf("REST: got %d %s %q, want 401 UNAUTHENTICATED with a Bearer challenge", r.Status, r.Body, r.Header.Get("WWW-Authenticate"))
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}

// Broken object level authorization: a user reaching for another user's record, through every
// operation and both edges.
func TestObjectLevelAuthorization(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		victim, _ := s.newUser(t)
		_, attacker := s.newUser(t)
		before := *dbtest.Stored(t, s.DB, victim.ID)
		graphqlCases := []struct{ name, query string }{
			{"GraphQLUpdate", apitest.UpdateMutation},
			{"GraphQLRead", `query($id: ID!) { user(id: $id) { id email } }`},
			{"GraphQLDelete", `mutation($id: ID!) { deleteUser(id: $id) }`},
			{"GraphQLList", `{ users { edges { node { id email } } } }`},
		}
		for _, tc := range graphqlCases {
			t.Run(tc.name, func(t *testing.T) {
				vars := map[string]any{"id": victim.ID, "in": map[string]any{"email": "attacker@example.com"}}
				if !strings.Contains(tc.query, "$in") {
					delete(vars, "in")
				}
				if !strings.Contains(tc.query, "$id") {
					vars = nil
				}
				r := s.GraphQL(t, attacker, tc.query, vars)
				if r.Code() != "FORBIDDEN" {
					t.Errorf("%q, want FORBIDDEN", r.Code())
				}
				for name, data := range r.Data {
					if strings.Contains(string(data), victim.Email) {
						t.Errorf("data.%s leaks the victim's email: %s", name, data)
					}
				}
				dbtest.Unchanged(t, s.DB, victim.ID, before)
			})
		}
		for _, method := range []string{http.MethodPut, http.MethodGet} {
			t.Run("REST"+method, func(t *testing.T) {
				h := http.Header{"Content-Type": {"application/json"}, "Authorization": {"Bearer " + attacker}}
				r := s.REST(t, method, "/users/"+victim.ID, h, `{"email": "attacker@example.com"}`)
				if r.Status != 401 || r.Problem(t).Code != "FORBIDDEN" || strings.Contains(string(r.Body), victim.Email) {
					t.Errorf("got %d %s", r.Status, r.Body)
				}
				dbtest.Unchanged(t, s.DB, victim.ID, before)
			})
		}
	})
}

// Mass assignment: fields a client may not set, slipped into an update.
func TestMassAssignment(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		for _, field := range []string{"id", "version", "role", "roles", "admin", "createdAt", "created_at", "updatedAt", "username_key", "email_key"} {
			t.Run("REST_"+field, func(t *testing.T) {
				u, own := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				r := s.Put(t, own, u.ID, fmt.Sprintf(`{"username": %q, %q: %s}`, apitest.Uniq("mass"), field, `"99"`))
				if p := r.Problem(t); r.Status != 400 || p.Code != "BAD_USER_INPUT" || !strings.Contains(strings.Join(p.Fields(), ","), field) {
					t.Errorf("got %d %s", r.Status, r.Body)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
			t.Run("GraphQL_"+field, func(t *testing.T) {
				u, own := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				// In the document itself, and smuggled in through a variable.
				literal := fmt.Sprintf(`mutation { updateUser(id: %q, input: {username: %q, %s: "99"}) { id } }`, u.ID, apitest.Uniq("mass"), strings.ReplaceAll(field, "_", ""))
				if r := s.GraphQL(t, own, literal, nil); r.Code() != "GRAPHQL_VALIDATION_FAILED" {
					t.Errorf("in the document: %q", r.Code())
				}
				if r := s.UpdateUser(t, own, u.ID, map[string]any{"username": apitest.Uniq("mass"), field: "99"}); r.Code() != "GRAPHQL_VALIDATION_FAILED" {
					t.Errorf("in a variable: %q", r.Code())
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}

// Bytes that are not UTF-8, anywhere in a request, are refused as BAD_USER_INPUT and never stored
// as replacement characters; nor are escaped lone surrogates, which decode to U+FFFD.
func TestEncoding(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		restBodies := map[string]string{
			"InValue":                 "{\"username\": \"ab\xffcd\"}",
			"InEmail":                 "{\"email\": \"a\xc3@example.com\"}",
			"InKey":                   "{\"user\xffname\": \"abcd\"}",
			"TruncatedSequence":       "{\"username\": \"abc\xe2\x82\"}",
			"EscapedLoneSurrogate":    `{"username": "ab\udc00cd"}`,
			"EscapedSurrogateInEmail": `{"email": "a\ud800b@example.com"}`,
		}
		for name, body := range restBodies {
			t.Run("REST"+name, func(t *testing.T) {
				u, own := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				r := s.Put(t, own, u.ID, body)
				if r.Status != 400 || r.Problem(t).Code != "BAD_USER_INPUT" {
					t.Errorf("got %d %s", r.Status, r.Body)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
		for name, mangle := range map[string]func(id string) string{
			"InVariables": func(id string) string {
				return `{"query": "` + strings.ReplaceAll(apitest.UpdateMutation, `"`, `\"`) + `", "variables": {"id": "` + id + `", "in": {"username": "ab` + "\xff" + `cd"}}}`
			},
			"InDocument": func(id string) string {
				return `{"query": "mutation { updateUser(id: \"` + id + `\", input: {username: \"ab` + "\xfe" + `cd\"}) { id } }"}`
			},
			"EscapedLoneSurrogateInEmail": func(id string) string {
				return `{"query": "` + strings.ReplaceAll(apitest.UpdateMutation, `"`, `\"`) + `", "variables": {"id": "` + id + `", "in": {"email": "a\udfffb@example.com"}}}`
			},
		} {
			t.Run("GraphQL"+name, func(t *testing.T) {
				u, own := s.newUser(t)
				before := *dbtest.Stored(t, s.DB, u.ID)
				if r := s.PostGraphQL(t, own, []byte(mangle(u.ID))); r.Code() != "BAD_USER_INPUT" {
					t.Errorf("got %d %q: %+v", r.Status, r.Code(), r.Errors)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}
