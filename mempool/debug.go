package mempool

import (
	"fmt"
	"sync/atomic"
)

// putDebug takes back the objects that pass checkPut and refuses the
// others, which stay out of the pool (counted as in use) so that none is
// handed out twice.
func (p *Pool) putDebug(c *Cache, objs []uint64) error {
	var first error
	refused, start := 0, 0
	for i, obj := range objs {
		err := p.checkPut(obj)
		if err == nil {
			continue
		}
		if first == nil {
			first = err
		}
		refused++
		if err := p.put(c, objs[start:i]); err != nil {
			return err
		}
		start = i + 1
	}
	if err := p.put(c, objs[start:]); err != nil {
		return err
	}
	if refused > 0 {
		return fmt.Errorf("mempool %q: put refused %d of %d objects; first: %w", p.name, refused, len(objs), first)
	}
	return nil
}

// checkPut marks obj free if it is an intact allocated object of p.
func (p *Pool) checkPut(obj uint64) error {
	if !p.Owns(obj) {
		return fmt.Errorf("object %#x is not an object of pool %q", obj, p.name)
	}
	if t := *p.trailer(obj); t != cookieTrailer {
		return fmt.Errorf("object %#x: trailer cookie is %#x, want %#x: written past its %d bytes", obj, t, uint64(cookieTrailer), p.hdr.eltSize)
	}
	h := p.objHeader(obj)
	if atomic.CompareAndSwapUint64(&h.cookie, cookieInUse, cookieFree) {
		return nil
	}
	if c := atomic.LoadUint64(&h.cookie); c == cookieFree {
		return fmt.Errorf("object %#x is already free: double free", obj)
	} else {
		return fmt.Errorf("object %#x: header cookie is %#x, neither free (%#x) nor allocated (%#x): corrupted", obj, c, uint64(cookieFree), uint64(cookieInUse))
	}
}

// getDebug gets objects as get does, then checks each one. When one is not
// an intact free object of p, it is kept out of the pool, the others go
// back, and the get fails.
func (p *Pool) getDebug(c *Cache, objs []uint64) error {
	if err := p.get(c, objs); err != nil {
		return err
	}
	var first error
	bad := 0
	for i, obj := range objs {
		if err := p.checkGet(obj); err != nil {
			if first == nil {
				first = err
			}
			bad++
			objs[i] = 0
		}
	}
	if bad == 0 {
		return nil
	}
	start := 0
	for i, obj := range objs {
		if obj == 0 {
			p.put(c, objs[start:i])
			start = i + 1
			continue
		}
		atomic.StoreUint64(&p.objHeader(obj).cookie, cookieFree)
	}
	p.put(c, objs[start:])
	return fmt.Errorf("mempool %q: get found %d of %d objects damaged, kept them out of the pool; first: %w", p.name, bad, len(objs), first)
}

// checkGet marks obj allocated if it is an intact free object of p.
func (p *Pool) checkGet(obj uint64) error {
	if !p.Owns(obj) {
		return fmt.Errorf("free list holds %#x, which is not an object of pool %q", obj, p.name)
	}
	if t := *p.trailer(obj); t != cookieTrailer {
		return fmt.Errorf("free object %#x: trailer cookie is %#x, want %#x: written past its %d bytes", obj, t, uint64(cookieTrailer), p.hdr.eltSize)
	}
	h := p.objHeader(obj)
	if atomic.CompareAndSwapUint64(&h.cookie, cookieFree, cookieInUse) {
		return nil
	}
	return fmt.Errorf("free object %#x: header cookie is %#x, want free (%#x): handed out twice or corrupted", obj, atomic.LoadUint64(&h.cookie), uint64(cookieFree))
}
