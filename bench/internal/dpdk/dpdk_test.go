package dpdk

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestNewPrefixIsUniqueAndAcceptedByCleanup(t *testing.T) {
	a, b := NewPrefix("ring"), NewPrefix("ring")
	assert.NotEqual(t, a, b)
	assert.Regexp(t, `^vsdpdk-ring-\d+-[0-9a-f]{4}$`, a)
	assert.True(t, prefixOK.MatchString(a))
}

func TestCleanupRefusesPrefixesItDidNotMake(t *testing.T) {
	for _, p := range []string{"", "rte", "probe", "vsdpdk", "vsdpdk-../x", "gopmd"} {
		assert.Error(t, Cleanup(p), "prefix %q", p)
	}
}

func TestEALArgsGiveLcoresNoPCIAndThePrefix(t *testing.T) {
	assert.Equal(t,
		[]string{"-l", "0,1", "--no-pci", "--file-prefix=vsdpdk-x-1-abcd", "-v"},
		EALArgs([]int{0, 1}, "vsdpdk-x-1-abcd", "-v"))
}

// A stand-in for a DPDK program: it leaves a runtime directory and a
// hugepage file behind and fails.
func TestExecRemovesThePrefixFilesAndReportsStderrWhenTheProgramFails(t *testing.T) {
	testenv.RequireRoot(t)
	prefix := NewPrefix("test")
	runDir := filepath.Join(runtimeBase(), prefix)
	var hugeFile string
	if dirs := hugetlbfsMounts(); len(dirs) > 0 {
		hugeFile = filepath.Join(dirs[0], prefix+"map_0")
	}
	script := `mkdir -p "$1" && touch "$1/config" && { [ -z "$2" ] || touch "$2"; } && echo "EAL: something went wrong" >&2 && exit 3`
	_, err := Exec(context.Background(), prefix, "/bin/sh", []string{"-c", script, "sh", runDir, hugeFile}, "")
	require.Error(t, err)
	assert.ErrorContains(t, err, "EAL: something went wrong")
	assert.ErrorContains(t, err, "scripts/setup.sh")
	assert.NoDirExists(t, runDir)
	if hugeFile != "" {
		assert.NoFileExists(t, hugeFile)
	}
}

func TestExecPassesStdinAndReturnsOutput(t *testing.T) {
	prefix := NewPrefix("test")
	res, err := Exec(context.Background(), prefix, "/bin/sh", []string{"-c", "read x; echo got $x; echo note >&2"}, "ring_perf_autotest\n")
	require.NoError(t, err)
	assert.Equal(t, "got ring_perf_autotest\n", string(res.Stdout))
	assert.Equal(t, "note\n", string(res.Stderr))
}

func TestLookPathSaysHowToInstallAMissingTool(t *testing.T) {
	_, err := LookPath("dpdk-test-that-does-not-exist")
	assert.ErrorContains(t, err, "dpdk-test-that-does-not-exist not found on PATH")
	assert.ErrorContains(t, err, "scripts/setup.sh")
}

func TestBuildCompilesAgainstLibdpdkAndCachesTheBinary(t *testing.T) {
	testenv.RequireCommand(t, "cc")
	testenv.RequireCommand(t, "pkg-config")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	src := []byte("#include <stdio.h>\n#include <rte_version.h>\nint main(void) { puts(rte_version()); return 0; }\n")
	bin, err := Build(src, "version")
	require.NoError(t, err)
	out, err := runOutput(bin)
	require.NoError(t, err)
	assert.Contains(t, out, "DPDK ")

	st, err := os.Stat(bin)
	require.NoError(t, err)
	again, err := Build(src, "version")
	require.NoError(t, err)
	assert.Equal(t, bin, again, "same source, same binary")
	st2, err := os.Stat(again)
	require.NoError(t, err)
	assert.Equal(t, st.ModTime(), st2.ModTime(), "the cached binary is reused, not rebuilt")
}

func TestBuildReportsCompilerErrors(t *testing.T) {
	testenv.RequireCommand(t, "cc")
	testenv.RequireCommand(t, "pkg-config")
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	_, err := Build([]byte("int main(void) { return undefined_thing; }\n"), "broken")
	assert.ErrorContains(t, err, "undefined_thing")
}

func runOutput(bin string) (string, error) {
	res, err := Exec(context.Background(), NewPrefix("test"), bin, nil, "")
	return string(res.Stdout), err
}

func TestExecStopsTheProgramWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Exec(ctx, NewPrefix("test"), "/bin/sh", []string{"-c", "sleep 10"}, "")
	assert.ErrorIs(t, err, context.Canceled)
}
