package ring

// The operations below are thin: the work is done by the functions of
// fast_amd64.s on amd64, and by the Go reference implementation (ring_go.go,
// through fast_generic.go) elsewhere and under the race detector. A
// single-producer or single-consumer call is one call into them. A
// multi-producer (multi-consumer) call may come back with its slots written
// but not published, when an earlier claim stayed unpublished too long for
// the non-preemptible assembly to keep spinning; the methods below then
// finish the publish in Go, where the wait can yield.

// SPEnqueueBulk enqueues all of objs or nothing, and returns len(objs) or 0.
// Only one goroutine (in any process) may enqueue at a time.
func (r *Ring) SPEnqueueBulk(objs []uint64) uint32 { return spEnqueueN(r, objs, false) }

// SPEnqueueBurst enqueues as many of objs as fit and returns how many.
// Only one goroutine (in any process) may enqueue at a time.
func (r *Ring) SPEnqueueBurst(objs []uint64) uint32 { return spEnqueueN(r, objs, true) }

// MPEnqueueBulk enqueues all of objs or nothing, and returns len(objs) or 0.
// Any number of goroutines and processes may enqueue at the same time.
func (r *Ring) MPEnqueueBulk(objs []uint64) uint32 { return r.mpEnqueue(objs, false) }

// MPEnqueueBurst enqueues as many of objs as fit and returns how many.
// Any number of goroutines and processes may enqueue at the same time.
func (r *Ring) MPEnqueueBurst(objs []uint64) uint32 { return r.mpEnqueue(objs, true) }

// EnqueueBulk enqueues all of objs or nothing, in the ring's default
// producer mode, and returns len(objs) or 0.
func (r *Ring) EnqueueBulk(objs []uint64) uint32 { return r.enqueue(objs, false) }

// EnqueueBurst enqueues as many of objs as fit, in the ring's default
// producer mode, and returns how many.
func (r *Ring) EnqueueBurst(objs []uint64) uint32 { return r.enqueue(objs, true) }

// SPEnqueue enqueues obj and reports whether it fit. Single producer only.
func (r *Ring) SPEnqueue(obj uint64) bool { return spEnqueue1(r, obj) }

// MPEnqueue enqueues obj and reports whether it fit. Multi-producer safe.
func (r *Ring) MPEnqueue(obj uint64) bool {
	ok, head, pending := mpEnqueue1(r, obj)
	if pending {
		publish(&r.hdr.prod.tail, head, head+1)
	}
	return ok
}

// Enqueue enqueues obj in the ring's default producer mode and reports
// whether it fit.
func (r *Ring) Enqueue(obj uint64) bool {
	if r.multiEnq {
		return r.MPEnqueue(obj)
	}
	return spEnqueue1(r, obj)
}

// SCDequeueBulk fills all of objs or nothing, and returns len(objs) or 0.
// Only one goroutine (in any process) may dequeue at a time.
func (r *Ring) SCDequeueBulk(objs []uint64) uint32 { return scDequeueN(r, objs, false) }

// SCDequeueBurst fills as much of objs as there are entries and returns how
// many. Only one goroutine (in any process) may dequeue at a time.
func (r *Ring) SCDequeueBurst(objs []uint64) uint32 { return scDequeueN(r, objs, true) }

// MCDequeueBulk fills all of objs or nothing, and returns len(objs) or 0.
// Any number of goroutines and processes may dequeue at the same time.
func (r *Ring) MCDequeueBulk(objs []uint64) uint32 { return r.mcDequeue(objs, false) }

// MCDequeueBurst fills as much of objs as there are entries and returns how
// many. Any number of goroutines and processes may dequeue at the same time.
func (r *Ring) MCDequeueBurst(objs []uint64) uint32 { return r.mcDequeue(objs, true) }

// DequeueBulk fills all of objs or nothing, in the ring's default consumer
// mode, and returns len(objs) or 0.
func (r *Ring) DequeueBulk(objs []uint64) uint32 { return r.dequeue(objs, false) }

// DequeueBurst fills as much of objs as there are entries, in the ring's
// default consumer mode, and returns how many.
func (r *Ring) DequeueBurst(objs []uint64) uint32 { return r.dequeue(objs, true) }

// SCDequeue removes one entry; ok is false when the ring is empty.
// Single consumer only.
func (r *Ring) SCDequeue() (obj uint64, ok bool) { return scDequeue1(r) }

// MCDequeue removes one entry; ok is false when the ring is empty.
// Multi-consumer safe.
func (r *Ring) MCDequeue() (obj uint64, ok bool) {
	obj, ok, head, pending := mcDequeue1(r)
	if pending {
		publish(&r.hdr.cons.tail, head, head+1)
	}
	return obj, ok
}

// Dequeue removes one entry in the ring's default consumer mode; ok is
// false when the ring is empty.
func (r *Ring) Dequeue() (obj uint64, ok bool) {
	if r.multiDeq {
		return r.MCDequeue()
	}
	return scDequeue1(r)
}

func (r *Ring) mpEnqueue(objs []uint64, burst bool) uint32 {
	n, head, pending := mpEnqueueN(r, objs, burst)
	if pending {
		publish(&r.hdr.prod.tail, head, head+n)
	}
	return n
}

func (r *Ring) mcDequeue(objs []uint64, burst bool) uint32 {
	n, head, pending := mcDequeueN(r, objs, burst)
	if pending {
		publish(&r.hdr.cons.tail, head, head+n)
	}
	return n
}

func (r *Ring) enqueue(objs []uint64, burst bool) uint32 {
	if r.multiEnq {
		return r.mpEnqueue(objs, burst)
	}
	return spEnqueueN(r, objs, burst)
}

func (r *Ring) dequeue(objs []uint64, burst bool) uint32 {
	if r.multiDeq {
		return r.mcDequeue(objs, burst)
	}
	return scDequeueN(r, objs, burst)
}
