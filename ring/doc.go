// Package ring is a fixed-size, lock-free FIFO of uint64 entries in shared
// memory, with the semantics of DPDK's rte_ring. It carries work between
// goroutines and between processes of a gopmd group: free-buffer lists of
// mempools, packets handed from an rx core to a worker, requests to a
// secondary process.
//
// # Entries
//
// An entry is a plain uint64: a group offset, an index, a small number. The
// ring never interprets it and never holds a Go pointer, so an entry means
// the same thing in every process that maps the ring, wherever the memory is
// mapped there.
//
// # Sync modes
//
// The producer side and the consumer side each have a head and a tail index.
// A multi-producer (MP) enqueue claims slots by compare-and-swap on the
// producer head, copies its entries in, then waits for producers that
// claimed earlier to finish and moves the producer tail past its slots; the
// consumer side (MC) does the same. Single-producer (SP) and single-consumer
// (SC) operations skip the compare-and-swap and the wait: use them only when
// one goroutine, in one process, enqueues (dequeues) at a time. Nothing
// blocks: a full ring refuses entries and an empty ring returns none.
//
// Every operation comes in an explicit mode (SPEnqueueBulk, MCDequeueBurst,
// ...) and in a default mode (EnqueueBulk, Dequeue, ...) chosen by the SPEnq
// and SCDeq flags at creation, as with RING_F_SP_ENQ and RING_F_SC_DEQ.
//
// # Bulk and burst
//
// A Bulk operation moves all of its slice or nothing and returns len(objs)
// or 0. A Burst operation moves as many as it can and returns how many.
// Enqueue and Dequeue move one entry. None of them allocates, locks or
// makes a system call.
//
// # Implementation
//
// On amd64 the operations are written in assembly, where a plain MOV is
// already a release store and no call to memmove is needed. Other
// architectures, and builds with the race detector (which cannot see into
// assembly), run the same protocol written in Go with sync/atomic. A
// multi-producer or multi-consumer call that waits for an earlier claim
// spins briefly in assembly, then waits in Go, where the goroutine can be
// preempted.
//
// # Size
//
// Without ExactSize, count must be a power of two of at least 2 and the ring
// holds count-1 entries. With ExactSize, count may be any number from 1 and
// the ring holds exactly count; its storage rounds up to the next power of
// two above count. Storage is at most 1<<30 slots.
//
// # Lifetime
//
// Create reserves a memzone named "RG_"+name in the group's memory and
// initialises the ring there; Lookup finds it from any process of the group.
// Each call returns a *Ring handle that belongs to the calling process only;
// handles need no closing. The ring lives until one process calls Free on
// its handle, by which time every process must have stopped using the ring.
// A ring embedded in a bigger reservation (InitAt, AttachAt) belongs to the
// owner of that memory, which frees it with the rest.
package ring
