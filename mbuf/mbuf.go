package mbuf

import (
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
)

const (
	// HeaderSize is the size of the Mbuf header: two cache lines.
	HeaderSize = 128
	// DefaultHeadroom is the room Alloc and Reset leave before the data
	// (RTE_PKTMBUF_HEADROOM).
	DefaultHeadroom = 128
	// DefaultDataRoom is the buffer size of a pool that does not choose
	// one: 2048 bytes of data plus the headroom (RTE_MBUF_DEFAULT_BUF_SIZE).
	DefaultDataRoom = 2048 + DefaultHeadroom
	// PortInvalid is the port of an mbuf that no port received
	// (RTE_MBUF_PORT_INVALID).
	PortInvalid = 0xffff
	// MaxSegs is the most segments a packet may have.
	MaxSegs = 0xffff
)

// Mbuf is a packet buffer header in shared memory. Its first cache line
// holds what receive and transmit touch: the buffer's constant description,
// then the packet fields that Reset rewrites as one block. The second line
// holds offload and user data. Use it only through a pointer obtained from
// a Pool, Next or FromOff.
type Mbuf struct {
	bufIOVA  uint64 // device address of the buffer's first byte, 0 if no DMA
	bufLen   uint16 // buffer bytes: headroom + data room
	privSize uint16 // bytes between the header and the buffer
	refcnt   uint32 // atomic; 1 while free
	pool     int64  // pool descriptor's address minus this header's
	next     int64  // next segment's address minus this header's; 0: last
	packet

	txOffload uint64
	userData  uint64
	_         [HeaderSize - 80]byte
}

// packet is the part of the first cache line that describes the data.
type packet struct {
	dataOff      uint16 // data start within the buffer (headroom)
	dataLen      uint16 // bytes in this segment
	nbSegs       uint16 // segments of the packet, in the first segment
	port         uint16
	olFlags      uint64
	packetType   uint32
	pktLen       uint32 // bytes of the whole packet, in the first segment
	vlanTCI      uint16
	vlanTCIOuter uint16
	rssHash      uint32
}

// FromOff returns the mbuf at group offset off of mem, as sent by Off.
func FromOff(mem *hugemem.Memory, off uint64) *Mbuf { return (*Mbuf)(mem.Ptr(off)) }

// Off returns the group offset of m, which names it in every process of
// the group (see FromOff).
func (m *Mbuf) Off(mem *hugemem.Memory) uint64 { return mem.Off(unsafe.Pointer(m)) }

func (m *Mbuf) buf() unsafe.Pointer {
	return unsafe.Add(unsafe.Pointer(m), HeaderSize+uintptr(m.privSize))
}

// Data returns this segment's data: DataLen bytes from the data offset.
func (m *Mbuf) Data() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(m.buf(), m.dataOff)), m.dataLen)
}

// Buf returns this segment's whole buffer, headroom included.
func (m *Mbuf) Buf() []byte { return unsafe.Slice((*byte)(m.buf()), m.bufLen) }

// Priv returns the private area between the header and the buffer.
func (m *Mbuf) Priv() []byte {
	return unsafe.Slice((*byte)(unsafe.Add(unsafe.Pointer(m), HeaderSize)), m.privSize)
}

// Headroom returns the free bytes before this segment's data.
func (m *Mbuf) Headroom() int { return int(m.dataOff) }

// Tailroom returns the free bytes after this segment's data.
func (m *Mbuf) Tailroom() int { return int(m.bufLen) - int(m.dataOff) - int(m.dataLen) }

// Append grows the packet by n bytes at the end of its last segment and
// returns those bytes. It fails, changing nothing, when the last segment's
// tailroom is smaller than n.
func (m *Mbuf) Append(n int) ([]byte, error) {
	last := m.LastSeg()
	if n < 0 || n > last.Tailroom() {
		return nil, fmt.Errorf("mbuf: append %d bytes: the last segment's tailroom is %d", n, last.Tailroom())
	}
	at := uintptr(last.dataOff) + uintptr(last.dataLen)
	last.dataLen += uint16(n)
	m.pktLen += uint32(n)
	return unsafe.Slice((*byte)(unsafe.Add(last.buf(), at)), n), nil
}

// Prepend grows the packet by n bytes before the data of its first
// segment and returns those bytes. It fails, changing nothing, when the
// headroom is smaller than n.
func (m *Mbuf) Prepend(n int) ([]byte, error) {
	if n < 0 || n > int(m.dataOff) {
		return nil, fmt.Errorf("mbuf: prepend %d bytes: the headroom is %d", n, m.dataOff)
	}
	m.dataOff -= uint16(n)
	m.dataLen += uint16(n)
	m.pktLen += uint32(n)
	return unsafe.Slice((*byte)(unsafe.Add(m.buf(), m.dataOff)), n), nil
}

// Adj removes n bytes from the start of the first segment's data. It
// fails, changing nothing, when that segment holds fewer than n bytes.
func (m *Mbuf) Adj(n int) error {
	if n < 0 || n > int(m.dataLen) {
		return fmt.Errorf("mbuf: adj %d bytes: the first segment holds %d", n, m.dataLen)
	}
	m.dataOff += uint16(n)
	m.dataLen -= uint16(n)
	m.pktLen -= uint32(n)
	return nil
}

// Trim removes n bytes from the end of the last segment's data. It fails,
// changing nothing, when that segment holds fewer than n bytes.
func (m *Mbuf) Trim(n int) error {
	last := m.LastSeg()
	if n < 0 || n > int(last.dataLen) {
		return fmt.Errorf("mbuf: trim %d bytes: the last segment holds %d", n, last.dataLen)
	}
	last.dataLen -= uint16(n)
	m.pktLen -= uint32(n)
	return nil
}

// Reset makes m an empty one-segment packet with the default headroom,
// as Alloc hands it out. It drops the link to further segments without
// freeing them, and leaves the reference count alone.
func (m *Mbuf) Reset() {
	m.next = 0
	m.packet = packet{dataOff: min(DefaultHeadroom, m.bufLen), nbSegs: 1, port: PortInvalid}
	m.txOffload = 0
}

// Next returns the segment after m, or nil when m is the last one.
func (m *Mbuf) Next() *Mbuf {
	if m.next == 0 {
		return nil
	}
	return (*Mbuf)(unsafe.Add(unsafe.Pointer(m), m.next))
}

// LastSeg returns the last segment of the packet m starts. It stops after
// MaxSegs segments, so a corrupted chain cannot keep it looping.
func (m *Mbuf) LastSeg() *Mbuf {
	for i := 0; m.next != 0 && i < MaxSegs; i++ {
		m = m.Next()
	}
	return m
}

// hasSeg reports whether s is one of the (at most MaxSegs) segments of
// the packet m starts.
func (m *Mbuf) hasSeg(s *Mbuf) bool {
	for i := 0; m != nil && i < MaxSegs; i++ {
		if m == s {
			return true
		}
		m = m.Next()
	}
	return false
}

// NumSegs returns the number of segments of the packet m starts.
func (m *Mbuf) NumSegs() uint16 { return m.nbSegs }

// Chain appends the packet tail to the packet m: tail's segments follow
// m's last one, and tail stops being a packet of its own. It fails,
// changing nothing, when the result would have more than MaxSegs segments,
// when tail is nil, or when the two packets share a segment (the chain
// would loop).
func (m *Mbuf) Chain(tail *Mbuf) error {
	switch {
	case tail == nil:
		return fmt.Errorf("mbuf: chain a nil tail")
	case int(m.nbSegs)+int(tail.nbSegs) > MaxSegs:
		return fmt.Errorf("mbuf: chain %d segments to %d: a packet has at most %d", tail.nbSegs, m.nbSegs, MaxSegs)
	case m.hasSeg(tail) || tail.hasSeg(m):
		return fmt.Errorf("mbuf: chain a packet to itself: the two share a segment")
	}
	last := m.LastSeg()
	last.next = int64(uintptr(unsafe.Pointer(tail)) - uintptr(unsafe.Pointer(last)))
	m.nbSegs += tail.nbSegs
	m.pktLen += tail.pktLen
	tail.pktLen = uint32(tail.dataLen)
	return nil
}

// PktLen returns the length of the whole packet (meaningful on its first
// segment).
func (m *Mbuf) PktLen() uint32 { return m.pktLen }

// SetPktLen sets the packet length, as a driver does on receive.
func (m *Mbuf) SetPktLen(n uint32) { m.pktLen = n }

// DataLen returns the bytes of data in this segment.
func (m *Mbuf) DataLen() uint16 { return m.dataLen }

// SetDataLen sets the bytes of data in this segment, as a driver does on
// receive. It fails, changing nothing, when they would not fit the buffer.
func (m *Mbuf) SetDataLen(n uint16) error {
	if int(m.dataOff)+int(n) > int(m.bufLen) {
		return fmt.Errorf("mbuf: data length %d at offset %d does not fit the %d-byte buffer", n, m.dataOff, m.bufLen)
	}
	m.dataLen = n
	return nil
}

// BufLen returns the size of the buffer, headroom included.
func (m *Mbuf) BufLen() uint16 { return m.bufLen }

// BufIOVA returns the device address of the buffer, 0 when the memory is
// not DMA-capable.
func (m *Mbuf) BufIOVA() uint64 { return m.bufIOVA }

// DataIOVA returns the device address of this segment's data, 0 when the
// memory is not DMA-capable.
func (m *Mbuf) DataIOVA() uint64 {
	if m.bufIOVA == 0 {
		return 0
	}
	return m.bufIOVA + uint64(m.dataOff)
}

// Port returns the port the packet came in on, PortInvalid if none.
func (m *Mbuf) Port() uint16 { return m.port }

// SetPort records the port the packet came in on.
func (m *Mbuf) SetPort(p uint16) { m.port = p }

// OlFlags returns the offload flags (DPDK's RTE_MBUF_F_* bits).
func (m *Mbuf) OlFlags() uint64 { return m.olFlags }

// SetOlFlags sets the offload flags.
func (m *Mbuf) SetOlFlags(f uint64) { m.olFlags = f }

// PacketType returns the packet type (DPDK's RTE_PTYPE_* values).
func (m *Mbuf) PacketType() uint32 { return m.packetType }

// SetPacketType sets the packet type.
func (m *Mbuf) SetPacketType(t uint32) { m.packetType = t }

// VlanTCI returns the VLAN tag control information.
func (m *Mbuf) VlanTCI() uint16 { return m.vlanTCI }

// SetVlanTCI sets the VLAN tag control information.
func (m *Mbuf) SetVlanTCI(tci uint16) { m.vlanTCI = tci }

// VlanTCIOuter returns the outer VLAN tag control information (QinQ).
func (m *Mbuf) VlanTCIOuter() uint16 { return m.vlanTCIOuter }

// SetVlanTCIOuter sets the outer VLAN tag control information.
func (m *Mbuf) SetVlanTCIOuter(tci uint16) { m.vlanTCIOuter = tci }

// RSSHash returns the receive-side-scaling hash the NIC computed.
func (m *Mbuf) RSSHash() uint32 { return m.rssHash }

// SetRSSHash sets the receive-side-scaling hash.
func (m *Mbuf) SetRSSHash(h uint32) { m.rssHash = h }

// TxOffload returns the packed header lengths for transmit offloads
// (DPDK's tx_offload word).
func (m *Mbuf) TxOffload() uint64 { return m.txOffload }

// SetTxOffload sets the packed header lengths for transmit offloads.
func (m *Mbuf) SetTxOffload(v uint64) { m.txOffload = v }

// UserData returns a word the application may use freely.
func (m *Mbuf) UserData() uint64 { return m.userData }

// SetUserData sets the application's word.
func (m *Mbuf) SetUserData(v uint64) { m.userData = v }

// Refcnt returns the number of references to this segment.
func (m *Mbuf) Refcnt() uint32 { return atomic.LoadUint32(&m.refcnt) }

// RefcntUpdate adds delta to the reference count and returns the new
// count. Take a reference (delta 1) before handing the same segment to a
// second owner; each owner then frees it once.
func (m *Mbuf) RefcntUpdate(delta int32) uint32 {
	return atomic.AddUint32(&m.refcnt, uint32(delta))
}

// SetRefcnt sets the reference count; only the sole owner may do it.
func (m *Mbuf) SetRefcnt(n uint32) { atomic.StoreUint32(&m.refcnt, n) }
