// Package testenv holds helpers shared by the tests of several packages.
package testenv

import (
	"bytes"
	"os"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// RequireRoot skips a privileged test when not running as root, loudly, and
// fails it instead in CI, where every privileged test must run.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if InCI() {
		t.Fatalf("PRIVILEGED TEST NOT RUN: %s needs root, and CI=true forbids skipping it", t.Name())
	}
	t.Skipf("PRIVILEGED TEST SKIPPED: %s needs root (run `sudo make test`)", t.Name())
}

// Require fails the test in CI and skips it elsewhere when ok is false; for
// prerequisites such as an installed binary that `make deps` provides.
func Require(t testing.TB, ok bool, what string) {
	t.Helper()
	if ok {
		return
	}
	if InCI() {
		t.Fatalf("PREREQUISITE MISSING in CI: %s", what)
	}
	t.Skipf("PREREQUISITE MISSING, test skipped: %s (run `make deps`)", what)
}

// Eventually polls cond every 10ms until it returns true or the deadline
// passes, then fails with msg.
func Eventually(t testing.TB, d time.Duration, cond func() bool, msg string, args ...any) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	if cond() {
		return
	}
	t.Fatalf("timed out after %v: "+msg, append([]any{d}, args...)...)
}

// Golden compares got with the golden file at path; with update set it
// rewrites the file first (each package defines its own -update flag).
func Golden(t testing.TB, path string, got []byte, update bool) {
	t.Helper()
	if update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test with -update)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("output differs from %s\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}
