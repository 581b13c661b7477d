// Package dpdk runs DPDK's side of a vsdpdk comparison: dpdk-test, or a C
// harness built here at run time against Debian's libdpdk.
//
// Every run gets its own EAL --file-prefix (NewPrefix) so it cannot collide
// with another DPDK process or a gopmd group, and Exec removes that prefix's
// runtime directory and hugepage files when the process ends, however it
// ends. Harness binaries are cached by content in the user cache directory.
package dpdk

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// setupHint is what to do when DPDK or a compiler is missing.
const setupHint = "run scripts/setup.sh (as root) to install DPDK, libdpdk-dev, pkg-config and gcc and reserve hugepages"

// LookPath finds a required program or says how to install it.
func LookPath(name string) (string, error) {
	p, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%s not found on PATH: %s", name, setupHint)
	}
	return p, nil
}

// prefixTag starts every prefix this package makes; Cleanup refuses others.
const prefixTag = "vsdpdk"

// NewPrefix returns a fresh EAL file prefix, e.g. "vsdpdk-ring-4711-9f3a".
func NewPrefix(what string) string {
	var b [2]byte
	_, _ = rand.Read(b[:])
	return fmt.Sprintf("%s-%s-%d-%s", prefixTag, what, os.Getpid(), hex.EncodeToString(b[:]))
}

// EALArgs are the EAL arguments both DPDK programs get: the lcores (which are
// the CPUs with -l), no PCI scan, the run's own file prefix, and extra.
func EALArgs(cpus []int, prefix string, extra ...string) []string {
	l := make([]string, len(cpus))
	for i, c := range cpus {
		l[i] = strconv.Itoa(c)
	}
	return append([]string{"-l", strings.Join(l, ","), "--no-pci", "--file-prefix=" + prefix}, extra...)
}

// Result is what a DPDK program printed.
type Result struct {
	Stdout, Stderr []byte
}

// Exec runs path with args (and stdin, if not empty), waits, and then removes
// the files of EAL prefix. A failed run's error carries the end of stderr.
// Cancelling ctx kills the program; its files are still removed.
func Exec(ctx context.Context, prefix, path string, args []string, stdin string) (Result, error) {
	var out, errOut bytes.Buffer
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if stdin != "" {
		cmd.Stdin = strings.NewReader(stdin)
	}
	runErr := cmd.Run()
	cleanErr := Cleanup(prefix)
	res := Result{Stdout: out.Bytes(), Stderr: errOut.Bytes()}
	if ctx.Err() != nil {
		return res, fmt.Errorf("%s stopped: %w", filepath.Base(path), errors.Join(ctx.Err(), cleanErr))
	}
	if runErr != nil {
		return res, fmt.Errorf("%s %s: %w\n%s\n(DPDK needs root and free hugepages: %s)",
			filepath.Base(path), strings.Join(args, " "), runErr, tail(errOut.Bytes(), 15), setupHint)
	}
	if cleanErr != nil {
		return res, cleanErr
	}
	return res, nil
}

// tail returns the last n lines of b, indented.
func tail(b []byte, n int) string {
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}

var prefixOK = regexp.MustCompile(`^` + prefixTag + `-[A-Za-z0-9_-]+$`)

// Cleanup removes what an EAL process with this prefix leaves behind: its
// runtime directory and its files in every hugetlbfs mount. Only prefixes
// made by NewPrefix are accepted, so it never touches another program's files.
func Cleanup(prefix string) error {
	if !prefixOK.MatchString(prefix) {
		return fmt.Errorf("cleanup of EAL prefix %q refused: not a prefix made by NewPrefix", prefix)
	}
	var errs []error
	if err := os.RemoveAll(filepath.Join(runtimeBase(), prefix)); err != nil {
		errs = append(errs, fmt.Errorf("remove DPDK runtime dir: %w", err))
	}
	for _, dir := range hugetlbfsMounts() {
		files, _ := filepath.Glob(filepath.Join(dir, prefix+"map_*"))
		for _, f := range files {
			if err := os.Remove(f); err != nil && !errors.Is(err, os.ErrNotExist) {
				errs = append(errs, fmt.Errorf("remove DPDK hugepage file: %w", err))
			}
		}
	}
	return errors.Join(errs...)
}

// runtimeBase is where EAL keeps per-prefix runtime directories
// (eal_get_runtime_dir): /var/run/dpdk for root, else under
// $XDG_RUNTIME_DIR or /tmp.
func runtimeBase() string {
	if os.Geteuid() == 0 {
		return "/var/run/dpdk"
	}
	if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
		return filepath.Join(d, "dpdk")
	}
	return "/tmp/dpdk"
}

func hugetlbfsMounts() []string {
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return nil
	}
	defer f.Close()
	var dirs []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "hugetlbfs" {
			dirs = append(dirs, fields[1])
		}
	}
	return dirs
}
