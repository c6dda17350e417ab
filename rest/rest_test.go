package rest_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
	"usergraph/rest"
)

// The example of the old REST documentation, to the byte.
func TestRESTSeedExample(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		now := time.Now().UTC()
		// Inserted directly: the documentation's user has ID 12345, and the service picks IDs itself.
		if err := s.db.Exec("INSERT INTO users (id, username, email, username_key, email_key, version, created_at, updated_at) VALUES (12345, 'originalUser', 'original@example.com', 'originaluser', 'original@example.com', 1, ?, ?)", now, now).Error; err != nil {
			t.Fatal(err)
		}
		r := s.Put(t, authtest.Token(t, "12345"), "12345", `{
  "username": "updatedUser",
  "email": "updated-user@example.com"
}`)
		want := `{"id":"12345","username":"updatedUser","email":"updated-user@example.com"}`
		if r.Status != http.StatusOK || string(r.Body) != want {
			t.Errorf("got %d %s\nwant 200 %s", r.Status, r.Body, want)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type: got %q, want %q", got, "application/json")
		}
		if got := dbtest.Stored(t, s.db, "12345"); got.Username != "updatedUser" || got.Email != "updated-user@example.com" {
			t.Errorf("stored %+v, want updatedUser, updated-user@example.com", got)
		}
	})
}

// PUT and PATCH are one operation: every request answers the same through either.
func TestRESTUpdateUser(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		s.createUser(t, "taken-rest", "taken-rest@example.com")

		type request struct {
			caller      string // "none", "invalid", "expired", "own", "other", "admin"
			target      string // "own", "absent", "not-a-number"
			contentType string // "" means application/json; "-" sends none
			ifMatch     string // "current" is the user's current ETag
			body        string // {method} stands for the method, so that no two requests set the same name
		}
		cases := []struct {
			name       string
			req        request
			wantStatus int
			wantCode   string
			wantFields []string
			wantHeader map[string]string
		}{
			{"OKOwnUser", request{caller: "own", body: `{"username": "Renamed-NAME-{method}"}`}, 200, "", nil, nil},
			{"OKAdmin", request{caller: "admin", body: `{"email": "by-admin-{method}@example.com"}`}, 200, "", nil, nil},
			{"OKCharsetParameter", request{caller: "own", contentType: "application/json; charset=utf-8", body: `{"username": "charset-ok-{method}"}`}, 200, "", nil, nil},
			{"OKMatchingIfMatch", request{caller: "own", ifMatch: "current", body: `{"username": "if-match-ok-{method}"}`}, 200, "", nil, nil},
			{"OKIfMatchAny", request{caller: "own", ifMatch: "*", body: `{"username": "if-match-any-{method}"}`}, 200, "", nil, nil},

			{"BadInvalidUsername", request{caller: "own", body: `{"username": "x"}`}, 400, "BAD_USER_INPUT", []string{"username"}, nil},
			{"BadInvalidEmail", request{caller: "own", body: `{"email": "Bob <bob@example.com>"}`}, 400, "BAD_USER_INPUT", []string{"email"}, nil},
			{"BadEveryFieldAtOnce", request{caller: "own", body: `{"username": " x", "email": "nope", "role": "admin"}`}, 400, "BAD_USER_INPUT", []string{"role", "username", "email"}, nil},
			{"BadUnknownField", request{caller: "own", body: `{"username": "fine-name", "role": "admin"}`}, 400, "BAD_USER_INPUT", []string{"role"}, nil},
			{"BadIDInBody", request{caller: "own", body: `{"id": "1", "username": "fine-name"}`}, 400, "BAD_USER_INPUT", []string{"id"}, nil},
			{"BadVersionInBody", request{caller: "own", body: `{"version": 1, "email": "fine@example.com"}`}, 400, "BAD_USER_INPUT", []string{"version"}, nil},
			{"BadFieldNameInOtherCase", request{caller: "own", body: `{"USERNAME": "fine-name"}`}, 400, "BAD_USER_INPUT", []string{"USERNAME"}, nil},
			{"BadNullUsername", request{caller: "own", body: `{"username": null}`}, 400, "BAD_USER_INPUT", []string{"username"}, nil},
			{"BadNumberAsUsername", request{caller: "own", body: `{"username": 12345}`}, 400, "BAD_USER_INPUT", []string{"username"}, nil},
			{"BadEmptyObject", request{caller: "own", body: `{}`}, 400, "BAD_USER_INPUT", []string{"input"}, nil},
			{"BadNotJSON", request{caller: "own", body: `username=x`}, 400, "BAD_USER_INPUT", nil, nil},
			{"BadEmptyBody", request{caller: "own", body: ``}, 400, "BAD_USER_INPUT", nil, nil},
			{"BadJSONNull", request{caller: "own", body: `null`}, 400, "BAD_USER_INPUT", nil, nil},
			{"BadArray", request{caller: "own", body: `[{"username": "fine-name"}]`}, 400, "BAD_USER_INPUT", nil, nil},
			{"BadTrailingData", request{caller: "own", body: `{"username": "fine-name"} {"username": "other"}`}, 400, "BAD_USER_INPUT", nil, nil},
			{"BadInvalidUTF8", request{caller: "own", body: "{\"username\": \"ab\xffcd\"}"}, 400, "BAD_USER_INPUT", nil, nil},
			{"BadInputBeforeNotFound", request{caller: "admin", target: "absent", body: `{"username": "x"}`}, 400, "BAD_USER_INPUT", []string{"username"}, nil},

			{"UnauthorizedWithoutToken", request{caller: "none", body: `{"username": "fine-name"}`}, 401, "UNAUTHENTICATED", nil,
				map[string]string{"WWW-Authenticate": `Bearer realm="usergraph"`}},
			{"UnauthorizedInvalidToken", request{caller: "invalid", body: `{"username": "fine-name"}`}, 401, "UNAUTHENTICATED", nil,
				map[string]string{"WWW-Authenticate": `Bearer realm="usergraph", error="invalid_token"`}},
			{"UnauthorizedExpiredToken", request{caller: "expired", body: `{"username": "fine-name"}`}, 401, "UNAUTHENTICATED", nil,
				map[string]string{"WWW-Authenticate": `Bearer realm="usergraph", error="invalid_token"`}},
			{"UnauthorizedBeforeUnsupportedMediaType", request{caller: "none", contentType: "text/plain", body: `hello`}, 401, "UNAUTHENTICATED", nil, nil},
			{"ForbiddenOtherUser", request{caller: "other", body: `{"username": "intruder"}`}, 401, "FORBIDDEN", nil,
				map[string]string{"WWW-Authenticate": `Bearer realm="usergraph", error="insufficient_scope"`}},
			{"ForbiddenAbsentUser", request{caller: "own", target: "absent", body: `{"username": "intruder"}`}, 401, "FORBIDDEN", nil, nil},
			{"ForbiddenBeforeInvalidInput", request{caller: "other", body: `{"username": "x"}`}, 401, "FORBIDDEN", nil, nil},
			{"ForbiddenBeforeBrokenBody", request{caller: "other", body: `{"username":`}, 401, "FORBIDDEN", nil, nil},
			{"ForbiddenBeforeTooLarge", request{caller: "other", body: `{"username": "` + strings.Repeat("a", 70<<10) + `"}`}, 401, "FORBIDDEN", nil, nil},

			{"NotFoundAdmin", request{caller: "admin", target: "absent", body: `{"username": "ghost-user"}`}, 404, "NOT_FOUND", nil, nil},
			{"NotFoundIDNotANumber", request{caller: "admin", target: "not-a-number", body: `{"username": "ghost-user"}`}, 404, "NOT_FOUND", nil, nil},
			{"NotFoundBeforePreconditionFailed", request{caller: "admin", target: "absent", ifMatch: `"1"`, body: `{"username": "ghost-user"}`}, 404, "NOT_FOUND", nil, nil},

			{"ConflictUsername", request{caller: "own", body: `{"username": "TAKEN-REST"}`}, 409, "CONFLICT", []string{"username"}, nil},
			{"ConflictEmail", request{caller: "own", body: `{"email": "Taken-Rest@Example.com"}`}, 409, "CONFLICT", []string{"email"}, nil},

			{"PreconditionFailedStaleETag", request{caller: "own", ifMatch: `"7"`, body: `{"username": "stale-etag"}`}, 412, "PRECONDITION_FAILED", nil, nil},
			{"PreconditionFailedWeakETag", request{caller: "own", ifMatch: `W/"1"`, body: `{"username": "weak-etag"}`}, 412, "PRECONDITION_FAILED", nil, nil},
			{"PreconditionFailedBeforeConflict", request{caller: "own", ifMatch: `"7"`, body: `{"username": "taken-rest"}`}, 412, "PRECONDITION_FAILED", nil, nil},

			{"PayloadTooLarge", request{caller: "own", body: `{"username": "` + strings.Repeat("a", 64<<10) + `"}`}, 413, "PAYLOAD_TOO_LARGE", nil, nil},
			{"UnsupportedTextPlain", request{caller: "own", contentType: "text/plain", body: `{"username": "fine-name"}`}, 415, "UNSUPPORTED_MEDIA_TYPE", nil, nil},
			{"UnsupportedForm", request{caller: "own", contentType: "application/x-www-form-urlencoded", body: `username=fine-name`}, 415, "UNSUPPORTED_MEDIA_TYPE", nil, nil},
			{"UnsupportedNoContentType", request{caller: "own", contentType: "-", body: `{"username": "fine-name"}`}, 415, "UNSUPPORTED_MEDIA_TYPE", nil, nil},
		}
		for _, method := range []string{http.MethodPut, http.MethodPatch} {
			for _, tc := range cases {
				t.Run(method+"/"+tc.name, func(t *testing.T) {
					u, own := s.newUser(t)
					before := dbtest.Stored(t, s.db, u.ID)
					h := http.Header{}
					switch tc.req.caller {
					case "invalid":
						h.Set("Authorization", "Bearer not.a.token")
					case "expired":
						h.Set("Authorization", "Bearer "+authtest.SignClaims(t, map[string]any{"sub": u.ID, "exp": time.Now().Add(-time.Minute).Unix()}))
					case "own":
						h.Set("Authorization", "Bearer "+own)
					case "other":
						_, other := s.newUser(t)
						h.Set("Authorization", "Bearer "+other)
					case "admin":
						h.Set("Authorization", "Bearer "+s.AdminToken)
					}
					switch tc.req.contentType {
					case "":
						h.Set("Content-Type", "application/json")
					case "-":
					default:
						h.Set("Content-Type", tc.req.contentType)
					}
					switch tc.req.ifMatch {
					case "":
					case "current":
						h.Set("If-Match", fmt.Sprintf(`"%d"`, u.Version))
					default:
						h.Set("If-Match", tc.req.ifMatch)
					}
					id := map[string]string{"": u.ID, "own": u.ID, "absent": "987654321", "not-a-number": "abc"}[tc.req.target]

					r := s.REST(t, method, "/users/"+id, h, strings.ReplaceAll(tc.req.body, "{method}", strings.ToLower(method)))
					if r.Status != tc.wantStatus {
						t.Fatalf("status %d, want %d: %s", r.Status, tc.wantStatus, r.Body)
					}
					for k, v := range tc.wantHeader {
						if got := r.Header.Get(k); got != v {
							t.Errorf("%s: got %q, want %q", k, got, v)
						}
					}
					if tc.wantStatus == http.StatusOK {
						after := dbtest.Stored(t, s.db, u.ID)
						var got map[string]string
						if err := json.Unmarshal(r.Body, &got); err != nil {
							t.Fatal(err)
						}
						want := map[string]string{"id": u.ID, "username": after.Username, "email": after.Email}
						if !maps.Equal(got, want) {
							t.Errorf("body %s, want exactly %v", r.Body, want)
						}
						if wantETag := fmt.Sprintf(`"%d"`, after.Version); after.Version != before.Version+1 || r.Header.Get("ETag") != wantETag {
							t.Errorf("version %d→%d, ETag %q; want version %d, ETag %q", before.Version, after.Version, r.Header.Get("ETag"), before.Version+1, wantETag)
						}
						return
					}
					p := r.Problem(t)
					if got := r.Header.Get("Content-Type"); got != "application/problem+json" {
						t.Errorf("Content-Type: got %q, want %q", got, "application/problem+json")
					}
					if p.Code != tc.wantCode || p.Status != tc.wantStatus || p.Type != "about:blank" || p.Title != http.StatusText(tc.wantStatus) || p.Detail == "" {
						t.Errorf("problem %+v, want code %s, status %d", p, tc.wantCode, tc.wantStatus)
					}
					if !slices.Equal(p.Fields(), tc.wantFields) {
						t.Errorf("fields %v, want %v", p.Fields(), tc.wantFields)
					}
					dbtest.Unchanged(t, s.db, u.ID, *before)
				})
			}
		}
	})
}

// A body that names a key twice is refused whole: encoding/json would store its last value, while
// a proxy or firewall in front may have judged the request by the first. It is a broken body like
// any other, so authentication and authorization still come first.
func TestRESTDuplicateKeys(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		cases := []struct {
			name       string
			caller     string // "none", "own", "other"
			body       string
			wantStatus int
			wantCode   string
			wantDetail string // "" when the problem is not the body
		}{
			{"DuplicateUsername", "own", `{"username": "first-name", "username": "second-name"}`, 400, "BAD_USER_INPUT",
				`duplicate key "username" in the request body`},
			{"DuplicateAfterUnescaping", "own", `{"username": "first-name", "user\u006eame": "second-name"}`, 400, "BAD_USER_INPUT",
				`duplicate key "username" in the request body`},
			{"DuplicateEmailBesideValidUsername", "own", `{"email": "first@example.com", "username": "fine-name", "email": "second@example.com"}`, 400, "BAD_USER_INPUT",
				`duplicate key "email" in the request body`},
			{"DuplicateUnknownField", "own", `{"username": "fine-name", "role": "user", "role": "admin"}`, 400, "BAD_USER_INPUT",
				`duplicate key "role" in the request body`},
			{"DuplicateInsideAValue", "own", `{"username": {"first": 1, "first": 2}}`, 400, "BAD_USER_INPUT",
				`duplicate key "first" at username.first in the request body`},
			{"UnauthenticatedBeforeDuplicateKey", "none", `{"username": "first-name", "username": "second-name"}`, 401, "UNAUTHENTICATED", ""},
			{"ForbiddenBeforeDuplicateKey", "other", `{"username": "first-name", "username": "second-name"}`, 401, "FORBIDDEN", ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				u, bearer := s.newUser(t)
				switch tc.caller {
				case "none":
					bearer = ""
				case "other":
					_, bearer = s.newUser(t)
				}
				before := *dbtest.Stored(t, s.db, u.ID)
				r := s.Put(t, bearer, u.ID, tc.body)
				p := r.Problem(t)
				if r.Status != tc.wantStatus || p.Code != tc.wantCode {
					t.Fatalf("got %d %s, want %d %s: %s", r.Status, p.Code, tc.wantStatus, tc.wantCode, r.Body)
				}
				if tc.wantDetail != "" && p.Detail != tc.wantDetail {
					t.Errorf("got detail %q, want %q", p.Detail, tc.wantDetail)
				}
				dbtest.Unchanged(t, s.db, u.ID, before)
			})
		}
	})
}

func TestRESTGetUserAndOtherMethods(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		u, own := s.newUser(t)
		_, other := s.newUser(t)
		auth := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

		t.Run("GetOwn", func(t *testing.T) {
			r := s.REST(t, http.MethodGet, "/users/"+u.ID, auth(own), "")
			want := fmt.Sprintf(`{"id":"%s","username":"%s","email":"%s"}`, u.ID, u.Username, u.Email)
			if r.Status != 200 || string(r.Body) != want || r.Header.Get("ETag") != `"1"` {
				t.Errorf("got %d %s ETag %q, want 200 %s ETag %q", r.Status, r.Body, r.Header.Get("ETag"), want, `"1"`)
			}
		})
		t.Run("GetThenPutWithItsETag", func(t *testing.T) {
			got := s.REST(t, http.MethodGet, "/users/"+u.ID, auth(own), "")
			r := s.Put(t, own, u.ID, `{"username": "etag-flow"}`, "If-Match", got.Header.Get("ETag"))
			if r.Status != 200 {
				t.Fatalf("got %d %s, want 200", r.Status, r.Body)
			}
			again := s.Put(t, own, u.ID, `{"username": "etag-flow-2"}`, "If-Match", got.Header.Get("ETag"))
			if again.Status != 412 || again.Problem(t).Code != "PRECONDITION_FAILED" {
				t.Errorf("reusing the old ETag: got %d %s, want 412 PRECONDITION_FAILED", again.Status, again.Body)
			}
		})
		t.Run("HeadOwn", func(t *testing.T) {
			r := s.REST(t, http.MethodHead, "/users/"+u.ID, auth(own), "")
			if r.Status != 200 || len(r.Body) != 0 || r.Header.Get("ETag") == "" {
				t.Errorf("got %d %q ETag %q, want 200, no body, an ETag", r.Status, r.Body, r.Header.Get("ETag"))
			}
		})
		for _, tc := range []struct {
			name       string
			header     http.Header
			id         string
			wantStatus int
			wantCode   string
		}{
			{"GetOtherForbidden", auth(other), u.ID, 401, "FORBIDDEN"},
			{"GetWithoutToken", nil, u.ID, 401, "UNAUTHENTICATED"},
			{"GetAbsentForAdmin", auth(s.AdminToken), "987654321", 404, "NOT_FOUND"},
			{"GetAbsentForbiddenForNonAdmin", auth(own), "987654321", 401, "FORBIDDEN"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				r := s.REST(t, http.MethodGet, "/users/"+tc.id, tc.header, "")
				if r.Status != tc.wantStatus || r.Problem(t).Code != tc.wantCode {
					t.Errorf("got %d %s, want %d %s", r.Status, r.Body, tc.wantStatus, tc.wantCode)
				}
			})
		}
		for _, method := range []string{http.MethodPost, http.MethodDelete} {
			t.Run("MethodNotAllowed"+method, func(t *testing.T) {
				const allow = "GET, HEAD, PUT, PATCH"
				r := s.REST(t, method, "/users/"+u.ID, http.Header{"Authorization": {"Bearer " + s.AdminToken}, "Content-Type": {"application/json"}}, `{"username": "nope-nope"}`)
				if r.Status != 405 || r.Header.Get("Allow") != allow || r.Problem(t).Code != "METHOD_NOT_ALLOWED" {
					t.Errorf("got %d Allow %q %s, want 405 Allow %q METHOD_NOT_ALLOWED", r.Status, r.Header.Get("Allow"), r.Body, allow)
				}
				if got := dbtest.Stored(t, s.db, u.ID); got == nil || got.Username == "nope-nope" {
					t.Error("the user changed")
				}
			})
		}
		t.Run("OpenAPIDocumentServed", func(t *testing.T) {
			resp, err := http.Get(s.URL + "/openapi.yaml")
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || !bytes.Equal(body, rest.OpenAPIDocument()) {
				t.Errorf("GET /openapi.yaml: got %d, %d bytes; want 200, the %d bytes of the document", resp.StatusCode, len(body), len(rest.OpenAPIDocument()))
			}
		})
	})
}

// Two writers holding the same ETag: exactly one wins, the other gets 412, every time.
func TestRESTConcurrentIfMatch(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		u, own := s.newUser(t)
		for round := range 10 {
			etag := s.REST(t, http.MethodGet, "/users/"+u.ID, http.Header{"Authorization": {"Bearer " + own}}, "").Header.Get("ETag")
			statuses := make([]int, 2)
			var wg sync.WaitGroup
			start := make(chan struct{})
			for i := range 2 {
				wg.Go(func() {
					<-start
					statuses[i] = s.Put(t, own, u.ID, fmt.Sprintf(`{"username": "writer-%d-%d"}`, round, i), "If-Match", etag).Status
				})
			}
			close(start)
			wg.Wait()
			slices.Sort(statuses)
			if !slices.Equal(statuses, []int{200, 412}) {
				t.Fatalf("round %d: statuses %v, want one 200 and one 412", round, statuses)
			}
		}
	})
}

// An unreachable or locked database is 503 with Retry-After; an unplanned failure is 500 and says
// nothing of its cause.
func TestRESTServerErrors(t *testing.T) {
	t.Parallel()
	t.Run("UnavailableSQLiteLocked", func(t *testing.T) {
		path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
		// A short busy timeout, so that the locked write gives up at once rather than after the
		// service's default wait.
		s := newServer(t, "sqlite:"+path+"?_pragma=busy_timeout(100)")
		u, own := s.newUser(t)
		release := dbtest.LockSQLite(t, path)
		r := s.Put(t, own, u.ID, `{"username": "locked-out"}`)
		release()
		if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Problem(t).Code != "SERVICE_UNAVAILABLE" {
			t.Errorf("got %d Retry-After %q %s, want 503 with Retry-After, SERVICE_UNAVAILABLE", r.Status, r.Header.Get("Retry-After"), r.Body)
		}
		if got := dbtest.Stored(t, s.db, u.ID).Username; got != u.Username {
			t.Errorf("username: got %q, want %q unchanged", got, u.Username)
		}
	})
	if dbtest.MySQLConfigured(t) {
		t.Run("UnavailableMySQLCut", func(t *testing.T) {
			u, _ := url.Parse(dbtest.MySQLURL(t))
			proxy := dbtest.NewProxy(t, u.Host)
			u.Host = proxy.Addr()
			s := newServer(t, u.String())
			user, own := s.newUser(t)
			proxy.Cut()
			r := s.Put(t, own, user.ID, `{"username": "cut-off"}`)
			if r.Status != 503 || r.Header.Get("Retry-After") == "" || r.Problem(t).Code != "SERVICE_UNAVAILABLE" {
				t.Errorf("got %d Retry-After %q %s, want 503 with Retry-After, SERVICE_UNAVAILABLE", r.Status, r.Header.Get("Retry-After"), r.Body)
			}
			proxy.Resume()
			if r := s.Put(t, own, user.ID, `{"username": "back-again"}`); r.Status != 200 {
				t.Errorf("after the cut: got %d %s, want 200", r.Status, r.Body)
			}
		})
	}
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		if dbtest.Shared(databaseURL) {
			t.Skip("takes the users table away, from every test that shares the keyspace")
		}
		s := newServer(t, databaseURL)
		u, own := s.newUser(t)
		// The table disappears from under the running server: a failure no code path expects.
		if err := s.db.Exec("ALTER TABLE users RENAME TO users_gone").Error; err != nil {
			t.Fatal(err)
		}
		r := s.Put(t, own, u.ID, `{"username": "doomed-user"}`)
		if p := r.Problem(t); r.Status != 500 || p.Code != "INTERNAL_SERVER_ERROR" || p.Detail != "internal error" {
			t.Errorf("got %d %s, want 500 INTERNAL_SERVER_ERROR, detail %q", r.Status, r.Body, "internal error")
		}
	})
}
