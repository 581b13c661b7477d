package mempool

import (
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSharedLayout(t *testing.T) {
	assert.Equal(t, uintptr(256), unsafe.Sizeof(header{}), "header size")
	assert.Equal(t, uintptr(0), unsafe.Offsetof(header{}.magic))
	assert.Equal(t, uintptr(8), unsafe.Offsetof(header{}.version))
	assert.Equal(t, uintptr(16), unsafe.Offsetof(header{}.name))
	assert.Equal(t, uintptr(48), unsafe.Offsetof(header{}.flags))
	assert.Equal(t, uintptr(52), unsafe.Offsetof(header{}.n))
	assert.Equal(t, uintptr(88), unsafe.Offsetof(header{}.chunkSize))
	assert.Equal(t, uintptr(96), unsafe.Offsetof(header{}.ringOff))
	assert.Equal(t, uintptr(128), unsafe.Offsetof(header{}.zoneLen))
	assert.Equal(t, uintptr(136), unsafe.Offsetof(header{}.private))
	assert.Equal(t, uintptr(cacheLine), unsafe.Sizeof(cacheHeader{}), "a cache header is one line, so the slots start on the next")
	assert.Equal(t, uintptr(0), unsafe.Offsetof(cacheHeader{}.len))
	assert.Equal(t, uintptr(debugHeaderSize), unsafe.Sizeof(objHeader{}))
	assert.Zero(t, headerSize%cacheLine, "the ring after the header must be line-aligned")
}

func TestCreateStartsWithEveryObjectFree(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "fresh", Config{N: 100, EltSize: 100, CacheSize: 16})
	assert.Equal(t, uint32(100), p.Avail())
	assert.Equal(t, uint32(0), p.InUse())
	assert.Equal(t, "fresh", p.Name())
	assert.Equal(t, uint32(100), p.Size())
	assert.Equal(t, uint32(100), p.EltSize())
	assert.Equal(t, uint32(16), p.CacheSize())

	z, err := mem.Lookup("MP_fresh")
	require.NoError(t, err)
	objs := getN(t, p, nil, 100)
	seen := map[uint64]bool{}
	for _, h := range objs {
		require.True(t, p.Owns(h), "handle %#x is not an object of the pool", h)
		require.False(t, seen[h], "handle %#x handed out twice", h)
		seen[h] = true
		require.Zero(t, h%cacheLine, "object %#x is not line-aligned", h)
		require.GreaterOrEqual(t, h, z.Off)
		require.LessOrEqual(t, h+100, z.Off+z.Len, "object %#x runs past the memzone", h)
		require.Equal(t, h, p.Handle(p.Ptr(h)))
		require.Equal(t, mem.Ptr(h), p.Ptr(h), "a handle is a group offset")
	}
	assert.Equal(t, uint32(100), p.InUse())
	require.ErrorIs(t, p.GetBulk(nil, make([]uint64, 1)), ErrEmpty)
}

func TestGetBulkIsAllOrNothing(t *testing.T) {
	for _, cache := range []uint32{0, 8} {
		mem := newMemory(t)
		p := newPool(t, mem, "aon", Config{N: 20, EltSize: 8, CacheSize: cache})
		c := p.Cache(0)
		held := getN(t, p, c, 15)
		err := p.GetBulk(c, make([]uint64, 6))
		require.ErrorIs(t, err, ErrEmpty, "cache %d: 6 objects out of 5", cache)
		assert.Equal(t, uint32(5), p.Avail(), "cache %d: a failed get takes nothing", cache)
		getN(t, p, c, 5)
		require.NoError(t, p.PutBulk(c, held))
		assert.Equal(t, uint32(15), p.Avail())
	}
}

func TestOwnsRejectsWhatIsNotAnObject(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "owns", Config{N: 4, EltSize: 64})
	h, err := p.Get(nil)
	require.NoError(t, err)
	assert.True(t, p.Owns(h))
	assert.False(t, p.Owns(h+8), "inside an object")
	assert.False(t, p.Owns(0))
	assert.False(t, p.Owns(h+64*4), "past the last object")
}

func TestCreateRefusesBadConfigurations(t *testing.T) {
	mem := newMemory(t)
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"zero", Config{N: 0, EltSize: 8}, "object count is 0"},
		{"zero-elt", Config{N: 8, EltSize: 0}, "element size 0"},
		{"cache-max", Config{N: 10000, EltSize: 8, CacheSize: 513}, "cache size 513 exceeds the maximum 512"},
		{"cache-n", Config{N: 100, EltSize: 8, CacheSize: 67 + 1}, "cache size 68 needs at least 1.5 x 68 = 102"},
		{"flags", Config{N: 8, EltSize: 8, Flags: 1 << 20}, "unknown bits"},
		{"private", Config{N: 8, EltSize: 8, Private: make([]byte, 65)}, "private data of 65 bytes"},
		{strings.Repeat("x", NameLen+1), Config{N: 8, EltSize: 8}, "at most 28 allowed"},
		{"", Config{N: 8, EltSize: 8}, "empty name"},
	} {
		_, err := Create(mem, tc.name, tc.cfg)
		require.ErrorContains(t, err, tc.want, "config %+v", tc.cfg)
	}
	_, err := Create(mem, "ok", Config{N: 100, EltSize: 8, CacheSize: 67})
	require.NoError(t, err, "1.5 x 67 = 100 <= 100 is allowed")
	_, err = Create(mem, "ok", Config{N: 100, EltSize: 8})
	require.ErrorIs(t, err, hugemem.ErrExists)
}

func TestPutFillsTheCacheAndFlushesDownToItsSize(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "flush", Config{N: 200, EltSize: 8, CacheSize: 32}) // flush threshold 48
	c := p.Cache(3)
	objs := getN(t, p, nil, 100)

	require.NoError(t, p.PutBulk(c, objs[:40]))
	assert.Equal(t, 40, c.Len(), "below the threshold everything stays in the cache")
	require.NoError(t, p.PutBulk(c, objs[40:48]))
	assert.Equal(t, 48, c.Len(), "at the threshold still no flush")
	require.NoError(t, p.PutBulk(c, objs[48:49]))
	assert.Equal(t, 32, c.Len(), "above the threshold the cache flushes down to its size")
	assert.Equal(t, uint32(100+17), p.r.Count())
	assert.Equal(t, uint32(149), p.Avail(), "cached objects count as available")

	require.NoError(t, p.PutBulk(c, objs[49:99]))
	assert.Equal(t, 32, c.Len(), "a put bigger than the threshold goes straight to the ring")
	assert.Equal(t, uint32(199), p.Avail())
}

func TestGetServesFromTheCacheAndRefillsItFromTheRing(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "refill", Config{N: 200, EltSize: 8, CacheSize: 32})
	c := p.Cache(0)

	getN(t, p, c, 4)
	assert.Equal(t, 32, c.Len(), "an empty cache refills with its size plus the request")
	assert.Equal(t, uint32(200-36), p.r.Count())
	getN(t, p, c, 30)
	assert.Equal(t, 2, c.Len(), "served from the cache alone")
	assert.Equal(t, uint32(200-36), p.r.Count())

	getN(t, p, c, 10)
	assert.Equal(t, 32, c.Len(), "short by 8: 2 from the cache, 32+8 from the ring")
	assert.Equal(t, uint32(200-36-40), p.r.Count())

	getN(t, p, c, 32+33)
	assert.Equal(t, 0, c.Len(), "a request bigger than the cache takes the cache and the rest from the ring")
	assert.Equal(t, uint32(200-36-40-33), p.r.Count())
	assert.Equal(t, uint32(200-4-30-10-65), p.Avail())
}

func TestGetFallsBackToTheRingWhenItCannotRefill(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "short", Config{N: 48, EltSize: 8, CacheSize: 32})
	c := p.Cache(0)
	getN(t, p, nil, 40)
	objs := getN(t, p, c, 5)
	assert.Len(t, objs, 5, "8 left: 32+5 cannot be loaded, 5 come from the ring directly")
	assert.Equal(t, 0, c.Len())
	assert.Equal(t, uint32(3), p.Avail())
}

func TestCacheOfAnotherPoolIsRefused(t *testing.T) {
	mem := newMemory(t)
	a := newPool(t, mem, "a", Config{N: 64, EltSize: 8, CacheSize: 8})
	b := newPool(t, mem, "b", Config{N: 64, EltSize: 8, CacheSize: 8})
	objs := getN(t, a, a.Cache(1), 2)
	require.ErrorContains(t, a.PutBulk(b.Cache(1), objs), `mempool "a": given the cache of lcore 1 of pool "b"`)
	require.ErrorContains(t, a.GetBulk(b.Cache(1), objs), `given the cache of lcore 1 of pool "b"`)
	assert.Equal(t, uint32(64), b.Avail())
}

func TestCacheIsNilWithoutCacheOrOutsideTheLcoreRange(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "nocache", Config{N: 64, EltSize: 8})
	assert.Nil(t, p.Cache(0), "pool without cache")
	q := newPool(t, mem, "cache", Config{N: 64, EltSize: 8, CacheSize: 4})
	assert.Nil(t, q.Cache(-1))
	assert.Nil(t, q.Cache(MaxLcores))
	require.NotNil(t, q.Cache(MaxLcores-1))
	assert.Equal(t, MaxLcores-1, q.Cache(MaxLcores-1).Lcore())
	assert.Same(t, q, q.Cache(5).Pool())
}

func TestFlushCacheReturnsADeadLcoresObjects(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "dead", Config{N: 64, EltSize: 8, CacheSize: 16})
	c := p.Cache(7)
	objs := getN(t, p, c, 10) // the cache loads 16+10 and hands out 10
	require.NoError(t, p.PutBulk(c, objs[:8]))
	require.Equal(t, 24, c.Len(), "at the flush threshold")

	require.NoError(t, p.FlushCache(7))
	assert.Equal(t, 0, c.Len())
	assert.Equal(t, uint32(64-2), p.r.Count(), "every object but the 2 still held is back in the ring")
	require.NoError(t, p.FlushCache(8), "an empty cache flushes to nothing")
	require.ErrorContains(t, p.FlushCache(128), "lcore ids run from 0 to 127")
}

func TestLookupSeesThePoolThroughAnotherMapping(t *testing.T) {
	o := memOptions(t)
	mem, other := testmem.Create(t, o), testmem.Attach(t, o)
	require.NotEqual(t, mem.Ptr(0), other.Ptr(0), "the two mappings must be at different addresses")

	p := newPool(t, mem, "shared", Config{N: 64, EltSize: 32, CacheSize: 8, Private: []byte("mbuf")})
	h, err := p.Get(p.Cache(2))
	require.NoError(t, err)
	*(*uint64)(p.Ptr(h)) = 0x1234

	q, err := Lookup(other, "shared")
	require.NoError(t, err)
	assert.Equal(t, uint64(0x1234), *(*uint64)(q.Ptr(h)), "a handle names the same object in every mapping")
	assert.Equal(t, p.Avail(), q.Avail(), "caches are shared")
	assert.Equal(t, "mbuf", string(q.Private()[:4]))
	require.NoError(t, q.Put(q.Cache(2), h))
	assert.Equal(t, uint32(64), p.Avail())
	assert.Equal(t, p.Cache(2).Len(), q.Cache(2).Len())
}

func TestLookupRefusesWhatIsNotAPool(t *testing.T) {
	mem := newMemory(t)
	_, err := Lookup(mem, "missing")
	require.ErrorIs(t, err, hugemem.ErrNotFound)

	_, err = mem.Reserve("MP_short", 64, 0)
	require.NoError(t, err)
	_, err = Lookup(mem, "short")
	require.ErrorContains(t, err, "shorter than a pool header")

	for _, tc := range []struct {
		corrupt func(h *header)
		want    string
	}{
		{func(h *header) { h.magic = 1 }, "magic is 0x1"},
		{func(h *header) { h.version = 9 }, "layout version is 9"},
		{func(h *header) { h.headerSize = 100 }, "header size is 100"},
		{func(h *header) { h.name[0] = 'X' }, `header names the pool "Xool"`},
		{func(h *header) { h.n = 65 }, "disagrees with"},
		{func(h *header) { h.n = 1 << 31 }, "header configuration is invalid: ring count"},
		{func(h *header) { h.objsOff += 64 }, "disagrees with"},
		{func(h *header) { h.cacheSize = 1000 }, "cache size 1000 exceeds"},
		{func(h *header) { *(*uint32)(unsafe.Add(unsafe.Pointer(h), h.ringOff)) = 0 }, "free-object ring"},
	} {
		p := newPool(t, mem, "pool", Config{N: 64, EltSize: 8, CacheSize: 4})
		h := p.hdr
		saved := *h
		ring := *(*[64]byte)(unsafe.Add(unsafe.Pointer(h), h.ringOff))
		tc.corrupt(h)
		_, err := Lookup(mem, "pool")
		require.ErrorContains(t, err, tc.want)
		*h = saved
		*(*[64]byte)(unsafe.Add(unsafe.Pointer(h), h.ringOff)) = ring
		_, err = Lookup(mem, "pool")
		require.NoError(t, err, "restored header")
		require.NoError(t, p.Free())
	}
	_, err = Lookup(mem, "pool")
	require.ErrorIs(t, err, hugemem.ErrNotFound, "a freed pool is gone")
}

func TestIOVAContigKeepsEachObjectInsideAPage(t *testing.T) {
	mem := newMemory(t)
	page := mem.Segments()[0].PageSize
	require.Equal(t, uint64(4096), page, "memfd memory has 4 KiB pages")
	p := newPool(t, mem, "contig", Config{N: 50, EltSize: 1300, Flags: IOVAContig}) // 3 per page
	objs := getN(t, p, nil, 50)
	for _, h := range objs {
		require.Equal(t, h/page, (h+1300-1)/page, "object %#x straddles a %d-byte page", h, page)
		require.True(t, p.Owns(h))
	}
	assert.Equal(t, objs[0]+page, objs[3], "the fourth object starts the next page")
	assert.False(t, p.Owns(objs[0]+3*1344), "the gap at a page end is no object")
	_, err := Create(mem, "big", Config{N: 2, EltSize: uint32(page) + 1, Flags: IOVAContig})
	require.ErrorContains(t, err, "do not fit")
}

func TestInitSeesEveryObjectOnceBeforeLookup(t *testing.T) {
	mem := newMemory(t)
	seen := map[uint64]bool{}
	p := newPool(t, mem, "init", Config{N: 300, EltSize: 16, Init: func(p *Pool, obj unsafe.Pointer, h uint64) {
		require.Equal(t, p.Ptr(h), obj)
		_, err := Lookup(mem, "init")
		require.Error(t, err, "pool visible before its objects are initialised")
		*(*uint64)(obj) = h
		seen[h] = true
	}})
	assert.Len(t, seen, 300)
	for _, h := range getN(t, p, nil, 300) {
		require.Equal(t, h, *(*uint64)(p.Ptr(h)))
	}
}

// TestLcoresShareThePoolSafely runs goroutines that each own an lcore
// cache and check that no object is ever held by two of them at once.
func TestLcoresShareThePoolSafely(t *testing.T) {
	mem := newMemory(t)
	const lcores, keep = 4, 40
	p := newPool(t, mem, "race", Config{N: lcores*keep + 4*48, EltSize: 64, CacheSize: 32})
	var wg sync.WaitGroup
	errs := make(chan error, lcores)
	for l := range lcores {
		wg.Go(func() {
			c := p.Cache(l)
			objs := make([]uint64, keep)
			for i := range 2000 {
				n := 1 + (i*7+l)%keep
				if err := p.GetBulk(c, objs[:n]); err != nil {
					errs <- err
					return
				}
				for _, h := range objs[:n] {
					owner := (*uint64)(p.Ptr(h))
					if *owner != 0 {
						t.Errorf("object %#x handed to lcore %d while lcore %d holds it", h, l, *owner-1)
					}
					*owner = uint64(l + 1)
				}
				for _, h := range objs[:n] {
					*(*uint64)(p.Ptr(h)) = 0
				}
				if err := p.PutBulk(c, objs[:n]); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		require.NoError(t, err)
	}
	assert.Equal(t, p.Size(), p.Avail())
	for l := range lcores {
		require.NoError(t, p.FlushCache(l))
	}
	assert.Equal(t, p.Size(), p.r.Count())
}

func TestGetAndPutAllocateNothing(t *testing.T) {
	mem := newMemory(t)
	for _, tc := range []struct {
		name  string
		cache uint32
		flags Flags
		bulk  int
	}{{"cache", 64, 0, 32}, {"nocache", 0, 0, 32}, {"single", 64, 0, 1}, {"debug", 64, Debug, 32}, {"bypass", 16, 0, 40}} {
		p := newPool(t, mem, tc.name, Config{N: 1024, EltSize: 64, CacheSize: tc.cache, Flags: tc.flags})
		c := p.Cache(0)
		objs := make([]uint64, tc.bulk)
		allocs := testing.AllocsPerRun(200, func() {
			if err := p.GetBulk(c, objs); err != nil {
				panic(err)
			}
			if err := p.PutBulk(c, objs); err != nil {
				panic(err)
			}
		})
		assert.Zero(t, allocs, "%s: allocations per get+put", tc.name)
		if c != nil {
			small := objs[:min(len(objs), TryMax)]
			assert.Zero(t, testing.AllocsPerRun(200, func() {
				if !c.TryGetBulk(small) {
					if err := p.GetBulk(c, small); err != nil {
						panic(err)
					}
				}
				if !c.TryPutBulk(small) {
					if err := p.PutBulk(c, small); err != nil {
						panic(err)
					}
				}
			}), "%s: allocations per TryGetBulk+TryPutBulk", tc.name)
			assert.Zero(t, testing.AllocsPerRun(200, func() {
				h, ok := c.TryGet()
				if !ok {
					var err error
					if h, err = p.Get(c); err != nil {
						panic(err)
					}
				}
				if !c.TryPut(h) {
					if err := p.Put(c, h); err != nil {
						panic(err)
					}
				}
			}), "%s: allocations per TryGet+TryPut", tc.name)
		}
		assert.Zero(t, testing.AllocsPerRun(200, func() {
			h, err := p.Get(c)
			if err != nil {
				panic(err)
			}
			if err := p.Put(c, h); err != nil {
				panic(err)
			}
		}), "%s: allocations per single Get+Put", tc.name)
		held := getN(t, p, c, int(p.Avail()))
		assert.Zero(t, testing.AllocsPerRun(100, func() { p.GetBulk(c, objs) }), "%s: failing get", tc.name)
		require.NoError(t, p.PutBulk(c, held))
		assert.Zero(t, testing.AllocsPerRun(100, func() { p.Avail() }), "%s: Avail", tc.name)
	}
}

func TestCorruptedCacheLengthIsAnErrorNotAPanic(t *testing.T) {
	for _, flags := range []Flags{0, Debug} {
		mem := newMemory(t)
		p := newPool(t, mem, "badcache", Config{N: 64, EltSize: 8, CacheSize: 8, Flags: flags})
		c := p.Cache(0)
		objs := getN(t, p, c, 2)
		c.hdr.len = 1 << 20
		require.ErrorContains(t, p.GetBulk(c, objs), "claims 1048576 objects")
		require.ErrorContains(t, p.PutBulk(c, objs), "claims 1048576 objects")
		require.ErrorContains(t, p.FlushCache(0), "claims 1048576 objects")
	}
}
