package model82599

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
	"unsafe"
)

// Receive path, 7.1: L2 filtering (7.1.1), queue assignment and RSS
// (7.1.2), the Rx packet buffer (7.1.3), descriptors (7.1.5, 7.1.6) and the
// ring (7.1.9).

// rxMeta is what the device learns about a frame on the way in: the
// filters and RSS run before the packet buffer, so the queue is chosen then.
type rxMeta struct {
	queue   uint8
	rssType uint8
	vlan    bool   // carries a tag with the VLAN EtherType (VLNCTRL.VET)
	tci     uint16 // the tag, when vlan
	pktType uint32 // 7.1.6.2 packet type bits
	hash    uint32
	ipID    uint16
	status  uint32 // checksum and PIF status bits
	errors  uint32 // advanced (extended) error bits
	rnbc    bool   // already counted in RNBC while waiting for descriptors
}

type deliverResult int

const (
	delivered deliverResult = iota
	noDescriptors
	queueDisabled
	dropped
)

// ingress is a frame arriving from the wire (or from the Tx loopback).
func (d *Device) ingress(frame []byte, loopback bool) bool {
	if !d.linkUp && !loopback {
		return false
	}
	if d.get(regRXCTRL)&rxctrlRXEN == 0 {
		return false // statistics only increment while receive is enabled
	}
	wire := len(frame) + 4
	d.ctr.add(cRXNFGPC, 1)
	d.ctr.add(cRXNFGBC, uint64(wire))
	if wire < minFrameWithFCS || len(frame) < 14 {
		d.ctr.add(cRUC, 1) // undersize, 8.2.3.23 RUC
		return false
	}
	maxLen := standardMaxFrame
	if d.get(regHLREG0)&hlreg0JUMBOEN != 0 {
		maxLen = int(d.get(regMAXFRS) >> maxfrsMFSShift)
	}
	vet := uint16(d.get(regVLNCTRL) & vlnctrlVETMask)
	tagged := len(frame) >= 18 && binary.BigEndian.Uint16(frame[12:14]) == vet
	if tagged {
		maxLen += 4
	}
	if wire > maxLen {
		d.ctr.add(cROC, 1) // oversize, 8.2.3.23 ROC
		return false
	}
	accept, exact, bcast, mcast := d.l2Filter(frame, tagged)
	if !accept {
		if bcast { // 8.2.3.23 TPR/TOR count rejected broadcasts too
			d.ctr.add(cTPR, 1)
			d.ctr.add(cTOR, uint64(wire))
		}
		return false
	}
	d.ctr.add(cTPR, 1)
	d.ctr.add(cTOR, uint64(wire))

	var m rxMeta
	d.classify(frame, &m, tagged)
	if !exact && !bcast {
		m.status |= rxStatPIF // 7.1.6.2: passed an inexact filter only
	}

	if d.cfg.Mode == NoLatency && d.fifo.count == 0 && d.rxFlowing() {
		switch d.deliver(&m, frame) {
		case delivered:
			d.countGood(wire, bcast, mcast)
			return true
		case dropped:
			return false
		case queueDisabled:
			d.countGood(wire, bcast, mcast)
			d.ctr.add(cQPRDC+d.statIndex(regRQSMR0, int(m.queue)), 1)
			return true
		case noDescriptors:
			d.ctr.add(cRNBC, 1)
			m.rnbc = true
			if d.dropEn(int(m.queue)) {
				d.countGood(wire, bcast, mcast)
				d.ctr.add(cQPRDC+d.statIndex(regRQSMR0, int(m.queue)), 1)
				return true
			}
		}
	}
	limit := int(d.get(regRXPBSIZE0))
	if !d.fifo.push(frame, &m, limit) {
		d.ctr.add(cMPC, 1) // 8.2.3.23 MPC: no room in the Rx packet buffer
		return false
	}
	d.countGood(wire, bcast, mcast)
	if d.cfg.Mode == NoLatency {
		d.drainFIFO()
	}
	return true
}

func (d *Device) countGood(wire int, bcast, mcast bool) {
	d.ctr.add(cGPRC, 1)
	d.ctr.add(cGORC, uint64(wire))
	d.ctr.add(sizeBin(cPRC64, wire), 1)
	if bcast {
		d.ctr.add(cBPRC, 1)
	} else if mcast {
		d.ctr.add(cMPRC, 1)
	}
}

// rxFlowing reports whether the receive data path moves frames to host
// memory: RXCTRL.RXEN set and the security block not halting it
// (SECRXCTRL.RX_DIS, 4.6.7).
func (d *Device) rxFlowing() bool {
	return d.get(regRXCTRL)&rxctrlRXEN != 0 && d.get(regSECRXCTRL)&secRxRXDis == 0
}

func (d *Device) dropEn(q int) bool { return d.get(rxReg(q, rqSRRCTL))&srrctlDropEn != 0 }

// drainFIFO moves buffered frames into their rings in arrival order. A
// frame whose queue has no descriptor blocks the ones behind it unless the
// queue drops (SRRCTL.Drop_En). It reports whether it moved anything.
func (d *Device) drainFIFO() bool {
	moved := false
	for d.fifo.count > 0 && d.rxFlowing() {
		e := &d.fifo.ents[d.fifo.head]
		q := int(e.meta.queue)
		switch d.deliver(&e.meta, d.fifo.frame(e)) {
		case noDescriptors:
			if !e.meta.rnbc {
				e.meta.rnbc = true
				d.ctr.add(cRNBC, 1)
			}
			if !d.dropEn(q) {
				return moved
			}
			d.ctr.add(cQPRDC+d.statIndex(regRQSMR0, q), 1)
		case queueDisabled:
			d.ctr.add(cQPRDC+d.statIndex(regRQSMR0, q), 1)
		}
		d.fifo.pop()
		moved = true
	}
	return moved
}

// l2Filter is 7.1.1.1 L2 filtering (and 7.1.1.2 VLAN filtering).
func (d *Device) l2Filter(f []byte, tagged bool) (accept, exact, bcast, mcast bool) {
	fctrl := d.get(regFCTRL)
	da := uint64(f[0]) | uint64(f[1])<<8 | uint64(f[2])<<16 | uint64(f[3])<<24 | uint64(f[4])<<32 | uint64(f[5])<<40
	for _, a := range d.exact {
		if a == da {
			exact = true
			break
		}
	}
	switch {
	case da == 0xFFFFFFFFFFFF:
		// "Broadcast packet filtering to host - Promiscuous multicast filtering
		// is enabled (FCTRL.MPE=1b) or Broadcast Accept Mode is enabled (FCTRL.BAM = 1b)."
		bcast = true
		accept = fctrl&(fctrlBAM|fctrlMPE) != 0
	case f[0]&1 != 0:
		// "Multicast packet filtering - Promiscuous multicast filtering is
		// enabled (FCTRL.MPE=1b) or the packet matches one of the multicast filters."
		mcast = true
		accept = exact || fctrl&fctrlMPE != 0 || d.mtaHit(f)
	default:
		// "Unicast packet filtering - Promiscuous unicast filtering is enabled
		// (FCTRL.UPE=1b) or the packet passes unicast MAC filters."
		accept = exact || fctrl&fctrlUPE != 0
	}
	if accept && tagged && d.get(regVLNCTRL)&vlnctrlVFE != 0 {
		vid := uint32(binary.BigEndian.Uint16(f[14:16]) & 0xFFF)
		if d.get(regVFTA0+4*(vid/32))&(1<<(vid%32)) == 0 {
			accept = false
		}
	}
	return accept, exact, bcast, mcast
}

// mtaHit looks the destination up in the 4 Kb multicast table, indexed by
// the 12 address bits MCSTCTRL.MO selects (8.2.3.7.7).
func (d *Device) mtaHit(f []byte) bool {
	mc := d.get(regMCSTCTRL)
	if mc&mcstctrlMFE == 0 {
		return false
	}
	var v uint32
	switch mc & mcstctrlMO {
	case 0:
		v = uint32(f[4])>>4 | uint32(f[5])<<4
	case 1:
		v = uint32(f[4])>>3 | uint32(f[5])<<5
	case 2:
		v = uint32(f[4])>>2 | uint32(f[5])<<6
	case 3:
		v = uint32(f[4]) | uint32(f[5])<<8
	}
	v &= 0xFFF
	return d.get(regMTA0+4*(v>>5))&(1<<(v&31)) != 0
}

// classify parses L3/L4 for the packet type, receive checksums (7.1.11)
// and RSS (7.1.2.8), and picks the queue.
func (d *Device) classify(f []byte, m *rxMeta, tagged bool) {
	l3 := 14
	et := binary.BigEndian.Uint16(f[12:14])
	if tagged {
		m.vlan = true
		m.tci = binary.BigEndian.Uint16(f[14:16])
		et = binary.BigEndian.Uint16(f[16:18])
		l3 = 18
	}
	mrqc := d.get(regMRQC)
	var in [maxHashInput]byte
	var inLen int
	switch et {
	case 0x0800:
		inLen = d.classifyIPv4(f[l3:], m, mrqc, &in)
	case 0x86DD:
		inLen = d.classifyIPv6(f[l3:], m, mrqc, &in)
	}
	if mrqc&mrqcMRQE != mrqeRSS || inLen == 0 {
		m.rssType, m.hash = rssTypeNone, 0 // 7.1.2.8: not parsed, RSS output index 0
		return
	}
	if d.rssDirty {
		for i := range numRSSRK {
			k := d.get(regRSSRK0 + 4*uint32(i)) // byte 4i in bits 7:0
			d.rssKey[4*i], d.rssKey[4*i+1], d.rssKey[4*i+2], d.rssKey[4*i+3] = byte(k), byte(k>>8), byte(k>>16), byte(k>>24)
		}
		d.rssTbl.build(&d.rssKey)
		d.rssDirty = false
	}
	m.hash = d.rssTbl.hash(in[:inLen])
	idx := m.hash & 0x7F // 7.1.2.8.2: the 7 LSBs of the hash index RETA
	entry := d.get(regRETA0+4*(idx/4)) >> (8 * (idx % 4))
	m.queue = uint8(entry & 0xF) // RSS output index, bits 3:0 of the entry
}

func (d *Device) classifyIPv4(ip []byte, m *rxMeta, mrqc uint32, in *[maxHashInput]byte) int {
	if len(ip) < 20 || ip[0]>>4 != 4 {
		return 0
	}
	ihl := int(ip[0]&0xF) * 4
	if ihl < 20 || len(ip) < ihl {
		return 0
	}
	m.pktType |= ptIPv4
	if ihl > 20 {
		m.pktType |= ptIPv4Ex
	}
	m.status |= rxStatIPCS
	if fold(sum16(ip[:ihl], 0)) != 0xFFFF {
		m.errors |= rxErrIPE
	}
	m.ipID = binary.BigEndian.Uint16(ip[4:6])
	end := int(binary.BigEndian.Uint16(ip[2:4]))
	if end > len(ip) || end < ihl {
		end = len(ip)
	}
	fragmented := binary.BigEndian.Uint16(ip[6:8])&0x3FFF != 0 // MF or an offset
	proto := ip[9]
	l4 := ip[ihl:end]
	copy(in[0:8], ip[12:20])
	if !fragmented {
		pseudo := sum16(ip[12:20], 0) + uint64(proto) + uint64(len(l4))
		if hashed := d.l4(proto, l4, pseudo, m, false); hashed {
			copy(in[8:12], l4[0:4])
			switch {
			case proto == 6 && mrqc&mrqcTCPIPv4 != 0:
				m.rssType = rssTypeTCPIPv4
				return 12
			case proto == 17 && mrqc&mrqcUDPIPv4 != 0:
				m.rssType = rssTypeUDPIPv4
				return 12
			}
		}
	}
	if mrqc&mrqcIPv4 != 0 {
		m.rssType = rssTypeIPv4
		return 8
	}
	return 0
}

func (d *Device) classifyIPv6(ip []byte, m *rxMeta, mrqc uint32, in *[maxHashInput]byte) int {
	if len(ip) < 40 || ip[0]>>4 != 6 {
		return 0
	}
	m.pktType |= ptIPv6
	end := 40 + int(binary.BigEndian.Uint16(ip[4:6]))
	if end > len(ip) {
		end = len(ip)
	}
	nh, off := ip[6], 40
	fragmented, ext := false, false
walk:
	for range 8 {
		switch nh {
		case 0, 43, 60: // hop-by-hop, routing, destination options
			if off+8 > end {
				return 0
			}
			ext = true
			nh, off = ip[off], off+(int(ip[off+1])+1)*8
		case 44: // fragment
			if off+8 > end {
				return 0
			}
			ext = true
			if binary.BigEndian.Uint16(ip[off+2:off+4])&0xFFF9 != 0 {
				fragmented = true
			}
			nh, off = ip[off], off+8
		default:
			break walk
		}
	}
	if ext {
		m.pktType |= ptIPv6Ex
	}
	copy(in[0:32], ip[8:40])
	if !fragmented && off <= end {
		l4 := ip[off:end]
		pseudo := sum16(ip[8:40], 0) + uint64(nh) + uint64(len(l4))
		if hashed := d.l4(nh, l4, pseudo, m, true); hashed {
			copy(in[32:36], l4[0:4])
			switch {
			case nh == 6 && mrqc&(mrqcTCPIPv6|mrqcTCPIPv6Ex) != 0:
				m.rssType = rssTypeTCPIPv6
				return 36
			case nh == 17 && mrqc&(mrqcUDPIPv6|mrqcUDPIPv6Ex) != 0:
				m.rssType = rssTypeUDPIPv6
				return 36
			}
		}
	}
	if mrqc&(mrqcIPv6|mrqcIPv6Ex) != 0 {
		m.rssType = rssTypeIPv6
		return 32
	}
	return 0
}

// l4 sets the L4 packet type and checksum status; it reports whether the
// segment has ports to hash (TCP or UDP with a complete header).
func (d *Device) l4(proto byte, l4 []byte, pseudo uint64, m *rxMeta, v6 bool) bool {
	switch proto {
	case 6:
		if len(l4) < 20 {
			return false
		}
		m.pktType |= ptTCP
	case 17:
		if len(l4) < 8 {
			return false
		}
		m.pktType |= ptUDP
		if !v6 && binary.BigEndian.Uint16(l4[6:8]) == 0 {
			return true // no UDP checksum: nothing to verify
		}
		m.status |= rxStatUDPCS
	case 132:
		m.pktType |= ptSCTP
		return false
	default:
		return false
	}
	m.status |= rxStatL4CS
	if fold(sum16(l4, pseudo)) != 0xFFFF {
		m.errors |= rxErrTCPE
	}
	return true
}

// sum16 adds b as big-endian 16-bit words to s, one's complement style but
// unfolded. Summing 64-bit big-endian chunks as two 32-bit halves gives the
// same folded result, since 2^16 is 1 modulo 0xFFFF.
func sum16(b []byte, s uint64) uint64 {
	for len(b) >= 8 {
		w := binary.BigEndian.Uint64(b)
		s += w>>32 + w&0xFFFFFFFF
		b = b[8:]
	}
	for len(b) >= 2 {
		s += uint64(b[0])<<8 | uint64(b[1])
		b = b[2:]
	}
	if len(b) == 1 {
		s += uint64(b[0]) << 8
	}
	return s
}

func fold(s uint64) uint16 {
	for s>>16 != 0 {
		s = s&0xFFFF + s>>16
	}
	return uint16(s)
}

// deliver writes one frame into its queue's ring (7.1.9): descriptors from
// RDH up to but not including RDT belong to the device.
func (d *Device) deliver(m *rxMeta, frame []byte) deliverResult {
	q := int(m.queue)
	rq := &d.rx[q]
	if rq.state != qOn {
		return queueDisabled
	}
	strip := m.vlan && d.get(rxReg(q, rqRXDCTL))&rxdctlVME != 0
	keepCRC := d.get(regHLREG0)&hlreg0RXCRCSTRP == 0
	total := len(frame)
	if strip {
		total -= 4
	}
	var fcs [4]byte
	if keepCRC {
		binary.LittleEndian.PutUint32(fcs[:], crc32.ChecksumIEEE(frame))
		total += 4
	}
	need := uint32((total + rq.bufSize - 1) / rq.bufSize)
	avail := (rq.tail + rq.size - rq.head) % rq.size
	if avail < need {
		return noDescriptors
	}
	src := frameView{frame: frame, strip: strip, fcs: fcs, keepCRC: keepCRC}
	idx := rq.head
	written := 0
	for i := uint32(0); i < need; i++ {
		desc := rq.ring[idx*descSize : idx*descSize+descSize]
		addr := binary.LittleEndian.Uint64(desc[0:8])
		buf, err := d.dma(addr, rq.bufSize)
		if err != nil {
			d.violate(ruleRxBufDMA, "queue %d descriptor %d: buffer %#x+%d: %v; frame dropped", q, idx, addr, rq.bufSize, err)
			return dropped
		}
		n := src.copyAt(buf, written)
		written += n
		last := i == need-1
		if rq.legacy {
			writeBackLegacy(desc, m, n, last, strip)
		} else {
			d.writeBackAdvanced(desc, m, n, last, strip)
		}
		idx++
		if idx == rq.size {
			idx = 0
		}
	}
	rq.head = idx
	si := d.statIndex(regRQSMR0, q)
	d.ctr.add(cQPRC+si, 1)
	d.ctr.add(cQBRC+si, uint64(len(frame)+4))
	d.ctr.add(cRXDGPC, 1)
	d.ctr.add(cRXDGBC, uint64(total))
	d.raiseQueue(q, false)
	return delivered
}

// writeBackAdvanced fills the advanced write-back format of 7.1.6.2 and
// sets DD last, with an atomic store, so a driver polling the status word
// sees a complete descriptor.
func (d *Device) writeBackAdvanced(desc []byte, m *rxMeta, n int, last, strip bool) {
	dw1 := uint32(m.ipID) // fragment checksum (bits 31:16) is not computed
	if d.get(regRXCSUM)&rxcsumPCSD != 0 {
		dw1 = m.hash
	}
	binary.LittleEndian.PutUint32(desc[0:4], uint32(m.rssType)|m.pktType)
	binary.LittleEndian.PutUint32(desc[4:8], dw1)
	var tag uint32
	status := uint32(rxStatDD) | m.status
	if strip {
		status |= rxStatVP
		tag = uint32(m.tci)
	}
	var errs uint32
	if last {
		status |= rxStatEOP
		errs = m.errors
	}
	binary.LittleEndian.PutUint32(desc[12:16], uint32(n)|tag<<16)
	store32(desc[8:12], status|errs)
}

// writeBackLegacy fills the legacy write-back of 7.1.5; the buffer address
// stays.
func writeBackLegacy(desc []byte, m *rxMeta, n int, last, strip bool) {
	binary.LittleEndian.PutUint32(desc[8:12], uint32(n)) // fragment checksum not computed
	status := uint32(rxStatDD) | m.status
	var tag, errs uint32
	if strip {
		status |= rxStatVP
		tag = uint32(m.tci)
	}
	if last {
		status |= rxStatEOP
		if m.errors&rxErrIPE != 0 {
			errs |= rxLegErrIPE
		}
		if m.errors&rxErrTCPE != 0 {
			errs |= rxLegErrTCPE
		}
	}
	store32(desc[12:16], status&0xFF|errs<<8|tag<<16)
}

// store32 writes a little-endian word the driver may be polling.
func store32(b []byte, v uint32) {
	p := unsafe.Pointer(&b[0])
	if uintptr(p)&3 == 0 {
		atomic.StoreUint32((*uint32)(p), v) // little-endian host: the byte order matches
		return
	}
	binary.LittleEndian.PutUint32(b, v)
}

// frameView is the byte stream the device writes for a frame: the frame,
// less the VLAN tag when stripped, plus the FCS when it is kept.
type frameView struct {
	frame   []byte
	strip   bool
	keepCRC bool
	fcs     [4]byte
}

// copyAt copies the view from offset off into dst and returns the count.
func (v *frameView) copyAt(dst []byte, off int) int {
	n := 0
	seg := func(s []byte) {
		if off >= len(s) {
			off -= len(s)
			return
		}
		c := copy(dst[n:], s[off:])
		n += c
		off = 0
	}
	if v.strip {
		seg(v.frame[:12])
		seg(v.frame[16:])
	} else {
		seg(v.frame)
	}
	if v.keepCRC {
		seg(v.fcs[:])
	}
	return n
}

// rxFIFO is the Rx packet buffer (7.1.3): frames that passed the filters
// and wait for descriptors, in arrival order, bounded by RXPBSIZE[0].
type rxFIFO struct {
	buf   []byte
	ents  []fifoEntry
	head  int
	count int
	wr    int // next free byte
}

type fifoEntry struct {
	meta rxMeta
	off  int
	n    int
}

func (f *rxFIFO) init(size int) {
	f.buf = make([]byte, size)
	f.ents = make([]fifoEntry, size/minFrameWithFCS+1)
}

func (f *rxFIFO) reset() { f.head, f.count, f.wr = 0, 0, 0 }

func (f *rxFIFO) frame(e *fifoEntry) []byte { return f.buf[e.off : e.off+e.n] }

// push copies a frame in; limit is the packet buffer size in bytes.
func (f *rxFIFO) push(frame []byte, m *rxMeta, limit int) bool {
	n := len(frame)
	if limit > len(f.buf) || limit <= 0 {
		limit = len(f.buf)
	}
	if f.count == len(f.ents) || n > limit {
		return false
	}
	off := -1
	if f.count == 0 {
		off = 0
	} else {
		rd := f.ents[f.head].off
		switch {
		case f.wr > rd && limit-f.wr >= n:
			off = f.wr
		case f.wr > rd && rd > n:
			off = 0
		case f.wr < rd && rd-f.wr > n:
			off = f.wr
		}
	}
	if off < 0 {
		return false
	}
	copy(f.buf[off:], frame)
	f.wr = off + n
	i := (f.head + f.count) % len(f.ents)
	f.ents[i] = fifoEntry{meta: *m, off: off, n: n}
	f.count++
	return true
}

func (f *rxFIFO) pop() {
	f.head = (f.head + 1) % len(f.ents)
	f.count--
	if f.count == 0 {
		f.wr = 0
		f.head = 0
	}
}
