package testenv

import (
	"runtime"
	"testing"
)

// recorder is a testing.TB that notes how a test would end, and ends the goroutine it runs in as
// Fatal and Skip end a test's.
type recorder struct {
	testing.TB
	failed, skipped string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatal(args ...any) {
	r.failed = args[0].(string)
	runtime.Goexit()
}

func (r *recorder) Skip(args ...any) {
	r.skipped = args[0].(string)
	runtime.Goexit()
}

// run calls Require as a test would, in a goroutine of its own that Fatal and Skip may end.
func (r *recorder) run(what string, missing ...string) (failed, skipped string) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		Require(r, what, missing...)
	}()
	<-done
	return r.failed, r.skipped
}

// A missing tool skips the test on a developer's machine and fails it in CI; nothing missing does
// neither.
func TestRequire(t *testing.T) {
	for _, tc := range []struct {
		name        string
		ci          string
		missing     []string
		wantFailed  bool
		wantSkipped bool
	}{
		{"NothingMissing", "true", nil, false, false},
		{"MissingOnADevelopersMachineSkips", "", []string{"node"}, false, true},
		{"MissingInCIFails", "true", []string{"node"}, true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("CI", tc.ci)
			r := &recorder{TB: t}
			failed, skipped := r.run("the audit", tc.missing...)
			if (failed != "") != tc.wantFailed || (skipped != "") != tc.wantSkipped {
				t.Errorf("failed %q, skipped %q; want failed %v, skipped %v", failed, skipped, tc.wantFailed, tc.wantSkipped)
			}
		})
	}
}
