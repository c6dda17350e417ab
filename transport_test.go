package main

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
)

// The routes the whole server adds around the GraphQL handler: /query answers as /graphql does,
// for clients configured with gqlgen's default path, and / serves the Playground, which posts to
// /graphql. What the handler answers on either path is graph's to pin.
func TestGraphQLRoutes(t *testing.T) {
	t.Parallel()
	s := newTestServer(t, dbtest.SQLiteURL(t))
	u, tok := s.newUser(t)

	t.Run("QueryAliasAtQuery", func(t *testing.T) {
		req, _ := http.NewRequest(http.MethodPost, s.URL+"/query", strings.NewReader(`{"query": "{ me { id } }"}`))
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Authorization", "Bearer "+tok)
		if r := apitest.DoGraphQL(t, http.DefaultClient, req); r.Code() != "" || !bytes.Contains(r.Data["me"], []byte(u.ID)) {
			t.Errorf("got %s %+v", r.Data["me"], r.Errors)
		}
	})

	t.Run("PlaygroundAtRoot", func(t *testing.T) {
		resp, err := http.Get(s.URL + "/")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var body bytes.Buffer
		body.ReadFrom(resp.Body)
		if resp.StatusCode != 200 || !strings.Contains(resp.Header.Get("Content-Type"), "text/html") || !strings.Contains(body.String(), "/graphql") {
			t.Errorf("GET / = %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

// mustJSON encodes v, for request bodies built from values that always encode.
func mustJSON(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}
