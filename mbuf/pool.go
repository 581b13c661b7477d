package mbuf

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mempool"
)

// PoolConfig describes an mbuf pool to CreatePool.
type PoolConfig struct {
	N         uint32 // mbufs
	CacheSize uint32 // mbufs per lcore cache, 0 for none (see mempool.Config)
	PrivSize  uint16 // bytes of private area after each header, a multiple of 8
	DataRoom  uint16 // buffer bytes, headroom included; 0 means DefaultDataRoom
	Flags     mempool.Flags
}

// poolDesc is the mbuf pool's description, in the mempool's private area;
// every mbuf's pool delta points to it.
type poolDesc struct {
	magic    uint64
	dataRoom uint16
	privSize uint16
	_        uint32
	name     [mempool.NameLen + 1]byte
	_        [mempool.PrivateSize - 16 - mempool.NameLen - 1]byte
}

const poolDescMagic = 0x6c6f6f7066756267 // "gbufpool" in little-endian bytes

// Pool is this process's handle on a pool of mbufs.
type Pool struct {
	mp       *mempool.Pool
	mem      *hugemem.Memory
	desc     *poolDesc
	dataRoom uint16
	privSize uint16
	refs     int // handles given out by CreatePool/LookupPool and not closed; under pools.mu
}

// CreatePool builds a pool of cfg.N mbufs in memzone "MP_"+name of mem.
func CreatePool(mem *hugemem.Memory, name string, cfg PoolConfig) (*Pool, error) {
	if cfg.DataRoom == 0 {
		cfg.DataRoom = DefaultDataRoom
	}
	if cfg.PrivSize%8 != 0 {
		return nil, fmt.Errorf("mbuf pool %q: private size %d is not a multiple of 8", name, cfg.PrivSize)
	}
	dma := mem.HugePages()
	if dma && mem.IOVAMode() == hugemem.IOVAModePA {
		cfg.Flags |= mempool.IOVAContig // a buffer must not straddle two physical pages
	}
	desc := poolDesc{magic: poolDescMagic, dataRoom: cfg.DataRoom, privSize: cfg.PrivSize}
	copy(desc.name[:], name)
	var initErr error
	mp, err := mempool.Create(mem, name, mempool.Config{
		N:         cfg.N,
		EltSize:   HeaderSize + uint32(cfg.PrivSize) + uint32(cfg.DataRoom),
		CacheSize: cfg.CacheSize,
		Flags:     cfg.Flags,
		Private:   unsafe.Slice((*byte)(unsafe.Pointer(&desc)), unsafe.Sizeof(desc)),
		Init: func(mp *mempool.Pool, obj unsafe.Pointer, h uint64) {
			m := (*Mbuf)(obj)
			m.pool = int64(uintptr(unsafe.Pointer(mp.Private())) - uintptr(obj))
			m.privSize = cfg.PrivSize
			m.bufLen = cfg.DataRoom
			m.refcnt = 1
			m.Reset()
			if dma && initErr == nil {
				m.bufIOVA, initErr = mem.IOVA(h + HeaderSize + uint64(cfg.PrivSize))
			}
		},
	})
	if err != nil {
		return nil, fmt.Errorf("mbuf pool: %w", err)
	}
	if initErr != nil {
		mp.Free()
		return nil, fmt.Errorf("mbuf pool %q: buffer IOVA: %w", name, initErr)
	}
	return open(mem, mp)
}

// LookupPool opens in this process the mbuf pool name of mem. Opening a
// pool this process has open already returns the same *Pool: every
// LookupPool needs its own Close, and the pool stays open until the last.
func LookupPool(mem *hugemem.Memory, name string) (*Pool, error) {
	mp, err := mempool.Lookup(mem, name)
	if err != nil {
		return nil, fmt.Errorf("mbuf pool: %w", err)
	}
	return open(mem, mp)
}

func open(mem *hugemem.Memory, mp *mempool.Pool) (*Pool, error) {
	d := (*poolDesc)(unsafe.Pointer(mp.Private()))
	if m := atomic.LoadUint64(&d.magic); m != poolDescMagic {
		return nil, fmt.Errorf("mbuf pool %q: descriptor magic is %#x, want %#x: not an mbuf pool, or not initialised yet", mp.Name(), m, uint64(poolDescMagic))
	}
	if want := HeaderSize + uint32(d.privSize) + uint32(d.dataRoom); mp.EltSize() != want {
		return nil, fmt.Errorf("mbuf pool %q: objects are %d bytes, header + private %d + data room %d need %d: corrupted",
			mp.Name(), mp.EltSize(), d.privSize, d.dataRoom, want)
	}
	return pools.add(&Pool{mp: mp, mem: mem, desc: d, dataRoom: d.dataRoom, privSize: d.privSize}), nil
}

// Mempool returns the mempool under p, for counts (Avail, InUse).
func (p *Pool) Mempool() *mempool.Pool { return p.mp }

// Name returns the pool's name.
func (p *Pool) Name() string { return p.mp.Name() }

// DataRoom returns each buffer's size, headroom included.
func (p *Pool) DataRoom() uint16 { return p.dataRoom }

// PrivSize returns the size of each mbuf's private area.
func (p *Pool) PrivSize() uint16 { return p.privSize }

// Cache returns lcore's cache of the pool, nil when there is none.
func (p *Pool) Cache(lcore int) *mempool.Cache { return p.mp.Cache(lcore) }

// Close gives back one handle of this process (from CreatePool or
// LookupPool); the last one closes the pool in this process. The pool
// stays for the other processes.
func (p *Pool) Close() {
	if pools.release(p) {
		p.mp.Close()
	}
}

// Free destroys the pool, whatever handles this process still has. Every
// process must have stopped using it and its mbufs.
func (p *Pool) Free() error {
	pools.remove(p)
	return p.mp.Free()
}

// Alloc returns a reset mbuf, or mempool.ErrEmpty. c is the calling
// lcore's cache of p, or nil.
func (p *Pool) Alloc(c *mempool.Cache) (*Mbuf, error) {
	h, err := p.mp.Get(c)
	if err != nil {
		return nil, err
	}
	m := (*Mbuf)(p.mem.Ptr(h))
	m.refcnt = 1
	m.Reset()
	return m, nil
}

// allocBatch is how many handles AllocBulk takes from the mempool at once.
const allocBatch = 64

// AllocBulk fills ms with reset mbufs, or fails (mempool.ErrEmpty) and
// fills none.
func (p *Pool) AllocBulk(c *mempool.Cache, ms []*Mbuf) error {
	var hs [allocBatch]uint64
	for done := 0; done < len(ms); {
		batch := hs[:min(len(ms)-done, allocBatch)]
		if err := p.mp.GetBulk(c, batch); err != nil {
			if done > 0 {
				p.putBack(c, ms[:done])
				clear(ms[:done])
			}
			return err
		}
		for i, h := range batch {
			m := (*Mbuf)(p.mem.Ptr(h))
			m.refcnt = 1
			m.Reset()
			ms[done+i] = m
		}
		done += len(batch)
	}
	return nil
}

// putBack returns mbufs just allocated from p.
func (p *Pool) putBack(c *mempool.Cache, ms []*Mbuf) {
	var hs [allocBatch]uint64
	for len(ms) > 0 {
		k := min(len(ms), allocBatch)
		for i, m := range ms[:k] {
			hs[i] = p.mem.Off(unsafe.Pointer(m))
		}
		p.mp.PutBulk(c, hs[:k])
		ms = ms[k:]
	}
}

// registry is this process's table of open mbuf pools, keyed by the
// address of their descriptor, so that Free finds a segment's pool from
// its delta. Readers take no lock. A pool is in it once however often it
// was opened (Pool.refs counts the handles), so find's scan stays as
// short as the number of pools.
type registry struct {
	mu   sync.Mutex
	list atomic.Pointer[[]*Pool]
	mems []*hugemem.Memory // every memory a pool was opened in, to open others on demand
}

var pools registry

// add registers p, or, when the pool at p's descriptor is open already,
// counts one more handle of it and returns that one instead.
func (r *registry) add(p *Pool) *Pool {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := r.load()
	for i, q := range old {
		if q.desc != p.desc {
			continue
		}
		if q.mem == p.mem && q.mp.Name() == p.mp.Name() && q.mp.Size() == p.mp.Size() && q.mp.EltSize() == p.mp.EltSize() {
			q.refs++
			p.mp.Close()
			return q
		}
		// A pool freed by another process, and a new one at its address:
		// the old handle is stale.
		old = slices.Delete(slices.Clone(old), i, i+1)
		break
	}
	p.refs = 1
	next := append(slices.Clip(old), p)
	r.list.Store(&next)
	if !slices.Contains(r.mems, p.mem) {
		r.mems = append(r.mems, p.mem)
		mem := p.mem
		mem.OnClose(func() { r.forget(mem) })
	}
	return p
}

// release drops one handle of p and reports whether it was the last; then
// p is out of the registry.
func (r *registry) release(p *Pool) bool {
	r.mu.Lock()
	if p.refs > 1 {
		p.refs--
		r.mu.Unlock()
		return false
	}
	r.mu.Unlock()
	r.remove(p)
	return true
}

// forget drops every pool of mem, which is closing: a later memory mapped
// at the same address must not find them.
func (r *registry) forget(mem *hugemem.Memory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	next := slices.DeleteFunc(slices.Clone(r.load()), func(q *Pool) bool { return q.mem == mem })
	r.list.Store(&next)
	r.mems = slices.DeleteFunc(r.mems, func(m *hugemem.Memory) bool { return m == mem })
}

func (r *registry) remove(p *Pool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p.refs = 0
	next := slices.DeleteFunc(slices.Clone(r.load()), func(q *Pool) bool { return q == p })
	r.list.Store(&next)
	if !slices.ContainsFunc(next, func(q *Pool) bool { return q.mem == p.mem }) {
		r.mems = slices.DeleteFunc(r.mems, func(m *hugemem.Memory) bool { return m == p.mem })
	}
}

func (r *registry) load() []*Pool {
	if l := r.list.Load(); l != nil {
		return *l
	}
	return nil
}

// find returns the open pool whose descriptor is at key in this process.
func (r *registry) find(key unsafe.Pointer) *Pool {
	for _, p := range r.load() {
		if unsafe.Pointer(p.desc) == key {
			return p
		}
	}
	return nil
}

// open opens the pool whose descriptor is at key, which this process has
// not opened yet, in one of the memories it opened pools in.
func (r *registry) open(key unsafe.Pointer) (*Pool, error) {
	d := (*poolDesc)(key)
	if atomic.LoadUint64(&d.magic) != poolDescMagic {
		return nil, fmt.Errorf("mbuf: pool reference %p does not lead to an mbuf pool descriptor: corrupted mbuf", key)
	}
	// Find the memory first: a process that opened no pool there fails
	// here on every free, so this path allocates nothing.
	var mem *hugemem.Memory
	r.mu.Lock()
	for _, m := range r.mems {
		if m.Contains(m.Off(key), uint64(unsafe.Sizeof(poolDesc{}))) {
			mem = m
			break
		}
	}
	r.mu.Unlock()
	if mem == nil {
		return nil, ErrPoolNotOpen
	}
	name := cString(d.name[:])
	p, err := LookupPool(mem, name)
	if err != nil {
		return nil, err
	}
	if unsafe.Pointer(p.desc) != key {
		p.Close()
		return nil, fmt.Errorf("mbuf: pool %q found in memory %q is not the one the mbuf refers to", name, mem.Prefix())
	}
	return p, nil
}

// ErrPoolNotOpen is what freeing an mbuf fails with when its pool is in a
// group memory this process opened no mbuf pool in, so it cannot open it
// on demand: open one pool there (LookupPool) first. It is one static
// value, so a burst that keeps failing allocates nothing.
var ErrPoolNotOpen = errors.New("mbuf: segment belongs to a pool in a group memory this process opened no mbuf pool in")

func cString(b []byte) string {
	for i, c := range b {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b)
}
