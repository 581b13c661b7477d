package mempool

import (
	"fmt"
	"sync/atomic"

	"github.com/gopmd/gopmd/ring"
)

// geometry is where everything of a pool sits in its memzone. Create
// computes it from the configuration; Lookup recomputes it from the
// header's configuration fields and refuses a header that disagrees.
type geometry struct {
	stride      uint32
	objHeader   uint32
	cacheSize   uint32
	flushThresh uint32
	cacheStride uint32
	cacheSlots  uint32
	perChunk    uint32
	chunkSize   uint64
	ringOff     uint64
	ringSize    uint64
	cachesOff   uint64
	objsOff     uint64
	zoneLen     uint64
}

const (
	maxEltSize = 1 << 30
	maxZoneLen = 1 << 40
)

// computeGeometry lays a pool out. page is the page size of the backing
// memory, used only with IOVAContig.
func computeGeometry(n, eltSize, cacheSize uint32, flags Flags, page uint64) (geometry, error) {
	var g geometry
	switch {
	case flags&^knownFlags != 0:
		return g, fmt.Errorf("flags %#x: unknown bits %#x", uint32(flags), uint32(flags&^knownFlags))
	case n == 0:
		return g, fmt.Errorf("object count is 0, want at least 1")
	case eltSize == 0 || eltSize > maxEltSize:
		return g, fmt.Errorf("element size %d is out of range (1 to %d bytes)", eltSize, maxEltSize)
	case cacheSize > MaxCacheSize:
		return g, fmt.Errorf("cache size %d exceeds the maximum %d", cacheSize, MaxCacheSize)
	case flushThreshold(cacheSize) > n:
		return g, fmt.Errorf("cache size %d needs at least 1.5 x %d = %d objects, the pool has %d", cacheSize, cacheSize, flushThreshold(cacheSize), n)
	}
	stride := alignUp(uint64(eltSize), cacheLine)
	if flags&Debug != 0 {
		g.objHeader = debugHeaderSize
		stride = alignUp(debugHeaderSize+alignUp(uint64(eltSize), trailerSize)+trailerSize, cacheLine)
	}
	g.stride = uint32(stride)

	var err error
	g.ringOff = headerSize
	if g.ringSize, err = ring.MemSize(n, ringFlags(flags)); err != nil {
		return g, err
	}
	g.cachesOff = alignUp(g.ringOff+g.ringSize, cacheLine)
	end := g.cachesOff
	if cacheSize > 0 {
		g.cacheSize = cacheSize
		g.flushThresh = flushThreshold(cacheSize)
		// A put may push the cache to flushThresh + flushThresh before it
		// flushes; a refill brings size + at most size objects.
		g.cacheSlots = 2 * g.flushThresh
		g.cacheStride = uint32(alignUp(cacheHeaderSize+8*uint64(g.cacheSlots), cacheLine))
		end += MaxLcores * uint64(g.cacheStride)
	}

	if flags&IOVAContig != 0 {
		if page == 0 || page&(page-1) != 0 {
			return g, fmt.Errorf("page size %d of the backing memory is not a power of two", page)
		}
		if stride > page {
			return g, fmt.Errorf("objects of %d bytes (element %d) do not fit a %d-byte page, as IOVAContig requires", stride, eltSize, page)
		}
		g.perChunk = uint32(page / stride)
		g.chunkSize = page
		g.objsOff = alignUp(end, page)
	} else {
		g.perChunk = n
		g.chunkSize = uint64(n) * stride
		g.objsOff = end
	}
	chunks := (uint64(n) + uint64(g.perChunk) - 1) / uint64(g.perChunk)
	g.zoneLen = g.objsOff + (chunks-1)*g.chunkSize + uint64(n-uint32(chunks-1)*g.perChunk)*stride
	if g.zoneLen > maxZoneLen {
		return g, fmt.Errorf("%d objects of %d bytes need %d bytes, more than the %d a memzone may have", n, stride, g.zoneLen, uint64(maxZoneLen))
	}
	return g, nil
}

func (h *header) setGeometry(g geometry) {
	h.stride, h.objHeader = g.stride, g.objHeader
	h.cacheSize, h.flushThresh, h.cacheStride, h.cacheSlots = g.cacheSize, g.flushThresh, g.cacheStride, g.cacheSlots
	h.perChunk, h.chunkSize = g.perChunk, g.chunkSize
	h.ringOff, h.ringSize, h.cachesOff, h.objsOff, h.zoneLen = g.ringOff, g.ringSize, g.cachesOff, g.objsOff, g.zoneLen
}

func (h *header) geometry() geometry {
	return geometry{
		stride: h.stride, objHeader: h.objHeader,
		cacheSize: h.cacheSize, flushThresh: h.flushThresh, cacheStride: h.cacheStride, cacheSlots: h.cacheSlots,
		perChunk: h.perChunk, chunkSize: h.chunkSize,
		ringOff: h.ringOff, ringSize: h.ringSize, cachesOff: h.cachesOff, objsOff: h.objsOff, zoneLen: h.zoneLen,
	}
}

// validate reports the first thing that keeps the header at the start of
// a zoneLen-byte memzone from being pool name.
func (h *header) validate(name string, zoneLen uint64) error {
	if zoneLen < headerSize {
		return fmt.Errorf("memzone of %d bytes is shorter than a pool header (%d bytes)", zoneLen, headerSize)
	}
	if m := atomic.LoadUint64(&h.magic); m != poolMagic {
		return fmt.Errorf("magic is %#x, want %#x: not a pool, not initialised yet, or freed", m, uint64(poolMagic))
	}
	switch {
	case h.version != layoutVersion:
		return fmt.Errorf("layout version is %d, this build understands %d", h.version, layoutVersion)
	case uint64(h.headerSize) != headerSize:
		return fmt.Errorf("header size is %d, this build's is %d", h.headerSize, headerSize)
	case cString(h.name[:]) != name:
		return fmt.Errorf("header names the pool %q", cString(h.name[:]))
	}
	var page uint64
	if Flags(h.flags)&IOVAContig != 0 {
		page = h.chunkSize
	}
	want, err := computeGeometry(h.n, h.eltSize, h.cacheSize, Flags(h.flags), page)
	if err != nil {
		return fmt.Errorf("header configuration is invalid: %w", err)
	}
	if got := h.geometry(); got != want {
		return fmt.Errorf("header layout %+v disagrees with %+v computed from its configuration (%d objects of %d bytes, cache %d, flags %#x): corrupted",
			got, want, h.n, h.eltSize, h.cacheSize, h.flags)
	}
	if h.zoneLen > zoneLen {
		return fmt.Errorf("layout needs %d bytes, the memzone has %d", h.zoneLen, zoneLen)
	}
	return nil
}
