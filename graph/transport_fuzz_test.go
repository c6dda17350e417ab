package graph

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"unicode/utf8"

	"usergraph/models"
)

// FuzzGraphQLRequest POSTs arbitrary JSON bodies to the GraphQL handler, as an admin, on a real
// SQLite database, with batches refused or allowed, and checks what must hold whatever arrives:
// the status is 200, 400 or 413, never a 500; the body is a JSON response (or, for a batch,
// an array of them) whose every error carries a code, none of them INTERNAL_SERVER_ERROR, which
// would be a bug or a recovered panic; and a body with a key twice in an object is a 400.
// `go test` replays the seeds in testdata/fuzz/FuzzGraphQLRequest;
// `go test -fuzz FuzzGraphQLRequest -run '^$' ./graph` explores further.
func FuzzGraphQLRequest(f *testing.F) {
	limits := DefaultLimits
	// Small enough for the fuzzer to reach, so that bodies past it are tried too.
	limits.MaxBodyBytes = 4 << 10
	single := newTestHandler(openWithAccount(f), limits)
	limits.Batch = 3
	batching := newTestHandler(openWithAccount(f), limits)
	allowed := map[int]bool{200: true, 400: true, 413: true}

	f.Fuzz(func(t *testing.T, batch bool, body []byte) {
		h := single
		if batch {
			h = batching
		}
		req := httptest.NewRequestWithContext(asAdmin(context.Background()), http.MethodPost, "/graphql", bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)

		if !allowed[rec.Code] {
			t.Fatalf("status %d for %q: %s", rec.Code, body, rec.Body)
		}
		if ct := rec.Header().Get("Content-Type"); ct != "application/json; charset=utf-8" {
			t.Errorf("Content-Type %q", ct)
		}
		var responses []decodedResponse
		if err := json.Unmarshal(rec.Body.Bytes(), &responses); err != nil {
			var one decodedResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &one); err != nil {
				t.Fatalf("status %d, the body is not a JSON response: %s", rec.Code, rec.Body)
			}
			responses = []decodedResponse{one}
		}
		var codes []string
		for _, resp := range responses {
			for _, e := range resp.Errors {
				code, _ := e.Extensions["code"].(string)
				if code == "" || code == string(models.Internal) {
					t.Fatalf("an error with code %q for %q: %s", code, body, rec.Body)
				}
				codes = append(codes, code)
			}
		}
		if rec.Code != http.StatusOK && len(codes) == 0 {
			t.Fatalf("status %d without an error: %s", rec.Code, rec.Body)
		}
		if int64(len(body)) <= limits.MaxBodyBytes && utf8.Valid(body) && json.Valid(body) && hasDuplicateKey(t, body) &&
			(rec.Code != http.StatusBadRequest || codes[0] != string(models.BadUserInput)) {
			t.Fatalf("a key twice in %q: got %d %v, want 400 BAD_USER_INPUT", body, rec.Code, codes)
		}
	})
}

// decodedResponse is a GraphQL response as a client reads it.
type decodedResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []struct {
		Message    string         `json:"message"`
		Extensions map[string]any `json:"extensions"`
	} `json:"errors"`
}

// hasDuplicateKey reports whether an object of valid JSON data holds a key twice, by the plainest
// walk over encoding/json's tokens.
func hasDuplicateKey(t *testing.T, data []byte) bool {
	dec := json.NewDecoder(bytes.NewReader(data))
	var walk func() bool
	walk = func() bool {
		tok, err := dec.Token()
		if err != nil {
			t.Fatal(err)
		}
		if tok != json.Delim('{') && tok != json.Delim('[') {
			return false
		}
		seen := map[string]bool{}
		for dec.More() {
			if tok == json.Delim('{') {
				key, err := dec.Token()
				if err != nil {
					t.Fatal(err)
				}
				if seen[key.(string)] {
					return true
				}
				seen[key.(string)] = true
			}
			if walk() {
				return true
			}
		}
		dec.Token()
		return false
	}
	return walk()
}
