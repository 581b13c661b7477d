package model82599

// Statistics, 8.2.3.23: every counter is read-to-clear (RC). Byte counters
// are 36 bits wide, split into a Low register (bits 31:0) and a High
// register (bits 35:32); reading Low latches High, so a driver reads Low
// first and then High and gets one consistent 36-bit value.

type counter int

const (
	cCRCERRS counter = iota
	cRLEC
	cPRC64
	cPRC127
	cPRC255
	cPRC511
	cPRC1023
	cPRC1522
	cGPRC
	cBPRC
	cMPRC
	cGPTC
	cGORC
	cGOTC
	cRUC
	cROC
	cTOR
	cTPR
	cTPT
	cPTC64
	cPTC127
	cPTC255
	cPTC511
	cPTC1023
	cPTC1522
	cMPTC
	cBPTC
	cRXNFGPC
	cRXNFGBC
	cRXDGPC
	cRXDGBC
	cTXDGPC
	cTXDGBC
	cMPC                    // 8 of them, one per packet buffer
	cRNBC       = cMPC + 8  // 8
	cQPRC       = cRNBC + 8 // 16, by statistics index (RQSMR)
	cQPRDC      = cQPRC + 16
	cQBRC       = cQPRDC + 16
	cQPTC       = cQBRC + 16 // 16, by statistics index (TQSM)
	cQBTC       = cQPTC + 16
	numCounters = cQBTC + 16
)

const mask36 = 1<<36 - 1

type counters struct {
	v       [numCounters]uint64
	high    [numCounters]uint32 // High half latched by the last Low read
	latched [numCounters]bool
}

func (c *counters) add(k counter, n uint64) { c.v[k] += n }

const (
	partWhole = iota // one 32-bit register; sticks at 0xFFFFFFFF
	partLow
	partHigh
)

type statReg struct {
	c    counter
	part uint8
}

func (c *counters) read(r statReg) uint32 {
	v := c.v[r.c]
	switch r.part {
	case partLow:
		c.v[r.c] = 0
		c.high[r.c] = uint32((v & mask36) >> 32)
		c.latched[r.c] = true
		return uint32(v)
	case partHigh:
		if c.latched[r.c] {
			c.latched[r.c] = false
			h := c.high[r.c]
			c.high[r.c] = 0
			return h
		}
		c.v[r.c] = v & 0xFFFFFFFF
		return uint32((v & mask36) >> 32)
	}
	c.v[r.c] = 0
	if v > 0xFFFFFFFF {
		return 0xFFFFFFFF
	}
	return uint32(v)
}

var statRegs = func() map[uint32]statReg {
	m := map[uint32]statReg{
		0x04000:     {cCRCERRS, partWhole}, // CRCERRS
		0x04040:     {cRLEC, partWhole},    // RLEC
		0x0405C:     {cPRC64, partWhole},   // PRC64
		0x04060:     {cPRC127, partWhole},
		0x04064:     {cPRC255, partWhole},
		0x04068:     {cPRC511, partWhole},
		0x0406C:     {cPRC1023, partWhole},
		0x04070:     {cPRC1522, partWhole},
		0x04074:     {cGPRC, partWhole}, // GPRC
		0x04078:     {cBPRC, partWhole}, // BPRC
		0x0407C:     {cMPRC, partWhole}, // MPRC
		0x04080:     {cGPTC, partWhole}, // GPTC
		0x04088:     {cGORC, partLow},   // GORCL
		0x0408C:     {cGORC, partHigh},  // GORCH
		0x04090:     {cGOTC, partLow},   // GOTCL
		0x04094:     {cGOTC, partHigh},  // GOTCH
		0x040A4:     {cRUC, partWhole},  // RUC
		0x040AC:     {cROC, partWhole},  // ROC
		0x040C0:     {cTOR, partLow},    // TORL
		0x040C4:     {cTOR, partHigh},   // TORH
		0x040D0:     {cTPR, partWhole},  // TPR
		0x040D4:     {cTPT, partWhole},  // TPT
		0x040D8:     {cPTC64, partWhole},
		0x040DC:     {cPTC127, partWhole},
		0x040E0:     {cPTC255, partWhole},
		0x040E4:     {cPTC511, partWhole},
		0x040E8:     {cPTC1023, partWhole},
		0x040EC:     {cPTC1522, partWhole},
		0x040F0:     {cMPTC, partWhole}, // MPTC
		0x040F4:     {cBPTC, partWhole}, // BPTC
		rxnfgpcReg:  {cRXNFGPC, partWhole},
		rxnfgbclReg: {cRXNFGBC, partLow},
		rxnfgbchReg: {cRXNFGBC, partHigh},
		rxdgpcReg:   {cRXDGPC, partWhole},
		rxdgbclReg:  {cRXDGBC, partLow},
		rxdgbchReg:  {cRXDGBC, partHigh},
		txdgpcReg:   {cTXDGPC, partWhole},
		txdgbclReg:  {cTXDGBC, partLow},
		txdgbchReg:  {cTXDGBC, partHigh},
	}
	for i := range uint32(numPB) {
		m[mpc0Reg+4*i] = statReg{cMPC + counter(i), partWhole}
		m[rnbc0Reg+4*i] = statReg{cRNBC + counter(i), partWhole}
	}
	for i := range uint32(16) {
		m[rxBlockLow+0x40*i+0x30] = statReg{cQPRC + counter(i), partWhole}        // QPRC
		m[rxBlockLow+0x40*i+0x34] = statReg{cQBRC + counter(i), partLow}          // QBRC_L
		m[rxBlockLow+0x40*i+0x38] = statReg{cQBRC + counter(i), partHigh}         // QBRC_H
		m[rxBlockLow+0x400+0x40*i+0x30] = statReg{cQPRDC + counter(i), partWhole} // QPRDC at 0x01430 + 0x40n
		m[qptc0Reg+4*i] = statReg{cQPTC + counter(i), partWhole}                  // QPTC
		m[qbtc0Reg+8*i] = statReg{cQBTC + counter(i), partLow}                    // QBTC_L
		m[qbtc0Reg+8*i+4] = statReg{cQBTC + counter(i), partHigh}                 // QBTC_H
	}
	return m
}()

// statAt finds the statistics register at off, looking only where
// statistics live so that the common registers pay no map lookup.
func statAt(off uint32) (statReg, bool) {
	inRange := off >= 0x03FA0 && off < 0x03FE0 || // MPC, RNBC
		off >= 0x04000 && off < 0x04200 || // MAC statistics
		off >= 0x02F50 && off < 0x02F80 || // Rx DMA statistics
		off >= 0x08680 && off < 0x087B0 || // QPTC, QBTC, Tx DMA statistics
		off >= rxBlockLow && off < rxBlockLow+0x800 && off&0x3F >= 0x30 && off&0x3F < 0x3C
	if !inRange {
		return statReg{}, false
	}
	r, ok := statRegs[off]
	return r, ok
}

// statIndex returns the statistics counter a queue maps to: four queues per
// mapping register, bits 3:0 of each byte (RQSMR/TQSM, 8.2.3.23).
func (d *Device) statIndex(mapBase uint32, q int) counter {
	return counter(d.get(mapBase+4*uint32(q/4)) >> (8 * uint(q%4)) & 0xF)
}

// sizeBin returns the counter for a frame size bin (64, 65-127, ..., 1024-max).
func sizeBin(first counter, wireLen int) counter {
	switch {
	case wireLen <= 64:
		return first
	case wireLen <= 127:
		return first + 1
	case wireLen <= 255:
		return first + 2
	case wireLen <= 511:
		return first + 3
	case wireLen <= 1023:
		return first + 4
	}
	return first + 5
}
