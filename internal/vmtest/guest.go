package vmtest

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	"golang.org/x/sys/unix"
)

// guestEnv is set to "1" by the guest's init for the program it runs.
const guestEnv = "GOPMD_VMTEST"

// InGuest reports whether this process runs inside a vmtest guest.
func InGuest() bool { return os.Getenv(guestEnv) == "1" }

// RunInGuest runs test t itself inside a VM and passes or fails it with the
// guest's verdict. The test body tells the two sides apart with InGuest:
//
//	func TestVFIOOpensGroup(t *testing.T) {
//		if !vmtest.InGuest() {
//			vmtest.RunInGuest(t, vmtest.Config{NICs: ...})
//			return
//		}
//		// runs in the guest, as root, with VFIO and hugepages
//	}
//
// The guest runs cfg.Binary if set, else this test binary when it is
// statically linked, else a static rebuild of the package in the working
// directory (BuildTest(t, ".")). It gets -test.run selecting only t,
// -test.v, then cfg.Args. CI is passed on, so a guest test missing a
// prerequisite fails under CI=true too. A test skipped in the guest is
// skipped on the host.
func RunInGuest(t *testing.T, cfg Config) {
	t.Helper()
	if cfg.Binary == "" {
		cfg.Binary = testBinary(t)
	}
	cfg.Args = append([]string{"-test.run=" + runPattern(t.Name()), "-test.v=true"}, cfg.Args...)
	if v, ok := os.LookupEnv("CI"); ok {
		cfg.Env = append([]string{"CI=" + v}, cfg.Env...)
	}
	res := Run(t, cfg)
	verdict := func(v string) bool {
		for _, l := range res.Output {
			if strings.HasPrefix(strings.TrimSpace(l), "--- "+v+": "+t.Name()+" ") {
				return true
			}
		}
		return false
	}
	switch {
	case res.ExitStatus != 0:
		t.Fatalf("guest run of %s exited with status %d; its output is in the log above", t.Name(), res.ExitStatus)
	case verdict("SKIP"):
		t.Skipf("%s skipped in the guest; the reason is in the log above", t.Name())
	case !verdict("PASS"):
		t.Fatalf("guest run did not report %q as passed: no test matched -test.run %s?", t.Name(), runPattern(t.Name()))
	}
}

// runPattern selects exactly the test named name (subtests included).
func runPattern(name string) string {
	parts := strings.Split(name, "/")
	for i, p := range parts {
		parts[i] = "^" + regexp.QuoteMeta(p) + "$"
	}
	return strings.Join(parts, "/")
}

// testBinary returns this test binary if the guest can run it (static),
// else a static build of the package in the working directory, linked
// once per test process and copied into t's temporary directory.
func testBinary(t *testing.T) string {
	t.Helper()
	self, err := os.Executable()
	if err == nil && checkStatic(self) == nil {
		return self
	}
	selfBuild.Do(func() {
		p := BuildTest(t, ".")
		selfBuild.data, selfBuild.err = os.ReadFile(p)
	})
	switch {
	case selfBuild.err != nil:
		t.Fatalf("vmtest: reading the static test binary: %v", selfBuild.err)
	case selfBuild.data == nil:
		t.Fatalf("vmtest: building the static test binary failed in an earlier test; see its log")
	}
	p := filepath.Join(t.TempDir(), filepath.Base(self))
	if err := os.WriteFile(p, selfBuild.data, 0o755); err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	return p
}

var selfBuild struct {
	sync.Once
	data []byte
	err  error
}

// FreeUDPAddr returns a "127.0.0.1:port" no socket is bound to right now,
// for a UDP backend's Local end (QEMU binds it).
func FreeUDPAddr(t testing.TB) string {
	t.Helper()
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatalf("vmtest: UDP socket: %v", err)
	}
	defer unix.Close(fd)
	if err := unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}); err != nil {
		t.Fatalf("vmtest: binding a UDP port on 127.0.0.1: %v", err)
	}
	sa, err := unix.Getsockname(fd)
	if err != nil {
		t.Fatalf("vmtest: UDP getsockname: %v", err)
	}
	return fmt.Sprintf("127.0.0.1:%d", sa.(*unix.SockaddrInet4).Port)
}
