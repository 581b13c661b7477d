// Package testenv decides what a test does when a prerequisite is missing.
//
// Outside CI a missing prerequisite (root, hugepages, DPDK, QEMU) skips the
// test with the reason. Under CI=true the same situation fails the test,
// so a green CI run never hides a test that did not run.
package testenv

import (
	"os"
	"os/exec"
	"testing"
)

// InCI reports whether the tests run under CI (CI=true).
func InCI() bool { return os.Getenv("CI") == "true" }

// Missing skips t, or fails it under CI, saying which prerequisite is absent.
func Missing(t testing.TB, format string, args ...any) {
	t.Helper()
	if InCI() {
		t.Fatalf("prerequisite missing under CI=true: "+format, args...)
	}
	t.Skipf("prerequisite missing: "+format, args...)
}

// RequireRoot needs the test to run as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Missing(t, "root (euid is %d)", os.Geteuid())
	}
}

// RequireCommand needs name on PATH and returns its path.
func RequireCommand(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Missing(t, "command %s not on PATH (install it with scripts/setup.sh)", name)
	}
	return p
}
