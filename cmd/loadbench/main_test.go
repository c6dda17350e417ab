package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"
	"time"
)

// The benchmark end to end, briefly, on SQLite: with each load driver it reports every phase
// with its errors, and a service that refuses the requests is reported as failing, not hidden.
func TestRunReportsErrorsNeverHidesThem(t *testing.T) {
	if testing.Short() {
		t.Skip("skipped in -short mode: builds and runs the service")
	}
	bin := filepath.Join(t.TempDir(), "usergraph")
	if out, err := exec.Command("go", "build", "-o", bin, "usergraph").CombinedOutput(); err != nil {
		t.Fatalf("building the service: %v\n%s", err, out)
	}
	clients := []string{"fasthttp", "wrk"}
	if _, err := exec.LookPath("wrk"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("wrk is not installed; CI installs it (apt-get install wrk)")
		}
		clients = clients[:1]
		t.Log("wrk is not installed: only the fasthttp driver is tested")
	}
	for _, client := range clients {
		o := options{database: "sqlite", duration: time.Second, warmup: time.Second, conns: 4, users: 50,
			runs: 1, server: bin, procs: 1, client: client}
		t.Run(client+"/NoErrors", func(t *testing.T) {
			var out bytes.Buffer
			if err := run(o, &out); err != nil {
				t.Fatalf("run: %v\n%s", err, out.String())
			}
			for _, phase := range []string{"(a)", "(b)", "(c)", "(d)"} {
				if got := errorsOf(t, out.String(), phase); got != 0 {
					t.Errorf("%s: %d errors, want 0\n%s", phase, got, out.String())
				}
			}
		})
		t.Run(client+"/RejectedRequestsAreErrors", func(t *testing.T) {
			// The benchmark's tokens carry no issuer, so the service refuses them all: PUT with
			// 401, the mutation with a 200 whose body holds a GraphQL error.
			o := o
			o.env = "JWT_ISSUER=https://elsewhere.example"
			var out bytes.Buffer
			if err := run(o, &out); err == nil {
				t.Fatalf("run succeeded, want a failure\n%s", out.String())
			}
			if got := errorsOf(t, out.String(), "(a)"); got != 0 {
				t.Errorf("(a), which does not go through the service: %d errors, want 0", got)
			}
			for _, phase := range []string{"(b)", "(c)", "(d)"} {
				if got := errorsOf(t, out.String(), phase); got == 0 {
					t.Errorf("%s: no errors reported for refused requests\n%s", phase, out.String())
				}
			}
		})
	}
}

// errorsOf reads a phase's error count from the report's table.
func errorsOf(t *testing.T, report, phase string) int {
	t.Helper()
	m := regexp.MustCompile(`(?m)^\| ` + regexp.QuoteMeta(phase) + `[^|]*\|[^|]*\|[^|]*\|[^|]*\| +(\d+) \|`).FindStringSubmatch(report)
	if m == nil {
		t.Fatalf("no %s row in the report:\n%s", phase, report)
	}
	n, _ := strconv.Atoi(m[1])
	return n
}
