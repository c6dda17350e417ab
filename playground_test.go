package main

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

var (
	printedTokenLine = regexp.MustCompile(`(?m)^  (eyJ[\w-]+\.[\w-]+\.[\w-]+)$`)
	printedLinkLine  = regexp.MustCompile(`(?m)^  (http://\S+)$`)
	anyJWT           = regexp.MustCompile(`eyJ[\w-]+\.[\w-]+\.[\w-]+`)
)

// printedToken is the admin token that the program printed at start-up, or "" if it printed none.
func printedToken(r *running) string {
	if m := printedTokenLine.FindStringSubmatch(r.stdout.String()); m != nil {
		return m[1]
	}
	return ""
}

// printedLink is the Playground link that the program printed at start-up, or "" if it printed
// none.
func printedLink(r *running) string {
	if m := printedLinkLine.FindStringSubmatch(r.stdout.String()); m != nil {
		return m[1]
	}
	return ""
}

func TestPlaygroundPage(t *testing.T) {
	cases := []struct {
		name string
		env  map[string]string
		// devKey: the program runs on an ephemeral key, and so prints a token for the page to hold.
		devKey bool
	}{
		{"DevelopmentKeyPageHoldsThePrintedToken", map[string]string{"DATABASE_URL": "sqlite::memory:"}, true},
		{"ConfiguredKeyPageHoldsNoToken", map[string]string{"DATABASE_URL": "sqlite::memory:", "JWT_SECRET": testSecret}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := startRun(t, tc.env)
			resp, err := http.Get(r.URL + "/")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			page := string(body)
			if resp.StatusCode != http.StatusOK || !strings.Contains(page, "GraphiQL") {
				t.Fatalf("GET / = %d, not the Playground:\n%s", resp.StatusCode, page)
			}

			token, link := printedToken(r), printedLink(r)
			if !tc.devKey {
				if token != "" || link != "" {
					t.Errorf("with a configured key, start-up printed a token or a link:\n%s", r.stdout.String())
				}
				if jwt := anyJWT.FindString(page); jwt != "" || strings.Contains(page, "Authorization") {
					t.Errorf("with a configured key, the page holds a token or an Authorization header (%q)", jwt)
				}
				return
			}

			if token == "" || link == "" {
				t.Fatalf("with no key, start-up printed no token or no link:\n%s", r.stdout.String())
			}
			if want := `{"Authorization":"Bearer ` + token + `"}`; !strings.Contains(page, want) {
				t.Errorf("the page does not give the Headers tab %s", want)
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("a page holding a token is served with Cache-Control %q, want no-store", got)
			}
			u, err := url.Parse(link)
			if err != nil {
				t.Fatal(err)
			}
			if got := u.Scheme + "://" + u.Host; got != r.URL || u.Path != "/" {
				t.Errorf("the link %s is not the Playground served at %s/", link, r.URL)
			}
			if got := u.Query().Get("query"); got != playgroundExample {
				t.Errorf("the link's query is\n%s\nwant the example\n%s", got, playgroundExample)
			}
		})
	}
}

// The development key's admin token is on the page only for a browser on this machine that asks
// for it by a loopback name: not for a page that reached the server by DNS rebinding, not through
// a proxy, not from another host.
func TestPlaygroundTokenStaysOnThisMachine(t *testing.T) {
	r := startRun(t, map[string]string{"DATABASE_URL": "sqlite::memory:"})
	token := printedToken(r)
	if token == "" {
		t.Fatalf("with no key, start-up printed no token:\n%s", r.stdout.String())
	}
	port := strings.TrimPrefix(r.URL, "http://localhost:")
	cases := []struct {
		name      string
		host      string
		header    http.Header
		wantToken bool
	}{
		{"LocalhostGetsTheToken", "localhost:" + port, nil, true},
		{"LoopbackAddressGetsTheToken", "127.0.0.1:" + port, nil, true},
		{"RebindingHostGetsNone", "rebind.attacker.example:" + port, nil, false},
		{"LoopbackLookalikeGetsNone", "localhost.attacker.example:" + port, nil, false},
		{"PublicNameGetsNone", "usergraph.example.com", nil, false},
		{"ForwardedByAProxyGetsNone", "localhost:" + port, http.Header{"X-Forwarded-For": {"203.0.113.9"}}, false},
		{"RFC7239ForwardedGetsNone", "localhost:" + port, http.Header{"Forwarded": {"for=203.0.113.9"}}, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, r.URL+"/", nil)
			if err != nil {
				t.Fatal(err)
			}
			req.Host = tc.host
			for k, v := range tc.header {
				req.Header[k] = v
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || !strings.Contains(string(body), "GraphiQL") {
				t.Fatalf("GET / = %d, not the Playground", resp.StatusCode)
			}
			if got := strings.Contains(string(body), token); got != tc.wantToken {
				t.Errorf("page holds the token: %v, want %v", got, tc.wantToken)
			}
			if !tc.wantToken && anyJWT.MatchString(string(body)) {
				t.Errorf("page holds a JWT")
			}
			if got := resp.Header.Get("Cache-Control"); got != "no-store" {
				t.Errorf("Cache-Control %q, want no-store", got)
			}
		})
	}
}

// A request from another host never gets the token, whatever Host it names. The peer address is
// set by net/http from the connection, which a test on this machine cannot open from elsewhere,
// so this one case calls the handler directly.
func TestPlaygroundTokenNotForAnotherHost(t *testing.T) {
	const devToken = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhZG1pbiJ9.c2lnbmF0dXJl"
	h := playgroundHandler(devToken)
	for _, peer := range []string{"192.0.2.7:51000", "[2001:db8::7]:51000", "10.0.0.2:51000"} {
		t.Run(peer, func(t *testing.T) {
			req := httptest.NewRequest(http.MethodGet, "http://localhost:8080/", nil)
			req.RemoteAddr = peer
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if strings.Contains(rec.Body.String(), devToken) {
				t.Errorf("a request from %s got the token", peer)
			}
		})
	}
	req := httptest.NewRequest(http.MethodGet, "http://localhost:8080/", nil)
	req.RemoteAddr = "[::1]:51000"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if !strings.Contains(rec.Body.String(), devToken) {
		t.Error("a request from [::1] for localhost did not get the token")
	}
}
