package ringperf

import (
	"os"
	"sort"
	"strings"
	"testing"

	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// testdata/ring_perf_autotest.out is dpdk-test's real output (DPDK 22.11.11,
// lcores 0,1 = two physical cores of this project's test machine).
func realOutput(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("testdata/ring_perf_autotest.out")
	require.NoError(t, err)
	return string(b)
}

func TestParseDPDKReadsTheLegacyRowsOnly(t *testing.T) {
	rows, err := ParseDPDK([]byte(realOutput(t)))
	require.NoError(t, err)
	want := map[string]float64{
		"single-core SP/SC single":   14.23,
		"single-core MP/MC single":   19.88,
		"single-core SP/SC burst 8":  28.11,
		"single-core SP/SC burst 32": 63.02,
		"single-core MP/MC burst 8":  44.35,
		"single-core MP/MC burst 32": 69.24,
		"single-core SP/SC bulk 8":   71.81,
		"single-core SP/SC bulk 32":  64.40,
		"single-core MP/MC bulk 8":   34.72,
		"single-core MP/MC bulk 32":  67.74,
		"empty SP/SC bulk 8":         9.31,
		"empty MP/MC bulk 8":         9.26,
		"two-core SP/SC bulk 8":      16.66,
		"two-core MP/MC bulk 8":      52.05,
		"two-core SP/SC bulk 32":     6.48,
		"two-core MP/MC bulk 32":     12.54,
	}
	assert.Equal(t, want, rows, "the elem APIs (16B) rows that follow must not leak in")
}

func TestTestsNameExactlyTheRowsDPDKPrints(t *testing.T) {
	rows, err := ParseDPDK([]byte(realOutput(t)))
	require.NoError(t, err)
	var parsed, ours []string
	for name := range rows {
		parsed = append(parsed, name)
	}
	for _, tc := range Tests(machine.Cores) {
		ours = append(ours, tc.Name)
	}
	sort.Strings(parsed)
	sort.Strings(ours)
	assert.Equal(t, parsed, ours)
}

func TestTestsFollowTheAutotestsOrderAndParameters(t *testing.T) {
	ts := Tests(machine.Hyperthreads)
	require.Len(t, ts, 16)
	assert.Equal(t, Test{Name: "single-core SP/SC single", Place: SingleCore, Sync: SPSC, Op: Single, Size: 1}, ts[0])
	assert.Equal(t, Test{Name: "single-core MP/MC burst 32", Place: SingleCore, Sync: MPMC, Op: Burst, Size: 32}, ts[5])
	assert.Equal(t, Test{Name: "empty MP/MC bulk 8", Place: Empty, Sync: MPMC, Op: Bulk, Size: 8}, ts[11])
	assert.Equal(t, Test{Name: "two-hyperthread SP/SC bulk 8", Place: TwoLcores, Sync: SPSC, Op: Bulk, Size: 8}, ts[12])
	assert.Equal(t, "two-hyperthread MP/MC bulk 32", ts[15].Name)
	assert.Equal(t, "two-socket SP/SC bulk 8", Tests(machine.Sockets)[12].Name)
}

func TestParseDPDKNamesHyperthreadAndSocketSections(t *testing.T) {
	out := "### Testing using two hyperthreads ###\nlegacy APIs: SP/SC: bulk (size: 8): 1.50\n" +
		"### Testing using two NUMA nodes ###\nlegacy APIs: MP/MC: bulk (size: 32): 2.25\nTest OK\n"
	rows, err := ParseDPDK([]byte(out))
	require.NoError(t, err)
	assert.Equal(t, map[string]float64{"two-hyperthread SP/SC bulk 8": 1.5, "two-socket MP/MC bulk 32": 2.25}, rows)
}

func TestParseDPDKRefusesBrokenOutput(t *testing.T) {
	real := realOutput(t)
	for name, out := range map[string]string{
		"autotest failed":     strings.Replace(real, "Test OK", "Test Failed", 1),
		"truncated":           real[:len(real)/3],
		"bad cycles":          strings.Replace(real, "single: 14.23", "single: fast", 1),
		"size on single":      strings.Replace(real, "SP/SC: single: 14.23", "SP/SC: single (size: 1): 14.23", 1),
		"unknown section":     strings.Replace(real, "### Testing burst enq/deq ###", "### Testing something new ###", 1),
		"repeated row":        strings.Replace(real, "legacy APIs: MP/MC: single: 19.88", "legacy APIs: SP/SC: single: 19.88", 1),
		"row before sections": "legacy APIs: SP/SC: single: 1.00\nTest OK\n",
		"no legacy rows":      "### Testing single element enq/deq ###\nTest OK\n",
	} {
		_, err := ParseDPDK([]byte(out))
		assert.Error(t, err, name)
	}
}
