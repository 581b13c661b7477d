// Package mbuf is the packet buffer of gopmd, modelled on DPDK's rte_mbuf:
// a 128-byte header followed by an optional private area and the data
// buffer (headroom, then packet bytes), one per object of a mempool in
// group shared memory.
//
// # Shared layout
//
// An Mbuf is the header itself, in shared memory: *Mbuf is an address in
// this process, never stored anywhere shared. The header holds plain
// numbers only. Its two references, to its pool and to the next segment,
// are self-relative deltas (target address minus the header's address):
// the group's memory is mapped contiguously in every process, so a delta
// is the same everywhere, and Next and Free follow it with one addition,
// no lookup. To pass an mbuf to another process (over a ring, say), send
// its group offset: Off(mem) here, FromOff(mem, off) there.
//
// # Pools and lifetime
//
// CreatePool builds a mempool whose objects are mbufs and initialises
// each one; LookupPool opens it in another process. Alloc hands out a
// reset mbuf (refcnt 1, one segment, headroom DefaultHeadroom); Free
// returns a packet, every segment to its own pool, honouring reference
// counts. Free finds a segment's pool through the delta and a small table
// of the pools this process has open: a process frees mbufs of pools it
// created or looked up, or of any pool of a group in which it opened at
// least one mbuf pool (then the pool is opened on first use).
//
// Allocation and free take a *mempool.Cache: the calling lcore's cache of
// the pool (Pool.Cache), or nil. They allocate nothing and take no lock.
//
// # DMA
//
// BufIOVA is the device address of the buffer, filled at creation when the
// group's memory is hugepage-backed; it is 0 on memfd-backed memory, which
// devices may not use. In PA mode the pool keeps every mbuf inside one
// hugepage, so a buffer is IOVA-contiguous.
package mbuf
