package model82599

import "encoding/binary"

// Transmit path, 7.2: descriptors (7.2.3.2), the ring (7.2.3.3) and
// write-back of completed descriptors or of the head (7.2.3.5).

// processTx sends every complete packet between TDH and TDT. It reports
// whether it sent anything.
func (d *Device) processTx(q int) bool {
	tq := &d.tx[q]
	if tq.state != qOn || tq.ring == nil || d.get(regDMATXCTL)&dmatxctlTE == 0 {
		return false
	}
	if !d.linkUp && d.get(regHLREG0)&hlreg0LPBK == 0 {
		return false // frames wait for the link; in loopback they never reach it
	}
	sent := false
	for tq.head != tq.tail {
		if !d.txPacket(q, tq) {
			break
		}
		sent = true
	}
	return sent
}

// txPacket handles the descriptors of one packet starting at TDH. It
// reports false when the packet is not complete yet (no EOP before TDT).
func (d *Device) txPacket(q int, tq *txQueue) bool {
	var (
		idx       = tq.head
		count     uint32
		nData     int
		total     int
		single    []byte
		bad       bool
		firstSeen bool
		payLen    uint32
		advanced  bool
		tse       bool
		ifcs      bool
		vle       bool
		tag       uint16
		rs        bool
	)
	scratch := d.txScratch[:0]
	for {
		if idx == tq.tail || count == tq.size {
			if count == tq.size {
				d.violate(ruleTxTooLong, "queue %d: no EOP in any of the %d descriptors of the ring", q, tq.size)
				tq.head = tq.tail
				return false
			}
			return false // the rest of the packet is not handed over yet
		}
		desc := tq.ring[idx*descSize : idx*descSize+descSize]
		addr := binary.LittleEndian.Uint64(desc[0:8])
		cmd := binary.LittleEndian.Uint32(desc[8:12])
		oli := binary.LittleEndian.Uint32(desc[12:16])
		count++
		if cmd&txdDEXT != 0 {
			switch cmd & txdDTYPMask {
			case txdDTYPCtx: // 7.2.3.2.3: VLAN tag in bits 31:16 of the first dword, IDX in bits 6:4 of the last
				slot := (oli >> txdIDXShift) & 7
				tq.ctxVLAN[slot] = uint16(binary.LittleEndian.Uint32(desc[0:4]) >> 16)
				idx = tq.next(idx)
				continue
			case txdDTYPData:
			default:
				d.violate(ruleTxDTYP, "queue %d descriptor %d: DTYP %04b with DEXT set; packet dropped", q, idx, (cmd&txdDTYPMask)>>20)
				bad = true
			}
		}
		if !firstSeen {
			firstSeen = true
			advanced = cmd&txdDEXT != 0
			ifcs = cmd&txdIFCS != 0
			vle = cmd&txdVLE != 0
			if advanced {
				payLen = oli >> txdPAYShift
				tse = cmd&txdTSE != 0
				tag = tq.ctxVLAN[(oli>>txdIDXShift)&7]
				if tse || oli&txdPOPTS != 0 || cmd&txdMACMask != 0 {
					d.violate(ruleUnsupTxOffload, "queue %d descriptor %d: DCMD %#x POPTS %#x; sent as is", q, idx, cmd>>24, (oli&txdPOPTS)>>8)
				}
			} else {
				tag = uint16(oli >> 16) // 7.2.3.2.2: legacy VLAN field
				if cmd&txdIC != 0 {
					d.violate(ruleUnsupTxOffload, "queue %d descriptor %d: legacy IC (insert checksum); sent as is", q, idx)
				}
			}
		}
		if cmd&txdRS != 0 {
			rs = true
		}
		if n := int(cmd & txdLenMask); n > 0 && !bad {
			buf, err := d.dma(addr, n)
			switch {
			case err != nil:
				d.violate(ruleTxBufDMA, "queue %d descriptor %d: buffer %#x+%d: %v; packet dropped", q, idx, addr, n, err)
				bad = true
			case total+n > maxTxFrame:
				d.violate(ruleTxTooLong, "queue %d descriptor %d: packet grows past %d bytes; dropped", q, idx, maxTxFrame)
				bad = true
			default:
				if nData == 1 {
					scratch = append(scratch, single...)
				}
				if nData == 0 {
					single = buf
				} else {
					scratch = append(scratch, buf...)
				}
				nData++
				total += n
			}
		}
		if cmd&txdEOP != 0 {
			break
		}
		idx = tq.next(idx)
	}
	end := idx
	frame := single
	if nData > 1 {
		frame = scratch
	}
	if advanced && !tse && payLen != uint32(total) && !bad {
		d.violate(ruleTxPaylen, "queue %d: PAYLEN %d but the data descriptors hold %d bytes", q, payLen, total)
	}
	if !bad && nData > 0 {
		d.transmit(q, frame, nData > 1, ifcs, vle, tag)
	}
	d.txWriteBack(q, tq, end, rs)
	tq.head = tq.next(end)
	return true
}

func (tq *txQueue) next(i uint32) uint32 {
	i++
	if i == tq.size {
		return 0
	}
	return i
}

// transmit applies VLAN insertion and padding, counts, and puts the frame
// on the wire (or back into the receiver with HLREG0.LPBK).
func (d *Device) transmit(q int, frame []byte, inScratch, ifcs, vle bool, tag uint16) {
	hl := d.get(regHLREG0)
	if vle { // 7.2.3.2: insert the tag; DMATXCTL.VT holds its EtherType
		if len(frame) < 12 {
			return
		}
		buf := d.txScratch[:len(frame)+4]
		copy(buf[16:], frame[12:]) // copy moves overlapping bytes correctly
		if !inScratch {
			copy(buf[:12], frame[:12])
		}
		vt := uint16(d.get(regDMATXCTL) >> 16)
		buf[12], buf[13], buf[14], buf[15] = byte(vt>>8), byte(vt), byte(tag>>8), byte(tag)
		frame = buf
	}
	if len(frame) < minTxFrame && hl&hlreg0TXPADEN != 0 {
		if !ifcs {
			d.violate(ruleTxPad, "queue %d: %d-byte frame padded without IFCS", q, len(frame))
		} else {
			out := d.txScratch[:minTxFrame]
			copy(out, frame)
			clear(out[len(frame):])
			frame = out
		}
	}
	wire := len(frame)
	if ifcs {
		wire += 4
	}
	if wire >= minFrameWithFCS {
		d.ctr.add(cGPTC, 1)
		d.ctr.add(cGOTC, uint64(wire))
	}
	d.ctr.add(cTPT, 1)
	d.ctr.add(sizeBin(cPTC64, wire), 1)
	if frame[0]&1 != 0 {
		if binary.LittleEndian.Uint32(frame[0:4]) == 0xFFFFFFFF && binary.LittleEndian.Uint16(frame[4:6]) == 0xFFFF {
			d.ctr.add(cBPTC, 1)
		} else {
			d.ctr.add(cMPTC, 1)
		}
	}
	si := d.statIndex(regTQSM0, q)
	d.ctr.add(cQPTC+si, 1)
	d.ctr.add(cQBTC+si, uint64(wire))
	d.ctr.add(cTXDGPC, 1)
	d.ctr.add(cTXDGBC, uint64(len(frame)))
	if hl&hlreg0LPBK != 0 {
		d.ingress(frame, true)
		return
	}
	if d.cfg.OnTransmit != nil {
		d.cfg.OnTransmit(frame)
	}
}

// txWriteBack reports completion (7.2.3.5): with head write-back enabled
// (TDWBAL.Head_WB_En) the new head goes to TDWBAH:TDWBAL and no descriptor
// is written; otherwise every descriptor with RS gets DD.
func (d *Device) txWriteBack(q int, tq *txQueue, end uint32, rs bool) {
	if !rs {
		return
	}
	wbal := d.get(txReg(q, tqTDWBAL))
	if wbal&tdwbalHeadWBEn != 0 {
		addr := uint64(d.get(txReg(q, tqTDWBAH)))<<32 | uint64(wbal&^3)
		b, err := d.dma(addr, 4)
		if err != nil {
			d.violate(ruleTxHeadWB, "queue %d: head write-back address %#x: %v", q, addr, err)
		} else {
			store32(b, tq.next(end))
		}
	} else {
		for i := tq.head; ; i = tq.next(i) {
			desc := tq.ring[i*descSize : i*descSize+descSize]
			cmd := binary.LittleEndian.Uint32(desc[8:12])
			if cmd&txdRS != 0 {
				if cmd&txdDEXT != 0 {
					store32(desc[12:16], txStatDD) // 7.2.3.2.4 write-back: STA.DD, the rest reserved
				} else {
					store32(desc[12:16], binary.LittleEndian.Uint32(desc[12:16])|txStatDD) // 7.2.3.2.2 STA.DD
				}
			}
			if i == end {
				break
			}
		}
	}
	d.raiseQueue(q, true)
}
