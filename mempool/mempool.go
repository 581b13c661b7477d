package mempool

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/ring"
)

// Flags change how a pool is built; they are stored in its shared header.
type Flags uint32

const (
	// SPPut makes the ring's enqueue single-producer (RTE_MEMPOOL_F_SP_PUT):
	// only one goroutine at a time may put without a cache or flush a cache.
	SPPut Flags = 1 << iota
	// SCGet makes the ring's dequeue single-consumer (RTE_MEMPOOL_F_SC_GET).
	SCGet
	// Debug checks every object on get and put (see the package doc).
	Debug
	// IOVAContig keeps every object inside one page of the backing memory,
	// so that its IOVA range is contiguous even in PA mode. Objects may not
	// then be larger than a page.
	IOVAContig

	knownFlags = SPPut | SCGet | Debug | IOVAContig
)

// Config describes a pool to Create.
type Config struct {
	N         uint32 // objects
	EltSize   uint32 // usable bytes per object; objects are 64-byte aligned
	CacheSize uint32 // objects per lcore cache, 0 for none; at most MaxCacheSize and N/1.5
	Flags     Flags

	// Private is copied into the pool's private area (see Pool.Private)
	// before Init runs; at most PrivateSize bytes.
	Private []byte

	// Init, when not nil, is called once for every object before the pool
	// becomes visible to Lookup, with the pool, the object's address in
	// this process and its handle.
	Init func(p *Pool, obj unsafe.Pointer, handle uint64)
}

// ErrEmpty is returned by GetBulk when the ring and the cache together hold
// fewer objects than asked for. It is returned unwrapped, so that a failing
// get allocates nothing either.
var ErrEmpty = errors.New("mempool: not enough free objects for an all-or-nothing get")

// Pool is this process's handle on a pool in shared memory. It holds only
// process-local things: where the pool is mapped, the ring handle, the Cache
// handles and copies of the header's constant fields.
type Pool struct {
	mem   *hugemem.Memory
	hdr   *header
	off   uint64 // group offset of hdr
	r     *ring.Ring
	debug bool
	spPut bool // the ring's mode, to call its explicit-mode methods directly
	scGet bool

	first     uint64 // handle of object 0
	n         uint32
	stride    uint64
	perChunk  uint64
	chunkSize uint64

	caches []Cache // MaxLcores of them, nil without a cache
	name   string
}

// Cache is this process's handle on one lcore's cache of a pool. The nil
// *Cache is valid everywhere a cache is taken and means "no cache".
// A cache is used by one goroutine at a time: the one running its lcore.
type Cache struct {
	pool   *Pool
	hdr    *cacheHeader
	slots  []uint64       // in shared memory; hdr.len of them are valid
	base   unsafe.Pointer // &slots[0]
	nslots uint32         // len(slots)
	// getMax and putMax bound the cache length for TryGetBulk (nslots) and
	// TryPutBulk (flush); both are 0 in a Debug pool, where every object
	// must pass the checks of the slow path.
	getMax, putMax uint32
	size           uint32
	flush          uint32
	lcore          int
}

// Create reserves memzone "MP_"+name in mem and builds a pool there: every
// object starts free, in the ring.
func Create(mem *hugemem.Memory, name string, cfg Config) (*Pool, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if len(cfg.Private) > PrivateSize {
		return nil, fmt.Errorf("mempool %q: private data of %d bytes exceeds the %d-byte private area", name, len(cfg.Private), PrivateSize)
	}
	var page uint64
	if cfg.Flags&IOVAContig != 0 {
		segs := mem.Segments()
		if len(segs) == 0 {
			return nil, fmt.Errorf("mempool %q: group memory has no segment to learn the page size from", name)
		}
		page = segs[0].PageSize
	}
	g, err := computeGeometry(cfg.N, cfg.EltSize, cfg.CacheSize, cfg.Flags, page)
	if err != nil {
		return nil, fmt.Errorf("mempool %q: %w", name, err)
	}
	align := uint64(cacheLine)
	if cfg.Flags&IOVAContig != 0 {
		align = page
	}
	z, err := mem.Reserve(zonePrefix+name, g.zoneLen, align)
	if err != nil {
		return nil, fmt.Errorf("mempool %q: %w", name, err)
	}
	p, err := initPool(mem, z, name, cfg, g)
	if err != nil {
		mem.Free(z.Name)
		return nil, fmt.Errorf("mempool %q: %w", name, err)
	}
	return p, nil
}

func initPool(mem *hugemem.Memory, z *hugemem.Memzone, name string, cfg Config, g geometry) (*Pool, error) {
	h := (*header)(z.Ptr())
	h.version = layoutVersion
	h.headerSize = uint32(headerSize)
	copy(h.name[:], name)
	h.flags = uint32(cfg.Flags)
	h.n = cfg.N
	h.eltSize = cfg.EltSize
	h.setGeometry(g)
	copy(h.private[:], cfg.Private)

	r, err := ring.InitAt(unsafe.Add(unsafe.Pointer(h), g.ringOff), g.ringSize, zonePrefix+name, cfg.N, ringFlags(cfg.Flags))
	if err != nil {
		return nil, err
	}
	p := attach(mem, h, r)
	for i := range p.caches {
		c := p.caches[i].hdr
		c.size, c.flushThresh, c.lcore = g.cacheSize, g.flushThresh, uint32(i)
	}

	var batch [256]uint64
	k := 0
	for i := range cfg.N {
		obj := p.objectHandle(i)
		if p.debug {
			p.objHeader(obj).cookie = cookieFree
			*p.trailer(obj) = cookieTrailer
		}
		if cfg.Init != nil {
			cfg.Init(p, mem.Ptr(obj), obj)
		}
		batch[k] = obj
		if k++; k == len(batch) || i == cfg.N-1 {
			if r.SPEnqueueBulk(batch[:k]) != uint32(k) {
				return nil, fmt.Errorf("ring refused object %d of %d while filling the pool", i, cfg.N)
			}
			k = 0
		}
	}
	atomic.StoreUint64(&h.magic, poolMagic) // last: Lookup trusts the pool only once magic is set
	return p, nil
}

// Lookup returns this process's handle on the pool name that a process of
// the group created. It checks the shared header before trusting it.
func Lookup(mem *hugemem.Memory, name string) (*Pool, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	z, err := mem.Lookup(zonePrefix + name)
	if err != nil {
		return nil, fmt.Errorf("mempool %q: %w", name, err)
	}
	h := (*header)(z.Ptr())
	if err := h.validate(name, z.Len); err != nil {
		return nil, fmt.Errorf("mempool %q: memzone %s is not a usable pool: %w", name, z.Name, err)
	}
	r, err := ring.AttachAt(unsafe.Add(unsafe.Pointer(h), h.ringOff), h.ringSize)
	if err != nil {
		return nil, fmt.Errorf("mempool %q: free-object ring: %w", name, err)
	}
	if r.Capacity() != h.n {
		return nil, fmt.Errorf("mempool %q: free-object ring holds %d objects, the pool has %d", name, r.Capacity(), h.n)
	}
	return attach(mem, h, r), nil
}

func attach(mem *hugemem.Memory, h *header, r *ring.Ring) *Pool {
	p := &Pool{
		mem:       mem,
		hdr:       h,
		off:       mem.Off(unsafe.Pointer(h)),
		r:         r,
		debug:     Flags(h.flags)&Debug != 0,
		spPut:     Flags(h.flags)&SPPut != 0,
		scGet:     Flags(h.flags)&SCGet != 0,
		n:         h.n,
		stride:    uint64(h.stride),
		perChunk:  uint64(h.perChunk),
		chunkSize: h.chunkSize,
		name:      cString(h.name[:]),
	}
	p.first = p.off + h.objsOff + uint64(h.objHeader)
	getMax, putMax := h.cacheSlots, h.flushThresh
	if p.debug {
		getMax, putMax = 0, 0
	}
	if h.cacheSize > 0 {
		p.caches = make([]Cache, MaxLcores)
		for i := range p.caches {
			ch := (*cacheHeader)(unsafe.Add(unsafe.Pointer(h), h.cachesOff+uint64(i)*uint64(h.cacheStride)))
			base := unsafe.Add(unsafe.Pointer(ch), cacheHeaderSize)
			p.caches[i] = Cache{
				pool:   p,
				getMax: getMax,
				putMax: putMax,
				hdr:    ch,
				slots:  unsafe.Slice((*uint64)(base), h.cacheSlots),
				base:   base,
				nslots: h.cacheSlots,
				size:   h.cacheSize,
				flush:  h.flushThresh,
				lcore:  i,
			}
		}
	}
	return p
}

// Close forgets this process's handle. The pool stays in shared memory for
// the other processes; p must not be used afterwards.
func (p *Pool) Close() { p.caches = nil }

// Free releases the pool's memzone. Every process must have stopped using
// the pool (its objects included); p must not be used afterwards.
func (p *Pool) Free() error {
	atomic.StoreUint64(&p.hdr.magic, 0) // a late Lookup must not trust the header
	p.caches = nil
	if err := p.mem.Free(zonePrefix + p.name); err != nil {
		return fmt.Errorf("mempool %q: %w", p.name, err)
	}
	return nil
}

// Name returns the pool's name (without the "MP_" memzone prefix).
func (p *Pool) Name() string { return p.name }

// Size returns the number of objects in the pool.
func (p *Pool) Size() uint32 { return p.n }

// EltSize returns the usable bytes of each object.
func (p *Pool) EltSize() uint32 { return p.hdr.eltSize }

// CacheSize returns the per-lcore cache size, 0 when the pool has no cache.
func (p *Pool) CacheSize() uint32 { return p.hdr.cacheSize }

// Flags returns the flags the pool was created with.
func (p *Pool) Flags() Flags { return Flags(p.hdr.flags) }

// Memory returns the group memory the pool lives in.
func (p *Pool) Memory() *hugemem.Memory { return p.mem }

// Private returns the pool's private area: PrivateSize zeroed bytes in
// the shared header that the pool's user (mbuf, say) may fill at creation.
func (p *Pool) Private() *[PrivateSize]byte { return &p.hdr.private }

// Cache returns the cache of lcore, or nil (no cache) when the pool has no
// cache or lcore is not in 0..MaxLcores-1, as DPDK does for non-EAL threads.
func (p *Pool) Cache(lcore int) *Cache {
	if uint(lcore) >= uint(len(p.caches)) {
		return nil
	}
	return &p.caches[lcore]
}

// Avail returns how many objects are free: in the ring or in a cache.
// While other lcores run it is a snapshot, as in DPDK.
func (p *Pool) Avail() uint32 {
	n := p.r.Count()
	for i := range p.caches {
		n += p.caches[i].hdr.len
	}
	return min(n, p.n)
}

// InUse returns how many objects are allocated: Size() - Avail().
func (p *Pool) InUse() uint32 { return p.n - p.Avail() }

// Ptr returns the address in this process of the object with handle h.
func (p *Pool) Ptr(h uint64) unsafe.Pointer { return p.mem.Ptr(h) }

// Handle returns the handle of the object whose first byte is at obj.
func (p *Pool) Handle(obj unsafe.Pointer) uint64 { return p.mem.Off(obj) }

// Owns reports whether h is the handle of one of the pool's objects.
func (p *Pool) Owns(h uint64) bool {
	if h < p.first {
		return false
	}
	rel := h - p.first
	chunk, in := rel/p.chunkSize, rel%p.chunkSize
	slot := in / p.stride
	return in%p.stride == 0 && slot < p.perChunk && chunk*p.perChunk+slot < uint64(p.n)
}

// Lcore returns the lcore the cache belongs to.
func (c *Cache) Lcore() int { return c.lcore }

// Pool returns the pool the cache belongs to.
func (c *Cache) Pool() *Pool { return c.pool }

// Len returns how many objects the cache holds.
func (c *Cache) Len() int { return int(c.hdr.len) }

// FlushCache returns every object in lcore's cache to the ring. Only call
// it while nothing uses that cache: the primary does it for a dead process.
func (p *Pool) FlushCache(lcore int) error {
	if uint(lcore) >= MaxLcores {
		return fmt.Errorf("mempool %q: flush cache of lcore %d: lcore ids run from 0 to %d", p.name, lcore, MaxLcores-1)
	}
	c := p.Cache(lcore)
	if c == nil {
		return nil
	}
	l := c.hdr.len
	if l > uint32(len(c.slots)) {
		return fmt.Errorf("mempool %q: cache of lcore %d claims %d objects, it has %d slots: corrupted", p.name, lcore, l, len(c.slots))
	}
	c.hdr.len = 0 // before the enqueue: see handOff. A failed enqueue drops the objects.
	err := p.enqueue(c.slots[:l])
	handOff()
	return err
}

func (p *Pool) objectHandle(i uint32) uint64 {
	return p.first + uint64(i)/p.perChunk*p.chunkSize + uint64(i)%p.perChunk*p.stride
}

func ringFlags(f Flags) ring.Flags {
	rf := ring.ExactSize
	if f&SPPut != 0 {
		rf |= ring.SPEnq
	}
	if f&SCGet != 0 {
		rf |= ring.SCDeq
	}
	return rf
}

func checkName(name string) error {
	switch {
	case name == "":
		return errors.New("mempool: empty name")
	case len(name) > NameLen:
		return fmt.Errorf("mempool %q: name is %d bytes, at most %d allowed", name, len(name), NameLen)
	case bytes.IndexByte([]byte(name), 0) >= 0:
		return fmt.Errorf("mempool %q: name contains a NUL byte", name)
	}
	return nil
}

func cString(b []byte) string {
	if i := bytes.IndexByte(b, 0); i >= 0 {
		b = b[:i]
	}
	return string(b)
}
