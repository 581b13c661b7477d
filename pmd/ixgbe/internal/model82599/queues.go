package model82599

import "fmt"

// Per-queue registers: ring programming, the enable handshake, head and
// tail. 4.6.7 and 4.6.8 give the order; 7.1.9 and 7.2.3.3 the ring rules.

func (d *Device) readRxQueue(q int, off uint32) uint32 {
	rq := &d.rx[q]
	switch off - rxReg(q, 0) {
	case rqRDH:
		return rq.head
	case rqRDT:
		return rq.tail
	case rqRXDCTL:
		v := d.get(off)
		switch rq.state {
		case qEnabling:
			if d.cfg.Mode == Polled || rq.reads > 0 {
				rq.reads--
				return v &^ rxdctlEnable
			}
			d.rxAck(q)
			fallthrough
		case qOn:
			rq.seen = true
			return v | rxdctlEnable
		}
		return v &^ rxdctlEnable
	}
	return d.get(off)
}

func (d *Device) writeRxQueue(q int, off, v uint32) {
	rq := &d.rx[q]
	switch r := off - rxReg(q, 0); r {
	case rqRDBAL, rqRDBAH, rqRDLEN, rqSRRCTL:
		if rq.state != qOff && d.get(off) != v {
			d.violate(ruleRxProgEnabled, "queue %d: %s changed from %#x to %#x while RXDCTL.ENABLE is set", q, regName(off), d.get(off), v)
		}
		switch r {
		case rqRDBAL:
			if v&0x7F != 0 {
				d.violate(ruleRxRingAlign, "queue %d: RDBAL written %#x; the device ignores bits 6:0", q, v)
				v &^= 0x7F
			}
		case rqRDLEN:
			if v&^rdlenMask != 0 {
				d.violate(ruleRxRingLen, "queue %d: RDLEN written %d (%#x)", q, v, v)
				v &= rdlenMask
			}
		}
		d.set(off, v)
	case rqRDH:
		if rq.state != qOff {
			if v != rq.head {
				d.violate(ruleRxHeadWrite, "queue %d: RDH written %d while the queue is enabled (head is %d)", q, v, rq.head)
			}
			return
		}
		rq.head = v & 0xFFFF
	case rqRDT:
		d.writeRDT(q, v)
	case rqRXDCTL:
		v &^= rxdctlSWFLSH
		switch {
		case v&rxdctlEnable != 0 && rq.state == qOff:
			d.set(off, v)
			if !d.rxEnable(q) {
				d.set(off, v&^rxdctlEnable)
			}
		case v&rxdctlEnable == 0 && rq.state != qOff:
			if rq.state == qEnabling {
				d.enabling--
			}
			*rq = rxQueue{head: rq.head, tail: rq.tail}
			d.set(off, v)
		default:
			d.set(off, v)
		}
	default:
		d.set(off, v)
	}
}

func (d *Device) writeRDT(q int, v uint32) {
	rq := &d.rx[q]
	if rq.state != qOn || !rq.seen {
		if v != rq.tail && v != rq.head { // tail = head hands nothing over: a ring reset, not a bump
			d.violate(ruleRxTailEarly, "queue %d: RDT moved from %d to %d (head %d) %s", q, rq.tail, v, rq.head, enableStory(rq.state, rq.seen))
		}
		rq.tail = v & 0xFFFF
		return
	}
	if v >= rq.size {
		d.violate(ruleRxTailRange, "queue %d: RDT written %d but the ring has %d descriptors", q, v, rq.size)
		return
	}
	rq.tail = v
	if d.cfg.Mode == NoLatency {
		d.drainFIFO()
	}
}

func enableStory(s qState, seen bool) string {
	switch {
	case s == qOff:
		return "while the queue is disabled"
	case s == qEnabling:
		return "before the enable took effect (ENABLE still reads 0)"
	case !seen:
		return "before the driver read ENABLE back as 1"
	}
	return ""
}

// rxEnable checks a queue's programming when RXDCTL.ENABLE is set and maps
// its ring. It reports whether the queue starts enabling.
func (d *Device) rxEnable(q int) bool {
	rq := &d.rx[q]
	base := uint64(d.get(rxReg(q, rqRDBAH)))<<32 | uint64(d.get(rxReg(q, rqRDBAL)))
	length := d.get(rxReg(q, rqRDLEN))
	srrctl := d.get(rxReg(q, rqSRRCTL))
	if base == 0 || length == 0 {
		d.violate(ruleRxRingUnset, "queue %d: RXDCTL.ENABLE set with RDBAH:RDBAL=%#x RDLEN=%d; the queue stays disabled", q, base, length)
		return false
	}
	bsize := srrctl & srrctlBSIZEPKT
	if bsize == 0 || bsize > 16 {
		d.violate(ruleRxBufSize, "queue %d: RXDCTL.ENABLE set with SRRCTL.BSIZEPACKET=%d; the queue stays disabled", q, bsize)
		return false
	}
	dt := (srrctl & srrctlDescType) >> srrctlDescShift
	if dt != descTypeLegacy && dt != descTypeAdvOne {
		d.violate(ruleRxDescType, "queue %d: RXDCTL.ENABLE set with SRRCTL.DESCTYPE=%03b; the queue stays disabled", q, dt)
		return false
	}
	ring, err := d.dma(base, int(length))
	if err != nil {
		d.violate(ruleRxRingDMA, "queue %d: ring %#x+%d: %v; the queue stays disabled", q, base, length, err)
		return false
	}
	size := length / descSize
	if rq.head >= size || rq.tail >= size {
		d.violate(ruleRxTailRange, "queue %d: enabled with RDH=%d RDT=%d but the ring has %d descriptors; both reset to 0", q, rq.head, rq.tail, size)
		rq.head, rq.tail = 0, 0
	}
	if d.get(rxReg(q, rqDCARXCTRL))&dcaRxctrlBit12 != 0 {
		d.violate(ruleRxDCABit12, "queue %d: RXDCTL.ENABLE set with DCA_RXCTRL=%#x", q, d.get(rxReg(q, rqDCARXCTRL)))
	}
	if d.get(rxReg(q, rqRSCCTL))&rscctlRSCEN != 0 {
		d.violate(ruleUnsupRSC, "queue %d: RSCCTL.RSCEN is set; frames are delivered one per packet", q)
	}
	rq.ring = ring
	rq.size = size
	rq.bufSize = int(bsize) * 1024
	rq.legacy = dt == descTypeLegacy
	rq.state = qEnabling
	rq.seen = false
	rq.reads = 1
	d.enabling++
	return true
}

func (d *Device) rxAck(q int) {
	d.rx[q].state = qOn
	d.enabling--
	if d.cfg.Mode == NoLatency {
		d.drainFIFO()
	}
}

func (d *Device) readTxQueue(q int, off uint32) uint32 {
	tq := &d.tx[q]
	switch off - txReg(q, 0) {
	case tqTDH:
		return tq.head
	case tqTDT:
		return tq.tail
	case tqTXDCTL:
		v := d.get(off)
		switch tq.state {
		case qEnabling:
			if d.cfg.Mode == Polled || tq.reads > 0 {
				tq.reads--
				return v &^ txdctlEnable
			}
			d.txAck(q)
			fallthrough
		case qOn:
			tq.seen = true
			return v | txdctlEnable
		}
		return v &^ txdctlEnable
	case tqQPTCOld:
		if q < 16 {
			return d.ctr.read(statReg{c: cQPTC + counter(q)})
		}
	}
	return d.get(off)
}

func (d *Device) writeTxQueue(q int, off, v uint32) {
	tq := &d.tx[q]
	switch r := off - txReg(q, 0); r {
	case tqTDBAL, tqTDBAH, tqTDLEN, tqTDWBAL, tqTDWBAH:
		if tq.state != qOff && d.get(off) != v {
			hint := ""
			if tq.byTE {
				hint = " (setting DMATXCTL.TE enabled queue 0)"
			}
			d.violate(ruleTxProgEnabled, "queue %d: %s changed from %#x to %#x while TXDCTL.ENABLE is set%s", q, regName(off), d.get(off), v, hint)
		}
		switch r {
		case tqTDBAL:
			if v&0x7F != 0 {
				d.violate(ruleTxRingAlign, "queue %d: TDBAL written %#x; the device ignores bits 6:0", q, v)
				v &^= 0x7F
			}
		case tqTDLEN:
			if v&^rdlenMask != 0 {
				d.violate(ruleTxRingLen, "queue %d: TDLEN written %d (%#x)", q, v, v)
				v &= rdlenMask
			}
		}
		d.set(off, v)
	case tqTDH:
		if tq.state != qOff {
			if v != tq.head {
				d.violate(ruleTxHeadWrite, "queue %d: TDH written %d while the queue is enabled (head is %d)", q, v, tq.head)
			}
			return
		}
		tq.head = v & 0xFFFF
	case tqTDT:
		d.writeTDT(q, v)
	case tqTXDCTL:
		v &^= txdctlSWFLSH
		if v&txdctlPTHRESH != 0 && v&txdctlHTHRESH == 0 {
			d.violate(ruleTxThresh, "queue %d: TXDCTL written %#x (PTHRESH %d, HTHRESH 0)", q, v, v&txdctlPTHRESH)
		}
		switch {
		case v&txdctlEnable != 0 && (tq.state == qOff || tq.ring == nil && tq.state == qOn):
			d.set(off, v)
			if !d.txEnable(q) {
				d.set(off, v&^txdctlEnable)
				*tq = txQueue{head: tq.head, tail: tq.tail}
			}
		case v&txdctlEnable == 0 && tq.state != qOff:
			if tq.state == qEnabling {
				d.enabling--
			}
			*tq = txQueue{head: tq.head, tail: tq.tail}
			d.set(off, v)
		default:
			d.set(off, v)
		}
	case tqQPTCOld:
		if q >= 16 {
			d.set(off, v)
		}
	default:
		d.set(off, v)
	}
}

func (d *Device) writeTDT(q int, v uint32) {
	tq := &d.tx[q]
	if tq.state != qOn || !tq.seen {
		if v != tq.tail && v != tq.head {
			d.violate(ruleTxTailEarly, "queue %d: TDT moved from %d to %d (head %d) %s", q, tq.tail, v, tq.head, enableStory(tq.state, tq.seen))
		}
		tq.tail = v & 0xFFFF
		return
	}
	if tq.ring == nil {
		tq.tail = v & 0xFFFF
		return
	}
	if v >= tq.size {
		d.violate(ruleTxTailRange, "queue %d: TDT written %d but the ring has %d descriptors", q, v, tq.size)
		return
	}
	tq.tail = v
	d.kickTx(q)
}

// kickTx sends now (NoLatency) or marks the queue for the next Step.
func (d *Device) kickTx(q int) {
	if d.cfg.Mode == NoLatency {
		d.processTx(q)
		return
	}
	d.txWork[q/64] |= 1 << (q % 64)
}

// txEnable checks a queue's programming when TXDCTL.ENABLE is set.
func (d *Device) txEnable(q int) bool {
	if !d.mapTxRing(q, true) {
		return false
	}
	tq := &d.tx[q]
	if tq.state == qOn { // enabled by DMATXCTL.TE before its ring was programmed
		return true
	}
	tq.state = qEnabling
	tq.seen = false
	tq.reads = 1
	d.enabling++
	return true
}

// mapTxRing translates the programmed ring; report says whether a bad
// programming is the driver's doing (TXDCTL.ENABLE) rather than a side
// effect (DMATXCTL.TE enabling queue 0).
func (d *Device) mapTxRing(q int, report bool) bool {
	tq := &d.tx[q]
	base := uint64(d.get(txReg(q, tqTDBAH)))<<32 | uint64(d.get(txReg(q, tqTDBAL)))
	length := d.get(txReg(q, tqTDLEN))
	if base == 0 || length == 0 {
		if report {
			d.violate(ruleTxRingUnset, "queue %d: TXDCTL.ENABLE set with TDBAH:TDBAL=%#x TDLEN=%d; the queue stays disabled", q, base, length)
		}
		return false
	}
	ring, err := d.dma(base, int(length))
	if err != nil {
		if report {
			d.violate(ruleTxRingDMA, "queue %d: ring %#x+%d: %v; the queue stays disabled", q, base, length, err)
		}
		return false
	}
	size := length / descSize
	if tq.head >= size || tq.tail >= size {
		d.violate(ruleTxTailRange, "queue %d: enabled with TDH=%d TDT=%d but the ring has %d descriptors; both reset to 0", q, tq.head, tq.tail, size)
		tq.head, tq.tail = 0, 0
	}
	tq.ring = ring
	tq.size = size
	return true
}

func (d *Device) txAck(q int) {
	tq := &d.tx[q]
	tq.state = qOn
	d.enabling--
	if tq.head != tq.tail {
		d.kickTx(q)
	}
}

// dma translates a device address range, refusing short answers.
func (d *Device) dma(iova uint64, n int) ([]byte, error) {
	if d.cfg.DMA == nil {
		return nil, errNoDMA
	}
	b, err := d.cfg.DMA(iova, n)
	if err != nil {
		return nil, err
	}
	if len(b) < n {
		return nil, errShort
	}
	return b[:n:n], nil
}

type dmaError string

func (e dmaError) Error() string { return string(e) }

const (
	errNoDMA = dmaError("no DMA translation configured")
	errShort = dmaError("translation returned fewer bytes than asked")
)

// regName names a register for reports.
func regName(off uint32) string {
	off = canon(off)
	switch {
	case off >= rxBlockLow && off < rxBlockLow+64*0x40, off >= rxBlockHigh && off < rxBlockHigh+64*0x40:
		q := int(off-rxBlockLow) >> 6
		base := rxBlockLow
		if off >= rxBlockHigh {
			q = 64 + int(off-rxBlockHigh)>>6
			base = rxBlockHigh
		}
		names := map[uint32]string{rqRDBAL: "RDBAL", rqRDBAH: "RDBAH", rqRDLEN: "RDLEN", rqDCARXCTRL: "DCA_RXCTRL",
			rqRDH: "RDH", rqSRRCTL: "SRRCTL", rqRDT: "RDT", rqRXDCTL: "RXDCTL", rqRSCCTL: "RSCCTL"}
		if n, ok := names[(off-uint32(base))&0x3F]; ok {
			return fmt.Sprintf("%s[%d]", n, q)
		}
	case off >= txBlock && off < txBlock+numQueues*0x40:
		q := int(off-txBlock) >> 6
		names := map[uint32]string{tqTDBAL: "TDBAL", tqTDBAH: "TDBAH", tqTDLEN: "TDLEN", tqDCATXCTRL: "DCA_TXCTRL",
			tqTDH: "TDH", tqTDT: "TDT", tqTXDCTL: "TXDCTL", tqTDWBAL: "TDWBAL", tqTDWBAH: "TDWBAH"}
		if n, ok := names[(off-txBlock)&0x3F]; ok {
			return fmt.Sprintf("%s[%d]", n, q)
		}
	}
	names := map[uint32]string{regCTRL: "CTRL", regSTATUS: "STATUS", regCTRLEXT: "CTRL_EXT", regEEC: "EEC",
		regEICR: "EICR", regEIMS: "EIMS", regEIMC: "EIMC", regFCTRL: "FCTRL", regRXCTRL: "RXCTRL",
		regRDRXCTL: "RDRXCTL", regHLREG0: "HLREG0", regAUTOC: "AUTOC", regLINKS: "LINKS",
		regDMATXCTL: "DMATXCTL", regMTQC: "MTQC", regMRQC: "MRQC", regRTTDCS: "RTTDCS"}
	if n, ok := names[off]; ok {
		return n
	}
	switch {
	case off >= regTXPBSIZE0 && off < regTXPBSIZE0+32:
		return fmt.Sprintf("TXPBSIZE[%d]", (off-regTXPBSIZE0)/4)
	case off >= regTXPBTHRESH && off < regTXPBTHRESH+32:
		return fmt.Sprintf("TXPBTHRESH[%d]", (off-regTXPBTHRESH)/4)
	}
	return fmt.Sprintf("register %#05x", off)
}
