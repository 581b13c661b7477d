package vmtest

import (
	"bytes"
	"debug/elf"
	"errors"
	"fmt"
	"os"
	"path"
	"sort"
	"strings"
	"sync"
)

// busyboxPaths are where Debian's busybox-static puts its static binary.
var busyboxPaths = []string{"/bin/busybox", "/usr/bin/busybox"}

// findBusybox returns a statically linked busybox, or an error naming the
// package to install.
func findBusybox() (string, error) {
	for _, p := range busyboxPaths {
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() {
			if err := checkStatic(p); err != nil {
				return "", fmt.Errorf("%s: %w (install busybox-static)", p, err)
			}
			return p, nil
		}
	}
	return "", fmt.Errorf("no busybox in %s (install busybox-static with scripts/setup.sh)", strings.Join(busyboxPaths, " or "))
}

// baseKey names one cached base archive: the kernel modules and busybox do
// not change during a test run.
type baseKey struct {
	modDir  string
	modules string // load order, space separated
}

var (
	baseMu    sync.Mutex
	baseCache = map[baseKey][]byte{}
)

// baseArchive returns a complete cpio archive with busybox and the given
// modules under /lib/modules/vmtest, built once per test process.
func baseArchive(mt *moduleTree, order []string, busybox string) ([]byte, error) {
	key := baseKey{mt.dir, strings.Join(order, " ")}
	baseMu.Lock()
	defer baseMu.Unlock()
	if b, ok := baseCache[key]; ok {
		return b, nil
	}
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return nil, err
	}
	w.file("bin/busybox", 0o755, bb)
	w.symlink("bin/sh", "busybox")
	for _, d := range []string{"proc", "sys", "dev", "tmp", "run", "sbin", "usr/bin", "usr/sbin", "vmtest"} {
		w.mkdirAll(d)
	}
	w.charDev("dev/console", 0o600, 5, 1)
	w.charDev("dev/null", 0o666, 1, 3)
	for _, m := range order {
		data, err := mt.readModule(m)
		if err != nil {
			return nil, err
		}
		w.file(path.Join(guestModDir, m+".ko"), 0o644, data)
	}
	if err := w.close(); err != nil {
		return nil, err
	}
	baseCache[key] = buf.Bytes()
	return buf.Bytes(), nil
}

const (
	guestModDir  = "lib/modules/vmtest"
	guestProgram = "/vmtest/prog"
)

// initScript is the guest's /init. It reports through marker lines that
// start with the run's nonce, so program output cannot fake them:
//
//	<nonce> init                 the init script started (boot is done)
//	<nonce> setup-failed <why>   a setup step failed; the program did not run
//	<nonce> exit <status>        the program ran and exited with status
func initScript(nonce string, cfg *Config, order []string, vfioDevs []string) string {
	var b strings.Builder
	q := shellQuote
	fmt.Fprintf(&b, `#!/bin/sh
/bin/busybox --install -s /bin
export PATH=/bin HOME=/ TERM=dumb
echo %[1]s init
fail() { echo "%[1]s setup-failed $*"; poweroff -f; sleep 10; }
mount -t proc proc /proc || fail mount /proc
mount -t sysfs sysfs /sys || fail mount /sys
mount -t devtmpfs devtmpfs /dev || fail mount devtmpfs on /dev
mkdir -p /dev/hugepages /dev/shm /dev/pts
mount -t hugetlbfs hugetlbfs /dev/hugepages || fail mount hugetlbfs on /dev/hugepages
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /tmp
mount -t tmpfs tmpfs /run
`, nonce)
	if cfg.hugePages() > 0 {
		fmt.Fprintf(&b, `echo %[1]d > /proc/sys/vm/nr_hugepages
got=$(cat /proc/sys/vm/nr_hugepages)
[ "$got" = %[1]d ] || fail "reserved $got of %[1]d hugepages"
`, cfg.hugePages())
	}
	params := cfg.moduleParams()
	for _, m := range order {
		fmt.Fprintf(&b, "insmod /%s/%s.ko %s || fail insmod %s\n", guestModDir, m, params[m], m)
	}
	for _, d := range vfioDevs {
		fmt.Fprintf(&b, `d=/sys/bus/pci/devices/%[1]s
[ -e $d ] || fail "no PCI device %[1]s to bind to vfio-pci; guest has: $(ls /sys/bus/pci/devices)"
echo vfio-pci > $d/driver_override
[ -e $d/driver ] && echo %[1]s > $d/driver/unbind
echo %[1]s > /sys/bus/pci/drivers_probe
[ "$(basename "$(readlink $d/driver)")" = vfio-pci ] || fail "%[1]s not bound to vfio-pci: $(dmesg | tail -5)"
`, d)
	}
	b.WriteString("cd /vmtest\nexport GOPMD_VMTEST=1")
	for _, e := range cfg.Env {
		b.WriteString(" " + q(e))
	}
	b.WriteString("\n" + guestProgram)
	for _, a := range cfg.Args {
		b.WriteString(" " + q(a))
	}
	fmt.Fprintf(&b, " </dev/null\necho \"%s exit $?\"\npoweroff -f\nsleep 10\n", nonce)
	return b.String()
}

// vmArchive returns a complete cpio archive with the per-VM files: the
// program, the init script and the configured extra files.
func vmArchive(program, init string, files map[string]string) ([]byte, error) {
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.file("init", 0o755, []byte(init))
	if err := addHostFile(w, guestProgram, program, 0o755); err != nil {
		return nil, err
	}
	guests := make([]string, 0, len(files))
	for g := range files {
		guests = append(guests, g)
	}
	sort.Strings(guests)
	for _, g := range guests {
		st, err := os.Stat(files[g])
		if err != nil {
			return nil, fmt.Errorf("Config.Files[%q]: %w", g, err)
		}
		if err := addHostFile(w, g, files[g], uint32(st.Mode().Perm())); err != nil {
			return nil, err
		}
	}
	if err := w.close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func addHostFile(w *cpioWriter, guest, host string, perm uint32) error {
	f, err := os.Open(host)
	if err != nil {
		return err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return err
	}
	if !st.Mode().IsRegular() {
		return fmt.Errorf("%s: want a regular file to pack as %s, have mode %v", host, guest, st.Mode())
	}
	w.fileFrom(guest, perm, st.Size(), f)
	return w.err
}

// shellQuote quotes s for the guest's sh.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// checkStatic fails for a dynamically linked ELF: the guest has no libc.
func checkStatic(p string) error {
	f, err := elf.Open(p)
	if err != nil {
		return fmt.Errorf("not an ELF executable: %w", err)
	}
	defer f.Close()
	for _, prog := range f.Progs {
		if prog.Type == elf.PT_INTERP {
			return errors.New("dynamically linked (has a program interpreter), the guest has no libc")
		}
	}
	return nil
}
