package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"usergraph/internal/apitest"
	"usergraph/internal/dbtest"
	"usergraph/internal/testenv"
)

// The Playground as a first-time user meets it, in a real browser: e2e/playground.mjs opens the
// page in headless Chromium, types and runs what a user would, and reports what the page showed;
// these tests check that report against the server.
//
// They run on SQLite only: what they test is the page, and the other tests cover MySQL.
func TestPlaygroundInBrowser(t *testing.T) {
	requireBrowser(t)

	t.Run("DevelopmentKeyLinkRunsTheExampleWithThePrintedToken", func(t *testing.T) {
		r := startRun(t, map[string]string{"DATABASE_URL": dbtest.SQLiteURL(t)})
		adminToken, link := printedToken(r), printedLink(r)
		if adminToken == "" || link == "" {
			t.Fatalf("start-up printed no token or no link:\n%s", r.stdout.String())
		}
		c := r.client()
		c.AdminToken = adminToken

		rep := useBrowser(t, browserSession{URL: link, Run: []string{"CreateUser", "UpdateUser"}})

		if rep.Loaded.Query != playgroundExample {
			t.Errorf("the editor opened with\n%s\nwant the example\n%s", rep.Loaded.Query, playgroundExample)
		}
		if got, want := headersOf(t, rep.Loaded.Headers), map[string]string{"Authorization": "Bearer " + adminToken}; !maps.Equal(got, want) {
			t.Errorf("the Headers tab opened with %q, want %q", got, want)
		}
		created := resultUser(t, rep, "CreateUser", "createUser")
		updated := resultUser(t, rep, "UpdateUser", "updateUser")
		if updated.ID != created.ID || updated.Username == created.Username || updated.Version != created.Version+1 {
			t.Errorf("UpdateUser showed %+v, want the user CreateUser showed (%+v), renamed, one version on", updated, created)
		}
		assertStored(t, c, updated)
	})

	t.Run("ConfiguredKeyPageStartsWithoutTokenAndRunsWithATypedOne", func(t *testing.T) {
		r := startRun(t, map[string]string{"DATABASE_URL": dbtest.SQLiteURL(t), "JWT_SECRET": testSecret})
		c := r.adminClient(t)
		u, userToken := c.newUser(t)
		newEmail := apitest.Uniq("typed") + "@example.com"

		rep := useBrowser(t, browserSession{
			URL:         r.URL + "/",
			TypeHeaders: `{"Authorization": "Bearer ` + userToken + `"}`,
			TypeQuery:   fmt.Sprintf(`mutation { updateUser(id: %q, input: { email: %q }) { %s } }`, u.ID, newEmail, apitest.UserFields),
			Run:         []string{"-"},
		})

		if jwt := anyJWT.FindString(rep.Loaded.Headers); jwt != "" || strings.Contains(rep.Loaded.Headers, "Authorization") {
			t.Errorf("with a configured key, the Headers tab opened with %q", rep.Loaded.Headers)
		}
		if got, want := headersOf(t, rep.Sent.Headers), map[string]string{"Authorization": "Bearer " + userToken}; !maps.Equal(got, want) {
			t.Errorf("after typing, the Headers tab holds %q, want %q", got, want)
		}
		updated := resultUser(t, rep, "-", "updateUser")
		if updated.ID != u.ID || updated.Email != newEmail || updated.Version != u.Version+1 {
			t.Errorf("the result pane shows %+v, want user %s with email %s at version %d", updated, u.ID, newEmail, u.Version+1)
		}
		assertStored(t, c, updated)
		if strings.Contains(rep.FinalURL, userToken) {
			t.Errorf("the typed token ended up in the page's URL: %s", rep.FinalURL)
		}
	})
}

// chromium is the browser the browser test drives: Debian's chromium package unless CHROMIUM names
// another.
func chromium() string {
	return cmp.Or(os.Getenv("CHROMIUM"), "/usr/bin/chromium")
}

// requireBrowser skips the test when Chromium, Node.js or the script's packages are missing, saying
// how to install them; with CI=true it fails instead, so that CI never passes without the browser
// test.
func requireBrowser(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := os.Stat(chromium()); err != nil {
		missing = append(missing, chromium()+" (apt-get install chromium, or set CHROMIUM to a Chromium)")
	}
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Node.js 20 or later)")
	}
	if _, err := os.Stat(filepath.Join("e2e", "node_modules", "playwright-core")); err != nil {
		missing = append(missing, "e2e/node_modules (cd e2e && npm ci)")
	}
	testenv.Require(t, "the Playground browser test", missing...)
}

// browserSession is what e2e/playground.mjs is to do: open URL, type TypeHeaders into the Headers
// tab and TypeQuery into the editor (each if set), then run the operations in Run in turn ("-" for
// a document's only operation).
type browserSession struct {
	URL         string
	TypeHeaders string
	TypeQuery   string
	Run         []string
}

// browserReport is what the page showed the script.
type browserReport struct {
	// Loaded is the editor and the Headers tab as the page opened.
	Loaded struct{ Query, Headers string }
	// Sent is the editor and the Headers tab as the operations ran.
	Sent struct{ Query, Headers string }
	// Runs are the operations run, each with the text of the result pane.
	Runs []struct{ Operation, Result string }
	// Docs is the Docs pane, opened at the Mutation type.
	Docs struct {
		Title  string
		Fields []string
	}
	// FinalURL is the page's address at the end.
	FinalURL string
	// Refused are the requests that the page made to other origins, and that the script refused.
	Refused []string
	// ConsoleErrors are the errors the page logged, among them integrity failures.
	ConsoleErrors []string
	// Screenshot is where the script saved the page after the last operation.
	Screenshot string
}

// useBrowser runs e2e/playground.mjs on s and returns its report, after checking what every visit
// must show: the page loaded all it asked for, with no error, and the Docs pane lists updateUser.
func useBrowser(t *testing.T, s browserSession) browserReport {
	t.Helper()
	shot, err := filepath.Abs(filepath.Join("e2e", "screenshots", strings.ReplaceAll(t.Name(), "/", "-")+".png"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Dir(shot), 0o755); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "node", filepath.Join("e2e", "playground.mjs"))
	cmd.Env = append(os.Environ(),
		"PLAYGROUND_URL="+s.URL,
		"TYPE_HEADERS="+s.TypeHeaders,
		"TYPE_QUERY="+s.TypeQuery,
		"RUN="+strings.Join(s.Run, ","),
		"SCREENSHOT="+shot,
		"CHROMIUM="+chromium(),
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		if errors.Is(ctx.Err(), context.DeadlineExceeded) {
			err = fmt.Errorf("%w (timed out)", err)
		}
		t.Fatalf("e2e/playground.mjs: %v\nstderr:\n%s\nstdout:\n%s", err, stderr.String(), stdout.String())
	}
	t.Logf("the browser session took %s; screenshot: %s", time.Since(start).Round(100*time.Millisecond), shot)

	var rep browserReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("e2e/playground.mjs printed no report: %v\n%s", err, stdout.String())
	}
	if len(rep.Refused) > 0 {
		t.Errorf("the page asked for what an offline test cannot give it:\n  %s", strings.Join(rep.Refused, "\n  "))
	}
	if len(rep.ConsoleErrors) > 0 {
		t.Errorf("the page logged errors:\n  %s", strings.Join(rep.ConsoleErrors, "\n  "))
	}
	if rep.Docs.Title != "Mutation" || !slices.Contains(rep.Docs.Fields, "updateUser") {
		t.Errorf("the Docs pane at %q lists %q, want Mutation with updateUser", rep.Docs.Title, rep.Docs.Fields)
	}
	return rep
}

// headersOf decodes the text of the Headers tab.
func headersOf(t *testing.T, text string) map[string]string {
	t.Helper()
	var h map[string]string
	if err := json.Unmarshal([]byte(text), &h); err != nil {
		t.Fatalf("the Headers tab does not hold a JSON object of strings: %q", text)
	}
	return h
}

// resultUser decodes the user at data[field] in the result pane after the operation ran, failing
// on any error the pane shows.
func resultUser(t *testing.T, rep browserReport, operation, field string) *apitest.User {
	t.Helper()
	i := slices.IndexFunc(rep.Runs, func(r struct{ Operation, Result string }) bool { return r.Operation == operation })
	if i < 0 {
		t.Fatalf("%s did not run", operation)
	}
	var result apitest.GraphQLResponse
	if err := json.Unmarshal([]byte(rep.Runs[i].Result), &result); err != nil {
		t.Fatalf("after %s the result pane holds no GraphQL response: %q", operation, rep.Runs[i].Result)
	}
	if len(result.Errors) > 0 {
		t.Fatalf("after %s the result pane shows errors: %+v", operation, result.Errors)
	}
	return result.User(t, field)
}

// assertStored checks that the server stores the user as the result pane showed it.
func assertStored(t *testing.T, c *testServer, shown *apitest.User) {
	t.Helper()
	r := c.GraphQL(t, c.AdminToken, `query($id: ID!) { user(id: $id) { `+apitest.UserFields+` } }`, map[string]any{"id": shown.ID})
	stored := r.User(t, "user")
	if stored == nil || stored.ID != shown.ID || stored.Username != shown.Username || stored.Email != shown.Email ||
		stored.Version != shown.Version || !stored.UpdatedAt.Equal(shown.UpdatedAt) {
		t.Errorf("the result pane shows %+v, the server stores %+v", shown, stored)
	}
}
