package model82599

import (
	"encoding/binary"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

// The tests program the device the way a driver following the datasheet
// would, with register offsets written out here from the datasheet rather
// than taken from the model, so a wrong offset in the model shows up.
const (
	oCTRL      = 0x00000
	oSTATUS    = 0x00008
	oCTRLEXT   = 0x00018
	oEICR      = 0x00800
	oEICS      = 0x00808
	oEIMS      = 0x00880
	oEIMC      = 0x00888
	oGPIE      = 0x00898
	oRDRXCTL   = 0x02F00
	oRXCTRL    = 0x03000
	oRXPBSIZE0 = 0x03C00
	oHLREG0    = 0x04240
	oAUTOC     = 0x042A0
	oLINKS     = 0x042A4
	oDMATXCTL  = 0x04A80
	oRTTDCS    = 0x04900
	oRXCSUM    = 0x05000
	oFCTRL     = 0x05080
	oVLNCTRL   = 0x05088
	oMCSTCTRL  = 0x05090
	oMTA0      = 0x05200
	oSECRXCTRL = 0x08D00
	oSECRXSTAT = 0x08D04
	oTXPBSIZE0 = 0x0CC00
	oEEC       = 0x10010
	oMRQC      = 0x0EC80
	oRETA0     = 0x0EB00
	oRSSRK0    = 0x0EB80
	oRAL0      = 0x0A200
	oRAH0      = 0x0A204

	oGPRC  = 0x04074
	oGPTC  = 0x04080
	oGORCL = 0x04088
	oGORCH = 0x0408C
	oGOTCL = 0x04090
	oGOTCH = 0x04094
	oTPR   = 0x040D0
	oTPT   = 0x040D4
	oBPRC  = 0x04078
	oMPRC  = 0x0407C
	oRUC   = 0x040A4
	oMPC0  = 0x03FA0
	oRNBC0 = 0x03FC0

	bitRST    = 1 << 26
	bitRXEN   = 1 << 0
	bitTE     = 1 << 0
	bitENABLE = 1 << 25
	bitARD    = 1 << 9
	bitDMAIDN = 1 << 3
	bitLinkUp = 1 << 30
)

func oRDBAL(q int) uint32     { return rxq(q, 0x00) }
func oRDBAH(q int) uint32     { return rxq(q, 0x04) }
func oRDLEN(q int) uint32     { return rxq(q, 0x08) }
func oDCARXCTRL(q int) uint32 { return rxq(q, 0x0C) }
func oRDH(q int) uint32       { return rxq(q, 0x10) }
func oSRRCTL(q int) uint32    { return rxq(q, 0x14) }
func oRDT(q int) uint32       { return rxq(q, 0x18) }
func oRXDCTL(q int) uint32    { return rxq(q, 0x28) }
func oRSCCTL(q int) uint32    { return rxq(q, 0x2C) }
func oQPRC(i int) uint32      { return 0x01030 + 0x40*uint32(i) }
func oQPRDC(i int) uint32     { return 0x01430 + 0x40*uint32(i) }
func oQBRCL(i int) uint32     { return 0x01034 + 0x40*uint32(i) }
func oQPTC(i int) uint32      { return 0x08680 + 4*uint32(i) }
func oTDBAL(q int) uint32     { return 0x06000 + 0x40*uint32(q) }
func oTDBAH(q int) uint32     { return 0x06004 + 0x40*uint32(q) }
func oTDLEN(q int) uint32     { return 0x06008 + 0x40*uint32(q) }
func oTDH(q int) uint32       { return 0x06010 + 0x40*uint32(q) }
func oTDT(q int) uint32       { return 0x06018 + 0x40*uint32(q) }
func oTXDCTL(q int) uint32    { return 0x06028 + 0x40*uint32(q) }
func oTDWBAL(q int) uint32    { return 0x06038 + 0x40*uint32(q) }
func oTDWBAH(q int) uint32    { return 0x0603C + 0x40*uint32(q) }
func oIVAR(n int) uint32      { return 0x00900 + 4*uint32(n) }

func rxq(q int, r uint32) uint32 {
	if q < 64 {
		return 0x01000 + 0x40*uint32(q) + r
	}
	return 0x0D000 + 0x40*uint32(q-64) + r
}

var (
	macDev  = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	macPeer = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}
)

var groupSeq, zoneSeq atomic.Int64

// newMemory is hugemem group memory without hugepages; the DMA function
// hands out VA-mode IOVAs (IOVABase + group offset) as the driver will.
func newMemory(t testing.TB) *hugemem.Memory {
	t.Helper()
	m, err := hugemem.Create(hugemem.Options{
		Prefix:      fmt.Sprintf("m82599-%d-%d", os.Getpid(), groupSeq.Add(1)),
		NoHuge:      true,
		Limit:       64 << 20,
		SegmentSize: 16 << 20,
		RuntimeDir:  t.TempDir(),
	})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func dmaFor(m *hugemem.Memory) func(uint64, int) ([]byte, error) {
	return func(iova uint64, n int) ([]byte, error) {
		if iova < hugemem.IOVABase {
			return nil, fmt.Errorf("IOVA %#x is below the VA-mode base %#x", iova, uint64(hugemem.IOVABase))
		}
		off := iova - hugemem.IOVABase
		if n < 0 || !m.Contains(off, uint64(n)) {
			return nil, fmt.Errorf("IOVA range %#x+%d is outside group memory", iova, n)
		}
		return unsafe.Slice((*byte)(m.Ptr(off)), n), nil
	}
}

type fakeClock struct{ t time.Time }

func (c *fakeClock) now() time.Time           { return c.t }
func (c *fakeClock) advance(by time.Duration) { c.t = c.t.Add(by) }

// harness is one modelled port plus the memory and the test's view of it.
type harness struct {
	t     testing.TB
	mem   *hugemem.Memory
	dev   *Device
	clock *fakeClock
	sent  [][]byte
	viol  []string
}

type harnessOpt func(*Config)

func pedantic(c *Config)                                     { c.Pedantic = true }
func polled(c *Config)                                       { c.Mode = Polled }
func linkDelay(d time.Duration) harnessOpt                   { return func(c *Config) { c.LinkDelay = d } }
func withDMA(f func(uint64, int) ([]byte, error)) harnessOpt { return func(c *Config) { c.DMA = f } }

func newHarness(t testing.TB, opts ...harnessOpt) *harness {
	t.Helper()
	h := &harness{t: t, mem: newMemory(t), clock: &fakeClock{t: time.Unix(1700000000, 0)}}
	cfg := Config{
		DMA:       dmaFor(h.mem),
		MAC:       macDev,
		Violation: func(msg string) { h.viol = append(h.viol, msg) },
		OnTransmit: func(f []byte) {
			h.sent = append(h.sent, append([]byte(nil), f...))
		},
	}
	for _, o := range opts {
		o(&cfg)
	}
	h.dev = newDevice(cfg, h.clock.now)
	return h
}

func (h *harness) r(off uint32) uint32    { return h.dev.Read32(off) }
func (h *harness) w(off uint32, v uint32) { h.dev.Write32(off, v) }
func (h *harness) set(off, bits uint32)   { h.w(off, h.r(off)|bits) }
func (h *harness) clr(off, bits uint32)   { h.w(off, h.r(off)&^bits) }

// poll reads off until the bits are set, as a driver would, failing after
// a bounded number of reads.
func (h *harness) poll(off, bits uint32) {
	h.t.Helper()
	for range 100 {
		if h.r(off)&bits == bits {
			return
		}
	}
	h.t.Fatalf("register %#x never showed bits %#x (last read %#x)", off, bits, h.r(off))
}

// zone reserves DMA memory and returns it with its IOVA.
func (h *harness) zone(size, align uint64) ([]byte, uint64) {
	h.t.Helper()
	z, err := h.mem.Reserve(fmt.Sprintf("z%d", zoneSeq.Add(1)), size, align)
	require.NoError(h.t, err)
	return z.Bytes()[:size], hugemem.IOVABase + z.Off
}

func (h *harness) requireNoViolations() {
	h.t.Helper()
	require.Empty(h.t, h.viol, "violations reported")
}

// requireViolation checks that exactly the given rules were reported, in
// order, and clears the list.
func (h *harness) requireViolation(ids ...string) {
	h.t.Helper()
	var got []string
	for _, v := range h.viol {
		got = append(got, v[1:strings.IndexByte(v, ']')])
	}
	require.Equal(h.t, ids, got, "violations: %q", h.viol)
	h.viol = nil
}

// resetAndInit is 4.6.3: disable interrupts, global reset, wait, disable
// interrupts again, wait for the EEPROM and DMA, restart auto-negotiation,
// clear statistics, general receive and transmit configuration.
func (h *harness) resetAndInit() {
	h.t.Helper()
	h.w(oEIMC, 0x7FFFFFFF)
	h.set(oCTRL, bitRST)
	h.clock.advance(10 * time.Millisecond)
	require.Zero(h.t, h.r(oCTRL)&bitRST, "CTRL.RST self-clears")
	h.w(oEIMC, 0x7FFFFFFF)
	h.poll(oEEC, bitARD)
	h.poll(oRDRXCTL, bitDMAIDN)
	h.set(oAUTOC, 1<<12) // Restart_AN
	h.poll(oLINKS, bitLinkUp)
	for _, o := range []uint32{oGPRC, oGPTC, oGORCL, oGORCH, oGOTCL, oGOTCH} {
		h.r(o)
	}
	// 4.6.7 global receive setup.
	h.clr(oRXCTRL, bitRXEN)
	rd := h.r(oRDRXCTL)
	rd &^= 0x1F << 17          // RSCFRSTSIZE = 0
	rd |= 1<<1 | 1<<25 | 1<<26 // CRCStrip, RSCACKC, FCOE_WRFIX
	h.w(oRDRXCTL, rd)
	h.set(oFCTRL, 1<<10) // BAM
	h.set(oCTRLEXT, 1<<16)
	// 4.6.8 global transmit setup.
	h.set(oRTTDCS, 1<<6)
	h.w(oTXPBSIZE0, 0xA0<<10)
	h.clr(oRTTDCS, 1<<6)
}

// enableRx sets RXEN the 4.6.7 way, halting the security block around it.
func (h *harness) enableRx() {
	h.set(oSECRXCTRL, 1<<1)
	h.poll(oSECRXSTAT, 1)
	h.set(oRXCTRL, bitRXEN)
	h.clr(oSECRXCTRL, 1<<1)
}

// rxRing is a receive queue the test drives like a driver.
type rxRing struct {
	h       *harness
	q       int
	n       int
	bufSize int
	ring    []byte
	bufs    [][]byte
	bufIOVA []uint64
	next    int // next descriptor to look at
}

type rxOpts struct {
	n       int
	bufKB   uint32
	dropEn  bool
	legacy  bool
	vme     bool
	noStart bool
}

// setupRx programs queue q (4.6.7 per-queue steps) and starts it unless
// noStart: enable, poll, fill, bump the tail.
func (h *harness) setupRx(q int, o rxOpts) *rxRing {
	h.t.Helper()
	if o.n == 0 {
		o.n = 64
	}
	if o.bufKB == 0 {
		o.bufKB = 2
	}
	ring, iova := h.zone(uint64(o.n*16), 128)
	r := &rxRing{h: h, q: q, n: o.n, bufSize: int(o.bufKB) * 1024, ring: ring}
	all, allIOVA := h.zone(uint64(o.n*r.bufSize), 128)
	for i := range o.n {
		r.bufs = append(r.bufs, all[i*r.bufSize:(i+1)*r.bufSize:(i+1)*r.bufSize])
		r.bufIOVA = append(r.bufIOVA, allIOVA+uint64(i*r.bufSize))
	}
	h.w(oRDBAL(q), uint32(iova))
	h.w(oRDBAH(q), uint32(iova>>32))
	h.w(oRDLEN(q), uint32(o.n*16))
	srr := o.bufKB
	if !o.legacy {
		srr |= 1 << 25 // DESCTYPE advanced one buffer
	}
	if o.dropEn {
		srr |= 1 << 28
	}
	h.w(oSRRCTL(q), srr)
	h.clr(oDCARXCTRL(q), 1<<12)
	h.w(oRDH(q), 0)
	h.w(oRDT(q), 0)
	for i := range o.n {
		r.arm(i)
	}
	if o.vme {
		h.set(oRXDCTL(q), 1<<30)
	}
	if !o.noStart {
		h.set(oRXDCTL(q), bitENABLE)
		h.poll(oRXDCTL(q), bitENABLE)
		h.w(oRDT(q), uint32(o.n-1))
	}
	return r
}

// arm writes descriptor i in read format: packet buffer address, header 0.
func (r *rxRing) arm(i int) {
	d := r.ring[i*16 : i*16+16]
	binary.LittleEndian.PutUint64(d[0:8], r.bufIOVA[i])
	binary.LittleEndian.PutUint64(d[8:16], 0)
}

type rxDesc struct {
	lo, rss, status, length, vlan uint32
	data                          []byte
}

// take returns the next completed descriptor (DD set), re-arms it and
// gives it back to the device by moving the tail.
func (r *rxRing) take() (rxDesc, bool) {
	d := r.ring[r.next*16 : r.next*16+16]
	st := atomic.LoadUint32((*uint32)(unsafe.Pointer(&d[8])))
	if st&1 == 0 {
		return rxDesc{}, false
	}
	w3 := binary.LittleEndian.Uint32(d[12:16])
	out := rxDesc{
		lo:     binary.LittleEndian.Uint32(d[0:4]),
		rss:    binary.LittleEndian.Uint32(d[4:8]),
		status: st,
		length: w3 & 0xFFFF,
		vlan:   w3 >> 16,
	}
	out.data = append([]byte(nil), r.bufs[r.next][:out.length]...)
	r.arm(r.next)
	r.h.w(oRDT(r.q), uint32(r.next))
	r.next = (r.next + 1) % r.n
	return out, true
}

// txRing is a transmit queue the test drives like a driver.
type txRing struct {
	h       *harness
	q       int
	n       int
	ring    []byte
	bufs    [][]byte
	bufIOVA []uint64
	tail    int
}

func (h *harness) setupTx(q, n int, start bool) *txRing {
	h.t.Helper()
	ring, iova := h.zone(uint64(n*16), 128)
	t := &txRing{h: h, q: q, n: n, ring: ring}
	all, allIOVA := h.zone(uint64(n*2048), 128)
	for i := range n {
		t.bufs = append(t.bufs, all[i*2048:(i+1)*2048:(i+1)*2048])
		t.bufIOVA = append(t.bufIOVA, allIOVA+uint64(i*2048))
	}
	h.w(oTDBAL(q), uint32(iova))
	h.w(oTDBAH(q), uint32(iova>>32))
	h.w(oTDLEN(q), uint32(n*16))
	h.w(oTXDCTL(q), 36|8<<8|4<<16) // PTHRESH, HTHRESH, WTHRESH as DPDK sets them
	h.w(oTDH(q), 0)
	h.w(oTDT(q), 0)
	if start {
		h.set(oDMATXCTL, bitTE)
		h.set(oTXDCTL(q), bitENABLE)
		h.poll(oTXDCTL(q), bitENABLE)
	}
	return t
}

// Advanced transmit data descriptor bits, 7.2.3.2.4.
const (
	txEOP  = 1 << 24
	txIFCS = 1 << 25
	txRS   = 1 << 27
	txDEXT = 1 << 29
	txVLE  = 1 << 30
	txData = 3 << 20
)

// put writes one advanced data descriptor for buf without moving the tail.
func (t *txRing) put(frame []byte, cmd uint32, paylen int) int {
	i := t.tail
	copy(t.bufs[i], frame)
	d := t.ring[i*16 : i*16+16]
	binary.LittleEndian.PutUint64(d[0:8], t.bufIOVA[i])
	binary.LittleEndian.PutUint32(d[8:12], uint32(len(frame))|txData|txDEXT|cmd)
	binary.LittleEndian.PutUint32(d[12:16], uint32(paylen)<<14)
	t.tail = (t.tail + 1) % t.n
	return i
}

// send queues one single-descriptor frame with EOP|IFCS|RS and bumps TDT.
func (t *txRing) send(frame []byte) int {
	i := t.put(frame, txEOP|txIFCS|txRS, len(frame))
	t.h.w(oTDT(t.q), uint32(t.tail))
	return i
}

func (t *txRing) done(i int) bool {
	d := t.ring[i*16 : i*16+16]
	return atomic.LoadUint32((*uint32)(unsafe.Pointer(&d[12])))&1 != 0
}

// Frame builders, with checksums computed here independently of the model.

func csum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xFFFF {
		s = s>>16 + s&0xFFFF
	}
	return ^uint16(s)
}

func ether(dst, src [6]byte, etherType uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst[:]...), src[:]...), byte(etherType>>8), byte(etherType))
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// l4seg builds a TCP (20-byte header) or UDP segment with its checksum over
// the given pseudo-header sum.
func l4seg(proto byte, sport, dport uint16, payload []byte, pseudo func(l4len int) uint32) []byte {
	var s []byte
	if proto == 6 {
		s = make([]byte, 20, 20+len(payload))
		binary.BigEndian.PutUint16(s[0:], sport)
		binary.BigEndian.PutUint16(s[2:], dport)
		s[12] = 5 << 4
		s[13] = 0x10 // ACK
		binary.BigEndian.PutUint16(s[14:], 1024)
	} else {
		s = make([]byte, 8, 8+len(payload))
		binary.BigEndian.PutUint16(s[0:], sport)
		binary.BigEndian.PutUint16(s[2:], dport)
		binary.BigEndian.PutUint16(s[4:], uint16(8+len(payload)))
	}
	s = append(s, payload...)
	c := csum(s, pseudo(len(s)))
	if proto == 6 {
		binary.BigEndian.PutUint16(s[16:], c)
	} else {
		if c == 0 {
			c = 0xFFFF
		}
		binary.BigEndian.PutUint16(s[6:], c)
	}
	return s
}

func ipv4(src, dst [4]byte, proto byte, sport, dport uint16, payload []byte) []byte {
	seg := l4seg(proto, sport, dport, payload, func(n int) uint32 {
		var s uint32
		for i := 0; i < 4; i += 2 {
			s += (uint32(src[i])<<8 | uint32(src[i+1])) + (uint32(dst[i])<<8 | uint32(dst[i+1]))
		}
		return s + uint32(proto) + uint32(n)
	})
	ip := make([]byte, 20, 20+len(seg))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(seg)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234) // identification
	ip[8] = 64
	ip[9] = proto
	copy(ip[12:16], src[:])
	copy(ip[16:20], dst[:])
	binary.BigEndian.PutUint16(ip[10:], csum(ip, 0))
	return append(ip, seg...)
}

func ipv6(src, dst [16]byte, proto byte, sport, dport uint16, payload []byte) []byte {
	seg := l4seg(proto, sport, dport, payload, func(n int) uint32 {
		var s uint32
		for i := 0; i < 16; i += 2 {
			s += (uint32(src[i])<<8 | uint32(src[i+1])) + (uint32(dst[i])<<8 | uint32(dst[i+1]))
		}
		return s + uint32(proto) + uint32(n)
	})
	ip := make([]byte, 40, 40+len(seg))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(seg)))
	ip[6] = proto
	ip[7] = 64
	copy(ip[8:24], src[:])
	copy(ip[24:40], dst[:])
	return append(ip, seg...)
}

func udpFrame(dst [6]byte, payloadLen int) []byte {
	return ether(dst, macPeer, 0x0800, ipv4([4]byte{10, 0, 0, 2}, [4]byte{10, 0, 0, 1}, 17, 1234, 5678, make([]byte, payloadLen)))
}
