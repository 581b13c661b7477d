package mempoolperf

import (
	"context"
	"runtime"
	"testing"

	"github.com/gopmd/gopmd/bench/internal/benchtest"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/timer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMemory(t *testing.T) *hugemem.Memory {
	t.Helper()
	o := testmem.Options(t, "t-mpperf")
	o.Limit = 64 << 20
	return testmem.Create(t, o)
}

func TestRunMeasuresEveryRowAndFreesItsPools(t *testing.T) {
	mem := testMemory(t)
	lcores := 1
	rows := []Row{{Cache: 0, Cores: 1, Get: 1, Put: 1, Keep: 128}, {Cache: 512, Cores: 1, Get: 32, Put: 32, Keep: 128}}
	if runtime.NumCPU() > 1 {
		lcores = 2
		rows = append(rows, Row{Cache: 0, Cores: 2, Get: 32, Put: 32, Keep: 128}, Row{Cache: 512, Cores: 2, Get: 1, Put: 1, Keep: 128})
	}
	const seconds = 0.01
	rates, err := Run(context.Background(), mem, benchtest.Launcher(t, lcores), rows, uint64(seconds*float64(timer.Hz())), seconds)
	require.NoError(t, err)
	require.Len(t, rates, len(rows))
	for i, r := range rows {
		// At least one round of 65536 objects per lcore in 10 ms.
		assert.GreaterOrEqual(t, rates[i], float64(r.Cores*objsPerRound)/seconds, "row %s", r.Name())
	}
	var zones []string
	require.NoError(t, mem.Walk(func(z hugemem.Memzone) { zones = append(zones, z.Name) }))
	assert.Empty(t, zones, "Run must free its pools")
}

func TestRunRefusesRowsItCannotRun(t *testing.T) {
	mem := testMemory(t)
	_, err := Run(context.Background(), mem, benchtest.Launcher(t, 1), []Row{{Cache: 0, Cores: 2, Get: 1, Put: 1, Keep: 128}}, 1000, 1)
	assert.ErrorContains(t, err, "cores must be 1..1")
}

func TestRunStopsWhenCancelled(t *testing.T) {
	mem := testMemory(t)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, mem, benchtest.Launcher(t, 1), Rows()[:1], 1000, 1)
	assert.ErrorIs(t, err, context.Canceled)
}
