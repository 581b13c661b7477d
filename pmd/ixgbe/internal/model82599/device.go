package model82599

import (
	"context"
	"runtime"
	"sync"
	"time"
)

// Mode says when the device does its work.
type Mode int

const (
	// NoLatency does receive and transmit work synchronously: a Receive
	// writes the frame into the ring before returning, a write to TDT sends
	// the queued frames before returning, a queue enable is acknowledged on
	// the second read of its control register. A benchmark then measures
	// the driver's own cost.
	NoLatency Mode = iota
	// Polled leaves the work to Step (or Run, which calls Step in a loop),
	// like a device working in the background: frames wait in the Rx packet
	// buffer, tails are only recorded, enables take effect at the next Step.
	Polled
)

// Config describes the board a Device models and how it reports.
type Config struct {
	// DMA translates a device (IO virtual) address range into memory the
	// model may read and write. A nil DMA reaches no memory at all.
	DMA func(iova uint64, n int) ([]byte, error)
	// MAC is the station address the EEPROM loads into RAL[0]/RAH[0].
	MAC [6]byte
	// Violation is called, with the device lock held, for every rule the
	// driver breaks; the message starts with the rule ID in brackets and
	// cites the datasheet section. It must not call back into the Device.
	// Violations are also kept for Violations.
	Violation func(rule string)
	// Pedantic also reports the datasheet's "should" advice (Kind Should).
	Pedantic bool
	Mode     Mode
	// OnTransmit receives every frame the device puts on the wire, without
	// the FCS the MAC appends. The slice is only valid during the call (it
	// is the driver's buffer or a reused scratch buffer). It runs with the
	// device lock held and must not call into the same Device.
	OnTransmit func(frame []byte)
	// LinkDelay is how long the link takes to come up after a reset or an
	// auto-negotiation restart; 0 brings it up at once.
	LinkDelay time.Duration
}

// Timing the datasheet prescribes for a software reset.
const (
	resetTime  = time.Millisecond      // 8.2.3.1.1: wait approximately 1 ms after setting CTRL.RST
	settleTime = 10 * time.Millisecond // 4.6.3.2: wait at least 10 ms after a global reset
)

type qState uint8

const (
	qOff qState = iota
	qEnabling
	qOn
)

// Device is one modelled 82599 port. Its methods are safe for concurrent use.
type Device struct {
	mu  sync.Mutex
	cfg Config
	now func() time.Time

	regs [bar0Size / 4]uint32 // register file for everything without side effects

	resetting     bool
	resetAt       time.Time
	resetReported bool
	settled       bool // past the 4.6.3.2 settle time, or reported once
	timers        bool // something time-driven is pending: read the clock on access

	linkUp      bool
	linkPending bool
	linkAt      time.Time

	eicr   uint32
	eims   uint32
	eicrEx [2]uint32
	eimsEx [2]uint32

	rx       [numQueues]rxQueue
	tx       [numQueues]txQueue
	txWork   [numQueues / 64]uint64 // Polled: queues whose tail moved
	enabling int                    // queues waiting for their enable to take effect

	ctr   counters
	fifo  rxFIFO
	exact []uint64 // valid RAL/RAH addresses, as little-endian 48-bit values

	rssKey   [rssKeyLen]byte
	rssTbl   rssTable
	rssDirty bool

	txScratch  []byte
	violations []string
}

type rxQueue struct {
	state   qState
	seen    bool  // the driver read ENABLE as 1 since the queue was enabled
	reads   uint8 // NoLatency: reads of RXDCTL still answering "not yet"
	head    uint32
	tail    uint32
	size    uint32 // descriptors
	ring    []byte
	bufSize int
	legacy  bool
}

type txQueue struct {
	state   qState
	seen    bool
	reads   uint8
	byTE    bool // enabled as a side effect of DMATXCTL.TE (queue 0 only)
	head    uint32
	tail    uint32
	size    uint32
	ring    []byte
	ctxVLAN [8]uint16 // VLAN field of the advanced context descriptors, by IDX
}

// The ixgbe driver reaches BAR0 through an interface of this shape.
var _ interface {
	Read32(off uint32) uint32
	Write32(off uint32, v uint32)
} = (*Device)(nil)

// New returns a device just out of power-on reset, its link coming up after
// cfg.LinkDelay.
func New(cfg Config) *Device { return newDevice(cfg, time.Now) }

func newDevice(cfg Config, now func() time.Time) *Device {
	d := &Device{cfg: cfg, now: now}
	d.exact = make([]uint64, 0, numRAR)
	d.fifo.init(rxpbsizeReset)
	d.txScratch = make([]byte, 0, maxTxFrame+64)
	d.hardReset()
	d.startLink()
	return d
}

// OnTransmit replaces Config.OnTransmit.
func (d *Device) OnTransmit(fn func(frame []byte)) {
	d.mu.Lock()
	d.cfg.OnTransmit = fn
	d.mu.Unlock()
}

// Violations returns every report so far.
func (d *Device) Violations() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.violations...)
}

// SetLink forces the link state, as pulling or plugging the cable would.
func (d *Device) SetLink(up bool) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.linkPending = false
	d.setLink(up)
}

// InterruptPending reports whether an enabled interrupt cause is set
// (EICR & EIMS, and the extended MSI-X causes against EIMS[1..2]).
func (d *Device) InterruptPending() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.eicr&d.eims != 0 || d.eicrEx[0]&d.eimsEx[0] != 0 || d.eicrEx[1]&d.eimsEx[1] != 0
}

// Receive puts a frame (destination address through payload, no FCS, at
// least 60 bytes) on the wire towards the device. It reports whether the
// device took it in: false when the link is down, reception is off, the
// frame is undersized or oversized, the filters reject it, or the packet
// buffer is full (MPC). A frame its queue then drops for want of
// descriptors (SRRCTL.Drop_En, counted in RNBC and QPRDC) was taken in.
func (d *Device) Receive(frame []byte) bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers {
		d.tick()
	}
	if d.resetting {
		return false
	}
	return d.ingress(frame, false)
}

// Step does one round of background work (Polled mode): acknowledges queue
// enables, sends what the transmit queues hold and moves buffered frames
// into receive rings. It reports whether anything happened.
func (d *Device) Step() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers {
		d.tick()
	}
	if d.resetting {
		return false
	}
	work := false
	if d.enabling > 0 {
		for q := range numQueues {
			if d.rx[q].state == qEnabling {
				d.rxAck(q)
				work = true
			}
			if d.tx[q].state == qEnabling {
				d.txAck(q)
				work = true
			}
		}
	}
	pending := d.txWork
	d.txWork = [numQueues / 64]uint64{}
	for w, bits := range pending {
		for bits != 0 {
			bit := bits & -bits
			bits &^= bit
			q := w*64 + bitIndex64(bit)
			if d.processTx(q) {
				work = true
			}
			if tq := &d.tx[q]; tq.state == qOn && tq.head != tq.tail {
				d.txWork[w] |= bit // an unfinished packet or a stalled queue: look again next time
			}
		}
	}
	if d.drainFIFO() {
		work = true
	}
	return work
}

// Run calls Step until ctx is done, yielding when there is nothing to do.
func (d *Device) Run(ctx context.Context) error {
	idle := 0
	for ctx.Err() == nil {
		if d.Step() {
			idle = 0
			continue
		}
		idle++
		if idle < 64 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
	return ctx.Err()
}

// Read32 reads a BAR0 register.
func (d *Device) Read32(off uint32) uint32 {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers {
		d.tick()
	}
	if off >= bar0Size || off&3 != 0 {
		d.violate(ruleBAR, "read at offset %#x", off)
		return 0xFFFFFFFF // an unclaimed PCIe read
	}
	if d.resetting {
		d.reportResetAccess("read", off)
		if off == regCTRL || off == regCTRLAlias {
			return ctrlRST
		}
		return 0
	}
	d.checkSettle("read", off)
	return d.read(off)
}

// Write32 writes a BAR0 register.
func (d *Device) Write32(off uint32, v uint32) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.timers {
		d.tick()
	}
	if off >= bar0Size || off&3 != 0 {
		d.violate(ruleBAR, "write of %#x at offset %#x", v, off)
		return
	}
	if d.resetting {
		d.reportResetAccess("write", off)
		return
	}
	d.checkSettle("write", off)
	d.write(off, v)
}

func (d *Device) reportResetAccess(what string, off uint32) {
	if d.resetReported {
		return
	}
	d.resetReported = true
	d.violate(ruleResetAccess, "%s of %s %s after CTRL.RST was set", what, regName(off),
		d.now().Sub(d.resetAt).Round(time.Microsecond))
}

func (d *Device) checkSettle(what string, off uint32) {
	if d.settled || !d.cfg.Pedantic {
		return
	}
	if since := d.now().Sub(d.resetAt); since < settleTime {
		d.settled = true
		d.violate(ruleResetSettle, "%s of %s %s after CTRL.RST was set", what, regName(off), since.Round(time.Microsecond))
	}
}

// tick applies whatever the clock has made happen.
func (d *Device) tick() {
	now := d.now()
	if d.resetting && now.Sub(d.resetAt) >= resetTime {
		d.resetting = false
		d.resetReported = false
		d.startLink()
	}
	if d.linkPending && !now.Before(d.linkAt) {
		d.linkPending = false
		d.setLink(true)
	}
	settling := d.cfg.Pedantic && !d.settled && now.Sub(d.resetAt) < settleTime
	d.timers = d.resetting || d.linkPending || settling
}

func (d *Device) startLink() {
	if d.cfg.LinkDelay <= 0 {
		d.setLink(true)
		return
	}
	d.linkPending = true
	d.linkAt = d.now().Add(d.cfg.LinkDelay)
	d.timers = true
}

func (d *Device) setLink(up bool) {
	if d.linkUp == up {
		return
	}
	d.linkUp = up
	d.eicr |= eicrLSC // 8.2.3.5.1 LSC: link status change
	if up {
		for q := range numQueues {
			if d.tx[q].state == qOn && d.tx[q].head != d.tx[q].tail {
				d.kickTx(q)
			}
		}
	}
}

// softwareReset is CTRL.RST (4.2.1.6.1): everything but PCI configuration
// returns to its initial value; the device stays in reset for resetTime.
func (d *Device) softwareReset() {
	d.hardReset()
	d.resetting = true
	d.resetReported = false
	d.resetAt = d.now()
	d.settled = false
	d.timers = true
}

// hardReset loads the initial values of chapter 8 (and the EEPROM's MAC).
func (d *Device) hardReset() {
	clear(d.regs[:])
	d.set(regSTATUS, statusResetGIO)
	d.set(regEEC, eecResetValue)
	d.set(regRDRXCTL, rdrxctlResetValue|rdrxctlDMAIDone)
	d.set(regHLREG0, hlreg0Reset)
	d.set(regAUTOC, autocResetValue)
	d.set(regAUTOC2, autoc2Reset)
	d.set(regVLNCTRL, regVLNCTRLDefault)
	d.set(regDMATXCTL, regDMATXCTLDefault)
	d.set(regMAXFRS, maxfrsReset)
	d.set(regRTTDCS, rttdcsReset)
	for i := range numPB {
		d.set(regRXPBSIZE0+4*uint32(i), rxpbsizeReset)
		d.set(regTXPBSIZE0+4*uint32(i), txpbsizeReset)
	}
	d.set(regTXPBTHRESH, txpbthreshReset)
	for q := range numQueues {
		d.set(rxReg(q, rqSRRCTL), srrctlResetValue)
		d.set(rxReg(q, rqDCARXCTRL), dcaRxctrlBit12)
		d.rx[q] = rxQueue{}
		d.tx[q] = txQueue{}
	}
	// 8.2.3.7.9: after reset RAR[0] holds the EEPROM's address, valid.
	m := d.cfg.MAC
	d.set(regRAL0, uint32(m[0])|uint32(m[1])<<8|uint32(m[2])<<16|uint32(m[3])<<24)
	d.set(regRAH0, uint32(m[4])|uint32(m[5])<<8|rahAV)
	d.rebuildExact()
	d.txWork = [numQueues / 64]uint64{}
	d.enabling = 0
	d.eicr, d.eims = 0, 0
	d.eicrEx, d.eimsEx = [2]uint32{}, [2]uint32{}
	d.ctr = counters{}
	d.fifo.reset()
	d.rssDirty = true
	d.linkUp = false
	d.linkPending = false
}

func (d *Device) set(off uint32, v uint32) { d.regs[off/4] = v }
func (d *Device) get(off uint32) uint32    { return d.regs[off/4] }

// rxReg is the canonical offset of a receive queue register.
func rxReg(q int, r uint32) uint32 {
	if q < 64 {
		return rxBlockLow + 0x40*uint32(q) + r
	}
	return rxBlockHigh + 0x40*uint32(q-64) + r
}

func txReg(q int, r uint32) uint32 { return txBlock + 0x40*uint32(q) + r }

// canon maps the 82598-compatible aliases of 8.2.2 onto the registers the
// model keeps.
func canon(off uint32) uint32 {
	switch {
	case off == regCTRLAlias:
		return regCTRL
	case off >= regSRRCTLOld && off < regSRRCTLOld+16*4:
		return rxReg(int(off-regSRRCTLOld)/4, rqSRRCTL)
	case off >= regDCARXCTRLOld && off < regDCARXCTRLOld+16*4:
		return rxReg(int(off-regDCARXCTRLOld)/4, rqDCARXCTRL)
	case off >= regRAL0Old && off < regRAL0Old+16*8:
		return regRAL0 + (off - regRAL0Old)
	case off == regMRQCOld:
		return regMRQC
	case off >= regRETAOld && off < regRETAOld+numRETA*4:
		return regRETA0 + (off - regRETAOld)
	case off >= regRSSRKOld && off < regRSSRKOld+numRSSRK*4:
		return regRSSRK0 + (off - regRSSRKOld)
	}
	return off
}

func (d *Device) read(off uint32) uint32 {
	off = canon(off)
	if r, ok := statAt(off); ok {
		return d.ctr.read(r)
	}
	switch {
	case off >= rxBlockLow && off < rxBlockLow+64*0x40:
		return d.readRxQueue(int(off-rxBlockLow)>>6, off)
	case off >= rxBlockHigh && off < rxBlockHigh+64*0x40:
		return d.readRxQueue(64+int(off-rxBlockHigh)>>6, off)
	case off >= txBlock && off < txBlock+numQueues*0x40:
		return d.readTxQueue(int(off-txBlock)>>6, off)
	}
	switch off {
	case regCTRL:
		return d.get(regCTRL)
	case regSTATUS:
		v := d.get(regSTATUS)
		if d.get(regCTRL)&ctrlMasterDisable != 0 {
			v &^= statusGIOMasterEnable // 5.2.5.3.2: no requests pending
		}
		return v
	case regEICR:
		v := d.eicr
		if d.get(regGPIE)&gpieOCD != 0 {
			d.eicr &^= 0x3FFF0000 // 8.2.3.5.1: with GPIE.OCD only bits 29:16 clear on read
		} else {
			d.eicr = 0 // 8.2.3.5.1: cleared on read when GPIE.OCD is clear
		}
		return v
	case regEICS:
		return d.eicr // reads back the causes without clearing them
	case regEIMS:
		return d.eims
	case regEIMSEx0, regEIMSEx0 + 4:
		return d.eimsEx[(off-regEIMSEx0)/4]
	case regEIMC, regEIMCEx0, regEIMCEx0 + 4:
		return 0 // write-only
	case regLINKS:
		if d.linkUp {
			return linksUp | linksSpeed10G
		}
		return 0
	case regSECRXSTAT:
		return secRxReady // the model's security block never holds data
	}
	return d.get(off)
}

func (d *Device) write(off, v uint32) {
	off = canon(off)
	if _, ok := statAt(off); ok {
		return // statistics are read-only (RC)
	}
	switch {
	case off >= rxBlockLow && off < rxBlockLow+64*0x40:
		d.writeRxQueue(int(off-rxBlockLow)>>6, off, v)
		return
	case off >= rxBlockHigh && off < rxBlockHigh+64*0x40:
		d.writeRxQueue(64+int(off-rxBlockHigh)>>6, off, v)
		return
	case off >= txBlock && off < txBlock+numQueues*0x40:
		d.writeTxQueue(int(off-txBlock)>>6, off, v)
		return
	case off >= regRAL0 && off < regRAL0+numRAR*8:
		d.set(off, v)
		d.rebuildExact()
		return
	case off >= regRSSRK0 && off < regRSSRK0+numRSSRK*4:
		d.set(off, v)
		d.rssDirty = true
		return
	}
	switch off {
	case regCTRL:
		if v&ctrlRST != 0 {
			d.softwareReset()
			return
		}
		d.set(regCTRL, v&^(ctrlRST|ctrlLRST))
		if v&ctrlLRST != 0 { // 8.2.3.1.1 link reset: the link renegotiates
			d.setLink(false)
			d.startLink()
		}
	case regSTATUS, regLINKS, regSECRXSTAT, regFWSM:
		// read-only
	case regEEC:
		ro := uint32(eecPresent | eecAutoRead)
		d.set(regEEC, d.get(regEEC)&ro|v&^ro)
	case regEICR:
		d.eicr &^= v // write 1 to clear
	case regEICS:
		d.eicr |= v
	case regEIMS:
		d.eims |= v
	case regEIMC:
		d.eims &^= v
	case regEIMSEx0, regEIMSEx0 + 4:
		d.eimsEx[(off-regEIMSEx0)/4] |= v
	case regEIMCEx0, regEIMCEx0 + 4:
		d.eimsEx[(off-regEIMCEx0)/4] &^= v
	case regAUTOC:
		d.set(regAUTOC, v&^autocRestartAN)
		if v&autocRestartAN != 0 { // 8.2.3.22.19: apply the settings, renegotiate
			d.setLink(false)
			d.startLink()
		}
	case regRDRXCTL:
		d.set(regRDRXCTL, v&^rdrxctlDMAIDone|rdrxctlDMAIDone)
		if d.get(regRXCTRL)&rxctrlRXEN != 0 {
			d.checkCRCStrip("RDRXCTL written")
		}
	case regHLREG0:
		d.set(regHLREG0, v)
		if d.get(regRXCTRL)&rxctrlRXEN != 0 {
			d.checkCRCStrip("HLREG0 written")
		}
	case regRXCTRL:
		was := d.get(regRXCTRL)
		d.set(regRXCTRL, v)
		if was&rxctrlRXEN == 0 && v&rxctrlRXEN != 0 {
			d.rxEnabled()
		}
	case regFCTRL:
		if d.get(regRXCTRL)&rxctrlRXEN != 0 && d.get(regFCTRL) != v {
			d.violate(ruleRxFilterWhileOn, "FCTRL changed from %#x to %#x with RXCTRL.RXEN set", d.get(regFCTRL), v)
		}
		d.set(regFCTRL, v)
	case regMRQC:
		d.set(regMRQC, v)
		if mrqe := v & mrqcMRQE; mrqe != mrqeRSSDisabled && mrqe != mrqeRSS {
			d.violate(ruleUnsupMRQ, "MRQC written %#x (MRQE %04b); packets go to queue 0", v, mrqe)
		}
	case regSECRXCTRL:
		was := d.get(regSECRXCTRL)
		d.set(regSECRXCTRL, v)
		if was&secRxRXDis != 0 && v&secRxRXDis == 0 && d.cfg.Mode == NoLatency {
			d.drainFIFO()
		}
	case regDMATXCTL:
		was := d.get(regDMATXCTL)
		d.set(regDMATXCTL, v)
		if was&dmatxctlTE == 0 && v&dmatxctlTE != 0 {
			d.txEnabled()
		}
	case regTXPBTHRESH, regTXPBTHRESH + 4, regTXPBTHRESH + 8, regTXPBTHRESH + 12,
		regTXPBTHRESH + 16, regTXPBTHRESH + 20, regTXPBTHRESH + 24, regTXPBTHRESH + 28,
		regTXPBSIZE0, regTXPBSIZE0 + 4, regTXPBSIZE0 + 8, regTXPBSIZE0 + 12,
		regTXPBSIZE0 + 16, regTXPBSIZE0 + 20, regTXPBSIZE0 + 24, regTXPBSIZE0 + 28, regMTQC:
		if d.get(regRTTDCS)&rttdcsARBDIS == 0 && d.get(off) != v {
			d.violate(ruleTxArb, "%s written %#x while RTTDCS.ARBDIS is clear", regName(off), v)
		}
		d.set(off, v)
	default:
		d.set(off, v)
	}
}

// rxEnabled runs when RXCTRL.RXEN goes to 1: the checks of 4.6.7 that
// concern the whole receive path.
func (d *Device) rxEnabled() {
	d.checkCRCStrip("RXCTRL.RXEN set")
	if r := d.get(regRDRXCTL); r&rdrxctlRSCFrstSize != 0 || r&rdrxctlRSCACKC == 0 || r&rdrxctlFCoEWrFix == 0 {
		d.violate(ruleRxRDRXCTL, "RXCTRL.RXEN set with RDRXCTL %#x", r)
	}
	if d.cfg.Mode == NoLatency {
		d.drainFIFO()
	}
}

func (d *Device) checkCRCStrip(when string) {
	h := d.get(regHLREG0)&hlreg0RXCRCSTRP != 0
	r := d.get(regRDRXCTL)&rdrxctlCRCStrip != 0
	if h != r {
		d.violate(ruleRxCRCStrip, "%s with HLREG0.RXCRCSTRP=%t but RDRXCTL.CRCStrip=%t", when, h, r)
	}
}

// txEnabled runs when DMATXCTL.TE goes to 1. 4.6.8: "When setting the
// global Tx enable DMATXCTL.TE the ENABLE bit of Tx queue zero is enabled as
// well."
func (d *Device) txEnabled() {
	tq := &d.tx[0]
	if tq.state == qOff {
		d.set(txReg(0, tqTXDCTL), d.get(txReg(0, tqTXDCTL))|txdctlEnable)
		tq.state = qOn
		tq.seen = false
		tq.byTE = true
		d.mapTxRing(0, false)
	}
	for q := range numQueues {
		if d.tx[q].state == qOn && d.tx[q].head != d.tx[q].tail {
			d.kickTx(q)
		}
	}
}

// rebuildExact collects the valid exact-match addresses of RAL/RAH.
func (d *Device) rebuildExact() {
	d.exact = d.exact[:0]
	for n := range numRAR {
		rah := d.get(regRAH0 + 8*uint32(n))
		if rah&rahAV != 0 {
			d.exact = append(d.exact, uint64(d.get(regRAL0+8*uint32(n)))|uint64(rah&0xFFFF)<<32)
		}
	}
}

// raiseQueue sets the interrupt cause IVAR maps a queue's Rx or Tx event to
// (7.3, 8.2.3.5 IVAR: entry 16*(q&1)+8*tx of IVAR[q/2], bit 7 valid).
func (d *Device) raiseQueue(q int, tx bool) {
	shift := 16 * uint(q&1)
	if tx {
		shift += 8
	}
	e := d.get(regIVAR0+4*uint32(q>>1)) >> shift & 0xFF
	if e&ivarAllocVal == 0 {
		return
	}
	vec := e & ivarVector
	d.eicrEx[vec/32] |= 1 << (vec % 32)
	if vec < 16 {
		d.eicr |= 1 << vec
	}
}

func bitIndex64(x uint64) int {
	n := 0
	for x > 1 {
		x >>= 1
		n++
	}
	return n
}
