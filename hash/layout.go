package hash

import (
	"math/bits"
	"unsafe"
)

// The shared header is the only description of a table's memory. Every
// process that maps the table reads these fields at these offsets, so the
// layout is fixed: plain numbers and bytes only (no Go pointers, no function
// pointers), checked by TestHeaderLayout. Bump layoutVersion whenever the
// header, the bucket or slot format, the bucket-count rule, the hash
// functions or mixHash change: any of them moves keys to other buckets.
// Version 2: the lock word's low half is the holder's start time, no longer
// a random nonce, which a process of version 2 would take for the start
// time of a dead holder.
const (
	headerMagic   = 0x42415448 // "HTAB" in little-endian bytes
	layoutVersion = 2

	cacheLine = 64

	zonePrefix = "HT_"

	// bfsMax bounds the breadth-first search for a cuckoo path: the
	// buckets it may visit when both of a new key's buckets are full.
	bfsMax = 512

	// slotHeader is the bytes in front of a slot's key: state and value.
	slotHeader = 16

	slotFree  = 0
	slotInUse = 1
)

// Limits of a table.
const (
	// MaxNameLen is the longest table name: the memzone is "HT_"+name
	// within hugemem's 31-byte memzone names.
	MaxNameLen = 31 - len(zonePrefix)

	// MaxKeyLen is the longest key, in bytes.
	MaxKeyLen = 1024

	// MaxEntries is the largest capacity, DPDK's RTE_HASH_ENTRIES_MAX.
	MaxEntries = 1 << 30

	// BucketEntries is how many keys share a bucket (RTE_HASH_BUCKET_ENTRIES).
	BucketEntries = 8
)

// header starts every table. Lines 0 and 1 never change after Create; each
// process copies them into its Table. Line 2 is the writers' (lock, count,
// free list top); line 3 holds the change counter readers poll, alone so
// that writers taking the lock do not invalidate it.
type header struct {
	magic    uint32
	version  uint32
	name     [32]byte // NUL-terminated
	keyLen   uint32
	slotSize uint32 // bytes of one key slot
	entries  uint32 // capacity, and the highest key index
	nbuckets uint32 // a power of two
	hashFunc uint32 // HashFunc id of the by-key API
	_        uint32
	seed     uint64 // that function's seed
	size     uint64 // bytes of header, buckets, slots and free list
	_        [2*cacheLine - 80]byte

	// lock is 0 when free, else the holder's proclive.Word (pid, start time).
	lock    uint64
	count   uint32 // keys stored
	freeTop uint32 // free list entries in use
	_       [cacheLine - 16]byte

	// changes is bumped after every step that takes a key out of a bucket
	// slot or a key slot out of use: a delete, a cuckoo move, a reset, a
	// repair. A reader that saw it change retries.
	changes uint64
	_       [cacheLine - 8]byte
}

const headerSize = uint64(unsafe.Sizeof(header{}))

// A bucket is one cache line of BucketEntries entries. An entry is
// sig<<32 | key index; key index 0 means empty. One 64-bit word per entry,
// so an entry is written and read whole and never seen torn.
type bucket [BucketEntries]uint64

const bucketSize = uint64(unsafe.Sizeof(bucket{}))

// A key slot is: state (slotFree or slotInUse), value, then the key padded
// with zeros to whole 8-byte words. Slot 0 is never used, so key index 0
// can mean "empty".

// geometry is the layout derived from a table's key length and capacity.
type geometry struct {
	keyLen   uint32
	entries  uint32
	nbuckets uint32
	slotSize uint32
	buckets  uint64 // offset of bucket 0 from the header
	slots    uint64 // offset of key slot 0
	free     uint64 // offset of the free list (entries uint32 key indices)
	size     uint64 // total bytes
}

// layoutFor returns the geometry of a table of keyLen-byte keys and entries
// capacity; both must already be in range. The buckets have room for at
// least 5/4 of the capacity, so the table is at most 80% full when every
// key slot is used and a cuckoo path almost always exists.
func layoutFor(keyLen, entries uint32) geometry {
	g := geometry{keyLen: keyLen, entries: entries}
	need := (uint64(entries)*5/4 + BucketEntries - 1) / BucketEntries
	g.nbuckets = uint32(1) << bits.Len64(need-1) // need >= 1
	g.slotSize = slotHeader + (keyLen+7)&^7
	g.buckets = headerSize
	g.slots = g.buckets + uint64(g.nbuckets)*bucketSize
	g.free = alignUp(g.slots+uint64(entries+1)*uint64(g.slotSize), cacheLine)
	g.size = alignUp(g.free+uint64(entries)*4, cacheLine)
	return g
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
