package rest_test

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"usergraph/internal/authtest"
	"usergraph/internal/dbtest"
)

// FuzzPUTUser sends arbitrary bodies and content types to PUT /users/{id}, through the token
// middleware and the route onto a real SQLite database, and checks what must hold whatever
// arrives: the answer is one of the documented statuses, never a 500; a 200 echoes exactly what
// was stored; and nothing invalid is ever stored. `go test` replays the seed corpus in
// testdata/fuzz/FuzzPUTUser; `go test -fuzz FuzzPUTUser -run '^$' ./rest/` explores further.
func FuzzPUTUser(f *testing.F) {
	for _, seed := range []struct{ contentType, body string }{
		{"application/json", `{"username": "fuzzed", "email": "fuzzed@example.com"}`},
		{"application/json", `{"username": null}`},
		{"application/json; charset=utf-8", `{"email": "A <a@b.co>"}`},
		{"application/json", `{"username": "ab\udc00cd"}`},
		{"application/json", `{"role": "admin", "username": 5}`},
		{"text/plain", `{}`},
		{"application/json", `[]`},
	} {
		f.Add(seed.contentType, []byte(seed.body))
	}
	s := newServer(f, dbtest.SQLiteURL(f))
	u := s.createUser(f, "fuzztarget", "fuzz-target@example.com")
	own := authtest.Token(f, u.ID)
	allowed := map[int]bool{200: true, 400: true, 409: true, 413: true, 415: true}
	validUsername := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{2,31}$`)

	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		req := httptest.NewRequest(http.MethodPut, s.URL+"/users/"+u.ID, strings.NewReader(string(body)))
		req.RequestURI = ""
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("Authorization", "Bearer "+own)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Skip("not a request the client will send") // e.g. a content type with a newline
		}
		var answer map[string]any
		json.NewDecoder(resp.Body).Decode(&answer)
		resp.Body.Close()
		if !allowed[resp.StatusCode] {
			t.Fatalf("status %d for %q %q: %v", resp.StatusCode, contentType, body, answer)
		}
		stored := dbtest.Stored(t, s.db, u.ID)
		if !validUsername.MatchString(stored.Username) {
			t.Fatalf("stored an invalid username %q", stored.Username)
		}
		if !utf8.ValidString(stored.Email) || strings.ContainsRune(stored.Email, utf8.RuneError) ||
			!strings.Contains(stored.Email, "@") || utf8.RuneCountInString(stored.Email) > 254 {
			t.Fatalf("stored an invalid email %q", stored.Email)
		}
		if resp.StatusCode == 200 && (answer["username"] != stored.Username || answer["email"] != stored.Email || len(answer) != 3) {
			t.Fatalf("answered %v, stored %q %q", answer, stored.Username, stored.Email)
		}
	})
}
