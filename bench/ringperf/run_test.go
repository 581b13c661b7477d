package ringperf

import (
	"context"
	"runtime"
	"testing"

	"github.com/gopmd/gopmd/bench/internal/benchtest"
	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testMemory(t *testing.T) *hugemem.Memory {
	t.Helper()
	o := testmem.Options(t, "t-ringperf")
	o.Limit = 16 << 20
	return testmem.Create(t, o)
}

// One test of every kind; the full list takes a few seconds.
func someTests(t *testing.T) []Test {
	pick := map[string]bool{
		"single-core MP/MC single":  true,
		"single-core SP/SC burst 8": true,
		"single-core MP/MC bulk 32": true,
		"empty SP/SC bulk 8":        true,
		"two-core SP/SC bulk 32":    true,
		"two-core MP/MC bulk 32":    true,
	}
	var ts []Test
	for _, tc := range Tests(machine.Cores) {
		if pick[tc.Name] {
			ts = append(ts, tc)
		}
	}
	require.Len(t, ts, len(pick))
	return ts
}

func TestRunMeasuresEveryTestAndFreesTheRing(t *testing.T) {
	if runtime.NumCPU() < 2 {
		testenv.Missing(t, "two CPUs for the two-lcore tests (have %d)", runtime.NumCPU())
	}
	mem := testMemory(t)
	ts := someTests(t)
	cycles, err := Run(context.Background(), mem, benchtest.Launcher(t, 2), ts)
	require.NoError(t, err)
	require.Len(t, cycles, len(ts))
	for i, tc := range ts {
		assert.Greater(t, cycles[i], 0.0, tc.Name)
	}
	var zones []string
	require.NoError(t, mem.Walk(func(z hugemem.Memzone) { zones = append(zones, z.Name) }))
	assert.Empty(t, zones, "Run must free its ring")
}

func TestRunRefusesTwoLcoreTestsWithoutAWorker(t *testing.T) {
	_, err := Run(context.Background(), testMemory(t), benchtest.Launcher(t, 1), someTests(t))
	assert.ErrorContains(t, err, "needs a worker lcore")
}

func TestRunStopsWhenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Run(ctx, testMemory(t), benchtest.Launcher(t, 1), someTests(t)[:1])
	assert.ErrorIs(t, err, context.Canceled)
}
