package mempool

import (
	"fmt"
	"unsafe"
)

// GetBulk fills objs with handles of free objects, now owned by the caller,
// or fails with ErrEmpty and takes nothing. c is the calling lcore's cache
// of p, or nil.
func (p *Pool) GetBulk(c *Cache, objs []uint64) error {
	// Small enough to be inlined: the caller calls getBulk, which is
	// assembly on amd64, directly.
	return getBulk(p, c, objs)
}

// PutBulk gives the objects back to the pool. c is the calling lcore's
// cache of p, or nil. The error is not nil only when the pool refuses
// objects: in a Debug pool, objects that are not allocated objects of the
// pool; in any pool, more objects than it holds (a double free that
// Debug would have caught).
func (p *Pool) PutBulk(c *Cache, objs []uint64) error {
	return putBulk(p, c, objs)
}

// getBulkGo is GetBulk in Go: the whole of it where getBulk has no
// assembly, the slow path where it has.
func getBulkGo(p *Pool, c *Cache, objs []uint64) error {
	switch {
	case p.debug:
		return p.getDebug(c, objs)
	case c == nil: // straight to the ring: pools without caches pay one call less
		return p.dequeue(objs)
	}
	return p.get(c, objs)
}

// putBulkGo is PutBulk in Go, as getBulkGo.
func putBulkGo(p *Pool, c *Cache, objs []uint64) error {
	switch {
	case p.debug:
		return p.putDebug(c, objs)
	case c == nil:
		return p.enqueue(objs)
	}
	return p.put(c, objs)
}

// TryMax is the most objects TryGetBulk and TryPutBulk move. Bigger bulks
// go faster through GetBulk and PutBulk, whose copies (on amd64) use wider
// moves than the compiler generates for an inlined copy.
const TryMax = 8

// TryGetBulk is GetBulk's fast path on its own: it fills objs from the
// cache and returns true, or returns false and takes nothing when objs is
// longer than TryMax, the cache holds fewer objects, or the pool is a
// Debug pool. The compiler inlines it, which it cannot do with GetBulk, so
// a loop that gets a few objects at a time writes
//
//	if !c.TryGetBulk(objs) {
//		err = pool.GetBulk(c, objs)
//	}
//
// and pays for a call only for big bulks and when the cache runs dry.
// c must be the cache of the pool, not nil.
func (c *Cache) TryGetBulk(objs []uint64) bool {
	l, n := c.hdr.len, uint32(len(objs))
	if n > l || n > TryMax || l > c.getMax {
		return false
	}
	c.hdr.len = l - n // shrink before handing out: see handOff
	if n == 1 {
		objs[0] = *c.slot(l - 1)
	} else {
		copy(objs, c.slots[l-n:l])
	}
	return true
}

// TryPutBulk is PutBulk's fast path on its own: it takes the objects and
// returns true, or returns false and takes nothing when objs is longer
// than TryMax, the objects would lift the cache above its flush threshold,
// or the pool is a Debug pool. Like TryGetBulk it is inlined; on false,
// call PutBulk.
func (c *Cache) TryPutBulk(objs []uint64) bool {
	l, n := c.hdr.len, uint32(len(objs))
	if n > TryMax || l > c.putMax || n > c.putMax-l {
		return false
	}
	if n == 1 {
		*c.slot(l) = objs[0]
	} else {
		copy(c.slots[l:], objs)
	}
	c.hdr.len = l + n
	return true
}

// TryGet is TryGetBulk for one object: it returns the handle of a free
// object from the cache and true, or 0 and false when the cache is empty
// or the pool is a Debug pool (then call Pool.Get). Like rte_mempool_get
// beside rte_mempool_get_bulk, it spares a loop that takes one object at
// a time the slice.
func (c *Cache) TryGet() (uint64, bool) {
	l := c.hdr.len
	if l-1 >= c.getMax { // l == 0, or a corrupt length, or a Debug pool (getMax 0)
		return 0, false
	}
	c.hdr.len = l - 1 // shrink before handing out: see handOff
	return *c.slot(l - 1), true
}

// TryPut is TryPutBulk for one object: it puts obj in the cache and
// returns true, or returns false when the cache is at its flush threshold
// or the pool is a Debug pool (then call Pool.Put).
func (c *Cache) TryPut(obj uint64) bool {
	l := c.hdr.len
	if l >= c.putMax {
		return false
	}
	*c.slot(l) = obj
	c.hdr.len = l + 1
	return true
}

// slot returns slot i, which the caller has checked is within the cache,
// without the bounds check of c.slots[i].
func (c *Cache) slot(i uint32) *uint64 {
	return (*uint64)(unsafe.Add(c.base, uintptr(i)*8))
}

// Get returns the handle of one free object, now owned by the caller.
func (p *Pool) Get(c *Cache) (uint64, error) {
	var o [1]uint64
	err := p.GetBulk(c, o[:])
	return o[0], err
}

// Put gives one object back to the pool, as PutBulk.
func (p *Pool) Put(c *Cache, obj uint64) error {
	o := [1]uint64{obj}
	return p.PutBulk(c, o[:])
}

func (p *Pool) get(c *Cache, objs []uint64) error {
	if c == nil {
		return p.dequeue(objs)
	}
	if c.pool != p {
		return p.foreignCache(c)
	}
	l := c.hdr.len
	if l > c.nslots {
		return fmt.Errorf("mempool %q: cache of lcore %d claims %d objects, it has %d slots: corrupted", p.name, c.lcore, l, c.nslots)
	}
	if n := uint32(len(objs)); n <= l {
		c.hdr.len = l - n
		copy(objs, c.slots[l-n:l])
		return nil
	}
	return p.getRefill(c, objs)
}

// getRefill serves a get the cache cannot serve alone: it hands out the
// whole cache, and takes the rest together with a fresh cache load from
// the ring in one dequeue, or, when the ring cannot provide that much or
// the request is bigger than the cache, just the rest.
//
// The cache is emptied before the ring refills its slots and filled only
// after the refill, so a process dying in between leaks objects rather
// than leaving FlushCache a cache that claims objects it handed out.
func (p *Pool) getRefill(c *Cache, objs []uint64) error {
	l := c.hdr.len
	c.hdr.len = 0
	copy(objs, c.slots[:l])
	handOff()
	rest := objs[l:]
	if missing := uint32(len(rest)); missing <= c.size {
		load := c.size + missing
		if p.dequeue(c.slots[:load]) == nil {
			copy(rest, c.slots[c.size:load])
			c.hdr.len = c.size
			return nil
		}
	}
	if err := p.dequeue(rest); err != nil {
		c.hdr.len = l // the failed dequeue took nothing: the l objects are still in the slots
		return err
	}
	return nil
}

func (p *Pool) put(c *Cache, objs []uint64) error {
	n := uint32(len(objs))
	if c == nil || n > c.flush {
		if c != nil && c.pool != p {
			return p.foreignCache(c)
		}
		return p.enqueue(objs)
	}
	if c.pool != p {
		return p.foreignCache(c)
	}
	l := c.hdr.len
	if l > c.flush {
		return fmt.Errorf("mempool %q: cache of lcore %d claims %d objects, above its flush threshold %d: corrupted", p.name, c.lcore, l, c.flush)
	}
	copy(c.slots[l:], objs)
	l += n
	if l > c.flush {
		c.hdr.len = c.size // before the enqueue: see handOff
		err := p.enqueue(c.slots[c.size:l])
		handOff()
		return err
	}
	c.hdr.len = l
	return nil
}

// Crash safety. Whenever objects leave a cache (to the ring or to the
// caller), the cache's length shrinks first and the objects move second.
// A process that dies in between has then lost a few objects, which stay
// out of the pool (counted as in use) forever; the other order would have
// FlushCache, run by the primary for the dead process, give to the ring
// objects the ring or a live process already holds: duplicates, handed
// out twice. A leak is the lesser evil.
//
// testHookHandOff, nil outside tests, runs right after objects left a
// cache; a test makes it panic to stand for the process dying there.
var testHookHandOff func()

func handOff() {
	if testHookHandOff != nil {
		testHookHandOff()
	}
}

// enqueue puts objs in the ring, which always has room for every object of
// the pool: a full ring means objects were put twice.
func (p *Pool) enqueue(objs []uint64) error {
	var ok bool
	switch {
	case len(objs) == 0:
		return nil
	case len(objs) == 1 && p.spPut:
		ok = p.r.SPEnqueue(objs[0])
	case len(objs) == 1:
		ok = p.r.MPEnqueue(objs[0])
	case p.spPut:
		ok = p.r.SPEnqueueBulk(objs) != 0
	default:
		ok = p.r.MPEnqueueBulk(objs) != 0
	}
	if ok {
		return nil
	}
	return fmt.Errorf("mempool %q: ring has room for %d of the %d objects put: more objects came back than the pool holds (double free?); they are dropped",
		p.name, p.r.FreeCount(), len(objs))
}

// dequeue fills objs from the ring, or fails with ErrEmpty and takes
// nothing. It calls the ring's methods for the pool's mode directly, and
// the single-entry ones for one object.
func (p *Pool) dequeue(objs []uint64) error {
	var ok bool
	switch {
	case len(objs) == 0:
		return nil
	case len(objs) == 1:
		var obj uint64
		if p.scGet {
			obj, ok = p.r.SCDequeue()
		} else {
			obj, ok = p.r.MCDequeue()
		}
		if ok {
			objs[0] = obj
		}
	case p.scGet:
		ok = p.r.SCDequeueBulk(objs) != 0
	default:
		ok = p.r.MCDequeueBulk(objs) != 0
	}
	if !ok {
		return ErrEmpty
	}
	return nil
}

func (p *Pool) foreignCache(c *Cache) error {
	return fmt.Errorf("mempool %q: given the cache of lcore %d of pool %q", p.name, c.lcore, c.pool.name)
}

func (p *Pool) objHeader(obj uint64) *objHeader {
	return (*objHeader)(unsafe.Add(p.mem.Ptr(obj), -debugHeaderSize))
}

func (p *Pool) trailer(obj uint64) *uint64 {
	return (*uint64)(unsafe.Add(p.mem.Ptr(obj), alignUp(uint64(p.hdr.eltSize), trailerSize)))
}
