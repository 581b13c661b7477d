package mempool

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// withAVX2 runs f with the 32-byte copies of the assembly fast paths on
// or off (on only where the CPU has them).
func withAVX2(on bool, f func()) {
	saved := useAVX2
	useAVX2 = on && saved
	defer func() { useAVX2 = saved }()
	f()
}

func TestCacheCopiesExactlyTheObjectsAsked(t *testing.T) {
	const guard = 0xdeadbeefdeadbeef
	for _, vector := range []bool{true, false} {
		withAVX2(vector, func() {
			mem := newMemory(t)
			p := newPool(t, mem, "copies", Config{N: 1024, EltSize: 8, CacheSize: 128})
			c := p.Cache(0)
			for n := 0; n <= 80; n++ {
				for shift := range 4 { // the caller's slice starts anywhere
					one := make([]uint64, 1)
					require.NoError(t, p.GetBulk(c, one)) // the cache holds 128 now
					l := c.Len()
					top := append(make([]uint64, 0, n), c.slots[l-n:l]...)
					buf := make([]uint64, n+shift+1)
					for i := range buf {
						buf[i] = guard
					}
					objs := buf[shift : shift+n]
					require.NoError(t, p.GetBulk(c, objs), "n=%d", n)
					require.Equal(t, l-n, c.Len())
					for i := range buf {
						if i >= shift && i < shift+n {
							require.Equal(t, top[i-shift], buf[i], "vector=%v n=%d shift=%d: handle %d", vector, n, shift, i)
						} else {
							require.Equal(t, uint64(guard), buf[i], "vector=%v n=%d shift=%d: guard %d overwritten", vector, n, shift, i)
						}
					}
					require.NoError(t, p.PutBulk(c, objs))
					require.Equal(t, l, c.Len())
					require.Equal(t, top, c.slots[l-n:l], "vector=%v n=%d shift=%d: put back", vector, n, shift)
					require.NoError(t, p.PutBulk(c, one))
					require.NoError(t, p.FlushCache(0))
				}
			}
			assert.Equal(t, p.Size(), p.Avail())
		})
	}
}

// TestCachePathsAgree runs the same gets and puts through the assembly
// (with and without 32-byte moves), through the Go implementation and
// through the Try methods, and expects the same handles in the same order
// every time.
func TestCachePathsAgree(t *testing.T) {
	type path struct {
		name     string
		vector   bool
		get, put func(p *Pool, c *Cache, objs []uint64) error
	}
	try := path{name: "Try methods",
		get: func(p *Pool, c *Cache, objs []uint64) error {
			if c.TryGetBulk(objs) {
				return nil
			}
			return p.GetBulk(c, objs)
		},
		put: func(p *Pool, c *Cache, objs []uint64) error {
			if c.TryPutBulk(objs) {
				return nil
			}
			return p.PutBulk(c, objs)
		},
	}
	paths := []path{
		{"Go", false, getBulkGo, putBulkGo},
		{"GetBulk, 32-byte moves", true, getBulk, putBulk},
		{"GetBulk, 16-byte moves", false, getBulk, putBulk},
		try,
	}
	run := func(pa path) (trace []uint64) {
		withAVX2(pa.vector, func() {
			mem := newMemory(t)
			p := newPool(t, mem, "agree", Config{N: 300, EltSize: 8, CacheSize: 64})
			c := p.Cache(3)
			held := make([]uint64, 0, 300)
			for _, step := range []int{5, 40, 1, 33, 8, -20, 7, -1, -64, 2, 3, -9, 70, -70, 1, 96, -96} {
				n := max(step, -step)
				objs := make([]uint64, n)
				if step > 0 {
					require.NoError(t, pa.get(p, c, objs), pa.name)
					held = append(held, objs...)
					trace = append(trace, objs...)
					continue
				}
				copy(objs, held[len(held)-n:])
				held = held[:len(held)-n]
				require.NoError(t, pa.put(p, c, objs), pa.name)
				trace = append(trace, uint64(c.Len()))
			}
			assert.Equal(t, p.Size()-uint32(len(held)), p.Avail(), pa.name)
		})
		return trace
	}
	want := run(paths[0])
	for _, pa := range paths[1:] {
		assert.Equal(t, want, run(pa), pa.name)
	}
}

func TestTryBulkServesOnlyTheCache(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "try", Config{N: 256, EltSize: 8, CacheSize: 16})
	c := p.Cache(0)
	objs := make([]uint64, 4)

	assert.False(t, c.TryGetBulk(objs), "empty cache")
	assert.Equal(t, 0, c.Len())
	assert.Equal(t, uint32(256), p.Avail())

	require.NoError(t, p.GetBulk(c, objs)) // refills the cache: 16 left in it
	require.Equal(t, 16, c.Len())
	assert.True(t, c.TryPutBulk(objs))
	assert.Equal(t, 20, c.Len())
	assert.True(t, c.TryGetBulk(objs))
	assert.Equal(t, 16, c.Len())

	big := make([]uint64, TryMax+1)
	assert.False(t, c.TryGetBulk(big), "more than TryMax")
	assert.Equal(t, 16, c.Len())
	require.NoError(t, p.GetBulk(c, big))
	assert.False(t, c.TryPutBulk(big), "more than TryMax")
	require.NoError(t, p.PutBulk(c, big))

	// The flush threshold is 24: a put that would cross it is declined.
	fill := make([]uint64, 8)
	require.NoError(t, p.GetBulk(nil, fill))
	require.Equal(t, 16, c.Len())
	assert.True(t, c.TryPutBulk(fill[:8]))
	assert.Equal(t, 24, c.Len())
	assert.True(t, c.TryPutBulk(objs[:0]))
	assert.False(t, c.TryPutBulk(objs[:1]), "above the flush threshold")
	assert.Equal(t, 24, c.Len())
	require.NoError(t, p.PutBulk(c, objs))
	assert.Equal(t, uint32(256), p.Avail())
}

func TestTryBulkLeavesDebugPoolsToTheChecks(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "trydebug", Config{N: 64, EltSize: 8, CacheSize: 8, Flags: Debug})
	c := p.Cache(0)
	objs := getN(t, p, c, 2)
	require.NotZero(t, c.Len())
	assert.False(t, c.TryPutBulk(objs), "a Debug pool checks every put")
	require.NoError(t, p.PutBulk(c, objs))
	assert.False(t, c.TryGetBulk(objs), "a Debug pool checks every get")
	require.ErrorContains(t, p.PutBulk(c, objs), "double free")
}

// TestTryBulkIsInlined guards the reason the Try methods exist: a change
// that pushes them over the compiler's inlining budget would leave them
// correct and slow.
func TestTryBulkIsInlined(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the package")
	}
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "build", "-gcflags=-m", "-o", "/dev/null", ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	for _, fn := range []string{"(*Cache).TryGetBulk", "(*Cache).TryPutBulk", "(*Cache).TryGet", "(*Cache).TryPut"} {
		assert.True(t, strings.Contains(string(out), "can inline "+fn+"\n") || strings.Contains(string(out), "can inline "+fn+" "),
			"%s is not inlinable any more:\n%s", fn, out)
	}
}

// TestTryGetAndTryPutAgreeWithSingleGets runs the same one-object gets and
// puts through TryGet/TryPut (falling back to Get/Put) and through GetBulk
// and PutBulk of one, and expects the same handles every time.
func TestTryGetAndTryPutAgreeWithSingleGets(t *testing.T) {
	run := func(try bool) (trace []uint64) {
		mem := newMemory(t)
		p := newPool(t, mem, "single", Config{N: 300, EltSize: 8, CacheSize: 16})
		c := p.Cache(1)
		var held []uint64
		for _, step := range []int{5, 40, -20, 7, -30, 100, -102, 1, -1, 60, -60} {
			for range max(step, -step) {
				if step > 0 {
					obj, ok := uint64(0), false
					if try {
						obj, ok = c.TryGet()
					}
					if !ok {
						one := []uint64{0}
						require.NoError(t, p.GetBulk(c, one))
						obj = one[0]
					}
					held = append(held, obj)
					trace = append(trace, obj)
					continue
				}
				obj := held[len(held)-1]
				held = held[:len(held)-1]
				if !try || !c.TryPut(obj) {
					require.NoError(t, p.PutBulk(c, []uint64{obj}))
				}
				trace = append(trace, uint64(c.Len()))
			}
		}
		assert.Equal(t, p.Size(), p.Avail())
		return trace
	}
	assert.Equal(t, run(false), run(true))
}

func TestTryGetAndTryPutServeOnlyTheCache(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "trysingle", Config{N: 64, EltSize: 8, CacheSize: 4})
	c := p.Cache(0)
	obj, ok := c.TryGet()
	assert.False(t, ok, "empty cache")
	assert.Zero(t, obj)

	first, err := p.Get(c) // refills: 4 left in the cache
	require.NoError(t, err)
	require.Equal(t, 4, c.Len())
	top := c.slots[3]
	obj, ok = c.TryGet()
	require.True(t, ok)
	assert.Equal(t, top, obj, "the newest object comes first")
	assert.Equal(t, 3, c.Len())

	// The flush threshold is 6.
	assert.True(t, c.TryPut(obj))
	assert.True(t, c.TryPut(first))
	extra, err := p.Get(nil)
	require.NoError(t, err)
	assert.True(t, c.TryPut(extra))
	assert.Equal(t, 6, c.Len())
	other, err := p.Get(nil)
	require.NoError(t, err)
	assert.False(t, c.TryPut(other), "at the flush threshold")
	assert.Equal(t, 6, c.Len())
	require.NoError(t, p.Put(c, other))
	assert.Equal(t, p.Size(), p.Avail())

	c.hdr.len = 1 << 20 // corrupted
	_, ok = c.TryGet()
	assert.False(t, ok, "a corrupt length is left to Get, which reports it")
	assert.False(t, c.TryPut(first))
	c.hdr.len = 0

	dbg := newPool(t, mem, "trysingledbg", Config{N: 64, EltSize: 8, CacheSize: 4, Flags: Debug})
	dc := dbg.Cache(0)
	h, err := dbg.Get(dc)
	require.NoError(t, err)
	require.NotZero(t, dc.Len())
	_, ok = dc.TryGet()
	assert.False(t, ok, "a Debug pool checks every get")
	assert.False(t, dc.TryPut(h), "a Debug pool checks every put")
	require.NoError(t, dbg.Put(dc, h))
}
