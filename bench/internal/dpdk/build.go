package dpdk

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// HarnessCFlags are the optimisation flags for C harnesses, those of DPDK's
// own release builds; pkg-config adds -march and the include paths.
var HarnessCFlags = []string{"-O3", "-Wall"}

// Build compiles the C source src into an executable named name, linked with
// libdpdk as pkg-config describes it, and returns its path. The binary is
// kept in the user cache directory under a hash of the source, the flags and
// the compiler, so later runs reuse it.
func Build(src []byte, name string) (string, error) {
	cc, err := LookPath("cc")
	if err != nil {
		return "", err
	}
	pkgConfig, err := LookPath("pkg-config")
	if err != nil {
		return "", err
	}
	flagsOut, err := exec.Command(pkgConfig, "--cflags", "--libs", "libdpdk").CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("pkg-config does not know libdpdk (%s): %s", strings.TrimSpace(string(flagsOut)), setupHint)
	}
	dpdkFlags := strings.Fields(string(flagsOut))
	ccVersion, _ := exec.Command(cc, "--version").Output()

	h := sha256.New()
	for _, part := range [][]byte{src, flagsOut, ccVersion, []byte(strings.Join(HarnessCFlags, " "))} {
		h.Write(part)
		h.Write([]byte{0})
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir := filepath.Join(cache, "gopmd", "vsdpdk", hex.EncodeToString(h.Sum(nil))[:16])
	bin := filepath.Join(dir, name)
	if st, err := os.Stat(bin); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("build %s: cache dir: %w", name, err)
	}
	srcPath := filepath.Join(dir, name+".c")
	if err := os.WriteFile(srcPath, src, 0o644); err != nil {
		return "", fmt.Errorf("build %s: write source: %w", name, err)
	}
	// Build to a temporary name and rename, so a concurrent run never
	// executes a half-written binary.
	tmp, err := os.CreateTemp(dir, name+".tmp*")
	if err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	tmp.Close()
	defer os.Remove(tmp.Name())
	args := append(append(append([]string{}, HarnessCFlags...), "-o", tmp.Name(), srcPath), dpdkFlags...)
	if out, err := exec.Command(cc, args...).CombinedOutput(); err != nil {
		return "", fmt.Errorf("build %s: cc %s: %w\n%s\n(is libdpdk-dev installed? %s)",
			name, strings.Join(args, " "), err, bytes.TrimSpace(out), setupHint)
	}
	if err := os.Chmod(tmp.Name(), 0o755); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), bin); err != nil {
		return "", fmt.Errorf("build %s: %w", name, err)
	}
	return bin, nil
}
