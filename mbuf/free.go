package mbuf

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/mempool"
)

// Free releases the packet m starts: each segment whose last reference
// this is goes back to its own pool. c is the calling lcore's cache of any
// pool (typically m's), or nil; each pool is given its cache for the same
// lcore. The error reports segments that could not be returned: a pool
// this process cannot open, or what a Debug pool refused (double free).
// Freeing nil does nothing.
func (m *Mbuf) Free(c *mempool.Cache) error {
	if m == nil {
		return nil
	}
	// Fast path: one segment of the pool c belongs to.
	if c != nil && m.next == 0 {
		if mp := c.Pool(); unsafe.Add(unsafe.Pointer(m), m.pool) == unsafe.Pointer(mp.Private()) {
			if !prefree(m) {
				return nil
			}
			if err := mp.Put(c, mp.Handle(unsafe.Pointer(m))); err != nil {
				return fmt.Errorf("mbuf pool %q: %w", mp.Name(), err)
			}
			return nil
		}
	}
	f := newFreer(c)
	f.packet(m)
	return f.flush()
}

// FreeBulk frees every packet of ms, as Free. Consecutive segments of the
// same pool go back in one bulk put.
func FreeBulk(c *mempool.Cache, ms []*Mbuf) error {
	f := newFreer(c)
	return f.bulk(ms)
}

// FreeBulkLcore frees every packet of ms as FreeBulk does, through each
// pool's cache for lcore, or through no cache when lcore is negative. It
// is for code that knows its lcore but holds no cache of the packets'
// pools: a tx queue freeing what it sent.
func FreeBulkLcore(lcore int, ms []*Mbuf) error {
	f := freer{lcore: lcore}
	return f.bulk(ms)
}

// freeBatch is how many segments of one pool a freer puts at once.
const freeBatch = 64

// freer collects segments of one pool and puts them in bulk.
type freer struct {
	c     *mempool.Cache // the caller's, or nil
	lcore int            // whose caches to use; negative: none
	pool  *Pool          // pool of the pending segments, nil if it cannot be opened
	key   unsafe.Pointer // pool's descriptor
	base  uintptr        // address of group offset 0 in pool's mapping
	cache *mempool.Cache // pool's cache for the caller's lcore
	n     int
	hs    [freeBatch]uint64
	err   error
}

// newFreer returns a freer that gives each pool its cache for c's lcore,
// and c itself to c's pool.
func newFreer(c *mempool.Cache) freer {
	if c == nil {
		return freer{lcore: -1}
	}
	return freer{c: c, lcore: c.Lcore()}
}

// packet frees the segments of the packet that starts at m. It stops
// after MaxSegs segments, so a corrupted chain cannot keep it looping.
func (f *freer) packet(m *Mbuf) {
	for range MaxSegs {
		if m == nil {
			return
		}
		next := m.next
		if prefree(m) {
			key := unsafe.Add(unsafe.Pointer(m), m.pool)
			if key != f.key || f.n == freeBatch {
				f.switchPool(key)
			}
			if f.pool != nil {
				f.hs[f.n] = uint64(uintptr(unsafe.Pointer(m)) - f.base)
				f.n++
			}
		}
		if next == 0 {
			return
		}
		m = (*Mbuf)(unsafe.Add(unsafe.Pointer(m), next))
	}
}

// prefree drops one reference to the segment m and reports whether it was
// the last; then m is made ready for its pool: one unchained segment with
// a reference count of 1, as free mbufs are.
func prefree(m *Mbuf) bool {
	if atomic.LoadUint32(&m.refcnt) != 1 {
		if atomic.AddUint32(&m.refcnt, ^uint32(0)) != 0 {
			return false
		}
		atomic.StoreUint32(&m.refcnt, 1)
	}
	if m.next != 0 {
		m.next = 0
		m.nbSegs = 1
	}
	return true
}

// switchPool puts the pending segments and makes the pool whose descriptor
// is at key the one further segments go to.
func (f *freer) switchPool(key unsafe.Pointer) {
	f.flush()
	if key == f.key {
		return // the batch was full
	}
	f.key = key
	f.pool = pools.find(key)
	if f.pool == nil {
		p, err := pools.open(key)
		if err != nil {
			f.fail(err)
			return
		}
		f.pool = p
	}
	f.base = uintptr(f.pool.mem.Ptr(0))
	if f.c != nil && f.c.Pool() == f.pool.mp {
		f.cache = f.c
	} else {
		f.cache = f.pool.mp.Cache(f.lcore) // nil for a negative lcore
	}
}

// bulk frees every packet of ms and reports the first failure.
func (f *freer) bulk(ms []*Mbuf) error {
	for _, m := range ms {
		f.packet(m)
	}
	return f.flush()
}

func (f *freer) flush() error {
	if f.n > 0 {
		if err := f.pool.mp.PutBulk(f.cache, f.hs[:f.n]); err != nil {
			f.fail(fmt.Errorf("mbuf pool %q: %w", f.pool.Name(), err))
		}
		f.n = 0
	}
	return f.err
}

func (f *freer) fail(err error) {
	if f.err == nil {
		f.err = err
	}
}
