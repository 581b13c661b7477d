package main

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/bench/ringperf"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func runVsdpdk(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestBadCommandLinesExitWithUsageStatus(t *testing.T) {
	for name, args := range map[string][]string{
		"no subcommand":      {},
		"unknown subcommand": {"stack"},
		"bad regexp":         {"-rows", "(", "ring"},
		"bad cpu list":       {"-cpus", "1-0", "ring"},
		"zero duration":      {"-duration", "0s", "mempool"},
		"extra argument":     {"ring", "extra"},
	} {
		code, _, stderr := runVsdpdk(args...)
		assert.Equal(t, 2, code, "%s: stderr %s", name, stderr)
		assert.NotEmpty(t, stderr, name)
	}
}

func TestRowsMatchingNothingListsTheRows(t *testing.T) {
	code, stdout, stderr := runVsdpdk("mempool", "-rows", "no such row")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "matches no row")
	assert.Contains(t, stderr, "cache=512 cores=2 get=32 put=32 keep=128")
}

var rowLine = regexp.MustCompile(`^(.+)\tdpdk=(\S+)\tgopmd=(\S+)\tspeedup=(\S+)$`)

// checkReport checks the shape of a report: '#' header lines, then one row
// per wanted name with positive numbers on both sides, then the geomean.
func checkReport(t *testing.T, stdout string, want []string) {
	t.Helper()
	lines := strings.Split(strings.TrimRight(stdout, "\n"), "\n")
	var rows []string
	i := 0
	for ; i < len(lines) && strings.HasPrefix(lines[i], "#"); i++ {
	}
	require.Greater(t, i, 0, "report starts with header lines:\n%s", stdout)
	assert.Contains(t, lines[0], "tsc_hz=")
	for ; i < len(lines)-1; i++ {
		m := rowLine.FindStringSubmatch(lines[i])
		require.NotNil(t, m, "line %q is not <name>\\tdpdk=..\\tgopmd=..\\tspeedup=..", lines[i])
		for _, v := range m[2:] {
			f, err := strconv.ParseFloat(v, 64)
			require.NoError(t, err, "line %q", lines[i])
			assert.Greater(t, f, 0.0, "line %q", lines[i])
		}
		rows = append(rows, m[1])
	}
	assert.Equal(t, want, rows)
	assert.Regexp(t, `^geomean\tspeedup=[0-9.]+$`, lines[len(lines)-1])
}

// noFilesLeft checks that neither side left files of its prefix behind.
func noFilesLeft(t *testing.T, what string) {
	t.Helper()
	for _, pattern := range []string{
		fmt.Sprintf("/var/run/dpdk/vsdpdk-%s-%d-*", what, os.Getpid()),
		fmt.Sprintf("/dev/hugepages/vsdpdk-%s-%d-*", what, os.Getpid()),
		fmt.Sprintf("/dev/hugepages/vsgopmd-%s-%d*", what, os.Getpid()),
		fmt.Sprintf("/var/run/gopmd/vsgopmd-%s-%d", what, os.Getpid()),
	} {
		left, _ := filepath.Glob(pattern)
		assert.Empty(t, left, "files left behind")
	}
}

func TestRingComparesDPDKAndGopmdRowByRow(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "dpdk-test")
	rows := regexp.MustCompile(`^(single-core SP/SC bulk 32|empty MP/MC bulk 8|two-\S+ SP/SC bulk 8)$`)
	rel, err := machine.Relate(0, 1)
	require.NoError(t, err)
	var want []string
	for _, tc := range ringperf.Tests(rel) {
		if rows.MatchString(tc.Name) {
			want = append(want, tc.Name)
		}
	}
	require.Len(t, want, 3)
	code, stdout, stderr := runVsdpdk("-rows", rows.String(), "ring")
	require.Equal(t, 0, code, "stderr:\n%s", stderr)
	checkReport(t, stdout, want)
	noFilesLeft(t, "ring")
}

func TestMempoolComparesDPDKAndGopmdRowByRow(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "cc")
	testenv.RequireCommand(t, "pkg-config")
	code, stdout, stderr := runVsdpdk("-duration", "100ms", "-rows", "cache=512 cores=[12] get=32", "mempool")
	require.Equal(t, 0, code, "stderr:\n%s", stderr)
	checkReport(t, stdout, []string{"cache=512 cores=1 get=32 put=32 keep=128", "cache=512 cores=2 get=32 put=32 keep=128"})
	assert.Contains(t, stdout, "100ms per row")
	noFilesLeft(t, "mempool")
}

func TestMissingDPDKOrCompilerSaysToRunSetup(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	for sub, missing := range map[string]string{"ring": "dpdk-test", "mempool": "cc"} {
		code, stdout, stderr := runVsdpdk(sub)
		assert.Equal(t, 1, code, sub)
		assert.Empty(t, stdout, sub)
		assert.Contains(t, stderr, missing+" not found on PATH", sub)
		assert.Contains(t, stderr, "scripts/setup.sh", sub)
	}
}
