package ring

import "unsafe"

// The shared header is the only description of a ring's memory. Every
// process that maps the ring reads these fields at these offsets, so the
// layout is fixed: plain numbers and bytes only (no Go pointers), checked by
// TestHeaderLayout. Bump layoutVersion whenever it changes.
const (
	headerMagic   = 0x676e6972 // "ring" in little-endian bytes
	layoutVersion = 1

	cacheLine = 64

	// maxSize is the largest slot count, a power of two that fits the 31-bit
	// index space DPDK uses (RTE_RING_SZ_MASK = 1<<31 - 1).
	maxSize  = 1 << 30
	sizeMask = 1<<31 - 1
)

// header is at the start of every ring. The producer and consumer indices
// each get their own cache line, with an empty line on either side, so the
// producer's writes never invalidate the line the consumer spins on and the
// adjacent-line prefetcher does not pair them up. The slots follow the last
// pad line.
type header struct {
	magic    uint32
	version  uint32
	name     [NameLen + 1]byte // NUL-terminated
	flags    uint32            // Flags given at creation
	size     uint32            // slots, a power of two
	mask     uint32            // size - 1
	capacity uint32            // usable slots: size-1, or count with ExactSize
	_        [cacheLine - 56]byte

	_ [cacheLine]byte

	prod headTail
	_    [cacheLine - unsafe.Sizeof(headTail{})]byte

	_ [cacheLine]byte

	cons headTail
	_    [cacheLine - unsafe.Sizeof(headTail{})]byte

	_ [cacheLine]byte
}

// headTail is one side of the ring. head is where the next producer
// (consumer) claims slots; tail is where the claimed slots end that are
// fully written (read) and so visible to the other side. All four indices
// run freely over the 32-bit range; a slot is index & mask.
type headTail struct {
	head uint32
	tail uint32
}

const headerSize = uint64(unsafe.Sizeof(header{}))
