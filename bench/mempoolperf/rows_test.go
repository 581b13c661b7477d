package mempoolperf

import (
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func readTestdata(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	require.NoError(t, err)
	return b
}

// testdata/harness.out is the C harness's real output for Rows() on this
// project's 2-CPU test machine.
func TestParseDPDKReadsEveryRowOfTheHarness(t *testing.T) {
	rates, h, err := ParseDPDK(readTestdata(t, "harness.out"))
	require.NoError(t, err)
	assert.Equal(t, Harness{TimerHz: 2600000000, Version: "DPDK 22.11.11"}, h)
	assert.Len(t, rates, len(Rows()))
	for _, r := range Rows() {
		assert.Greater(t, rates[r], 0.0, "row %s", r.Name())
	}
	assert.Equal(t, 1849950208.0, rates[Row{Cache: 512, Cores: 1, Get: 32, Put: 32, Keep: 128}])
	assert.Equal(t, 87162880.0, rates[Row{Cache: 0, Cores: 1, Get: 1, Put: 1, Keep: 128}])
}

// testdata/mempool_perf_autotest_partial.out is the start of dpdk-test's own
// mempool_perf_autotest output: the harness prints the same line format.
func TestParseDPDKReadsTheAutotestItselfAndSkipsConstantReplays(t *testing.T) {
	rates, h, err := ParseDPDK(readTestdata(t, "mempool_perf_autotest_partial.out"))
	require.NoError(t, err)
	assert.Equal(t, Harness{}, h)
	assert.Equal(t, map[Row]float64{
		{Cache: 0, Cores: 1, Get: 1, Put: 1, Keep: 32}:  97674854,
		{Cache: 0, Cores: 1, Get: 1, Put: 1, Keep: 128}: 97766604,
	}, rates, "only the constant_n=0 rows")
}

func TestParseDPDKRefusesBrokenOutput(t *testing.T) {
	for name, out := range map[string]string{
		"no rows":           "timer_hz=2600000000\nversion=DPDK 22.11.11\n",
		"no rate":           "mempool_autotest cache=0 cores=1 n_get_bulk=1 n_put_bulk=1 n_keep=128 constant_n=0 mempool is not full\n",
		"missing field":     "mempool_autotest cache=0 cores=1 n_get_bulk=1 n_keep=128 constant_n=0 rate_persec=5\n",
		"bad number":        "mempool_autotest cache=0 cores=1 n_get_bulk=1 n_put_bulk=x n_keep=128 constant_n=0 rate_persec=5\n",
		"bad timer_hz":      "timer_hz=fast\n",
		"row appears twice": strings.Repeat("mempool_autotest cache=0 cores=1 n_get_bulk=1 n_put_bulk=1 n_keep=128 constant_n=0 rate_persec=5\n", 2),
	} {
		_, _, err := ParseDPDK([]byte(out))
		assert.Error(t, err, name)
	}
}

func TestRowsAreTheChosenConfigurations(t *testing.T) {
	var names []string
	for _, r := range Rows() {
		require.NoError(t, r.Check(2), r.Name())
		names = append(names, r.Name())
	}
	assert.Equal(t, []string{
		"cache=0 cores=1 get=1 put=1 keep=128",
		"cache=0 cores=1 get=32 put=32 keep=128",
		"cache=0 cores=2 get=1 put=1 keep=128",
		"cache=0 cores=2 get=32 put=32 keep=128",
		"cache=512 cores=1 get=1 put=1 keep=128",
		"cache=512 cores=1 get=32 put=32 keep=128",
		"cache=512 cores=2 get=1 put=1 keep=128",
		"cache=512 cores=2 get=32 put=32 keep=128",
	}, names)
}

func TestCheckRefusesRowsTheAutotestWouldRefuse(t *testing.T) {
	ok := Row{Cache: 512, Cores: 2, Get: 32, Put: 32, Keep: 128}
	for name, r := range map[string]Row{
		"cache not 0 or 512":    {Cache: 256, Cores: 1, Get: 1, Put: 1, Keep: 128},
		"more cores than cpus":  {Cache: 0, Cores: 3, Get: 1, Put: 1, Keep: 128},
		"keep above 512":        {Cache: 0, Cores: 1, Get: 1, Put: 1, Keep: 1024},
		"get not dividing keep": {Cache: 0, Cores: 1, Get: 3, Put: 1, Keep: 128},
		"zero put":              {Cache: 0, Cores: 1, Get: 1, Put: 0, Keep: 128},
	} {
		assert.Error(t, r.Check(2), name)
	}
	assert.NoError(t, ok.Check(2))
	assert.Equal(t, 2047, PoolSize(2), "lcores*(MAX_KEEP+cache max)-1")
}

func TestHarnessArgsListDurationThenRows(t *testing.T) {
	assert.Equal(t, []string{"-d", "0.5", "0,1,1,1,128", "512,2,32,32,128"},
		HarnessArgs(0.5, []Row{{0, 1, 1, 1, 128}, {512, 2, 32, 32, 128}}))
}
