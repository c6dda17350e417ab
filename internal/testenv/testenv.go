// Package testenv decides what a test does when the machine lacks something it needs: a developer
// is told what to install and the test is skipped, but in CI (CI=true) the test fails, since a CI
// run that quietly left a test out would pass without testing what it claims.
package testenv

import (
	"os"
	"strings"
	"testing"
)

// Require skips t, or fails it when CI=true, unless missing is empty. what names the test's need
// ("the Playground browser test"); each entry of missing says what is absent and how to get it.
func Require(t testing.TB, what string, missing ...string) {
	t.Helper()
	if len(missing) == 0 {
		return
	}
	msg := what + " needs " + strings.Join(missing, ", ")
	if InCI() {
		t.Fatal("CI=true, but " + msg)
	}
	t.Skip("skipped: " + msg)
}

// InCI reports whether the tests run in CI, where nothing may be skipped for want of a tool.
func InCI() bool { return os.Getenv("CI") == "true" }
