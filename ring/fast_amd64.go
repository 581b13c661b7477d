//go:build !race

package ring

// The amd64 assembly in fast_amd64.s does what ring_go.go does, in one call
// without a frame: no call to memmove, no bounds checks, and plain MOVs for
// the release stores of the tails where sync/atomic would use XCHG, a full
// fence the ring does not need on amd64. When earlier claims stay
// unpublished for spinLimit PAUSEs, the multi-producer (multi-consumer)
// functions return with the slots written and pending set, and the caller
// finishes the publish in Go (publish).

//go:noescape
func spEnqueueN(r *Ring, objs []uint64, burst bool) uint32

//go:noescape
func mpEnqueueN(r *Ring, objs []uint64, burst bool) (n, head uint32, pending bool)

//go:noescape
func scDequeueN(r *Ring, objs []uint64, burst bool) uint32

//go:noescape
func mcDequeueN(r *Ring, objs []uint64, burst bool) (n, head uint32, pending bool)

//go:noescape
func spEnqueue1(r *Ring, obj uint64) bool

//go:noescape
func mpEnqueue1(r *Ring, obj uint64) (ok bool, head uint32, pending bool)

//go:noescape
func scDequeue1(r *Ring) (obj uint64, ok bool)

//go:noescape
func mcDequeue1(r *Ring) (obj uint64, ok bool, head uint32, pending bool)

// spinLimit is how many PAUSEs the assembly spins on an earlier claim
// before it hands the wait to Go. Assembly cannot be preempted, so a long
// wait there would hold up the garbage collector's stop-the-world, forever
// if the other claimer was a process that died.
const spinLimit = 256
