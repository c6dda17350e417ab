package graph

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// Requests that never reach a resolver: the standard codes of gqlgen and the transport's own.
// They send no Accept header, so they are answered as application/json, whose request errors are
// 200s (TestGraphQLRequestErrorStatuses has both media types). The
// database does not matter here, so SQLite serves.
func TestGraphQLRequestErrors(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits)
	u, tok := s.newUser(t)

	aliasedMutations := func(n int) string {
		var b strings.Builder
		b.WriteString("mutation {")
		for i := range n {
			fmt.Fprintf(&b, ` u%d: updateUser(id: "%s", input: {username: "alias%d"}) { id }`, i, u.ID, i)
		}
		b.WriteString("}")
		return mustJSON(map[string]any{"query": b.String()})
	}

	cases := []struct {
		name        string
		body        string
		contentType string
		wantStatus  int
		wantCode    string
	}{
		{"ParseFailed", `{"query": "{ me { id "}`, "application/json", 200, "GRAPHQL_PARSE_FAILED"},
		{"UnknownField", `{"query": "{ me { password } }"}`, "application/json", 200, "GRAPHQL_VALIDATION_FAILED"},
		{"UnknownInputField", `{"query": "mutation { updateUser(id: \"1\", input: {role: \"admin\"}) { id } }"}`, "application/json", 200, "GRAPHQL_VALIDATION_FAILED"},
		{"WrongVariableType", `{"query": "query($id: ID!) { user(id: $id) { id } }", "variables": {"id": {"x": 1}}}`, "application/json", 200, "GRAPHQL_VALIDATION_FAILED"},
		{"PersistedQueryNotFound", `{"extensions": {"persistedQuery": {"version": 1, "sha256Hash": "` + strings.Repeat("ab", 32) + `"}}}`, "application/json", 200, "PERSISTED_QUERY_NOT_FOUND"},
		{"NotJSON", `query { me { id } }`, "application/json", 400, "BAD_USER_INPUT"},
		{"JSONArrayBatch", `[{"query": "{ me { id } }"}]`, "application/json", 400, "BAD_USER_INPUT"},
		{"TrailingData", `{"query": "{ me { id } }"} {}`, "application/json", 400, "BAD_USER_INPUT"},
		{"TooLarge", `{"query": "` + strings.Repeat(" ", 2<<20) + `{ me { id } }"}`, "application/json", 413, "PAYLOAD_TOO_LARGE"},
		{"ComplexityOf150Mutations", aliasedMutations(150), "application/json", 200, "COMPLEXITY_LIMIT_EXCEEDED"},
		{"TokenLimitBeforeAThousandMutations", aliasedMutations(1000), "application/json", 200, "GRAPHQL_PARSE_FAILED"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(tc.body))
			req.Header.Set("Content-Type", tc.contentType)
			req.Header.Set("Authorization", "Bearer "+tok)
			r := apitest.DoGraphQL(t, http.DefaultClient, req)
			if r.Status != tc.wantStatus || r.Code() != tc.wantCode {
				t.Errorf("got %d %q, want %d %q: %+v", r.Status, r.Code(), tc.wantStatus, tc.wantCode, r.Errors)
			}
		})
	}
	if got := dbtest.Stored(t, s.DB, u.ID).Username; got != u.Username {
		t.Errorf("a rejected request changed the username to %q", got)
	}

	t.Run("PersistedQueryRoundTrip", func(t *testing.T) {
		query := `{ me { id } }`
		sum := sha256.Sum256([]byte(query))
		ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
		if r := s.PostGraphQL(t, tok, []byte(mustJSON(map[string]any{"query": query, "extensions": ext}))); r.Code() != "" {
			t.Fatalf("registering: %+v", r.Errors)
		}
		r := s.PostGraphQL(t, tok, []byte(mustJSON(map[string]any{"extensions": ext})))
		if r.Code() != "" || !bytes.Contains(r.Data["me"], []byte(u.ID)) {
			t.Errorf("by hash: %s %+v", r.Data["me"], r.Errors)
		}
	})

	t.Run("GETRunsQueries", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/graphql?query="+url.QueryEscape(`{ me { id } }`), nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		if r := apitest.DoGraphQL(t, http.DefaultClient, req); r.Code() != "" || !bytes.Contains(r.Data["me"], []byte(u.ID)) {
			t.Errorf("got %d %s %+v", r.Status, r.Data["me"], r.Errors)
		}
	})

	// refused sends a mutation that sets username by a way that must not carry one, and checks it
	// was refused and changed nothing.
	refused := func(t *testing.T, req *http.Request, username string) {
		t.Helper()
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 {
			t.Errorf("status %d, want a refusal", resp.StatusCode)
		}
		if got := dbtest.Stored(t, s.DB, u.ID).Username; got == username {
			t.Errorf("the refused mutation changed the username to %q", got)
		}
	}

	t.Run("GETRefusesMutations", func(t *testing.T) {
		q := fmt.Sprintf(`mutation { updateUser(id: "%s", input: {username: "viaget"}) { id } }`, u.ID)
		req, _ := http.NewRequest(http.MethodGet, s.URL+"/graphql?query="+url.QueryEscape(q), nil)
		refused(t, req, "viaget")
	})

	t.Run("FormBodiesRefused", func(t *testing.T) {
		form := url.Values{"query": {fmt.Sprintf(`mutation { updateUser(id: "%s", input: {username: "viaform"}) { id } }`, u.ID)}}
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/graphql", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		refused(t, req, "viaform")
	})
}

// A request that names a key twice, in the request object or anywhere in its variables, is refused
// before it runs: encoding/json would run its last value, while a proxy or firewall in front may
// have judged the request by the first.
func TestGraphQLDuplicateKeys(t *testing.T) {
	t.Parallel()
	dbtest.Each(t, func(t *testing.T, databaseURL string) {
		s := newTestServer(t, databaseURL, DefaultLimits)
		u, tok := s.newUser(t)
		update := mustJSON(apitest.UpdateMutation)
		smuggled := mustJSON(fmt.Sprintf(`mutation { updateUser(id: "%s", input: {username: "smuggled-name"}) { id } }`, u.ID))
		cases := []struct {
			name        string
			body        string
			wantMessage string
		}{
			{"DuplicateQuery", `{"query": "{ me { id } }", "query": ` + smuggled + `}`,
				`duplicate key "query" in the request body`},
			{"DuplicateQueryAfterUnescaping", `{"query": "{ me { id } }", "qu\u0065ry": ` + smuggled + `}`,
				`duplicate key "query" in the request body`},
			// encoding/json fills RawParams.Query from "QUERY" too, the last one winning.
			{"QueryInAnotherCase", `{"query": "{ me { id } }", "QUERY": ` + smuggled + `}`,
				`duplicate key "QUERY" in the request body`},
			{"DuplicateVariables", `{"query": ` + update + `, "variables": {"id": "0", "in": {}}, "variables": {"id": "` + u.ID + `", "in": {"username": "smuggled-name"}}}`,
				`duplicate key "variables" in the request body`},
			{"DuplicateVariable", `{"query": ` + update + `, "variables": {"id": "0", "in": {"username": "smuggled-name"}, "id": "` + u.ID + `"}}`,
				`duplicate key "id" at variables.id in the request body`},
			{"DuplicateKeyInNestedInput", `{"query": ` + update + `, "variables": {"id": "` + u.ID + `", "in": {"username": "fine-name", "username": "smuggled-name"}}}`,
				`duplicate key "username" at variables.in.username in the request body`},
			{"DuplicateKeyInExtensions", `{"query": ` + smuggled + `, "extensions": {"trace": 1, "trace": 2}}`,
				`duplicate key "trace" at extensions.trace in the request body`},
		}
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := *dbtest.Stored(t, s.DB, u.ID)
				r := s.PostGraphQL(t, tok, []byte(tc.body))
				if r.Status != http.StatusBadRequest || r.Code() != "BAD_USER_INPUT" {
					t.Fatalf("got %d %q, want 400 BAD_USER_INPUT: %+v", r.Status, r.Code(), r.Errors)
				}
				if got := r.Errors[0].Message; got != tc.wantMessage {
					t.Errorf("got message %q, want %q", got, tc.wantMessage)
				}
				dbtest.Unchanged(t, s.DB, u.ID, before)
			})
		}
	})
}
