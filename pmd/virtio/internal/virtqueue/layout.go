package virtqueue

import "unsafe"

// The layouts the device shares with the driver, from the virtio
// specification, and the queue's own header in the memzone. All of it is
// plain data; TestSharedLayout checks the sizes and offsets.

// Kind is the ring format.
type Kind uint32

const (
	Split  Kind = 1 // virtio 1.2 section 2.7: descriptor table, avail ring, used ring
	Packed Kind = 2 // section 2.8: one descriptor ring both sides write, VIRTIO_F_RING_PACKED
)

func (k Kind) String() string {
	switch k {
	case Split:
		return "split"
	case Packed:
		return "packed"
	}
	return "unknown"
}

// Role says what a queue carries.
type Role uint32

const (
	RoleRx   Role = 1 // device-writable buffers: received frames
	RoleTx   Role = 2 // device-readable buffers: frames to send
	RoleCtrl Role = 3 // the control queue: one command at a time
)

// MaxSize is the largest ring: split indices are 16 bits, packed ones 15.
const MaxSize = 32768

// Descriptor flags (sections 2.7.5 and 2.8.1).
const (
	descFNext     = 1
	descFWrite    = 2
	descFIndirect = 4
	descFAvail    = 1 << 7
	descFUsed     = 1 << 15
)

// Notification suppression (sections 2.7.7, 2.7.10 and 2.8.10).
const (
	availFNoInterrupt = 1 // split, driver: do not interrupt me
	usedFNoNotify     = 1 // split, device: do not kick me
	eventFEnable      = 0 // packed event suppression flags
	eventFDisable     = 1
)

// splitDesc is an entry of the split descriptor table.
type splitDesc struct {
	Addr  uint64
	Len   uint32
	Flags uint16
	Next  uint16
}

// usedElem is an entry of the split used ring.
type usedElem struct {
	ID  uint32
	Len uint32
}

// packedDesc is an entry of the packed descriptor ring.
type packedDesc struct {
	Addr  uint64
	Len   uint32
	ID    uint16
	Flags uint16
}

// splitLayout returns the offsets, from the ring's start, of the avail and
// used rings of a split ring of n entries, and its total size. It is the
// legacy layout (used ring on the next 4096-byte boundary), which modern
// devices accept too.
func splitLayout(n uint64) (avail, used, size uint64) {
	avail = 16 * n
	used = alignUp(avail+6+2*n, legacyAlign)
	return avail, used, used + 6 + 8*n
}

// packedLayout returns the offsets of the driver and device event areas of
// a packed ring of n descriptors, and its total size.
func packedLayout(n uint64) (driver, device, size uint64) {
	driver = 16 * n
	return driver, driver + 64, driver + 128
}

// legacyAlign is VIRTIO_PCI_VRING_ALIGN: a legacy device takes the ring's
// page frame number and finds the used ring on the next page.
const legacyAlign = 4096

// idEntry is the driver's record of one buffer id, kept apart from the ring
// so that nothing the device writes can change it.
type idEntry struct {
	Mbuf  uint64 // group offset of the packet's first mbuf (0 for a control command)
	Next  uint16 // split: the next descriptor of the chain this one heads or belongs to
	NDesc uint16 // descriptors the buffer takes; 0 while the id is not a buffer in flight
	_     uint32
}

// hdrSlot is the room for one virtio-net header that does not fit an
// mbuf's headroom; a control command uses the whole area.
const hdrSlot = 32

// ctrlArea is the least room of the header area: a control command and its
// status.
const ctrlArea = 4096

// state is the queue's header at the start of its memzone. The first cache
// line is written once by Init; Enabled by the primary; the cursors and
// counters only by the process polling the queue.
type state struct {
	Magic    uint64
	Version  uint32
	Kind     Kind
	Role     Role
	Size     uint32 // descriptors, a power of two
	HdrLen   uint32 // bytes of virtio-net header in front of each frame
	Flags    uint32 // flagMergeable, flagLinear
	AddrBase uint64 // flagLinear: device address of group offset 0
	RingOff  uint64 // group offsets of the memzone's parts
	IDsOff   uint64
	HdrsOff  uint64

	Enabled uint32 // bursts run only while it is 1
	_       [60]byte

	Busy      uint32 // 1 while a burst runs
	AvailIdx  uint32 // split: free-running avail index; packed: next slot to fill
	AvailWrap uint32 // packed: wrap counter of AvailIdx
	UsedIdx   uint32 // split: free-running index of the next used entry; packed: next slot to read
	UsedWrap  uint32 // packed: wrap counter of UsedIdx
	FreeSlots uint32 // descriptors (packed: ring slots) not in flight
	FreeTop   uint32 // ids on the free stack
	Posted    uint32 // rx: bytes each buffer offers the device, header included
	_         [32]byte

	Counters Counters
	_        [64 - unsafe.Sizeof(Counters{})%64]byte
	// The free id stack follows, Size entries of uint16.
}

// Counters are the queue's reasons for dropping what the device returned.
type Counters struct {
	BadID     uint64 // used entries whose id was out of range or not in flight
	BadLen    uint64 // used entries longer than their buffer or shorter than the header
	BadMerge  uint64 // merged frames claiming too many buffers or too many bytes
	NoMbuf    uint64 // rx refills that found the pool empty
	Kicks     uint64 // notifications sent to the device
	Oversize  uint64 // tx packets with more segments than the ring holds, dropped
	NoDMA     uint64 // tx packets whose memory the device cannot reach, dropped
	Completed uint64 // buffers the device returned, good or bad
}

const (
	stateMagic   = 0x7571747269767067 // "gpvirtqu"
	stateVersion = 1

	flagMergeable = 1 << 0 // rx: VIRTIO_NET_F_MRG_RXBUF, frames may span buffers
	flagLinear    = 1 << 1 // device address = AddrBase + group offset
)

// Geometry is where the parts of a queue's memzone are, relative to its
// start.
type geometry struct {
	free, ring, ids, hdrs, total uint64
	ringLen                      uint64
}

func layout(kind Kind, n uint64) geometry {
	var g geometry
	g.free = uint64(unsafe.Sizeof(state{}))
	g.ring = alignUp(g.free+2*n, legacyAlign)
	if kind == Packed {
		_, _, g.ringLen = packedLayout(n)
	} else {
		_, _, g.ringLen = splitLayout(n)
	}
	g.ids = alignUp(g.ring+g.ringLen, 64)
	g.hdrs = alignUp(g.ids+n*uint64(unsafe.Sizeof(idEntry{})), 64)
	g.total = g.hdrs + max(n*hdrSlot, ctrlArea)
	return g
}

// ZoneSize returns the bytes a queue of n descriptors needs in its memzone.
// The memzone must be aligned to 4096 bytes.
func ZoneSize(kind Kind, n int) uint64 { return layout(kind, uint64(n)).total }

// ZoneAlign is the alignment a queue's memzone needs.
const ZoneAlign = legacyAlign

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
