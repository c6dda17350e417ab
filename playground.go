package main

import (
	"net"
	"net/http"
	"net/url"

	"github.com/99designs/gqlgen/graphql/playground"

	"usergraph/auth"
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
//
// The token is an admin's, so the page holds it only for a browser on this machine (see
// fromThisMachine); any other request gets the page a configured key gets.
func playgroundHandler(devToken string) http.Handler {
	plain := playground.Handler("usergraph", "/graphql")
	if devToken == "" {
		return plain
	}
	withToken := playground.Handler("usergraph", "/graphql",
		playground.WithGraphiqlUiHeaders(map[string]string{"Authorization": "Bearer " + devToken}),
		playground.WithGraphiqlPersistStateInURL(true),
	)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// Either page may be served at this address, depending on who asks: keep both out of
		// caches, and the one with a credential out of the next run, whose key is a different one.
		w.Header().Set("Cache-Control", "no-store")
		if !fromThisMachine(r) {
			plain(w, r)
			return
		}
		withToken(w, r)
	})
}

// fromThisMachine reports whether r comes from a browser on this machine, asking for this machine
// by a loopback name. Both must hold: the peer address alone would let a page from any site
// reach the token by DNS rebinding (a name of the attacker's that now resolves to 127.0.0.1,
// which the browser sends as the Host), and the Host alone is whatever the client writes. A
// request that a proxy forwarded says so in its headers, and is not from this machine's browser
// even when the proxy itself is.
func fromThisMachine(r *http.Request) bool {
	for _, h := range []string{"Forwarded", "X-Forwarded-For", "X-Forwarded-Host", "X-Real-Ip"} {
		if r.Header.Get(h) != "" {
			return false
		}
	}
	peer, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil || !auth.IsLoopbackHost(peer) {
		return false
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	return auth.IsLoopbackHost(host)
}

// playgroundLink is the address of the Playground served at baseURL with the example in its
// editor.
func playgroundLink(baseURL string) string {
	return baseURL + "/?" + url.Values{"query": {playgroundExample}}.Encode()
}
