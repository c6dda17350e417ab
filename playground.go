package main

import (
	"net/http"
	"net/url"

	"github.com/99designs/gqlgen/graphql/playground"
)

// playgroundExample is the document that the link printed at start-up opens in the Playground.
// It creates an account before changing it, so that updateUser has a user to change on a new
// database.
const playgroundExample = `# Press the Run button and pick CreateUser, then UpdateUser.
mutation CreateUser {
  createUser(input: { username: "alice", email: "alice@example.com" }) {
    id
    username
    email
    version
  }
}

mutation UpdateUser {
  updateUser(id: "1", input: { username: "alice.smith" }) {
    id
    username
    email
    updatedAt
    version
  }
}
`

// playgroundHandler serves the GraphQL Playground. Given the development key's admin token, the
// page starts with that token in its Headers tab and takes its query from the URL, so that the
// link printed at start-up opens a Playground that is ready to run. With a configured key
// (devToken empty) the page holds no token, and the URL keeps no state: GraphiQL mirrors the
// Headers tab into the URL as it is edited, which would put a user's real token in the browser's
// history and in the logs of any proxy in between.
func playgroundHandler(devToken string) http.Handler {
	if devToken == "" {
		return playground.Handler("usergraph", "/graphql")
	}
	page := playground.Handler("usergraph", "/graphql",
		playground.WithGraphiqlUiHeaders(map[string]string{"Authorization": "Bearer " + devToken}),
		playground.WithGraphiqlPersistStateInURL(true),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The page carries a credential: keep it out of caches, and so out of the next run, whose
		// key is a different one.
		w.Header().Set("Cache-Control", "no-store")
		page(w, r)
	})
}

// playgroundLink is the address of the Playground served at baseURL with the example in its
// editor.
func playgroundLink(baseURL string) string {
	return baseURL + "/?" + url.Values{"query": {playgroundExample}}.Encode()
}
