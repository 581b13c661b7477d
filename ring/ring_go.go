package ring

import (
	"runtime"
	"sync/atomic"
)

// This is the reference implementation of the ring protocol, the one
// non-amd64 and race-detector builds run (fast_generic.go) and the one the
// amd64 assembly is tested against.
//
// A producer claims slots by moving prod.head forward, with a CAS when
// several producers may race and a plain store when there is one (nothing
// but the single producer reads prod.head then). It copies its entries
// into the slots, waits, if several producers may race, until prod.tail
// reaches the head it claimed from (earlier claims are published in order,
// like DPDK's spin on the tail), and moves prod.tail past its slots with a
// release store: a consumer that loads the new tail also sees the slots.
// Consumers mirror this with cons.head and cons.tail, which hand slots back
// to producers.
//
// Counts are clamped to the capacity even though a sane ring never exceeds
// it, so that corrupt indices can make a ring return garbage entries but
// never make it write outside its slots.

// goEnqueueN enqueues objs (all of them, or as many as fit when burst) and
// returns how many, and the head it claimed from. It never leaves the
// publish pending.
func goEnqueueN(r *Ring, objs []uint64, burst, multi bool) (n, head uint32, pending bool) {
	h := r.hdr
	for {
		if multi {
			head = atomic.LoadUint32(&h.prod.head)
		} else {
			head = h.prod.head
		}
		free := min(r.capacity+atomic.LoadUint32(&h.cons.tail)-head, r.capacity)
		if uint(len(objs)) > uint(free) {
			if !burst {
				return 0, 0, false
			}
			objs = objs[:free]
		}
		if len(objs) == 0 {
			return 0, 0, false
		}
		n = uint32(len(objs))
		if !multi {
			h.prod.head = head + n
			break
		}
		if atomic.CompareAndSwapUint32(&h.prod.head, head, head+n) {
			break
		}
	}
	r.put(head, objs)
	if multi {
		waitTail(&h.prod.tail, head)
	}
	atomic.StoreUint32(&h.prod.tail, head+n)
	return n, head, false
}

// goDequeueN fills objs (all of it, or as much as there is when burst) and
// returns how many entries, and the head it claimed from. It never leaves
// the publish pending.
func goDequeueN(r *Ring, objs []uint64, burst, multi bool) (n, head uint32, pending bool) {
	h := r.hdr
	for {
		if multi {
			head = atomic.LoadUint32(&h.cons.head)
		} else {
			head = h.cons.head
		}
		avail := min(atomic.LoadUint32(&h.prod.tail)-head, r.capacity)
		if uint(len(objs)) > uint(avail) {
			if !burst {
				return 0, 0, false
			}
			objs = objs[:avail]
		}
		if len(objs) == 0 {
			return 0, 0, false
		}
		n = uint32(len(objs))
		if !multi {
			h.cons.head = head + n
			break
		}
		if atomic.CompareAndSwapUint32(&h.cons.head, head, head+n) {
			break
		}
	}
	r.get(head, objs)
	if multi {
		waitTail(&h.cons.tail, head)
	}
	atomic.StoreUint32(&h.cons.tail, head+n)
	return n, head, false
}

// goEnqueue1 enqueues one entry, like goEnqueueN.
func goEnqueue1(r *Ring, obj uint64, multi bool) (ok bool, head uint32, pending bool) {
	var one [1]uint64
	one[0] = obj
	n, head, _ := goEnqueueN(r, one[:], false, multi)
	return n == 1, head, false
}

// goDequeue1 dequeues one entry, like goDequeueN.
func goDequeue1(r *Ring, multi bool) (obj uint64, ok bool, head uint32, pending bool) {
	var one [1]uint64
	n, head, _ := goDequeueN(r, one[:], false, multi)
	return one[0], n == 1, head, false
}

// put copies objs into the slots from index head on, in two pieces when
// they wrap past the last slot. len(objs) <= capacity.
func (r *Ring) put(head uint32, objs []uint64) {
	if n := copy(r.slots[head&r.mask:], objs); n < len(objs) {
		copy(r.slots, objs[n:])
	}
}

// get copies entries from the slots from index head on into objs, in two
// pieces when they wrap past the last slot. len(objs) <= capacity.
func (r *Ring) get(head uint32, objs []uint64) {
	if n := copy(objs, r.slots[head&r.mask:]); n < len(objs) {
		copy(objs[n:], r.slots)
	}
}

// publish moves a multi-producer (multi-consumer) tail from old to new once
// every earlier claim is published.
func publish(tail *uint32, old, new uint32) {
	waitTail(tail, old)
	atomic.StoreUint32(tail, new)
}

// waitTail spins until *tail == old. The claim it waits for may belong to a
// goroutine that was descheduled between its claim and its publish, so
// after a while it yields the processor rather than burn it.
func waitTail(tail *uint32, old uint32) {
	for spins := 0; atomic.LoadUint32(tail) != old; spins++ {
		if spins < 128 {
			cpuRelax()
		} else {
			runtime.Gosched()
		}
	}
}
