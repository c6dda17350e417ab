package rest_test

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"testing"

	"usergraph/internal/dbtest"
)

// PATCH takes a JSON merge patch (RFC 7396) as well as plain JSON; PUT takes only JSON. A merge
// patch's null would remove a member, and a user has no member that can go: it is a 400 for that
// field. A patch format the route does not take is a 415 that names those it does.
func TestRESTPatchMediaTypes(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newServer(t, databaseURL)
		const acceptPatch = "application/merge-patch+json, application/json"
		cases := []struct {
			name            string
			method          string
			anonymous       bool
			contentType     string // "-" sends none
			body            string
			wantStatus      int
			wantCode        string
			wantFields      []string
			wantAcceptPatch string
		}{
			{"OKMergePatch", http.MethodPatch, false, "application/merge-patch+json", `{"username": "merge-patched"}`, 200, "", nil, ""},
			{"OKMergePatchBothFields", http.MethodPatch, false, "application/merge-patch+json", `{"username": "merge-both", "email": "merge-both@example.com"}`, 200, "", nil, ""},
			{"OKMergePatchWithCharset", http.MethodPatch, false, "application/merge-patch+json; charset=utf-8", `{"email": "charset-merge@example.com"}`, 200, "", nil, ""},
			{"OKMergePatchInOtherCase", http.MethodPatch, false, "Application/Merge-Patch+JSON", `{"username": "cased-merge"}`, 200, "", nil, ""},
			{"OKJSONPatchBody", http.MethodPatch, false, "application/json", `{"username": "json-patched"}`, 200, "", nil, ""},

			{"BadNullUsername", http.MethodPatch, false, "application/merge-patch+json", `{"username": null}`, 400, "BAD_USER_INPUT", []string{"username"}, ""},
			{"BadNullEmailBesideValidUsername", http.MethodPatch, false, "application/merge-patch+json", `{"username": "kept-back", "email": null}`, 400, "BAD_USER_INPUT", []string{"email"}, ""},
			{"BadNullBoth", http.MethodPatch, false, "application/merge-patch+json", `{"username": null, "email": null}`, 400, "BAD_USER_INPUT", []string{"username", "email"}, ""},
			{"BadNestedObject", http.MethodPatch, false, "application/merge-patch+json", `{"username": {"first": "a"}}`, 400, "BAD_USER_INPUT", []string{"username"}, ""},
			{"BadUnknownMember", http.MethodPatch, false, "application/merge-patch+json", `{"role": "admin"}`, 400, "BAD_USER_INPUT", []string{"role"}, ""},
			{"BadEmptyMergePatch", http.MethodPatch, false, "application/merge-patch+json", `{}`, 400, "BAD_USER_INPUT", []string{"input"}, ""},
			{"BadMergePatchNotAnObject", http.MethodPatch, false, "application/merge-patch+json", `"replaced"`, 400, "BAD_USER_INPUT", nil, ""},
			{"BadMergePatchNull", http.MethodPatch, false, "application/merge-patch+json", `null`, 400, "BAD_USER_INPUT", nil, ""},

			{"UnsupportedJSONPatch", http.MethodPatch, false, "application/json-patch+json", `[{"op": "replace", "path": "/username", "value": "json-patch"}]`, 415, "UNSUPPORTED_MEDIA_TYPE", nil, acceptPatch},
			{"UnsupportedTextPlain", http.MethodPatch, false, "text/plain", `{"username": "text-plain"}`, 415, "UNSUPPORTED_MEDIA_TYPE", nil, acceptPatch},
			{"UnsupportedNoContentType", http.MethodPatch, false, "-", `{"username": "no-type"}`, 415, "UNSUPPORTED_MEDIA_TYPE", nil, acceptPatch},
			{"UnsupportedMergePatchOnPut", http.MethodPut, false, "application/merge-patch+json", `{"username": "merge-on-put"}`, 415, "UNSUPPORTED_MEDIA_TYPE", nil, ""},
			{"UnauthenticatedBeforeUnsupportedPatch", http.MethodPatch, true, "application/json-patch+json", `[]`, 401, "UNAUTHENTICATED", nil, ""},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				u, own := s.newUser(t)
				before := *dbtest.Stored(t, s.db, u.ID)
				h := http.Header{}
				if !tc.anonymous {
					h.Set("Authorization", "Bearer "+own)
				}
				if tc.contentType != "-" {
					h.Set("Content-Type", tc.contentType)
				}

				r := s.REST(t, tc.method, "/users/"+u.ID, h, tc.body)
				if r.Status != tc.wantStatus {
					t.Fatalf("got %d %s, want %d", r.Status, r.Body, tc.wantStatus)
				}
				if got := r.Header.Get("Accept-Patch"); got != tc.wantAcceptPatch {
					t.Errorf("Accept-Patch: got %q, want %q", got, tc.wantAcceptPatch)
				}
				if tc.wantStatus == http.StatusOK {
					var sent, got map[string]string
					if err := json.Unmarshal([]byte(tc.body), &sent); err != nil {
						t.Fatal(err)
					}
					if err := json.Unmarshal(r.Body, &got); err != nil {
						t.Fatal(err)
					}
					want := map[string]string{"id": u.ID, "username": before.Username, "email": before.Email}
					maps.Copy(want, sent)
					if !maps.Equal(got, want) {
						t.Errorf("body %s, want exactly %v", r.Body, want)
					}
					after := dbtest.Stored(t, s.db, u.ID)
					if after.Username != want["username"] || after.Email != want["email"] || after.Version != before.Version+1 {
						t.Errorf("stored %+v, want %v at version %d", after, want, before.Version+1)
					}
					if wantETag := fmt.Sprintf(`"%d"`, before.Version+1); r.Header.Get("ETag") != wantETag {
						t.Errorf("ETag: got %q, want %q", r.Header.Get("ETag"), wantETag)
					}
					return
				}
				p := r.Problem(t)
				if p.Code != tc.wantCode || p.Status != tc.wantStatus {
					t.Errorf("problem %+v, want code %s, status %d", p, tc.wantCode, tc.wantStatus)
				}
				if !slices.Equal(p.Fields(), tc.wantFields) {
					t.Errorf("fields %v, want %v", p.Fields(), tc.wantFields)
				}
				dbtest.Unchanged(t, s.db, u.ID, before)
			})
		}
	})
}
