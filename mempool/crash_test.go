package mempool

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// dieAfterHandOff runs op as a process that dies right after objects left
// a cache: the hook panics there and the panic is swallowed.
func dieAfterHandOff(t *testing.T, op func()) {
	t.Helper()
	type died struct{}
	testHookHandOff = func() { panic(died{}) }
	defer func() { testHookHandOff = nil }()
	func() {
		defer func() {
			if r := recover(); r != nil {
				if _, ok := r.(died); !ok {
					panic(r)
				}
			}
		}()
		op()
		t.Fatalf("the operation never handed objects out of the cache")
	}()
}

// requireNoDuplicates drains the ring and checks no object is in it twice
// nor among held, which the dead process or the test still holds.
func requireNoDuplicates(t *testing.T, p *Pool, held []uint64) {
	t.Helper()
	seen := map[uint64]bool{}
	for _, h := range held {
		seen[h] = true
	}
	for {
		h, err := p.Get(nil)
		if err != nil {
			break
		}
		require.False(t, seen[h], "object %#x is handed out twice after the crash", h)
		seen[h] = true
	}
	assert.LessOrEqual(t, len(seen), int(p.Size()))
}

func TestCrashDuringPutFlushLeaksButNeverDuplicates(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "crashput", Config{N: 64, EltSize: 8, CacheSize: 16}) // flush threshold 24
	c := p.Cache(2)
	objs := getN(t, p, nil, 30)
	require.NoError(t, p.PutBulk(c, objs[:24]))
	dieAfterHandOff(t, func() { p.PutBulk(c, objs[24:25]) }) // flushes 9 to the ring

	require.NoError(t, p.FlushCache(2), "the primary cleans up after the dead process")
	requireNoDuplicates(t, p, objs[25:])
}

func TestCrashDuringGetRefillLeaksButNeverDuplicates(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "crashget", Config{N: 64, EltSize: 8, CacheSize: 16})
	c := p.Cache(2)
	getN(t, p, c, 4) // cache: 16
	getN(t, p, c, 14)
	require.Equal(t, 2, c.Len())
	var lost [8]uint64
	dieAfterHandOff(t, func() { p.GetBulk(c, lost[:]) }) // hands out 2, refills from the ring

	require.NoError(t, p.FlushCache(2))
	requireNoDuplicates(t, p, lost[:2])
}

func TestCrashDuringFlushCacheLeaksButNeverDuplicates(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "crashflush", Config{N: 64, EltSize: 8, CacheSize: 16})
	c := p.Cache(2)
	objs := getN(t, p, nil, 20)
	require.NoError(t, p.PutBulk(c, objs))
	dieAfterHandOff(t, func() { p.FlushCache(2) }) // the first flusher dies

	require.NoError(t, p.FlushCache(2), "a second flush must not put the objects again")
	requireNoDuplicates(t, p, nil)
}
