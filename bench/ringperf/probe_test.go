package ringperf

import (
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/ring"
	"github.com/stretchr/testify/require"
)

// TestProbesKeepTheIndicesOnCacheLines checks that the untimed probe
// before each test moves the ring's indices by whole cache lines, as the
// autotest's own loops do: otherwise every later bulk of 8 straddles two
// lines and the two-lcore rows measure that instead.
func TestProbesKeepTheIndicesOnCacheLines(t *testing.T) {
	size, err := ring.MemSize(ringSize, 0)
	require.NoError(t, err)
	mem := make([]uint64, size/8)
	p := unsafe.Pointer(&mem[0])
	r, err := ring.InitAt(p, size, "probe", ringSize, 0)
	require.NoError(t, err)
	// ring/layout.go: the producer's head and tail start the third cache
	// line of the header, the consumer's the fifth.
	prodHead := (*uint32)(unsafe.Add(p, 128))
	consHead := (*uint32)(unsafe.Add(p, 256))
	for _, rel := range []machine.Relation{machine.Cores} {
		for _, test := range Tests(rel) {
			require.NoError(t, probe(r, test), test.Name)
			require.Zero(t, *prodHead%cacheLineEntries, "%s: producer head at %d", test.Name, *prodHead)
			require.Zero(t, *consHead%cacheLineEntries, "%s: consumer head at %d", test.Name, *consHead)
		}
	}
}
