package rest_test

import (
	"cmp"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"usergraph/internal/dbtest"
	"usergraph/models"
	"usergraph/rest"
)

// A client that holds the user's current ETag is told so with a 304 and no body; any other gets
// the user. Authorization comes first, so that a 304 tells a caller who may not read the user
// nothing about it, not even that it exists.
func TestRESTConditionalGet(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		cases := []struct {
			name   string
			method string // "" is GET
			caller string // "none", "own", "other", "admin"
			target string // "" is the user, "absent" an ID no user has
			// ifNoneMatch are the If-None-Match lines sent; "current" and "previous" stand for the
			// user's current ETag and that of the version before it.
			ifNoneMatch []string
			wantStatus  int
			wantCode    string
		}{
			{"NotModifiedOnMatchingETag", "", "own", "", []string{"current"}, 304, ""},
			{"NotModifiedForAdmin", "", "admin", "", []string{"current"}, 304, ""},
			{"NotModifiedOnWeakETag", "", "own", "", []string{`W/"2"`}, 304, ""},
			{"NotModifiedOnStar", "", "own", "", []string{"*"}, 304, ""},
			{"NotModifiedOnListNamingIt", "", "own", "", []string{`"7", "2", "9"`}, 304, ""},
			{"NotModifiedOnListWithoutSpaces", "", "own", "", []string{`"7","2"`}, 304, ""},
			{"NotModifiedOnListOfWeakAndStrong", "", "own", "", []string{`W/"7", W/"2"`}, 304, ""},
			{"NotModifiedOnSecondHeaderLine", "", "own", "", []string{`"7"`, `"2"`}, 304, ""},
			{"NotModifiedOnHead", http.MethodHead, "own", "", []string{"current"}, 304, ""},

			{"OKOnPreviousETag", "", "own", "", []string{"previous"}, 200, ""},
			{"OKOnOtherETags", "", "own", "", []string{`"7", W/"9"`}, 200, ""},
			{"OKOnETagThatOnlyContainsIt", "", "own", "", []string{`"22"`}, 200, ""},
			{"OKOnUnquotedVersion", "", "own", "", []string{`2`}, 200, ""},
			{"OKOnUnterminatedETag", "", "own", "", []string{`"2`}, 200, ""},
			{"OKOnLowercaseWeakPrefix", "", "own", "", []string{`w/"2"`}, 200, ""},
			{"OKOnEmptyHeader", "", "own", "", []string{""}, 200, ""},

			{"UnauthenticatedBeforeNotModified", "", "none", "", []string{"current"}, 401, "UNAUTHENTICATED"},
			{"ForbiddenBeforeNotModified", "", "other", "", []string{"current"}, 401, "FORBIDDEN"},
			{"ForbiddenBeforeNotModifiedOnStar", "", "other", "", []string{"*"}, 401, "FORBIDDEN"},
			{"ForbiddenAbsentUserOnStar", "", "own", "absent", []string{"*"}, 401, "FORBIDDEN"},
			{"NotFoundOnStar", "", "admin", "absent", []string{"*"}, 404, "NOT_FOUND"},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				u, own := s.newUser(t)
				// One update, so that the user has a previous version: its current ETag is "2".
				if r := s.Put(t, own, u.ID, `{"username": "`+u.Username+`x"}`); r.Status != http.StatusOK {
					t.Fatalf("update: got %d %s", r.Status, r.Body)
				}
				stored := dbtest.Stored(t, s.db, u.ID)
				current := fmt.Sprintf(`"%d"`, stored.Version)
				h := http.Header{}
				if bearer := s.bearerOf(t, tc.caller, own); bearer != "" {
					h.Set("Authorization", "Bearer "+bearer)
				}
				for _, v := range tc.ifNoneMatch {
					switch v {
					case "current":
						v = current
					case "previous":
						v = fmt.Sprintf(`"%d"`, stored.Version-1)
					}
					h.Add("If-None-Match", v)
				}
				id := map[string]string{"": u.ID, "absent": "987654321"}[tc.target]
				method := tc.method
				if method == "" {
					method = http.MethodGet
				}

				r := s.REST(t, method, "/users/"+id, h, "")
				if r.Status != tc.wantStatus {
					t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.wantStatus)
				}
				switch tc.wantStatus {
				case http.StatusNotModified:
					if got := r.Header.Get("ETag"); got != current {
						t.Errorf("ETag: got %q, want %q", got, current)
					}
					if len(r.Body) != 0 || r.Header.Get("Content-Type") != "" {
						t.Errorf("got Content-Type %q and body %q, want neither", r.Header.Get("Content-Type"), r.Body)
					}
				case http.StatusOK:
					want := fmt.Sprintf(`{"id":"%s","username":"%s","email":"%s"}`, u.ID, stored.Username, stored.Email)
					if string(r.Body) != want || r.Header.Get("ETag") != current {
						t.Errorf("got %s ETag %q, want %s ETag %q", r.Body, r.Header.Get("ETag"), want, current)
					}
				default:
					if p := r.Problem(t); p.Code != tc.wantCode {
						t.Errorf("got code %q, want %q", p.Code, tc.wantCode)
					}
					if r.Header.Get("ETag") != "" {
						t.Errorf("an error carries ETag %q", r.Header.Get("ETag"))
					}
				}
				dbtest.Unchanged(t, s.db, u.ID, *stored)
			})
		}
	})
}

// A service that requires preconditions refuses an update that names no version, through PUT
// and PATCH alike, after the checks of who asks and what they send, and before it looks for the
// user: the refusal is about the request, not the user. If-Match: * names no version.
func TestRESTRequiredPreconditions(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL, models.RequireIfVersion(true))
		cases := []struct {
			name        string
			caller      string // "none", "own", "other", "admin"
			target      string // "" is the user, "absent" an ID no user has
			contentType string // "" is application/json
			ifMatch     string // "current" is the user's current ETag
			body        string // {method} stands for the method, so that no two requests set the same name
			wantStatus  int
			wantCode    string
		}{
			{"OKWithCurrentETag", "own", "", "", "current", `{"username": "required-ok-{method}"}`, 200, ""},
			{"OKForAdminWithCurrentETag", "admin", "", "", "current", `{"email": "required-admin-{method}@example.com"}`, 200, ""},

			{"PreconditionRequiredWithoutIfMatch", "own", "", "", "", `{"username": "no-if-match"}`, 428, "PRECONDITION_REQUIRED"},
			{"PreconditionRequiredForAdmin", "admin", "", "", "", `{"username": "admin-no-if-match"}`, 428, "PRECONDITION_REQUIRED"},
			{"PreconditionRequiredOnIfMatchAny", "own", "", "", "*", `{"username": "if-match-any"}`, 428, "PRECONDITION_REQUIRED"},
			{"PreconditionRequiredBeforeNotFound", "admin", "absent", "", "", `{"username": "ghost-user"}`, 428, "PRECONDITION_REQUIRED"},
			{"PreconditionRequiredBeforeConflict", "own", "", "", "", `{"username": "taken-required-rest"}`, 428, "PRECONDITION_REQUIRED"},

			{"UnauthenticatedBeforePreconditionRequired", "none", "", "", "", `{"username": "anonymous"}`, 401, "UNAUTHENTICATED"},
			{"ForbiddenBeforePreconditionRequired", "other", "", "", "", `{"username": "intruder"}`, 401, "FORBIDDEN"},
			{"BadInputBeforePreconditionRequired", "own", "", "", "", `{"username": "x"}`, 400, "BAD_USER_INPUT"},
			{"BrokenBodyBeforePreconditionRequired", "own", "", "", "", `{"username":`, 400, "BAD_USER_INPUT"},
			{"UnsupportedMediaTypeBeforePreconditionRequired", "own", "", "text/plain", "", `{"username": "text-plain"}`, 415, "UNSUPPORTED_MEDIA_TYPE"},
			{"NotFoundWithIfMatch", "admin", "absent", "", `"1"`, `{"username": "ghost-user"}`, 404, "NOT_FOUND"},
			{"PreconditionFailedOnStaleETag", "own", "", "", `"7"`, `{"username": "stale-required"}`, 412, "PRECONDITION_FAILED"},
		}
		s.createUser(t, "taken-required-rest", "taken-required-rest@example.com")
		for _, method := range []string{http.MethodPut, http.MethodPatch} {
			for _, tc := range cases {
				t.Run(method+"/"+tc.name, func(t *testing.T) {
					u, own := s.newUser(t)
					before := *dbtest.Stored(t, s.db, u.ID)
					h := http.Header{"Content-Type": {cmp.Or(tc.contentType, "application/json")}}
					if bearer := s.bearerOf(t, tc.caller, own); bearer != "" {
						h.Set("Authorization", "Bearer "+bearer)
					}
					switch tc.ifMatch {
					case "":
					case "current":
						h.Set("If-Match", fmt.Sprintf(`"%d"`, before.Version))
					default:
						h.Set("If-Match", tc.ifMatch)
					}
					id := map[string]string{"": u.ID, "absent": "987654321"}[tc.target]

					r := s.REST(t, method, "/users/"+id, h, strings.ReplaceAll(tc.body, "{method}", strings.ToLower(method)))
					if r.Status != tc.wantStatus {
						t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.wantStatus)
					}
					if tc.wantStatus == http.StatusOK {
						after := dbtest.Stored(t, s.db, u.ID)
						want := fmt.Sprintf(`{"id":"%s","username":"%s","email":"%s"}`, u.ID, after.Username, after.Email)
						if string(r.Body) != want || after.Version != before.Version+1 {
							t.Errorf("got %s, stored version %d; want %s, version %d", r.Body, after.Version, want, before.Version+1)
						}
						return
					}
					p := r.Problem(t)
					if p.Code != tc.wantCode || p.Status != tc.wantStatus || p.Title != http.StatusText(tc.wantStatus) || p.Detail == "" {
						t.Errorf("problem %+v, want code %s, status %d", p, tc.wantCode, tc.wantStatus)
					}
					if got := r.Header.Get("Content-Type"); got != "application/problem+json" {
						t.Errorf("Content-Type: got %q, want %q", got, "application/problem+json")
					}
					dbtest.Unchanged(t, s.db, u.ID, before)
				})
			}
		}
	})
}

// The OpenAPI document describes the 304 as the route sends it. apitest cannot hold 304s to the
// document, as it does every other response: its validator skips that status.
func TestOpenAPIDocumentsNotModified(t *testing.T) {
	doc, err := openapi3.NewLoader().LoadFromData(rest.OpenAPIDocument())
	if err != nil {
		t.Fatal(err)
	}
	get := doc.Paths.Find("/users/{id}").Get
	if get.Parameters.GetByInAndName("header", "If-None-Match") == nil {
		t.Error("GET does not document If-None-Match")
	}
	notModified := get.Responses.Status(http.StatusNotModified)
	if notModified == nil {
		t.Fatal("GET does not document 304")
	}
	if etag := notModified.Value.Headers["ETag"]; etag == nil || !etag.Value.Required {
		t.Error("the 304 does not document its ETag as always sent")
	}
	if len(notModified.Value.Content) != 0 {
		t.Errorf("the 304 documents a body: %v", notModified.Value.Content)
	}
}
