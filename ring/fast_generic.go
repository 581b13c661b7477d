//go:build !amd64 || race

package ring

// Without the amd64 assembly (or under the race detector, which cannot see
// into it) the operations run the reference implementation.

func spEnqueueN(r *Ring, objs []uint64, burst bool) uint32 {
	n, _, _ := goEnqueueN(r, objs, burst, false)
	return n
}

func mpEnqueueN(r *Ring, objs []uint64, burst bool) (n, head uint32, pending bool) {
	return goEnqueueN(r, objs, burst, true)
}

func scDequeueN(r *Ring, objs []uint64, burst bool) uint32 {
	n, _, _ := goDequeueN(r, objs, burst, false)
	return n
}

func mcDequeueN(r *Ring, objs []uint64, burst bool) (n, head uint32, pending bool) {
	return goDequeueN(r, objs, burst, true)
}

func spEnqueue1(r *Ring, obj uint64) bool {
	ok, _, _ := goEnqueue1(r, obj, false)
	return ok
}

func mpEnqueue1(r *Ring, obj uint64) (ok bool, head uint32, pending bool) {
	return goEnqueue1(r, obj, true)
}

func scDequeue1(r *Ring) (obj uint64, ok bool) {
	obj, ok, _, _ = goDequeue1(r, false)
	return obj, ok
}

func mcDequeue1(r *Ring) (obj uint64, ok bool, head uint32, pending bool) {
	return goDequeue1(r, true)
}
