package mempool

import "unsafe"

// The memzone of a pool is, in order: header, ring, MaxLcores caches (only
// when the cache size is not 0), objects. Every process reads these
// structures at these offsets, so they hold plain numbers only and their
// layout is checked by TestSharedLayout. Bump layoutVersion on any change.
const (
	poolMagic     = 0x6c6f6f706d647067 // "gpdmpool" in little-endian bytes
	layoutVersion = 1

	zonePrefix = "MP_"

	// NameLen is the longest pool name: the memzone name carries "MP_"
	// within hugemem's 31 bytes.
	NameLen = 31 - len(zonePrefix)

	// MaxLcores is the number of per-lcore caches of a pool; it equals
	// eal.MaxLcores. Lcore ids run from 0 to MaxLcores-1.
	MaxLcores = 128

	// MaxCacheSize is the largest per-lcore cache (RTE_MEMPOOL_CACHE_MAX_SIZE).
	MaxCacheSize = 512

	// PrivateSize is the size of the pool's private area (see Pool.Private).
	PrivateSize = 64

	cacheLine = 64

	// Debug pools put a header line before each object and a trailer
	// cookie after it.
	debugHeaderSize = cacheLine
	trailerSize     = 8

	cookieFree    = 0xf2eef2eedadd2e55 // object header in the ring or a cache
	cookieInUse   = 0xbadbadbadadd2e55 // object header while the user owns it
	cookieTrailer = 0xadd2e55badbadbad // after the last byte of the element
)

// header starts the pool's memzone. Offsets are from the header itself.
type header struct {
	magic       uint64 // written last by Create
	version     uint32
	headerSize  uint32 // unsafe.Sizeof(header{}) of the creator
	name        [NameLen + 1]byte
	_           [32 - NameLen - 1]byte
	flags       uint32
	n           uint32 // objects
	eltSize     uint32 // usable bytes of an object
	stride      uint32 // distance between objects within a chunk
	objHeader   uint32 // bytes before each object's first byte: 0, or debugHeaderSize
	cacheSize   uint32
	flushThresh uint32
	cacheStride uint32 // bytes per lcore cache, header and slots
	cacheSlots  uint32 // slots per lcore cache
	perChunk    uint32 // objects per chunk
	chunkSize   uint64 // bytes per chunk: one page with IOVAContig, all objects otherwise
	ringOff     uint64
	ringSize    uint64
	cachesOff   uint64
	objsOff     uint64 // first chunk
	zoneLen     uint64 // bytes the layout needs, at most the memzone length
	private     [PrivateSize]byte
	_           [256 - 200]byte
}

// cacheHeader starts each lcore's cache; cacheSlots uint64 handles follow.
// Only the owning lcore reads or writes len and the slots.
type cacheHeader struct {
	len         uint32 // handles in the slots, the newest last
	size        uint32
	flushThresh uint32
	lcore       uint32
	_           [cacheLine - 16]byte
}

// objHeader precedes every object of a Debug pool.
type objHeader struct {
	cookie uint64 // cookieFree or cookieInUse, changed by compare-and-swap
	_      [debugHeaderSize - 8]byte
}

const (
	headerSize      = uint64(unsafe.Sizeof(header{}))
	cacheHeaderSize = uint64(unsafe.Sizeof(cacheHeader{}))
)

// flushThreshold is CALC_CACHE_FLUSHTHRESH: 1.5 times the cache size.
func flushThreshold(size uint32) uint32 { return size * 3 / 2 }

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
