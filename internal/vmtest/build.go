package vmtest

import (
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
)

// BuildTest compiles the test binary of package pkg (an import path or a
// directory like ".", relative to the test's working directory) with
// go test -c, statically for linux/amd64, into a temporary directory of t.
// flags go to the go command (e.g. "-tags=foo").
func BuildTest(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	return goBuild(t, "test", pkg, flags, "-c")
}

// BuildMain compiles main package pkg with go build, statically for
// linux/amd64, into a temporary directory of t.
func BuildMain(t testing.TB, pkg string, flags ...string) string {
	t.Helper()
	return goBuild(t, "build", pkg, flags, "-buildvcs=false")
}

func goBuild(t testing.TB, verb, pkg string, flags []string, modeFlags ...string) string {
	t.Helper()
	goTool := testenv.RequireCommand(t, "go")
	name := path.Base(filepath.ToSlash(pkg))
	if name == "." || name == "/" {
		wd, _ := os.Getwd()
		name = filepath.Base(wd)
	}
	out := filepath.Join(t.TempDir(), name+map[string]string{"test": ".test", "build": ""}[verb])
	args := append([]string{verb}, modeFlags...)
	args = append(args, "-o", out)
	args = append(args, flags...)
	args = append(args, pkg)
	cmd := exec.Command(goTool, args...)
	// No cgo: the guest has no libc. GOFLAGS from the environment still
	// apply (e.g. -mod), the target is the guest's.
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	start := time.Now()
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("vmtest: go %s: %v\n%s", strings.Join(args, " "), err, b)
	}
	t.Logf("vmtest: built %s in %v", pkg, time.Since(start).Round(time.Millisecond))
	return out
}
