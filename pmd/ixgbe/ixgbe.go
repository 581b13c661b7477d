package ixgbe

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
)

// Sizes and limits.
const (
	minDesc      = 64    // descriptors per ring, at least (and a power of two)
	maxDesc      = 4096  // descriptors per ring, at most
	maxBurst     = 64    // packets one RxBurst or TxBurst handles; longer slices are served in part
	txBatch      = 32    // tx descriptors cleaned at once; the last one of each batch asks for status (RS)
	maxTxSegs    = 40    // data descriptors one packet may use (the 82599's limit, DPDK's IXGBE_TX_MAX_SEG)
	maxTxFrame   = 15872 // bytes of one packet, at most: 15.5 KB (7.2.3.2.2)
	minRxBufSize = 2048  // receive buffer bytes, at least: a 1518-byte frame fits one descriptor

	resetSettle = 10 * time.Millisecond // 4.6.3.2: wait at least 10 ms after a global reset
	pollTimeout = time.Second           // how long the driver waits for a bit the device sets
	linkPoll    = 100 * time.Millisecond
	statsPeriod = time.Second // well inside the ~290 s a 32-bit packet counter lasts at 14.88 Mpps
)

// Offload flags the driver sets on received mbufs (DPDK's RTE_MBUF_F_RX_*).
const (
	olRxRSSHash = 1 << 1
	olRxL4Bad   = 1 << 3
	olRxIPBad   = 1 << 4
	olRxIPGood  = 1 << 7
	olRxL4Good  = 1 << 8
)

// defaultRSSKey is the 40-byte key of the Microsoft RSS verification suite
// (7.1.2.8.3), also DPDK's default for ixgbe: flows hash as the published
// vectors say.
var defaultRSSKey = [40]byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

// macType says which link setup a device needs; the rest is common.
type macType int

const (
	mac82599 macType = iota // AUTOC drives the link (4.6.4)
	macX540                 // X540 and X550 copper: the PHY negotiates by itself
)

// config is what newDevice needs besides registers and memory.
type config struct {
	name     string // names the memzones: name, name_rx<q>, name_tx<q>
	primary  bool
	deviceID uint16
	mac      macType
	portID   uint16            // recorded in received mbufs
	irq      interrupt         // MSI-X vector 0; nil: the link is polled
	onLink   func(ethdev.Link) // told every link change (primary)
	close    func() error      // releases the registers (BAR0) when the device closes
	// mapMemory makes group memory added since the last call reachable by
	// the device (the IOMMU mappings); called before rings are armed.
	mapMemory func() error
}

// interrupt is an MSI-X vector the primary waits on: C receives a value
// each time the vector fires.
type interrupt interface {
	C() <-chan struct{}
	Close() error
}

// Device is one process's driver object for a port: in the primary it owns
// the device (reset, link, filters, counters); in a secondary it only
// builds queue pollers from the shared state.
type Device struct {
	port *ethdev.Port // owns the rx queues' pool handles (RxPool)
	regs registers
	mem  *hugemem.Memory
	iova func(off uint64) (uint64, error) // group offset to device address
	cfg  config
	sh   *shared // the port's state, in the group's memory

	mu       sync.Mutex // the primary's control path and counters
	mac      net.HardwareAddr
	link     ethdev.Link
	promisc  bool
	allmulti bool
	mta      [numMTA]uint32 // 7.1.1.1 multicast table, written at start
	done     chan struct{}
	wg       sync.WaitGroup
}

// newDevice attaches a driver to a port's registers and the group's
// memory. The primary resets and initializes the device; a secondary finds
// the primary's shared state.
func newDevice(port *ethdev.Port, regs registers, iova func(uint64) (uint64, error), cfg config) (*Device, error) {
	mem := port.Memory()
	d := &Device{port: port, regs: regs, mem: mem, iova: iova, cfg: cfg}
	if !cfg.primary {
		z, err := mem.Lookup(cfg.name)
		if err != nil {
			return nil, fmt.Errorf("shared state of %s: %w", cfg.name, err)
		}
		if z.Len < uint64(unsafe.Sizeof(shared{})) {
			return nil, fmt.Errorf("shared state of %s is %d bytes, this build needs %d: incompatible build", cfg.name, z.Len, unsafe.Sizeof(shared{}))
		}
		d.sh = (*shared)(z.Ptr())
		if m, v := atomic.LoadUint64(&d.sh.Magic), d.sh.Version; m != sharedMagic || v != sharedVersion {
			return nil, fmt.Errorf("shared state of %s has magic %#x version %d, this build needs %#x version %d", cfg.name, m, v, uint64(sharedMagic), sharedVersion)
		}
		return d, nil
	}
	z, err := mem.Reserve(cfg.name, uint64(unsafe.Sizeof(shared{})), 0)
	if err != nil {
		return nil, fmt.Errorf("shared state: %w", err)
	}
	d.sh = (*shared)(z.Ptr())
	d.sh.Version, d.sh.DeviceID = sharedVersion, cfg.deviceID
	if err := d.initialize(); err != nil {
		mem.Free(cfg.name)
		return nil, err
	}
	atomic.StoreUint64(&d.sh.Magic, sharedMagic)
	d.done = make(chan struct{})
	d.wg.Add(1)
	go d.service()
	return d, nil
}

// initialize is the initialization sequence of 4.6.3, up to the point
// where the device waits for queues: after it the link is set up, the
// counters are clear, and only the link interrupt is enabled.
func (d *Device) initialize() error {
	// 4.6.3.1: interrupts stay disabled during initialization.
	d.w(regEIMC, eimcAll)
	// 4.6.3.2: global reset, after stopping DMA (5.2.5.3.2).
	if err := d.globalReset(); err != nil {
		return err
	}
	// 4.6.3.1: the reset re-enabled nothing, but disable interrupts again as asked.
	d.w(regEIMC, eimcAll)
	// 4.6.3: wait for the EEPROM auto-read (EEC.Auto_RD, 8.2.3.2.1) ...
	if err := d.waitSet(regEEC, eecAutoRD, "EEC.Auto_RD (EEPROM auto-read done)"); err != nil {
		return err
	}
	// ... and for DMA initialization (RDRXCTL.DMAIDONE, 8.2.3.8.8).
	if err := d.waitSet(regRDRXCTL, rdrxctlDMAIDone, "RDRXCTL.DMAIDONE (DMA initialization done)"); err != nil {
		return err
	}
	// 4.6.4: link setup.
	d.setupLink()
	// 4.6.5: the counters are read-to-clear; read them all once.
	d.readHWStats(false)
	// 8.2.3.7.8/9: the EEPROM loaded the station address into RAL[0]/RAH[0].
	ral, rah := d.r(regRAL0), d.r(regRAH0)
	d.mac = net.HardwareAddr{byte(ral), byte(ral >> 8), byte(ral >> 16), byte(ral >> 24), byte(rah), byte(rah >> 8)}
	// 4.6.3, last step: enable interrupts; 4.6.6 for the one cause the
	// driver uses, link status change.
	d.enableInterrupts()
	d.link = d.readLink()
	return nil
}

// globalReset stops the device's DMA and resets it (CTRL.RST, 8.2.3.1.1).
func (d *Device) globalReset() error {
	// 5.2.5.3.2: set PCIe master disable and wait until no request is pending.
	d.w(regCTRL, d.r(regCTRL)|ctrlMasterDisable)
	if err := d.waitClear(regSTATUS, statusMasterEnable, "STATUS.PCIe Master Enable"); err != nil {
		slog.Warn("ixgbe: DMA did not stop before the reset; resetting anyway", "port", d.cfg.name, "err", err)
	}
	// 8.2.3.1.1: no register access for about 1 ms after setting RST;
	// 4.6.3.2: wait at least 10 ms before going on.
	d.w(regCTRL, d.r(regCTRL)|ctrlRST)
	time.Sleep(resetSettle)
	return d.waitClear(regCTRL, ctrlRST, "CTRL.RST (device reset)")
}

// setupLink is 4.6.4. The 82599's EEPROM loads AUTOC's link mode (LMS)
// for the board (SFI, KR, KX4 ...); restarting auto-negotiation
// (8.2.3.22.19) applies it. The X540 and X550's copper PHY negotiates on
// its own after the reset.
func (d *Device) setupLink() {
	if d.cfg.mac == mac82599 {
		d.w(regAUTOC, d.r(regAUTOC)|autocRestartAN)
	}
}

// readLink decodes LINKS (8.2.3.22.20).
func (d *Device) readLink() ethdev.Link {
	v := d.r(regLINKS)
	if v&linksUp == 0 {
		return ethdev.Link{}
	}
	switch v & linksSpeedMask {
	case linksSpeed10G:
		return ethdev.Link{Up: true, Mbps: 10000}
	case linksSpeed1G:
		return ethdev.Link{Up: true, Mbps: 1000}
	case linksSpeed100M:
		return ethdev.Link{Up: true, Mbps: 100}
	}
	return ethdev.Link{Up: true}
}

// MAC returns the station address the EEPROM gave the port.
func (d *Device) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), d.mac...) }

// Link returns the link state as the primary last read it.
func (d *Device) Link() ethdev.Link {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.link
}

// updateLink reads LINKS and reports a change. Callers hold d.mu.
func (d *Device) updateLink() {
	l := d.readLink()
	if l == d.link {
		return
	}
	d.link = l
	if d.cfg.onLink != nil {
		d.cfg.onLink(l)
	}
}

// service is the primary's background work: link changes, from the MSI-X
// vector (7.3) or by polling LINKS; the hardware counters, read often
// enough that none saturates; and DMA mappings for memory the group gained.
func (d *Device) service() {
	defer d.wg.Done()
	stats := time.NewTicker(statsPeriod)
	defer stats.Stop()
	var irq <-chan struct{}
	var poll <-chan time.Time
	if d.cfg.irq != nil {
		irq = d.cfg.irq.C()
	} else {
		t := time.NewTicker(linkPoll)
		defer t.Stop()
		poll = t.C
	}
	for {
		select {
		case <-d.done:
			return
		case <-irq:
			d.mu.Lock()
			d.handleInterrupt()
			d.mu.Unlock()
		case <-poll:
			d.mu.Lock()
			d.updateLink()
			d.mu.Unlock()
		case <-stats.C:
			d.mu.Lock()
			d.readHWStats(true)
			d.mu.Unlock()
			if d.cfg.mapMemory != nil { // pools created after Start, in segments the device cannot reach yet
				if err := d.cfg.mapMemory(); err != nil {
					slog.Warn("ixgbe: DMA mapping of new group memory failed", "port", d.cfg.name, "err", err)
				}
			}
		}
	}
}

// handleInterrupt serves vector 0: 8.2.3.5.1 EICR says why it fired
// (reading clears it); a link status change is read from LINKS; then the
// causes are unmasked again (8.2.3.5.3).
func (d *Device) handleInterrupt() {
	if d.r(regEICR)&eicrLSC != 0 {
		d.updateLink()
	}
	d.w(regEIMS, eicrLSC|eicrOther)
}

// enableInterrupts is 4.6.6 for the one cause the driver uses, link status
// change, on MSI-X vector 0 (7.3 for MSI-X). Queues raise no interrupts:
// they are polled.
func (d *Device) enableInterrupts() {
	// 8.2.3.5.18: MSI-X mode, with the pending bit array.
	d.w(regGPIE, d.r(regGPIE)|gpieMSIXMode|gpiePBASupport)
	// 8.2.3.5.17: other causes, link status change among them, to vector 0.
	misc := d.r(regIVARMisc) &^ (0xFF << ivarOtherShift)
	d.w(regIVARMisc, misc|(ivarAllocVal|vectorOther)<<ivarOtherShift)
	// 8.2.3.5.5: other causes are not auto-cleared; the driver reads EICR.
	d.w(regEIAC, 0)
	// 8.2.3.5.1: clear what is pending, then 8.2.3.5.3: unmask link changes.
	d.r(regEICR)
	d.w(regEIMS, eicrLSC|eicrOther)
}

// Configure records the number of queues; the rings come with SetupRxQueue
// and SetupTxQueue.
func (d *Device) Configure(cfg ethdev.Config) error {
	if err := d.primaryOnly("configure the port"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sh.Started != 0 {
		return fmt.Errorf("configure while started: stop the port first")
	}
	if cfg.RxQueues < 1 || cfg.RxQueues > maxQueues || cfg.TxQueues < 1 || cfg.TxQueues > maxQueues {
		return fmt.Errorf("%d rx and %d tx queues: each must be 1 to %d (RSS spreads over at most %d)", cfg.RxQueues, cfg.TxQueues, maxQueues, maxQueues)
	}
	d.sh.NbRx, d.sh.NbTx = uint32(cfg.RxQueues), uint32(cfg.TxQueues)
	return nil
}

func checkDesc(desc int) error {
	if desc < minDesc || desc > maxDesc || desc&(desc-1) != 0 {
		return fmt.Errorf("%d descriptors: want a power of two from %d to %d", desc, minDesc, maxDesc)
	}
	return nil
}

// SetupRxQueue reserves rx queue q's ring for desc descriptors, to be
// filled with mbufs of pool when the port starts, through the port's own
// handle of it (ethdev.Port.RxPool). The pool's buffers must
// hold a full frame (at least 2 KB after the headroom): the driver does not
// chain receive buffers.
func (d *Device) SetupRxQueue(q, desc int, pool *mbuf.Pool) error {
	if err := d.primaryOnly("set up an rx queue"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkSetup("rx", q, int(d.sh.NbRx)); err != nil {
		return err
	}
	if err := checkDesc(desc); err != nil {
		return err
	}
	room := int(pool.DataRoom()) - mbuf.DefaultHeadroom
	if room < minRxBufSize {
		return fmt.Errorf("pool %q has %d-byte buffers, %d after the %d-byte headroom; the device needs %d (a full frame in one descriptor)",
			pool.Name(), pool.DataRoom(), room, mbuf.DefaultHeadroom, minRxBufSize)
	}
	z, err := d.replaceZone(fmt.Sprintf("%s_rx%d", d.cfg.name, q), uint32(desc))
	if err != nil {
		return err
	}
	rs := &d.sh.Rx[q]
	*rs = rxShared{Zone: z.Off, Size: uint32(desc), BufLen: uint32(min(room/1024, 16)) * 1024}
	return nil
}

// SetupTxQueue reserves tx queue q's ring for desc descriptors.
func (d *Device) SetupTxQueue(q, desc int) error {
	if err := d.primaryOnly("set up a tx queue"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if err := d.checkSetup("tx", q, int(d.sh.NbTx)); err != nil {
		return err
	}
	if err := checkDesc(desc); err != nil {
		return err
	}
	z, err := d.replaceZone(fmt.Sprintf("%s_tx%d", d.cfg.name, q), uint32(desc))
	if err != nil {
		return err
	}
	d.sh.Tx[q] = txShared{Zone: z.Off, Size: uint32(desc)}
	return nil
}

func (d *Device) checkSetup(dir string, q, n int) error {
	switch {
	case d.sh.Started != 0:
		return fmt.Errorf("set up %s queue %d while started: stop the port first", dir, q)
	case q < 0 || q >= n:
		return fmt.Errorf("%s queue %d does not exist; %d are configured", dir, q, n)
	}
	return nil
}

// replaceZone reserves a queue's memzone, freeing the one an earlier
// setup of the queue left.
func (d *Device) replaceZone(name string, size uint32) (*hugemem.Memzone, error) {
	if err := d.mem.Free(name); err != nil && !errors.Is(err, hugemem.ErrNotFound) {
		return nil, err
	}
	return queueZone(d.mem, name, size)
}

// Start is 4.6.7 and 4.6.8: receive and transmit initialization, each
// queue enabled and checked, then reception.
func (d *Device) Start() error {
	if err := d.primaryOnly("start the port"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sh.Started != 0 {
		return nil
	}
	for q := range int(d.sh.NbRx) {
		if d.sh.Rx[q].Zone == 0 {
			return fmt.Errorf("rx queue %d is not set up", q)
		}
	}
	for q := range int(d.sh.NbTx) {
		if d.sh.Tx[q].Zone == 0 {
			return fmt.Errorf("tx queue %d is not set up", q)
		}
	}
	if err := d.start(); err != nil {
		d.stop()
		return err
	}
	atomic.StoreUint32(&d.sh.Started, 1)
	return nil
}

func (d *Device) start() error {
	if d.cfg.mapMemory != nil {
		if err := d.cfg.mapMemory(); err != nil {
			return fmt.Errorf("DMA mapping of the group memory: %w", err)
		}
	}
	// 4.6.7 Receive initialization. Global settings first, with
	// reception off (8.2.3.8.10).
	d.w(regRXCTRL, d.r(regRXCTRL)&^rxctrlRXEN)
	// 4.6.11.3.4, no DCB and no virtualization: one packet buffer.
	d.w(regRXPBSIZE0, rxpbsize512KB)
	for i := uint32(1); i < 8; i++ {
		d.w(regRXPBSIZE0+4*i, 0)
	}
	// 8.2.3.22.8: strip the CRC on receive; append it and pad short frames on transmit.
	d.w(regHLREG0, d.r(regHLREG0)|hlreg0RXCRCSTRP|hlreg0TXCRCEN|hlreg0TXPADEN)
	// 8.2.3.8.8: CRCStrip as HLREG0 has it, no RSC (RSCFRSTSIZE 0), RSCACKC and FCOE_WRFIX set, as 4.6.7 asks.
	rd := d.r(regRDRXCTL) &^ rdrxctlRSCFrstSize
	d.w(regRDRXCTL, rd|rdrxctlCRCStrip|rdrxctlRSCACKC|rdrxctlFCoEWrFix)
	// 7.1.1: address filters; 7.1.2.8: RSS.
	d.writeFilters()
	d.writeRSS()
	// 8.2.3.23: queue q counts under statistics index q (QPRC, QPRDC, QPTC).
	for i := range uint32(maxQueues / 4) {
		v := (4*i + 0) | (4*i+1)<<8 | (4*i+2)<<16 | (4*i+3)<<24
		d.w(regRQSMR0+4*i, v)
		d.w(regTQSM0+4*i, v)
	}
	for q := range int(d.sh.NbRx) {
		if err := d.setupRxRing(q); err != nil {
			return err
		}
	}
	// The last sentence of 4.6.7: set CTRL_EXT.NS_DIS.
	d.w(regCTRLEXT, d.r(regCTRLEXT)|ctrlExtNSDis)

	// 4.6.8 Transmit initialization. 8.2.3.10.2: hold the arbiter while
	// the packet buffers are sized (4.6.11.3.4: all to buffer 0).
	d.w(regRTTDCS, d.r(regRTTDCS)|rttdcsARBDIS)
	d.w(regTXPBSIZE0, txpbsize160KB)
	d.w(regTXPBTHRESH, txpbthresh)
	for i := uint32(1); i < 8; i++ {
		d.w(regTXPBSIZE0+4*i, 0)
		d.w(regTXPBTHRESH+4*i, 0)
	}
	d.w(regMTQC, 0) // 8.2.3.9.15: no DCB, no virtualization
	d.w(regDTXMXSZRQ, dtxmxszrqLimit)
	d.w(regRTTDCS, d.r(regRTTDCS)&^rttdcsARBDIS)
	// Every ring is programmed before DMATXCTL.TE, which also enables queue 0.
	for q := range int(d.sh.NbTx) {
		d.setupTxRing(q)
	}
	d.w(regDMATXCTL, d.r(regDMATXCTL)|dmatxctlTE)
	for q := range int(d.sh.NbTx) {
		// 4.6.8: enable the queue and poll until the device shows it enabled.
		d.w(txq(q, tqTXDCTL), d.r(txq(q, tqTXDCTL))|txdctlEnable)
		if err := d.waitSet(txq(q, tqTXDCTL), txdctlEnable, fmt.Sprintf("TXDCTL[%d].ENABLE", q)); err != nil {
			return err
		}
	}
	// 4.6.7: enable each receive queue, poll until it shows enabled, and
	// only then hand the descriptors over by moving the tail.
	for q := range int(d.sh.NbRx) {
		d.w(rxq(q, rqRXDCTL), d.r(rxq(q, rqRXDCTL))|rxdctlEnable)
		if err := d.waitSet(rxq(q, rqRXDCTL), rxdctlEnable, fmt.Sprintf("RXDCTL[%d].ENABLE", q)); err != nil {
			return err
		}
		d.w(rxq(q, rqRDT), d.sh.Rx[q].Tail)
	}
	// 4.6.7: set RXCTRL.RXEN with the security block's receive path halted.
	d.withRxHalted(func() { d.w(regRXCTRL, d.r(regRXCTRL)|rxctrlRXEN) })
	d.updateLink()
	return nil
}

// setupRxRing programs rx queue q (4.6.7 per queue) and arms every
// descriptor with an mbuf; the tail moves once the queue is enabled.
func (d *Device) setupRxRing(q int) error {
	rs := &d.sh.Rx[q]
	pool, err := d.port.RxPool(q)
	if err != nil {
		return fmt.Errorf("rx queue %d: %w", q, err)
	}
	ringIOVA, err := d.iova(rs.Zone)
	if err != nil {
		return fmt.Errorf("rx queue %d: the ring is not DMA-capable: %w", q, err)
	}
	rq := d.rxQueue(q, pool, nil)
	// 7.1.6.1: every descriptor gets a buffer in the read format. The
	// last one stays the driver's: RDT will point at it.
	bufs := make([]*mbuf.Mbuf, rs.Size)
	if err := pool.AllocBulk(nil, bufs); err != nil {
		return fmt.Errorf("rx queue %d: %d mbufs for the ring from pool %q (%d free): %w", q, rs.Size, pool.Name(), pool.Mempool().Avail(), err)
	}
	for i, m := range bufs {
		iova := rq.dma.data(m)
		if iova == 0 {
			mbuf.FreeBulk(nil, bufs[i:])
			_, err := d.iova(d.mem.Off(unsafe.Pointer(m)))
			return fmt.Errorf("rx queue %d: pool %q is not DMA-capable: %w", q, pool.Name(), err)
		}
		*rq.slot(uint32(i)) = d.mem.Off(unsafe.Pointer(m))
		rq.desc(uint32(i)).arm(iova)
	}
	rs.Next, rs.Tail, rs.Discard = 0, rs.Size-1, 0
	// 8.2.3.8.1-3: ring address and length; 8.2.3.8.7: buffer size,
	// advanced one-buffer descriptors, drop when out of descriptors (so a
	// stalled queue never blocks the others).
	d.w(rxq(q, rqRDBAL), uint32(ringIOVA))
	d.w(rxq(q, rqRDBAH), uint32(ringIOVA>>32))
	d.w(rxq(q, rqRDLEN), rs.Size*descSize)
	d.w(rxq(q, rqSRRCTL), rs.BufLen>>srrctlBSizeShift|srrctlAdvOneBuf|srrctlDropEn)
	// 4.6.7: clear bit 12 of DCA_RXCTRL (reserved, set by reset).
	d.w(rxq(q, rqDCARXCTRL), d.r(rxq(q, rqDCARXCTRL))&^dcaRxctrlBit12)
	// 8.2.3.8.4-5: an empty ring until the queue is enabled.
	d.w(rxq(q, rqRDH), 0)
	d.w(rxq(q, rqRDT), 0)
	return nil
}

// setupTxRing programs tx queue q (4.6.8 per queue): an empty ring.
func (d *Device) setupTxRing(q int) {
	ts := &d.sh.Tx[q]
	clear(unsafe.Slice((*byte)(d.mem.Ptr(ts.Zone)), uint64(ts.Size)*(descSize+8)))
	ts.Next, ts.Clean = 0, 0
	iova, _ := d.iova(ts.Zone) // the rx rings live in the same memory and passed
	// 8.2.3.9.5-7: ring address and length; 8.2.3.9.8-9: head = tail = 0.
	d.w(txq(q, tqTDBAL), uint32(iova))
	d.w(txq(q, tqTDBAH), uint32(iova>>32))
	d.w(txq(q, tqTDLEN), ts.Size*descSize)
	d.w(txq(q, tqTDH), 0)
	d.w(txq(q, tqTDT), 0)
	// 8.2.3.9.10: prefetch and host thresholds; write-back as soon as RS asks.
	d.w(txq(q, tqTXDCTL), txdctlPTHRESH|txdctlHTHRESH)
}

// withRxHalted runs fn with the receive data path halted as 4.6.7 does
// around RXCTRL.RXEN: SECRXCTRL.RX_DIS set, SECRXSTAT.SECRX_RDY awaited
// (8.2.3.12.5/6), then released.
func (d *Device) withRxHalted(fn func()) {
	d.w(regSECRXCTRL, d.r(regSECRXCTRL)|secrxRXDis)
	if err := d.waitSet(regSECRXSTAT, secrxReady, "SECRXSTAT.SECRX_RDY"); err != nil {
		slog.Warn("ixgbe: receive security block did not halt", "port", d.cfg.name, "err", err)
	}
	fn()
	d.w(regSECRXCTRL, d.r(regSECRXCTRL)&^secrxRXDis)
}

// Stop halts the port: reception off, every queue disabled (4.6.7.1,
// 4.6.8.1), the mbufs in the rings freed. Queues keep their setup.
func (d *Device) Stop() error {
	if err := d.primaryOnly("stop the port"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.sh.Started == 0 {
		return nil
	}
	atomic.StoreUint32(&d.sh.Started, 0)
	return d.stop()
}

func (d *Device) stop() error {
	var errs []error
	d.w(regRXCTRL, d.r(regRXCTRL)&^rxctrlRXEN)
	for q := range int(d.sh.NbRx) {
		d.w(rxq(q, rqRXDCTL), d.r(rxq(q, rqRXDCTL))&^rxdctlEnable)
		errs = append(errs, d.waitClear(rxq(q, rqRXDCTL), rxdctlEnable, fmt.Sprintf("RXDCTL[%d].ENABLE", q)))
	}
	for q := range int(d.sh.NbTx) {
		d.w(txq(q, tqTXDCTL), d.r(txq(q, tqTXDCTL))&^txdctlEnable)
		errs = append(errs, d.waitClear(txq(q, tqTXDCTL), txdctlEnable, fmt.Sprintf("TXDCTL[%d].ENABLE", q)))
	}
	d.w(regDMATXCTL, d.r(regDMATXCTL)&^dmatxctlTE)
	// The device no longer touches the rings: give their mbufs back.
	for q := range int(d.sh.NbRx) {
		if rs := &d.sh.Rx[q]; rs.Zone != 0 {
			errs = append(errs, d.freeSlots(rs.Zone, rs.Size))
		}
	}
	for q := range int(d.sh.NbTx) {
		if ts := &d.sh.Tx[q]; ts.Zone != 0 {
			errs = append(errs, d.freeSlots(ts.Zone, ts.Size))
			ts.Next, ts.Clean = 0, 0
		}
	}
	return errors.Join(errs...)
}

// freeSlots frees every mbuf a queue's table holds.
func (d *Device) freeSlots(zone uint64, size uint32) error {
	slots := unsafe.Slice((*uint64)(d.mem.Ptr(zone+uint64(size)*descSize)), size)
	var batch [64]*mbuf.Mbuf
	var errs []error
	n := 0
	for i, off := range slots {
		if off == 0 {
			continue
		}
		slots[i] = 0
		batch[n] = (*mbuf.Mbuf)(d.mem.Ptr(off))
		if n++; n == len(batch) {
			errs = append(errs, mbuf.FreeBulk(nil, batch[:n]))
			n = 0
		}
	}
	errs = append(errs, mbuf.FreeBulk(nil, batch[:n]))
	return errors.Join(errs...)
}

// Close releases what this process holds; the primary also stops the
// device and frees the port's memzones. The rx pools' handles are the
// Port's (ethdev.Port.RxPool), which closes them after this.
func (d *Device) Close() error {
	var errs []error
	if d.done != nil {
		errs = append(errs, d.closePrimary())
	}
	if d.cfg.close != nil {
		errs = append(errs, d.cfg.close())
	}
	return errors.Join(errs...)
}

func (d *Device) closePrimary() error {
	close(d.done)
	d.wg.Wait()
	d.mu.Lock()
	defer d.mu.Unlock()
	var errs []error
	if d.sh.Started != 0 {
		atomic.StoreUint32(&d.sh.Started, 0)
		errs = append(errs, d.stop())
	}
	d.w(regEIMC, eimcAll)
	if d.cfg.irq != nil {
		errs = append(errs, d.cfg.irq.Close())
	}
	for q := range maxQueues {
		for _, name := range []string{fmt.Sprintf("%s_rx%d", d.cfg.name, q), fmt.Sprintf("%s_tx%d", d.cfg.name, q)} {
			if err := d.mem.Free(name); err != nil && !errors.Is(err, hugemem.ErrNotFound) {
				errs = append(errs, err)
			}
		}
	}
	atomic.StoreUint64(&d.sh.Magic, 0)
	errs = append(errs, d.mem.Free(d.cfg.name))
	return errors.Join(errs...)
}

// Filters, 7.1.1.1: unicast (RAR), multicast (MTA), broadcast, and the
// promiscuous modes of FCTRL.

// SetPromiscuous accepts every unicast and multicast frame (FCTRL.UPE and
// MPE, 8.2.3.7.1), or only those the filters pass.
func (d *Device) SetPromiscuous(on bool) error {
	if err := d.primaryOnly("change promiscuous mode"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.promisc = on
	d.updateFilters()
	return nil
}

// SetAllMulticast accepts every multicast frame (FCTRL.MPE), or only those
// of the multicast list.
func (d *Device) SetAllMulticast(on bool) error {
	if err := d.primaryOnly("change all-multicast mode"); err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.allmulti = on
	d.updateFilters()
	return nil
}

// SetMulticastAddrs replaces the multicast list: frames to these group
// addresses pass the filter, through the 4096-bit multicast table indexed
// by bits 47:36 of the destination (8.2.3.7.7 with MCSTCTRL.MO = 00b), so a
// few other groups that share a bit pass too.
func (d *Device) SetMulticastAddrs(addrs []net.HardwareAddr) error {
	if err := d.primaryOnly("set the multicast list"); err != nil {
		return err
	}
	var mta [numMTA]uint32
	for _, a := range addrs {
		if len(a) != 6 || a[0]&1 == 0 {
			return fmt.Errorf("multicast address %v: want a 6-byte group address (lowest bit of the first byte set)", a)
		}
		h := mtaHash(a)
		mta[h>>5] |= 1 << (h & 31)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.mta = mta
	d.updateFilters()
	return nil
}

// mtaHash is the multicast table index for MCSTCTRL.MO = 00b: destination
// address bits 47:36, the top 12 bits of the last two bytes (8.2.3.7.7).
func mtaHash(a net.HardwareAddr) uint32 { return (uint32(a[4])>>4 | uint32(a[5])<<4) & 0xFFF }

// updateFilters applies the filter state now if the port runs. 8.2.3.7.1
// asks for reception to be off while filters change. Callers hold d.mu.
func (d *Device) updateFilters() {
	if d.sh.Started == 0 {
		return // written at start
	}
	d.withRxHalted(func() {
		d.w(regRXCTRL, d.r(regRXCTRL)&^rxctrlRXEN)
		d.writeFilters()
		d.w(regRXCTRL, d.r(regRXCTRL)|rxctrlRXEN)
	})
}

func (d *Device) writeFilters() {
	fctrl := d.r(regFCTRL) &^ (fctrlUPE | fctrlMPE)
	fctrl |= fctrlBAM // broadcasts always pass
	if d.promisc {
		fctrl |= fctrlUPE | fctrlMPE
	}
	if d.allmulti {
		fctrl |= fctrlMPE
	}
	for i, v := range d.mta {
		d.w(regMTA0+4*uint32(i), v)
	}
	d.w(regMCSTCTRL, mcstctrlMFE)
	d.w(regFCTRL, fctrl)
}

// writeRSS is 7.1.2.8: with more than one rx queue, the Toeplitz hash over
// addresses and ports picks the queue through the redirection table, entry
// i going to queue i mod n. The write-back carries the hash
// (RXCSUM.PCSD) either way.
func (d *Device) writeRSS() {
	d.w(regRXCSUM, d.r(regRXCSUM)|rxcsumPCSD)
	n := d.sh.NbRx
	if n < 2 {
		d.w(regMRQC, 0)
		return
	}
	for i := range uint32(numRSSRK) {
		k := defaultRSSKey[4*i:]
		d.w(regRSSRK0+4*i, uint32(k[0])|uint32(k[1])<<8|uint32(k[2])<<16|uint32(k[3])<<24)
	}
	for i := range uint32(numRETA) {
		var v uint32
		for k := range uint32(4) {
			v |= (4*i + k) % n << (8 * k)
		}
		d.w(regRETA0+4*i, v)
	}
	d.w(regMRQC, mrqcRSS|mrqcAllFields)
}

// Hardware counters, 8.2.3.23, accumulated by the primary into shared
// memory so every process's XStats sees them.

type hwStat struct {
	name string
	reg  uint32
	wide bool // a 36-bit Low/High pair
}

var hwStats = [...]hwStat{
	{"rx_crc_errors", regCRCERRS, false},
	{"rx_length_errors", regRLEC, false},
	{"rx_size_64_packets", regPRC64, false},
	{"rx_size_65_to_127_packets", regPRC64 + 4, false},
	{"rx_size_128_to_255_packets", regPRC64 + 8, false},
	{"rx_size_256_to_511_packets", regPRC64 + 12, false},
	{"rx_size_512_to_1023_packets", regPRC64 + 16, false},
	{"rx_size_1024_to_max_packets", regPRC64 + 20, false},
	{"rx_broadcast_packets", regBPRC, false},
	{"rx_multicast_packets", regMPRC, false},
	{"rx_undersize_errors", regRUC, false},
	{"rx_oversize_errors", regROC, false},
	{"rx_total_packets", regTPR, false},
	{"rx_total_bytes", regTORL, true},
	{"hw_rx_good_packets", regGPRC, false},
	{"hw_rx_good_bytes", regGORCL, true},
	{"rx_priority0_dropped", regMPC0, false},
	{"rx_priority0_mbuf_allocation_errors", regRNBC0, false},
	{"tx_total_packets", regTPT, false},
	{"tx_size_64_packets", regPTC64, false},
	{"tx_size_65_to_127_packets", regPTC64 + 4, false},
	{"tx_size_128_to_255_packets", regPTC64 + 8, false},
	{"tx_size_256_to_511_packets", regPTC64 + 12, false},
	{"tx_size_512_to_1023_packets", regPTC64 + 16, false},
	{"tx_size_1024_to_max_packets", regPTC64 + 20, false},
	{"tx_multicast_packets", regMPTC, false},
	{"tx_broadcast_packets", regBPTC, false},
	{"hw_tx_good_packets", regGPTC, false},
	{"hw_tx_good_bytes", regGOTCL, true},
}

// Per-queue counters follow the global ones in shared.HW: QPRC, QPRDC and
// QPTC for each statistics index.
const (
	hwQueueBase = len(hwStats)
	numHWStats  = hwQueueBase + 3*numQueueSet
)

// readHWStats reads every counter, which clears it; with keep, the values
// are added to the shared totals, and each queue's drops to its share.
// Callers hold d.mu (or own the device alone, as initialize does).
func (d *Device) readHWStats(keep bool) {
	add := func(i int, v uint64) {
		if keep && v != 0 {
			atomic.StoreUint64(&d.sh.HW[i], d.sh.HW[i]+v)
		}
	}
	for i, s := range hwStats {
		v := uint64(d.r(s.reg))
		if s.wide {
			v |= uint64(d.r(s.reg+4)&0xF) << 32 // High after Low: Low latched it
		}
		add(i, v)
	}
	for q := range uint32(numQueueSet) {
		add(hwQueueBase+3*int(q), uint64(d.r(regQPRC0+0x40*q)))
		drops := uint64(d.r(regQPRDC0 + 0x40*q))
		add(hwQueueBase+3*int(q)+1, drops)
		add(hwQueueBase+3*int(q)+2, uint64(d.r(regQPTC0+4*q)))
		if keep && drops != 0 {
			rs := &d.sh.Rx[q]
			atomic.StoreUint64(&rs.HWDropped, rs.HWDropped+drops)
		}
	}
}

// XStats returns the hardware counters under DPDK's ixgbe names (hw_ for
// those the generic counters would shadow). The primary reads the device
// first; a secondary sees the totals as of the primary's last read.
func (d *Device) XStats() []ethdev.XStat {
	if d.done != nil {
		d.mu.Lock()
		d.readHWStats(true)
		d.mu.Unlock()
	}
	out := make([]ethdev.XStat, 0, numHWStats)
	for i, s := range hwStats {
		out = append(out, ethdev.XStat{Name: s.name, Value: atomic.LoadUint64(&d.sh.HW[i])})
	}
	for q := range int(max(d.sh.NbRx, d.sh.NbTx)) {
		base := hwQueueBase + 3*q
		if q < int(d.sh.NbRx) {
			out = append(out,
				ethdev.XStat{Name: fmt.Sprintf("hw_rx_q%d_packets", q), Value: atomic.LoadUint64(&d.sh.HW[base])},
				ethdev.XStat{Name: fmt.Sprintf("hw_rx_q%d_dropped", q), Value: atomic.LoadUint64(&d.sh.HW[base+1])})
		}
		if q < int(d.sh.NbTx) {
			out = append(out,
				ethdev.XStat{Name: fmt.Sprintf("hw_tx_q%d_packets", q), Value: atomic.LoadUint64(&d.sh.HW[base+2])},
				ethdev.XStat{Name: fmt.Sprintf("tx_q%d_mbufs_lost", q), Value: atomic.LoadUint64(&d.sh.Tx[q].Lost)})
		}
	}
	return out
}

// Info describes the limits: 16 queues each way (as many as RSS reaches),
// rings of 64 to 4096 descriptors, a power of two.
func (d *Device) Info() ethdev.Info {
	return ethdev.Info{MaxRxQueues: maxQueues, MaxTxQueues: maxQueues,
		MinRxDesc: minDesc, MaxRxDesc: maxDesc, MinTxDesc: minDesc, MaxTxDesc: maxDesc}
}

// primaryOnly refuses op in a secondary: the device's registers and
// configuration belong to the primary, which would not know of the change.
func (d *Device) primaryOnly(op string) error {
	if d.cfg.primary {
		return nil
	}
	return fmt.Errorf("ixgbe %s: only the primary process may %s; this is a secondary", d.cfg.name, op)
}

// Register access and polling.

func (d *Device) r(off uint32) uint32    { return d.regs.Read32(off) }
func (d *Device) w(off uint32, v uint32) { d.regs.Write32(off, v) }

// waitSet polls until every bit of mask reads 1, for at most pollTimeout.
func (d *Device) waitSet(off, mask uint32, what string) error {
	return d.wait(off, mask, mask, what+" to be set")
}

// waitClear polls until every bit of mask reads 0.
func (d *Device) waitClear(off, mask uint32, what string) error {
	return d.wait(off, mask, 0, what+" to clear")
}

func (d *Device) wait(off, mask, want uint32, what string) error {
	deadline := time.Now().Add(pollTimeout)
	for i := 0; ; i++ {
		v := d.r(off)
		if v&mask == want {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("waited %v for %s (register %#05x reads %#x)", pollTimeout, what, off, v)
		}
		if i >= 10 {
			time.Sleep(10 * time.Microsecond)
		}
	}
}

// RxQueue returns this process's poller for rx queue q of a started port.
func (d *Device) RxQueue(q int, c *ethdev.QueueCounters) (ethdev.RxQueue, error) {
	if q < 0 || q >= int(d.sh.NbRx) || d.sh.Rx[q].Zone == 0 {
		return nil, fmt.Errorf("rx queue %d is not set up (%d configured)", q, d.sh.NbRx)
	}
	pool, err := d.port.RxPool(q)
	if err != nil {
		return nil, fmt.Errorf("rx queue %d: %w", q, err)
	}
	return d.rxQueue(q, pool, c), nil
}

// TxQueue returns this process's sender for tx queue q of a started port.
func (d *Device) TxQueue(q int, c *ethdev.QueueCounters) (ethdev.TxQueue, error) {
	if q < 0 || q >= int(d.sh.NbTx) || d.sh.Tx[q].Zone == 0 {
		return nil, fmt.Errorf("tx queue %d is not set up (%d configured)", q, d.sh.NbTx)
	}
	return d.txQueue(q, c), nil
}
