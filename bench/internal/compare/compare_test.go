package compare

import (
	"bytes"
	"math"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSpeedupAboveOneMeansGopmdIsFaster(t *testing.T) {
	cycles, err := Cycles.Speedup(Row{Name: "r", DPDK: 30, Gopmd: 15})
	require.NoError(t, err)
	assert.Equal(t, 2.0, cycles, "cycles: speedup = dpdk/gopmd")

	rate, err := Rate.Speedup(Row{Name: "r", DPDK: 100, Gopmd: 150})
	require.NoError(t, err)
	assert.Equal(t, 1.5, rate, "rates: speedup = gopmd/dpdk")
}

func TestSpeedupRefusesValuesThatAreNotPositive(t *testing.T) {
	for _, r := range []Row{
		{Name: "zero dpdk", DPDK: 0, Gopmd: 1},
		{Name: "negative gopmd", DPDK: 1, Gopmd: -1},
		{Name: "nan", DPDK: math.NaN(), Gopmd: 1},
		{Name: "inf", DPDK: 1, Gopmd: math.Inf(1)},
	} {
		_, err := Cycles.Speedup(r)
		assert.ErrorContains(t, err, r.Name, "row %q must be refused, naming the row", r.Name)
	}
}

func TestGeomeanOfSpeedups(t *testing.T) {
	g, err := Geomean([]float64{2, 8})
	require.NoError(t, err)
	assert.InDelta(t, 4.0, g, 1e-12)

	g, err = Geomean([]float64{0.5, 2, 1})
	require.NoError(t, err)
	assert.InDelta(t, 1.0, g, 1e-12)

	_, err = Geomean(nil)
	assert.Error(t, err, "the mean of nothing is an error")
	_, err = Geomean([]float64{1, 0})
	assert.Error(t, err, "a zero speedup has no logarithm")
}

func TestWritePrintsOneTabSeparatedRowPerTestThenTheGeomean(t *testing.T) {
	tab := Table{Unit: Cycles}
	tab.Add("single-core SP/SC bulk 32", 62.05, 31.025)
	tab.Add("two-core SP/SC bulk 8", 14.09, 28.18)
	var b bytes.Buffer
	require.NoError(t, tab.Write(&b))
	assert.Equal(t,
		"single-core SP/SC bulk 32\tdpdk=62.05\tgopmd=31.02\tspeedup=2.000\n"+
			"two-core SP/SC bulk 8\tdpdk=14.09\tgopmd=28.18\tspeedup=0.500\n"+
			"geomean\tspeedup=1.000\n",
		b.String())
}

func TestWritePrintsRatesAsIntegers(t *testing.T) {
	tab := Table{Unit: Rate}
	tab.Add("cache=512 cores=1 get=32 put=32 keep=128", 2_000_000_000, 3_000_000_000)
	var b bytes.Buffer
	require.NoError(t, tab.Write(&b))
	assert.Equal(t,
		"cache=512 cores=1 get=32 put=32 keep=128\tdpdk=2000000000\tgopmd=3000000000\tspeedup=1.500\n"+
			"geomean\tspeedup=1.500\n",
		b.String())
}

func TestWriteWritesNothingWhenARowCannotBeCompared(t *testing.T) {
	tab := Table{Unit: Rate}
	tab.Add("good", 1, 1)
	tab.Add("broken", 1, 0)
	var b bytes.Buffer
	assert.ErrorContains(t, tab.Write(&b), `"broken"`)
	assert.Empty(t, b.String(), "no partial table")

	assert.Error(t, (&Table{Unit: Rate}).Write(&b), "an empty table has no geometric mean")
}
