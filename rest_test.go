package main

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// The REST route and the mutation are one operation: for the same request they answer the same
// code and name the same fields.
func TestRESTAndGraphQLAgree(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL)
		s.CreateUser(t, "agreed-taken", "agreed-taken@example.com")
		cases := []struct {
			name   string
			caller string
			target string
			input  map[string]any
		}{
			{"ShortUsername", "own", "own", map[string]any{"username": "ab"}},
			{"LongUsername", "own", "own", map[string]any{"username": strings.Repeat("u", 33)}},
			{"UsernameWithSpace", "own", "own", map[string]any{"username": "ab cd"}},
			{"DisplayNameEmail", "own", "own", map[string]any{"email": "A <a@example.com>"}},
			{"EmailWithoutDot", "own", "own", map[string]any{"email": "a@localhost"}},
			{"BothInvalid", "own", "own", map[string]any{"username": "_x", "email": "x"}},
			{"NullEmail", "own", "own", map[string]any{"email": nil}},
			{"NullBoth", "own", "own", map[string]any{"username": nil, "email": nil}},
			{"Empty", "own", "own", map[string]any{}},
			{"Taken", "own", "own", map[string]any{"username": "Agreed-Taken"}},
			{"TakenBoth", "own", "own", map[string]any{"username": "agreed-taken", "email": "AGREED-TAKEN@example.com"}},
			{"NoToken", "none", "own", map[string]any{"username": "fine-name"}},
			{"OtherUser", "other", "own", map[string]any{"username": "fine-name"}},
			{"OtherUserInvalidInput", "other", "own", map[string]any{"username": "x"}},
			{"AbsentAsUser", "own", "absent", map[string]any{"username": "fine-name"}},
			{"AbsentAsAdmin", "admin", "absent", map[string]any{"username": "fine-name"}},
			{"NotANumberAsAdmin", "admin", "not-a-number", map[string]any{"username": "fine-name"}},
			{"Valid", "own", "own", map[string]any{"username": "agreeable"}},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				viaREST, viaGraphQL := make([]string, 0, 4), make([]string, 0, 4)
				for _, edge := range []string{"rest", "graphql"} {
					u, own := s.newUser(t)
					bearer := map[string]string{"none": "", "own": own, "admin": s.AdminToken}[tc.caller]
					if tc.caller == "other" {
						_, bearer = s.newUser(t)
					}
					id := map[string]string{"own": u.ID, "absent": "987654321", "not-a-number": "x1"}[tc.target]
					input := map[string]any{}
					for k, v := range tc.input {
						if s, ok := v.(string); ok && tc.name == "Valid" {
							v = s + "-" + edge
						}
						input[k] = v
					}
					if edge == "rest" {
						r := s.Put(t, bearer, id, mustJSON(input))
						var p apitest.Problem
						json.Unmarshal(r.Body, &p)
						viaREST = append([]string{p.Code}, p.Fields()...)
					} else {
						r := s.UpdateUser(t, bearer, id, input)
						viaGraphQL = []string{r.Code()}
						if len(r.Errors) > 0 {
							if list, ok := r.Errors[0].Extensions["errors"].([]any); ok {
								for _, e := range list {
									viaGraphQL = append(viaGraphQL, e.(map[string]any)["field"].(string))
								}
							}
						}
					}
				}
				if !slices.Equal(viaREST, viaGraphQL) {
					t.Errorf("REST: %v, GraphQL: %v", viaREST, viaGraphQL)
				}
			})
		}
	})
}
