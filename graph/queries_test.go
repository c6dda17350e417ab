package graph

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"testing"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

func TestQueries(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits)
		alice, aliceToken := s.newUser(t)
		bob, _ := s.newUser(t)

		userQuery := `query($id: ID!) { user(id: $id) { ` + apitest.UserFields + ` } }`
		cases := []struct {
			name     string
			bearer   string
			query    string
			id       string
			wantCode string
			wantUser *apitest.User // nil: data holds null
		}{
			{"MeIsOwnUser", aliceToken, `{ me { ` + apitest.UserFields + ` } }`, "", "", alice},
			{"MeWithoutToken", "", `{ me { id } }`, "", "UNAUTHENTICATED", nil},
			{"MeOfAdminWithoutUser", s.AdminToken, `{ me { id } }`, "", "", nil},
			{"UserOwn", aliceToken, userQuery, alice.ID, "", alice},
			{"UserOtherForbidden", aliceToken, userQuery, bob.ID, "FORBIDDEN", nil},
			{"UserAbsentForbiddenForNonAdmin", aliceToken, userQuery, "987654321", "FORBIDDEN", nil},
			{"UserNotANumberForbiddenForNonAdmin", aliceToken, userQuery, "bob", "FORBIDDEN", nil},
			{"UserAnyForAdmin", s.AdminToken, userQuery, bob.ID, "", bob},
			{"UserAbsentIsNullForAdmin", s.AdminToken, userQuery, "987654321", "", nil},
			{"UserNotANumberIsNullForAdmin", s.AdminToken, userQuery, "bob", "", nil},
			{"UserWithoutToken", "", userQuery, alice.ID, "UNAUTHENTICATED", nil},
			{"UsersForbiddenForNonAdmin", aliceToken, `{ users { edges { node { id } } } }`, "", "FORBIDDEN", nil},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				vars := map[string]any{}
				if tc.id != "" {
					vars["id"] = tc.id
				}
				r := s.GraphQL(t, tc.bearer, tc.query, vars)
				if r.Code() != tc.wantCode {
					t.Fatalf("code = %q, want %q; errors: %+v", r.Code(), tc.wantCode, r.Errors)
				}
				for name, raw := range r.Data {
					if tc.wantUser == nil {
						if string(raw) != "null" {
							t.Errorf("data.%s = %s, want null", name, raw)
						}
						continue
					}
					if got := r.User(t, name); *got != *tc.wantUser {
						t.Errorf("data.%s = %+v, want %+v", name, got, tc.wantUser)
					}
				}
			})
		}

		// A refusal is the same, to the byte, whether or not the other user exists.
		t.Run("NonAdminLearnsNothingAboutOtherIDs", func(t *testing.T) {
			for _, q := range []struct{ name, query string }{
				{"user", userQuery},
				{"updateUser", apitest.UpdateMutation},
			} {
				vars := func(id string) map[string]any {
					return map[string]any{"id": id, "in": map[string]any{"username": "probe"}}
				}
				existing := s.GraphQL(t, aliceToken, q.query, vars(bob.ID))
				absent := s.GraphQL(t, aliceToken, q.query, vars("987654321"))
				a, _ := json.Marshal(existing.Errors)
				b, _ := json.Marshal(absent.Errors)
				if existing.Code() != "FORBIDDEN" || string(a) != string(b) {
					t.Errorf("%s: existing ID: %s\nabsent ID:   %s", q.name, a, b)
				}
			}
		})

		t.Run("MeAfterOwnUserIsDeleted", func(t *testing.T) {
			u, tok := s.newUser(t)
			if r := s.GraphQL(t, s.AdminToken, `mutation($id: ID!) { deleteUser(id: $id) }`, map[string]any{"id": u.ID}); r.Code() != "" {
				t.Fatal(r.Errors)
			}
			r := s.GraphQL(t, tok, `{ me { id } }`, nil)
			if r.Code() != "" || string(r.Data["me"]) != "null" {
				t.Errorf("got %s %+v, want me: null", r.Data["me"], r.Errors)
			}
		})
	})
}

func TestCreateUser(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits)
		_, userToken := s.newUser(t)
		s.CreateUser(t, "Existing", "existing@example.com")
		create := `mutation($in: CreateUserInput!) { createUser(input: $in) { ` + apitest.UserFields + ` } }`

		t.Run("AdminCreates", func(t *testing.T) {
			r := s.GraphQL(t, s.AdminToken, create, map[string]any{"in": map[string]any{"username": "Newcomer", "email": "New@Example.com"}})
			u := r.User(t, "createUser")
			if u.Username != "Newcomer" || u.Email != "New@Example.com" || u.Version != 1 || u.CreatedAt.IsZero() || !u.CreatedAt.Equal(u.UpdatedAt) {
				t.Errorf("got %+v", u)
			}
			if _, err := strconv.ParseInt(u.ID, 10, 64); err != nil {
				t.Errorf("id %q is not a decimal integer", u.ID)
			}
			if stored := dbtest.Stored(t, s.DB, u.ID); stored == nil || stored.Username != "Newcomer" || stored.EmailKey != "new@example.com" {
				t.Errorf("stored %+v", stored)
			}
		})

		cases := []struct {
			name      string
			bearer    string
			input     map[string]any
			wantCode  string
			wantField string
		}{
			{"Unauthenticated", "", map[string]any{"username": "anon1", "email": "anon1@example.com"}, "UNAUTHENTICATED", ""},
			{"ForbiddenForNonAdmin", userToken, map[string]any{"username": "mine1", "email": "mine1@example.com"}, "FORBIDDEN", ""},
			{"InvalidUsername", s.AdminToken, map[string]any{"username": "a", "email": "fine1@example.com"}, "BAD_USER_INPUT", "username"},
			{"InvalidEmail", s.AdminToken, map[string]any{"username": "fine1", "email": "fine1"}, "BAD_USER_INPUT", "email"},
			{"ConflictUsername", s.AdminToken, map[string]any{"username": "EXISTING", "email": "fine2@example.com"}, "CONFLICT", "username"},
			{"ConflictEmail", s.AdminToken, map[string]any{"username": "fine2", "email": "Existing@example.COM"}, "CONFLICT", "email"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				// Users of this name, rather than all users: other tests may share the table.
				named := func() int64 {
					var n int64
					s.DB.Table("users").Where("username_key = ?", strings.ToLower(tc.input["username"].(string))).Count(&n)
					return n
				}
				before := named()
				r := s.GraphQL(t, tc.bearer, create, map[string]any{"in": tc.input})
				if r.Code() != tc.wantCode || r.Field() != tc.wantField {
					t.Fatalf("got %q %q, want %q %q; errors: %+v", r.Code(), r.Field(), tc.wantCode, tc.wantField, r.Errors)
				}
				if after := named(); after != before {
					t.Errorf("users named %q: %d before, %d after", tc.input["username"], before, after)
				}
			})
		}

		t.Run("BothTakenNamesBoth", func(t *testing.T) {
			r := s.GraphQL(t, s.AdminToken, create, map[string]any{"in": map[string]any{"username": "existing", "email": "EXISTING@example.com"}})
			got, _ := json.Marshal(r.Errors[0].Extensions["errors"])
			want := `[{"field":"username","message":"is already taken by another user"},{"field":"email","message":"is already taken by another user"}]`
			if r.Code() != "CONFLICT" || string(got) != want {
				t.Errorf("got %q %s", r.Code(), got)
			}
		})
	})
}

func TestDeleteUser(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits)
		del := `mutation($id: ID!) { deleteUser(id: $id) }`

		t.Run("AdminDeletesThenUpdateIsNotFound", func(t *testing.T) {
			u, tok := s.newUser(t)
			r := s.GraphQL(t, s.AdminToken, del, map[string]any{"id": u.ID})
			if r.Code() != "" || string(r.Data["deleteUser"]) != strconv.Quote(u.ID) {
				t.Fatalf("got %s %+v", r.Data["deleteUser"], r.Errors)
			}
			if dbtest.Stored(t, s.DB, u.ID) != nil {
				t.Error("the user is still stored")
			}
			for _, bearer := range []string{tok, s.AdminToken} {
				if r := s.UpdateUser(t, bearer, u.ID, map[string]any{"username": apitest.Uniq("late")}); r.Code() != "NOT_FOUND" {
					t.Errorf("update after delete: %q, want NOT_FOUND", r.Code())
				}
			}
			if r := s.GraphQL(t, s.AdminToken, del, map[string]any{"id": u.ID}); r.Code() != "NOT_FOUND" {
				t.Errorf("second delete: %q, want NOT_FOUND", r.Code())
			}
		})

		t.Run("IDsAreNotReused", func(t *testing.T) {
			u, _ := s.newUser(t)
			s.GraphQL(t, s.AdminToken, del, map[string]any{"id": u.ID})
			next, _ := s.newUser(t)
			if next.ID == u.ID {
				t.Errorf("a new user got the deleted user's ID %s", u.ID)
			}
		})

		for _, tc := range []struct {
			name     string
			ownToken bool
			wantCode string
		}{
			{"ForbiddenOwnUser", true, "FORBIDDEN"},
			{"ForbiddenOtherUser", false, "FORBIDDEN"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				u, tok := s.newUser(t)
				if !tc.ownToken {
					_, tok = s.newUser(t)
				}
				if r := s.GraphQL(t, tok, del, map[string]any{"id": u.ID}); r.Code() != tc.wantCode {
					t.Errorf("got %q, want %q", r.Code(), tc.wantCode)
				}
				if dbtest.Stored(t, s.DB, u.ID) == nil {
					t.Error("the user was deleted")
				}
			})
		}
		t.Run("UnauthenticatedWithoutToken", func(t *testing.T) {
			u, _ := s.newUser(t)
			if r := s.GraphQL(t, "", del, map[string]any{"id": u.ID}); r.Code() != "UNAUTHENTICATED" {
				t.Errorf("got %q", r.Code())
			}
		})
		t.Run("NotFoundForAdmin", func(t *testing.T) {
			if r := s.GraphQL(t, s.AdminToken, del, map[string]any{"id": "987654321"}); r.Code() != "NOT_FOUND" {
				t.Errorf("got %q", r.Code())
			}
		})
	})
}

func TestUsersPagination(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		if dbtest.Shared(databaseURL) {
			t.Skip("expects the pages to hold its users alone; TestVitess pages through the shared keyspace")
		}
		s := newTestServer(t, databaseURL, DefaultLimits)
		var want []string
		for range 23 {
			u, _ := s.newUser(t)
			want = append(want, u.ID)
		}
		page := `query($first: Int, $after: String) { users(first: $first, after: $after) {
			edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }`
		type connection struct {
			Edges []struct {
				Cursor string
				Node   struct{ ID string }
			}
			PageInfo struct {
				HasNextPage bool
				EndCursor   *string
			}
		}
		list := func(t *testing.T, vars map[string]any) (connection, apitest.GraphQLResponse) {
			r := s.GraphQL(t, s.AdminToken, page, vars)
			var c connection
			if r.Code() == "" {
				json.Unmarshal(r.Data["users"], &c)
			}
			return c, r
		}

		t.Run("EveryUserExactlyOnceInIDOrder", func(t *testing.T) {
			var got []string
			vars := map[string]any{"first": 5}
			for pages := 0; ; pages++ {
				if pages > 10 {
					t.Fatal("paging did not end")
				}
				c, r := list(t, vars)
				if r.Code() != "" {
					t.Fatal(r.Errors)
				}
				for _, e := range c.Edges {
					got = append(got, e.Node.ID)
				}
				if n := len(c.Edges); n > 0 && (c.PageInfo.EndCursor == nil || *c.PageInfo.EndCursor != c.Edges[n-1].Cursor) {
					t.Errorf("endCursor %v is not the last edge's cursor", c.PageInfo.EndCursor)
				}
				if !c.PageInfo.HasNextPage {
					break
				}
				vars["after"] = *c.PageInfo.EndCursor
			}
			if !slices.Equal(got, want) {
				t.Errorf("got IDs %v\nwant    %v", got, want)
			}
		})

		t.Run("DefaultPageSizeIs20", func(t *testing.T) {
			c, r := list(t, nil)
			if r.Code() != "" || len(c.Edges) != 20 || !c.PageInfo.HasNextPage {
				t.Errorf("got %d edges, hasNextPage %v, errors %+v", len(c.Edges), c.PageInfo.HasNextPage, r.Errors)
			}
		})

		t.Run("EmptyLastPage", func(t *testing.T) {
			c, _ := list(t, map[string]any{"first": 100})
			last := c.Edges[len(c.Edges)-1].Cursor
			c, r := list(t, map[string]any{"first": 100, "after": last})
			if r.Code() != "" || len(c.Edges) != 0 || c.PageInfo.HasNextPage || c.PageInfo.EndCursor != nil {
				t.Errorf("got %+v %+v", c, r.Errors)
			}
		})

		for _, tc := range []struct {
			name      string
			vars      map[string]any
			wantField string
		}{
			{"FirstZero", map[string]any{"first": 0}, "first"},
			{"FirstNegative", map[string]any{"first": -1}, "first"},
			{"First101", map[string]any{"first": 101}, "first"},
			{"AfterNotACursor", map[string]any{"after": "not a cursor"}, "after"},
			{"AfterAnIDInsteadOfACursor", map[string]any{"after": want[0]}, "after"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				_, r := list(t, tc.vars)
				if r.Code() != "BAD_USER_INPUT" || r.Field() != tc.wantField {
					t.Errorf("got %q %q, want BAD_USER_INPUT %q", r.Code(), r.Field(), tc.wantField)
				}
			})
		}
		t.Run("First100Allowed", func(t *testing.T) {
			if _, r := list(t, map[string]any{"first": 100}); r.Code() != "" {
				t.Error(r.Errors)
			}
		})
	})
}
