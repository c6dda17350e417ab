package graph

import (
	"bytes"
	"net/http"
	"strings"
	"sync"
	"testing"

	"usergraph/idempotency"
	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// postKeyed POSTs body to the server's /graphql with a token, an Idempotency-Key (none if key is
// "") and an Accept header (none if accept is "").
func (s *testServer) postKeyed(t testing.TB, bearer, key, accept, body string) rawResponse {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, s.URL+"/graphql", bytes.NewReader([]byte(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	if key != "" {
		req.Header.Set(idempotency.Header, key)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	return doRaw(t, req)
}

// renameBody is an updateUser request that renames user id to name.
func renameBody(id, name string) string {
	return mustJSON(map[string]any{"query": apitest.UpdateMutation, "variables": map[string]any{"id": id, "in": map[string]any{"username": name}}})
}

func TestGraphQLIdempotencyKeys(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits)

		t.Run("ReplayIsIdenticalAndWritesNothing", func(t *testing.T) {
			u, token := s.newUser(t)
			key, body := apitest.Uniq("key"), renameBody(u.ID, apitest.Uniq("replayed"))
			first := s.postKeyed(t, token, key, "", body)
			if first.Status != http.StatusOK || first.Code() != "" {
				t.Fatalf("first: got %d %s", first.Status, first.Body)
			}
			before := *dbtest.Stored(t, s.DB, u.ID)
			retry := s.postKeyed(t, token, key, "", body)
			if retry.Status != first.Status || !bytes.Equal(retry.Body, first.Body) || retry.Header.Get("Content-Type") != first.Header.Get("Content-Type") {
				t.Errorf("retry: got %d %s\nwant the first outcome again: %d %s", retry.Status, retry.Body, first.Status, first.Body)
			}
			if got := retry.Header.Get(idempotency.ReplayedHeader); got != "true" {
				t.Errorf("retry: %s %q, want \"true\"", idempotency.ReplayedHeader, got)
			}
			dbtest.Unchanged(t, s.DB, u.ID, before)
		})

		t.Run("ResolverRefusalsAreKept", func(t *testing.T) {
			u, token := s.newUser(t)
			key, body := apitest.Uniq("key"), renameBody(u.ID, "x")
			first := s.postKeyed(t, token, key, "", body)
			if first.Code() != "BAD_USER_INPUT" {
				t.Fatalf("first: got %d %s, want BAD_USER_INPUT", first.Status, first.Body)
			}
			retry := s.postKeyed(t, token, key, "", body)
			if !bytes.Equal(retry.Body, first.Body) || retry.Header.Get(idempotency.ReplayedHeader) != "true" {
				t.Errorf("retry: got %d %s (replayed %q), want a replay of %s", retry.Status, retry.Body, retry.Header.Get(idempotency.ReplayedHeader), first.Body)
			}
		})

		t.Run("ForbiddenIsNotKept", func(t *testing.T) {
			u, token := s.newUser(t)
			_, other := s.newUser(t)
			key, name := apitest.Uniq("key"), apitest.Uniq("after-forbidden")
			body := renameBody(u.ID, name)
			if r := s.postKeyed(t, other, key, "", body); r.Code() != "FORBIDDEN" {
				t.Fatalf("another user: got %d %s, want FORBIDDEN", r.Status, r.Body)
			}
			if r := s.postKeyed(t, token, key, "", body); r.Code() != "" || r.Header.Get(idempotency.ReplayedHeader) != "" {
				t.Errorf("the user: got %d %s, want the update to run", r.Status, r.Body)
			}
			if got := dbtest.Stored(t, s.DB, u.ID).Username; got != name {
				t.Errorf("stored %q, want %q", got, name)
			}
		})

		t.Run("Refused", func(t *testing.T) {
			u, token := s.newUser(t)
			key := apitest.Uniq("key")
			if r := s.postKeyed(t, token, key, "", renameBody(u.ID, apitest.Uniq("one"))); r.Code() != "" {
				t.Fatalf("first: got %d %s", r.Status, r.Body)
			}
			before := *dbtest.Stored(t, s.DB, u.ID)
			two := `mutation($id: ID!) { a: updateUser(id: $id, input: {username: "` + apitest.Uniq("a") + `"}) { id } b: updateUser(id: $id, input: {email: "` + apitest.Uniq("b") + `@example.com"}) { id } }`
			for _, tc := range []struct {
				name, key, accept, body string
				wantStatus              int
				wantCode                string
			}{
				{"MismatchOtherVariables", key, "", renameBody(u.ID, apitest.Uniq("two")), 422, "IDEMPOTENCY_KEY_MISMATCH"},
				{"MismatchOtherMediaType", key, "application/graphql-response+json", renameBody(u.ID, before.Username), 422, "IDEMPOTENCY_KEY_MISMATCH"},
				{"SeveralMutationFields", apitest.Uniq("key"), "", mustJSON(map[string]any{"query": two, "variables": map[string]any{"id": u.ID}}), 400, "BAD_USER_INPUT"},
				{"Batch", apitest.Uniq("key"), "", "[" + renameBody(u.ID, apitest.Uniq("batched")) + "]", 400, "BAD_USER_INPUT"},
				{"MalformedKey", "clé", "", renameBody(u.ID, apitest.Uniq("bad-key")), 400, "BAD_USER_INPUT"},
			} {
				t.Run(tc.name, func(t *testing.T) {
					r := s.postKeyed(t, token, tc.key, tc.accept, tc.body)
					if r.Status != tc.wantStatus || r.Code() != tc.wantCode {
						t.Errorf("got %d %s, want %d %s", r.Status, r.Body, tc.wantStatus, tc.wantCode)
					}
					if _, ok := r.Entries["data"]; ok {
						t.Errorf("the refusal has a data entry: %s", r.Body)
					}
					dbtest.Unchanged(t, s.DB, u.ID, before)
				})
			}
		})

		t.Run("QueryRunsWithoutTheKey", func(t *testing.T) {
			u, token := s.newUser(t)
			key, body := apitest.Uniq("key"), mustJSON(map[string]any{"query": "{ me { username } }"})
			for range 2 {
				r := s.postKeyed(t, token, key, "", body)
				if r.Code() != "" || r.Header.Get(idempotency.ReplayedHeader) != "" || !bytes.Contains(r.Body, []byte(u.Username)) {
					t.Errorf("got %d %s (replayed %q), want the query answered afresh", r.Status, r.Body, r.Header.Get(idempotency.ReplayedHeader))
				}
			}
			// The key was not taken by the query: a mutation may use it.
			if r := s.postKeyed(t, token, key, "", renameBody(u.ID, apitest.Uniq("after-query"))); r.Code() != "" {
				t.Errorf("a mutation with the query's key: got %d %s", r.Status, r.Body)
			}
		})

		t.Run("ConcurrentRetriesMakeOneUpdate", func(t *testing.T) {
			u, token := s.newUser(t)
			key, body := apitest.Uniq("key"), renameBody(u.ID, apitest.Uniq("racing"))
			const n = 8
			responses := make([]rawResponse, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() { responses[i] = s.postKeyed(t, token, key, "", body) })
			}
			wg.Wait()
			ran := 0
			for _, r := range responses {
				switch {
				case r.Status == http.StatusOK && r.Code() == "" && r.Header.Get(idempotency.ReplayedHeader) == "":
					ran++
				case r.Status == http.StatusOK && r.Code() == "":
				case r.Status == http.StatusConflict && r.Code() == "IDEMPOTENCY_KEY_IN_USE":
				default:
					t.Errorf("got %d %s, want a success, a replay or 409 IDEMPOTENCY_KEY_IN_USE", r.Status, r.Body)
				}
			}
			if ran != 1 {
				t.Errorf("%d requests ran the mutation, want 1", ran)
			}
			if got := dbtest.Stored(t, s.DB, u.ID).Version; got != 2 {
				t.Errorf("version %d, want 2: one update", got)
			}
		})

		t.Run("CreateUserRunsOnce", func(t *testing.T) {
			name := apitest.Uniq("created")
			body := mustJSON(map[string]any{"query": `mutation($in: CreateUserInput!) { createUser(input: $in) { id username } }`,
				"variables": map[string]any{"in": map[string]any{"username": name, "email": name + "@example.com"}}})
			key := apitest.Uniq("key")
			first := s.postKeyed(t, s.AdminToken, key, "", body)
			retry := s.postKeyed(t, s.AdminToken, key, "", body)
			if first.Code() != "" || !bytes.Equal(retry.Body, first.Body) || retry.Header.Get(idempotency.ReplayedHeader) != "true" {
				t.Errorf("got %s then %s (replayed %q), want one user created and the same answer again", first.Body, retry.Body, retry.Header.Get(idempotency.ReplayedHeader))
			}
		})
	})
}

// A keyed mutation that cannot take its key, because the database is locked, is refused before
// it runs, with 503 and Retry-After; its retry runs once the lock is gone.
func TestGraphQLIdempotencyKeyDatabaseUnavailable(t *testing.T) {
	t.Parallel()
	path := strings.TrimPrefix(dbtest.SQLiteURL(t), "sqlite:")
	s := newTestServer(t, "sqlite:"+path+"?_pragma=busy_timeout(100)", DefaultLimits)
	u, token := s.newUser(t)
	key, name := apitest.Uniq("key"), apitest.Uniq("after-lock")
	body := renameBody(u.ID, name)

	release := dbtest.LockSQLite(t, path)
	r := s.postKeyed(t, token, key, "", body)
	release()
	if r.Status != http.StatusServiceUnavailable || r.Code() != "SERVICE_UNAVAILABLE" || r.Header.Get("Retry-After") == "" {
		t.Errorf("while locked: got %d %s (Retry-After %q), want 503 SERVICE_UNAVAILABLE with Retry-After", r.Status, r.Body, r.Header.Get("Retry-After"))
	}
	if _, ok := r.Entries["data"]; ok {
		t.Errorf("the refusal has a data entry: %s", r.Body)
	}
	r = s.postKeyed(t, token, key, "", body)
	if r.Code() != "" || r.Header.Get(idempotency.ReplayedHeader) != "" {
		t.Errorf("after the lock: got %d %s, want the mutation to run", r.Status, r.Body)
	}
	if got := dbtest.Stored(t, s.DB, u.ID).Username; got != name {
		t.Errorf("stored %q, want %q", got, name)
	}
}
