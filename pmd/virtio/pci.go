package virtio

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/mp/ipc"
	"github.com/gopmd/gopmd/pci"
	"github.com/gopmd/gopmd/pmd/virtio/internal/virtqueue"
	"github.com/gopmd/gopmd/vfio"
)

func init() {
	ethdev.Register("net_virtio", pciDriver{})
	ethdev.RegisterPCI("net_virtio", []pci.ID{{Vendor: vendorRedHat, Device: deviceTransitional}, {Vendor: vendorRedHat, Device: deviceModern}})
}

// Virtio over PCI (virtio 1.2 section 4.1), through VFIO.
//
// Modern devices describe their registers with vendor capabilities: the
// common configuration (features, status, queue set-up), the notification
// area (one doorbell per queue), the ISR byte and the device-specific
// configuration (MAC, link status, queue pairs). Legacy and transitional
// devices have all of it in I/O BAR0, with 32 feature bits and rings
// given by page frame number.

// struct virtio_pci_common_cfg.
const (
	commonDFSelect   = 0x00
	commonDF         = 0x04
	commonGFSelect   = 0x08
	commonGF         = 0x0c
	commonMSIXConfig = 0x10
	commonNumQueues  = 0x12
	commonStatus     = 0x14
	commonQSelect    = 0x16
	commonQSize      = 0x18
	commonQMSIX      = 0x1a
	commonQEnable    = 0x1c
	commonQNotifyOff = 0x1e
	commonQDesc      = 0x20
	commonQDriver    = 0x28
	commonQDevice    = 0x30
)

// Legacy registers in I/O BAR0 (section 4.1.4.8).
const (
	legacyHostFeatures  = 0x00
	legacyGuestFeatures = 0x04
	legacyQueuePFN      = 0x08
	legacyQueueNum      = 0x0c
	legacyQueueSel      = 0x0e
	legacyQueueNotify   = 0x10
	legacyStatus        = 0x12
	legacyISR           = 0x13
	legacyDeviceConfig  = 0x14 // without MSI-X, which we never enable
	legacyPFNShift      = 12
)

// Device status bits (section 2.1).
const (
	statusAcknowledge = 1
	statusDriver      = 2
	statusDriverOK    = 4
	statusFeaturesOK  = 8
	statusNeedsReset  = 0x40
	statusFailed      = 0x80
)

// struct virtio_net_config.
const (
	netCfgMAC      = 0
	netCfgStatus   = 6
	netCfgMaxPairs = 8
	netLinkUp      = 1
)

const (
	noVector     = 0xffff
	resetTimeout = time.Second
	linkPoll     = 100 * time.Millisecond
)

// PCI ids of virtio-net: transitional (0x1000) and modern (0x1041).
const (
	vendorRedHat       = 0x1af4
	deviceTransitional = 0x1000
	deviceModern       = 0x1041
)

// pciArgs are net_virtio's device arguments.
type pciArgs struct {
	addr      pci.Addr
	legacy    bool // use the legacy interface of a transitional device
	queueSize int  // 0: the device's
	mrgRxbuf  bool
	packed    bool // use a packed ring if the device offers one
}

func parsePCIArgs(dev eal.VDev) (pciArgs, error) {
	a := pciArgs{mrgRxbuf: true, packed: true}
	have := false
	for _, kv := range dev.Args {
		var err error
		switch kv.Key {
		case "pci":
			a.addr, err = pci.ParseAddr(kv.Value)
			have = err == nil
		case "legacy":
			a.legacy, err = boolArg(kv)
		case "queue_size":
			a.queueSize, err = intArg(kv, 2, virtqueue.MaxSize)
			if err == nil && a.queueSize&(a.queueSize-1) != 0 {
				err = fmt.Errorf("queue_size=%s: want a power of two", kv.Value)
			}
		case "mrg_rxbuf":
			a.mrgRxbuf, err = boolArg(kv)
		case "packed_vq":
			a.packed, err = boolArg(kv)
		default:
			return a, fmt.Errorf("unknown argument %q (net_virtio takes pci, legacy, queue_size, mrg_rxbuf, packed_vq)", kv.Key)
		}
		if err != nil {
			return a, err
		}
	}
	if !have {
		return a, fmt.Errorf("pci= is required: the device's PCI address, such as pci=0000:00:10.0")
	}
	return a, nil
}

// reg is one virtio register structure: a BAR and where the structure
// starts in it. Accessors remember the first error in *err.
type reg struct {
	bar *vfio.BAR
	off uint64
	err *error
}

func (r reg) fail(err error) {
	if err != nil && *r.err == nil {
		*r.err = err
	}
}
func (r reg) r8(o uint64) uint8      { v, err := r.bar.Read8(r.off + o); r.fail(err); return v }
func (r reg) r16(o uint64) uint16    { v, err := r.bar.Read16(r.off + o); r.fail(err); return v }
func (r reg) r32(o uint64) uint32    { v, err := r.bar.Read32(r.off + o); r.fail(err); return v }
func (r reg) w8(o uint64, v uint8)   { r.fail(r.bar.Write8(r.off+o, v)) }
func (r reg) w16(o uint64, v uint16) { r.fail(r.bar.Write16(r.off+o, v)) }
func (r reg) w32(o uint64, v uint32) { r.fail(r.bar.Write32(r.off+o, v)) }
func (r reg) w64(o uint64, v uint64) { r.w32(o, uint32(v)); r.w32(o+4, uint32(v>>32)) }

// The process's VFIO container: one for all devices, served to
// secondaries once per mp endpoint, closed with the last device. Closing
// it drops its DMA mappings, which must not outlive the memory they map
// (a later group would get the same IOVAs).
var vfioState struct {
	sync.Mutex
	c      *vfio.Container
	served map[*ipc.Endpoint]bool
	users  int
}

// vfioServeAction is the action vfio.Serve registers.
const vfioServeAction = "vfio_fds"

func openVFIO(proc *mp.Process, addr pci.Addr) (*vfio.Device, error) {
	vfioState.Lock()
	defer vfioState.Unlock()
	if vfioState.c == nil {
		c, err := vfio.OpenContainer()
		if err != nil {
			return nil, err
		}
		vfioState.c, vfioState.served = c, map[*ipc.Endpoint]bool{}
	}
	if !vfioState.served[proc.IPC()] {
		if err := vfio.Serve(proc.IPC(), vfioState.c); err != nil {
			return nil, err
		}
		vfioState.served[proc.IPC()] = true
	}
	if d := vfioState.c.Device(addr); d != nil {
		return nil, fmt.Errorf("%s is already open in this process", addr)
	}
	d, err := vfioState.c.OpenDevice(addr)
	if err == nil {
		vfioState.users++
	} else if vfioState.users == 0 {
		closeContainerLocked()
	}
	return d, err
}

// closeVFIO closes a device opened with openVFIO.
func closeVFIO(d *vfio.Device) error {
	vfioState.Lock()
	defer vfioState.Unlock()
	err := d.Close()
	if vfioState.users--; vfioState.users == 0 {
		err = errors.Join(err, closeContainerLocked())
	}
	return err
}

func closeContainerLocked() error {
	for ep := range vfioState.served {
		ep.Unregister(vfioServeAction)
	}
	err := vfioState.c.Close()
	vfioState.c, vfioState.served = nil, nil
	return err
}

func mapVFIOMemory(mem *hugemem.Memory) error {
	vfioState.Lock()
	defer vfioState.Unlock()
	return vfioState.c.MapMemory(mem)
}

// pciTransport reaches a virtio-net device on PCI through VFIO.
type pciTransport struct {
	port    *ethdev.Port
	proc    *mp.Process
	sh      *portShared
	args    pciArgs
	dev     *vfio.Device
	primary bool
	legacy  bool
	found   bool       // the register structures are located
	mu      sync.Mutex // orders register access by the link watcher and the ethdev calls
	err     error      // first register access error

	common, isr, devcfg, io reg
	notify                  *vfio.BAR

	stopCh chan struct{}
	done   chan struct{}
}

type pciDriver struct{}

func (pciDriver) Probe(p *ethdev.Port, vdev eal.VDev) (ethdev.Device, error) {
	args, err := parsePCIArgs(vdev)
	if err != nil {
		return nil, err
	}
	mem := p.Memory()
	if !mem.HugePages() {
		return nil, fmt.Errorf("net_virtio needs hugepage memory for DMA; the group runs on memfd memory")
	}
	sh, err := newShared(p)
	if err != nil {
		return nil, err
	}
	dev, err := openVFIO(p.Process(), args.addr)
	if err != nil {
		return nil, err
	}
	t := &pciTransport{port: p, proc: p.Process(), sh: sh, args: args, dev: dev, primary: true}
	d := &device{port: p, mem: mem, primary: true, sh: sh, t: t, name: "net_virtio"}
	if err := t.probe(d); err != nil {
		t.close()
		return nil, fmt.Errorf("%s: %w", args.addr, err)
	}
	publishShared(sh)
	logNegotiated(d)
	t.stopCh, t.done = make(chan struct{}), make(chan struct{})
	go t.watchLink()
	return d, nil
}

// probe finds the device's registers, negotiates features and reads its
// configuration.
func (t *pciTransport) probe(d *device) error {
	sh := t.sh
	cfg, err := t.dev.Config()
	if err != nil {
		return err
	}
	if v := cfg.VendorID(); v != vendorRedHat || (cfg.DeviceID() != deviceModern && cfg.DeviceID() != deviceTransitional) {
		return fmt.Errorf("device %04x:%04x is not a virtio-net device (want %04x:%04x or %04x:%04x)",
			v, cfg.DeviceID(), vendorRedHat, deviceModern, vendorRedHat, deviceTransitional)
	}
	caps, _ := cfg.VirtioCaps()
	t.legacy = t.args.legacy || len(caps) == 0
	if t.legacy && cfg.DeviceID() == deviceModern {
		return fmt.Errorf("legacy=1: a modern-only device (%04x) has no legacy interface", deviceModern)
	}
	if err := t.findRegisters(cfg); err != nil {
		return err
	}
	t.found = true
	if err := t.dev.SetBusMaster(true); err != nil {
		return err
	}
	offered, err := t.initDevice(0)
	if err != nil {
		return err
	}
	sh.Offered = offered
	want := driverFeatures
	if !t.args.mrgRxbuf {
		want &^= 1 << FeatMrgRxbuf
	}
	if !t.args.packed {
		want &^= 1 << FeatRingPacked
	}
	f := offered & want
	if !t.legacy && !f.Has(FeatVersion1) {
		return fmt.Errorf("the modern interface offers no VERSION_1 (features %v)", offered)
	}
	// A device that offers ACCESS_PLATFORM translates our addresses with the
	// IOMMU: VA-mode IOVAs, which VFIO maps. One that does not sees guest
	// physical addresses: PA mode.
	iovaMode := d.mem.IOVAMode()
	if f.Has(FeatAccessPlatfrm) && iovaMode != hugemem.IOVAModeVA {
		return fmt.Errorf("the device goes through the IOMMU (ACCESS_PLATFORM), so it needs IOVA mode va, not %v", iovaMode)
	}
	if !f.Has(FeatAccessPlatfrm) && iovaMode != hugemem.IOVAModePA {
		return fmt.Errorf("the device bypasses the IOMMU (no ACCESS_PLATFORM offered: features %v), so it needs physical addresses: --iova-mode=pa", offered)
	}
	if _, err := t.initDevice(f); err != nil {
		return err
	}
	sh.Features = f
	sh.Kind = virtqueue.Split
	if f.Has(FeatRingPacked) {
		sh.Kind = virtqueue.Packed
	}
	sh.HdrLen = uint32(netHdrLen(f))
	devPairs := 1
	if f.Has(FeatMQ) {
		devPairs = max(1, int(t.devcfg.r16(netCfgMaxPairs)))
	}
	sh.MaxPairs = uint32(min(devPairs, ethdev.MaxQueues))
	sh.CtrlVQ = uint32(2 * devPairs)
	if iovaMode == hugemem.IOVAModeVA {
		sh.Linear, sh.AddrBase = 1, hugemem.IOVABase
	}
	sh.Primary = int32(os.Getpid())
	copy(sh.PCI.Addr[:], t.args.addr.String())
	if t.legacy {
		sh.Transport = transportLegacy
	} else {
		sh.Transport = transportModern
	}
	// Ring size: the device's maximum (fixed, for legacy), or queue_size
	// if smaller.
	size := int(t.queueMax(0))
	if size == 0 {
		return fmt.Errorf("the device has no queue 0")
	}
	if t.args.queueSize != 0 {
		if t.legacy && t.args.queueSize != size {
			return fmt.Errorf("queue_size=%d: a legacy device's rings have its fixed size, %d", t.args.queueSize, size)
		}
		if t.args.queueSize > size {
			return fmt.Errorf("queue_size=%d: the device takes at most %d", t.args.queueSize, size)
		}
		size = t.args.queueSize
	}
	if size&(size-1) != 0 && sh.Kind == virtqueue.Split {
		return fmt.Errorf("the device's queue size %d is not a power of two", size)
	}
	sh.RingSize = uint32(size)
	if f.Has(FeatCtrlVQ) {
		// The control queue carries one command at a time: a small ring.
		n := t.queueMax(int(sh.CtrlVQ))
		if n == 0 || n&(n-1) != 0 {
			return fmt.Errorf("the device's control queue (%d) has %d entries", sh.CtrlVQ, n)
		}
		sh.CtrlSize = uint32(n)
		if !t.legacy {
			sh.CtrlSize = uint32(min(n, 64))
		}
	}

	mac := make(net.HardwareAddr, 6)
	if f.Has(FeatMAC) {
		for i := range mac {
			mac[i] = t.devcfg.r8(uint64(netCfgMAC + i))
		}
	} else {
		mac = randomMAC()
	}
	t.port.SetMAC(mac)
	t.port.SetLink(t.link())
	return t.err
}

// findRegisters locates the register structures, legacy or modern.
func (t *pciTransport) findRegisters(cfg pci.Config) error {
	if t.legacy {
		b, err := t.dev.BAR(0)
		if err != nil {
			return err
		}
		if !b.IO() {
			return fmt.Errorf("legacy interface: BAR0 is not an I/O BAR")
		}
		t.io = reg{bar: b, err: &t.err}
		t.devcfg = reg{bar: b, off: legacyDeviceConfig, err: &t.err}
		t.isr = reg{bar: b, off: legacyISR, err: &t.err}
		t.notify = b
		return nil
	}
	find := func(typ uint8, name string) (reg, pci.VirtioCap, error) {
		c, err := cfg.VirtioCap(typ)
		if err != nil {
			return reg{}, c, fmt.Errorf("modern interface: no %s capability: %w", name, err)
		}
		b, err := t.dev.BAR(c.BAR)
		if err != nil {
			return reg{}, c, err
		}
		return reg{bar: b, off: uint64(c.Offset), err: &t.err}, c, nil
	}
	var err error
	var nc pci.VirtioCap
	var n reg
	if t.common, _, err = find(pci.VirtioCommonCfg, "common configuration"); err != nil {
		return err
	}
	if t.isr, _, err = find(pci.VirtioISRCfg, "ISR"); err != nil {
		return err
	}
	if t.devcfg, _, err = find(pci.VirtioDeviceCfg, "device configuration"); err != nil {
		return err
	}
	if n, nc, err = find(pci.VirtioNotifyCfg, "notification"); err != nil {
		return err
	}
	t.notify = n.bar
	t.sh.PCI.NotifyBar = uint32(nc.BAR)
	t.sh.PCI.NotifyOff = uint64(nc.Offset)
	t.sh.PCI.NotifyMult = nc.NotifyOffMultiplier
	return nil
}

func (t *pciTransport) setStatus(s uint8) {
	if t.legacy {
		t.io.w8(legacyStatus, s)
	} else {
		t.common.w8(commonStatus, s)
	}
}

func (t *pciTransport) status() uint8 {
	if t.legacy {
		return t.io.r8(legacyStatus)
	}
	return t.common.r8(commonStatus)
}

// reset resets the device and waits for it to say so (section 4.1.4.3.2).
func (t *pciTransport) reset() error {
	t.setStatus(0)
	for deadline := time.Now().Add(resetTimeout); t.status() != 0; time.Sleep(time.Millisecond) {
		if t.err != nil {
			return t.err
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("device status did not read 0 within %v of reset", resetTimeout)
		}
	}
	return t.err
}

// initDevice runs the initialization sequence of section 3.1.1 up to the
// features: reset, ACKNOWLEDGE, DRIVER, read the device's features, and,
// if f is not zero, accept f (FEATURES_OK on a modern device). It returns
// what the device offers.
func (t *pciTransport) initDevice(f Features) (Features, error) {
	if err := t.reset(); err != nil {
		return 0, err
	}
	t.setStatus(statusAcknowledge)
	t.setStatus(statusAcknowledge | statusDriver)
	var offered Features
	if t.legacy {
		offered = Features(t.io.r32(legacyHostFeatures))
	} else {
		t.common.w32(commonDFSelect, 0)
		lo := t.common.r32(commonDF)
		t.common.w32(commonDFSelect, 1)
		offered = Features(uint64(t.common.r32(commonDF))<<32 | uint64(lo))
	}
	if f == 0 || t.err != nil {
		return offered, t.err
	}
	if t.legacy {
		t.io.w32(legacyGuestFeatures, uint32(f))
		return offered, t.err
	}
	t.common.w32(commonGFSelect, 0)
	t.common.w32(commonGF, uint32(f))
	t.common.w32(commonGFSelect, 1)
	t.common.w32(commonGF, uint32(f>>32))
	t.setStatus(statusAcknowledge | statusDriver | statusFeaturesOK)
	if s := t.status(); s&statusFeaturesOK == 0 && t.err == nil {
		return offered, fmt.Errorf("the device refused features %v (status %#x)", f, s)
	}
	return offered, t.err
}

// queueMax returns the largest ring virtqueue vq takes (legacy: its size).
func (t *pciTransport) queueMax(vq int) uint16 {
	if t.legacy {
		t.io.w16(legacyQueueSel, uint16(vq))
		return t.io.r16(legacyQueueNum)
	}
	t.common.w16(commonQSelect, uint16(vq))
	return t.common.r16(commonQSize)
}

func (t *pciTransport) link() ethdev.Link {
	if !t.sh.Features.Has(FeatStatus) {
		return ethdev.Link{Up: true, Mbps: 10000}
	}
	return ethdev.Link{Up: t.devcfg.r16(netCfgStatus)&netLinkUp != 0, Mbps: 10000}
}

// watchLink follows the link status field in the primary (we take no
// interrupts, so the config-change interrupt is read from the ISR byte,
// which clears it, and the status polled).
func (t *pciTransport) watchLink() {
	defer close(t.done)
	tk := time.NewTicker(linkPoll)
	defer tk.Stop()
	for {
		select {
		case <-t.stopCh:
			return
		case <-tk.C:
		}
		t.mu.Lock()
		t.isr.r8(0)
		l, s := t.link(), t.status()
		t.mu.Unlock()
		t.port.SetLink(l)
		if s&(statusNeedsReset|statusFailed) != 0 {
			slog.Warn("net_virtio: the device reports an error; restart the port", "port", t.port.Name(), "status", fmt.Sprintf("%#x", s))
		}
	}
}

// start gives the device the rings and sets DRIVER_OK (section 3.1.1,
// steps 7 and 8), after a reset and the same feature negotiation as probe.
func (t *pciTransport) start(d *device) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if d.sh.Linear != 0 {
		if err := mapVFIOMemory(d.mem); err != nil {
			return err
		}
	}
	if _, err := t.initDevice(d.sh.Features); err != nil {
		return err
	}
	type ring struct {
		vq int
		q  *virtqueue.Queue
	}
	var rings []ring
	for q := range int(d.sh.Pairs) {
		rings = append(rings, ring{2 * q, d.rx[q]}, ring{2*q + 1, d.tx[q]})
	}
	if d.ctrl != nil {
		rings = append(rings, ring{d.ctrlVQ(), d.ctrl})
	}
	for _, r := range rings {
		if err := t.setupQueue(r.vq, r.q); err != nil {
			t.reset()
			return fmt.Errorf("virtqueue %d: %w", r.vq, err)
		}
	}
	if t.legacy {
		t.setStatus(statusAcknowledge | statusDriver | statusDriverOK) // legacy has no FEATURES_OK
	} else {
		t.setStatus(statusAcknowledge | statusDriver | statusFeaturesOK | statusDriverOK)
	}
	if s := t.status(); s&statusDriverOK == 0 || s&(statusNeedsReset|statusFailed) != 0 {
		return errors.Join(t.err, fmt.Errorf("the device did not take DRIVER_OK (status %#x)", s))
	}
	return t.err
}

func (t *pciTransport) setupQueue(vq int, q *virtqueue.Queue) error {
	size := uint16(q.Size())
	max := t.queueMax(vq)
	desc, driver, device := q.Addrs()
	if t.legacy {
		if max != size {
			return fmt.Errorf("legacy ring of %d entries, the device has %d", size, max)
		}
		if desc%(1<<legacyPFNShift) != 0 || desc>>legacyPFNShift > 0xffffffff {
			return fmt.Errorf("ring at %#x cannot be given as a 32-bit page frame number", desc)
		}
		t.io.w32(legacyQueuePFN, uint32(desc>>legacyPFNShift))
		return t.err
	}
	if max == 0 {
		return fmt.Errorf("the device has no such queue")
	}
	if size > max {
		return fmt.Errorf("ring of %d entries, the device takes at most %d", size, max)
	}
	c := t.common
	c.w16(commonQSize, size)
	c.w16(commonQMSIX, noVector)
	c.w64(commonQDesc, desc)
	c.w64(commonQDriver, driver)
	c.w64(commonQDevice, device)
	if off := t.sh.PCI.notifyOff(vq); off != nil {
		*off = c.r16(commonQNotifyOff)
	}
	c.w16(commonQEnable, 1)
	return t.err
}

func (t *pciTransport) stop(d *device) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.reset()
}

// notifier rings virtqueue vq's doorbell: a write of the queue index to
// its place in the notification area (modern, memory-mapped; the place is
// known once the queue is set up), or to the queue notify register in BAR0
// (legacy, a pwrite on the device).
func (t *pciTransport) notifier(vq int) (virtqueue.Notifier, error) {
	if t.legacy {
		return &legacyNotifier{bar: t.notify, vq: uint16(vq)}, nil
	}
	off := t.sh.PCI.notifyOff(vq)
	if off == nil {
		return nil, fmt.Errorf("no virtqueue %d", vq)
	}
	return &modernNotifier{bar: t.notify, sh: &t.sh.PCI, off: off, vq: uint16(vq)}, nil
}

// notifyOff returns where queue_notify_off of virtqueue vq is kept.
func (p *pciShared) notifyOff(vq int) *uint16 {
	if vq < len(p.QueueNotify) {
		return &p.QueueNotify[vq]
	}
	return &p.CtrlNotify // the only other queue we set up
}

type modernNotifier struct {
	bar *vfio.BAR
	sh  *pciShared
	off *uint16 // queue_notify_off, in shared memory: known once the queue is set up
	vq  uint16
}

func (n *modernNotifier) Notify() {
	n.bar.Write16(n.sh.NotifyOff+uint64(*n.off)*uint64(n.sh.NotifyMult), n.vq)
}

type legacyNotifier struct {
	bar *vfio.BAR
	vq  uint16
}

func (n *legacyNotifier) Notify() { n.bar.Write16(legacyQueueNotify, n.vq) }

func (t *pciTransport) control(*device, byte, byte, []byte) (bool, error) { return false, nil }

func (t *pciTransport) close() error {
	if t.stopCh != nil {
		close(t.stopCh)
		<-t.done
		t.stopCh = nil
	}
	var err error
	if t.primary && t.found {
		t.mu.Lock()
		err = t.reset()
		t.mu.Unlock()
	}
	if t.dev != nil {
		if t.primary {
			err = errors.Join(err, closeVFIO(t.dev))
		} else {
			err = errors.Join(err, t.dev.Container().Close()) // our copies of the primary's descriptors
		}
		t.dev = nil
	}
	return err
}

func (pciDriver) Attach(p *ethdev.Port, vdev eal.VDev) (ethdev.Device, error) {
	sh, err := lookupShared(p)
	if err != nil {
		return nil, err
	}
	addr, err := pci.ParseAddr(strings.TrimRight(string(sh.PCI.Addr[:]), "\x00"))
	if err != nil {
		return nil, fmt.Errorf("shared description of %s: %w", p.Name(), err)
	}
	dev, err := vfio.Attach(p.Process().IPC(), addr)
	if err != nil {
		return nil, err
	}
	t := &pciTransport{port: p, proc: p.Process(), sh: sh, dev: dev, legacy: sh.Transport == transportLegacy}
	bar := 0
	if !t.legacy {
		bar = int(sh.PCI.NotifyBar)
	}
	if t.notify, err = dev.BAR(bar); err != nil {
		dev.Container().Close()
		return nil, err
	}
	return &device{port: p, mem: p.Memory(), sh: sh, t: t, name: "net_virtio"}, nil
}

// ProbePCI creates a net_virtio port for the device at addr, as -a addr
// would: the port is named net_virtio<n>, the first free n. args are more
// device arguments (legacy, queue_size, mrg_rxbuf, packed_vq).
func ProbePCI(proc *mp.Process, addr pci.Addr, args ...eal.KeyValue) (*ethdev.Port, error) {
	var errs []error
	for n := range ethdev.MaxPorts {
		dev := eal.VDev{Name: fmt.Sprintf("net_virtio%d", n), Args: append([]eal.KeyValue{{Key: "pci", Value: addr.String()}}, args...)}
		p, err := ethdev.Create(proc, dev.String())
		if err == nil {
			return p, nil
		}
		if !strings.Contains(err.Error(), "already exists") {
			return nil, err
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("virtio: no free net_virtio name: %w", errors.Join(errs...))
}
