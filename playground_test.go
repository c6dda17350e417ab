package main

import (
	"io"
	"net/http"
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
