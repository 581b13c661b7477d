// Package mempool is a fixed-size object allocator in group shared memory,
// with DPDK rte_mempool semantics, usable by every process of a group.
//
// # Layout and lifetime
//
// Create reserves one memzone, "MP_"+name, holding a header, the ring of
// free objects (embedded with ring.InitAt), MaxLcores per-lcore caches and
// the objects themselves. Everything in it is plain data, so Lookup in any
// process of the group builds its own *Pool from the header alone. Free
// releases the memzone; every process must have stopped using the pool
// first. Close forgets this process's handle without touching shared state.
//
// # Object handles
//
// An object is named by its handle: the group offset (hugemem.Memory.Off)
// of its first byte. A handle means the same object in every process
// whatever address the group is mapped at, can travel on any ring, and
// turns into an address with Pool.Ptr or with hugemem.Memory.Ptr without
// knowing which pool the object came from. Handle 0 is never an object.
//
// # Caches
//
// Each lcore (0..MaxLcores-1, the eal lcore id) has a cache in the shared
// memory that only that lcore uses, so get and put on a cache take no lock
// and no atomic operation. The cache is a stack of handles (the newest on
// top) with room for twice the flush threshold. PutBulk pushes onto it and,
// once it holds more than the flush threshold (1.5 x the cache size, as
// DPDK's CALC_CACHE_FLUSHTHRESH), moves everything above the cache size to
// the ring in one enqueue; a put of more than the threshold goes to the
// ring directly. GetBulk pops from it and, when short, hands out what it
// has and dequeues the cache size plus the missing objects in one go,
// leaving the cache full; when the ring cannot provide that much, or more
// than the cache size is missing, only the missing objects come from the
// ring. (DPDK bounds that last case by its compile-time maximum, 512,
// because its cache array is always that big; here the array is sized for
// the pool's cache.) A nil *Cache means "no cache": every call goes to the
// ring, which is multi-producer/multi-consumer unless SPPut/SCGet were
// given. Objects sitting in a cache count as available. When the process
// owning an lcore dies, FlushCache returns that cache's objects to the
// ring. All lives in shared memory, so Avail and FlushCache work from any
// process. A cache's length always shrinks before objects leave it, so a
// process that dies in the middle of a get, put or flush leaks those few
// objects (they stay counted as in use) and FlushCache never returns an
// object twice.
//
// GetBulk is all or nothing, like rte_mempool_get_bulk. Get, put and the
// conversions allocate nothing and take no lock.
//
// # Fast paths
//
// DPDK's get and put are inline functions. In Go a function that also
// holds a slow path is too big to inline, so the work is split three ways:
//
//   - Cache.TryGet and Cache.TryPut (one object) and Cache.TryGetBulk and
//     Cache.TryPutBulk (up to TryMax objects) serve the cache alone and
//     are inlined into the caller's loop; they return false to decline.
//   - GetBulk and PutBulk are inlined one-line wrappers around an amd64
//     assembly fast path, one frameless call that serves the cache and
//     copies bigger bulks with 32-byte AVX2 moves where the CPU has them.
//   - Only when the cache cannot serve does the call continue into the Go
//     slow path (refill, flush, ring, Debug checks), which is the whole
//     implementation on other architectures and under the race detector.
//
// A hot loop tries the inlined method first and calls GetBulk or PutBulk
// (Get or Put) when it declines.
//
// # Debug mode
//
// Pools created with Debug carry a header and a trailer cookie around every
// object. Put checks that the object is allocated and intact before taking
// it back (a double free or an overwritten cookie is an error naming the
// object, and the object is not taken back twice); get checks that what it
// hands out is free and intact. Without Debug no check is made.
package mempool
