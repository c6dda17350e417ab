package graph

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"usergraph/internal/dbtest"
	"usergraph/internal/testenv"
)

// auditDir holds the audit script and its packages (npm ci there).
const auditDir = "../e2e"

// auditLine is one check in the audit script's output: its result, id, name and, if it failed,
// why.
var auditLine = regexp.MustCompile(`^(ok|notice|warn|error)\t([^\t]+)\t((?:MUST|SHOULD|MAY) [^\t]*)(?:\t(.*))?$`)

// The GraphQL-over-HTTP spec's conformance checks, as graphql-http's auditServer runs them
// against the handler over HTTP: MUST, SHOULD and MAY alike all pass, so that a change that
// loses one fails here, whether or not the spec requires it.
func TestGraphQLOverHTTPAudit(t *testing.T) {
	t.Parallel()
	requireAudit(t)
	s := newTestServer(t, dbtest.SQLiteURL(t), DefaultLimits)

	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, "node", filepath.Join(auditDir, "graphql-http-audit.mjs"), s.URL+"/graphql")
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if exitErr, ok := errors.AsType[*exec.ExitError](err); err != nil && (!ok || exitErr.ExitCode() != 1) {
		t.Fatalf("the audit did not run: %v\n%s%s", err, stdout.String(), stderr.String())
	}
	if err != nil {
		t.Errorf("a MUST check fails (the script exited 1)")
	}

	checks := 0
	scanner := bufio.NewScanner(&stdout)
	for scanner.Scan() {
		m := auditLine.FindStringSubmatch(scanner.Text())
		if m == nil {
			t.Log(scanner.Text())
			continue
		}
		checks++
		result, id, name, why := m[1], m[2], m[3], m[4]
		t.Run(name, func(t *testing.T) {
			if result != "ok" {
				t.Errorf("check %s: got %s (%s), want ok", id, result, why)
			}
		})
	}
	if checks == 0 {
		t.Fatalf("the audit reported no checks:\n%s%s", stdout.String(), stderr.String())
	}
}

// requireAudit skips the test when Node.js or graphql-http is missing, saying how to install
// them; with CI=true it fails instead, so that CI never passes without the audit.
func requireAudit(t *testing.T) {
	t.Helper()
	var missing []string
	if _, err := exec.LookPath("node"); err != nil {
		missing = append(missing, "node (Node.js 20 or later)")
	}
	if _, err := os.Stat(filepath.Join(auditDir, "node_modules", "graphql-http")); err != nil {
		missing = append(missing, "e2e/node_modules (cd e2e && npm ci)")
	}
	testenv.Require(t, "the GraphQL-over-HTTP audit", missing...)
}
