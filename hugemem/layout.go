package hugemem

import "unsafe"

// The group's config file holds one sharedConfig. Every process of the group
// maps it, so its layout is fixed: plain numbers and byte arrays only, sizes
// checked by TestSharedLayout. Change layoutVersion whenever it changes.
const (
	configMagic   = 0x67706d645f6d656d // "gpmd_mem"
	layoutVersion = 2

	maxSegments = 64
	maxZones    = 1024
	maxPages    = 16384 // hugepages whose physical address PA mode records

	// NameLen is the longest memzone name, in bytes.
	NameLen = 31

	// firstOffset is where segment 0 starts, so that group offset 0 means "none".
	firstOffset = 1 << 21

	// IOVABase is where VA-mode IOVAs start: IOVA = IOVABase + group offset.
	// It keeps device addresses clear of the x86 MSI window at 0xfee00000.
	IOVABase = 1 << 32
)

// Segment kinds recorded in segDesc.Kind.
const (
	kindHugetlbfs = 1
	kindMemfd     = 2
)

type sharedConfig struct {
	Magic    uint64
	Version  uint32
	Size     uint32 // unsafe.Sizeof(sharedConfig{}) of the creator
	Lock     uint64 // holder of the registry lock (proclive.Word), 0 when free
	IOVAMode uint32
	_        uint32
	Limit    uint64 // bytes the group may map in segments
	Span     uint64 // bytes of address space each process reserves
	Creator  int32  // pid of the process that created the group
	NSegs    uint32 // segments in use; an entry is valid once NSegs covers it
	NPages   uint32 // entries of Pages in use (PA mode)
	_        uint32
	HugeDir  [256]byte // hugetlbfs directory of the segment files
	Segs     [maxSegments]segDesc
	Zones    [maxZones]zoneDesc
	Pages    [maxPages]uint64 // physical address of each hugepage, PA mode
}

type segDesc struct {
	Off       uint64 // group offset of the segment's first byte
	Len       uint64
	PageSize  uint64
	Kind      uint32
	OwnerPID  int32  // for memfd segments: the process whose fd table holds it
	OwnerFD   int32  // that process's fd number
	FirstPage uint32 // index of this segment's first page in Pages (PA mode)
}

type zoneDesc struct {
	Name  [NameLen + 1]byte
	Off   uint64
	Len   uint64
	Align uint64
	Seg   uint32
	InUse uint32 // written last on reserve, first on free
}

var configSize = uint64(unsafe.Sizeof(sharedConfig{}))
