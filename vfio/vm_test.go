package vfio_test

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/vmtest"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/mp/ipc"
	"github.com/gopmd/gopmd/pci"
	"github.com/gopmd/gopmd/vfio"
)

// The VM tests run in a vmtest guest whose virtio-net devices sit on
// vfio-pci. Their frames go over UDP to a wire on the host, which checks
// that what the guest made the device send (by DMA from hugemem) arrived.

// wire receives the frames a guest NIC sends through its UDP backend.
type wire struct {
	conn     *net.UDPConn
	mu       sync.Mutex
	payloads []string
	locals   []*net.UDPAddr // where QEMU receives frames for the guest
}

// probePayload is what the host sends every guest NIC, for RX tests.
const probePayload = "gopmd host probe"

func listenWire(t *testing.T) *wire {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	w := &wire{conn: conn}
	stop := make(chan struct{})
	t.Cleanup(func() {
		close(stop)
		conn.Close()
	})
	go func() { // the guest takes what arrives once its RX queue is ready
		probe := make([]byte, 60)
		copy(probe, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02, 0, 0, 0, 0, 1, 0x88, 0xb5})
		copy(probe[14:], probePayload)
		for tick := time.NewTicker(20 * time.Millisecond); ; {
			select {
			case <-stop:
				tick.Stop()
				return
			case <-tick.C:
			}
			w.mu.Lock()
			locals := w.locals
			w.mu.Unlock()
			for _, a := range locals {
				conn.WriteToUDP(probe, a)
			}
		}
	}()
	go func() {
		buf := make([]byte, 2048)
		for {
			n, _, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if n > 14 {
				w.mu.Lock()
				w.payloads = append(w.payloads, strings.TrimRight(string(buf[14:n]), "\x00"))
				w.mu.Unlock()
			}
		}
	}()
	return w
}

func (w *wire) backend(t *testing.T) vmtest.UDP {
	local := vmtest.FreeUDPAddr(t)
	a, err := net.ResolveUDPAddr("udp4", local)
	require.NoError(t, err)
	w.mu.Lock()
	w.locals = append(w.locals, a)
	w.mu.Unlock()
	return vmtest.UDP{Local: local, Remote: w.conn.LocalAddr().String()}
}

// requireFrame waits briefly for a frame whose payload starts with prefix.
func (w *wire) requireFrame(t *testing.T, prefix string) {
	t.Helper()
	for deadline := time.Now().Add(2 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		w.mu.Lock()
		got := append([]string(nil), w.payloads...)
		w.mu.Unlock()
		for _, p := range got {
			if strings.HasPrefix(p, prefix) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no frame with payload %q reached the host; it got %q", prefix, got)
		}
	}
}

// Guest-side set-up, from the environment the host test passes.
func guestAddr(t *testing.T, env string) pci.Addr {
	a, err := pci.ParseAddr(os.Getenv(env))
	require.NoError(t, err, "host passes a PCI address in %s", env)
	return a
}

func guestMAC(t *testing.T, env string) [6]byte {
	hw, err := net.ParseMAC(os.Getenv(env))
	require.NoError(t, err, "host passes a MAC in %s", env)
	return [6]byte(hw)
}

func openContainer(t *testing.T) *vfio.Container {
	c, err := vfio.OpenContainer()
	require.NoError(t, err)
	t.Cleanup(func() { assert.NoError(t, c.Close()) })
	return c
}

func guestMemory(t *testing.T, prefix string) *hugemem.Memory {
	mem, err := hugemem.Create(hugemem.Options{Prefix: prefix, RuntimeDir: t.TempDir(), Limit: 32 << 20, SegmentSize: 4 << 20})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	require.True(t, mem.HugePages(), "guest memory is on hugepages")
	return mem
}

const bridgeSlot = 0x1a

// bridgedPair puts two virtio-net devices behind a conventional PCI bridge,
// which gives the bridge and both of them one IOMMU group. The guest's
// firmware numbers the bridge's bus 1.
var bridgedPair = []string{
	"-device", fmt.Sprintf("pci-bridge,id=br0,chassis_nr=1,addr=%#x", bridgeSlot),
	"-netdev", "socket,id=bn0,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
	"-device", "virtio-net-pci,netdev=bn0,bus=br0,addr=0x1",
	"-netdev", "socket,id=bn1,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
	"-device", "virtio-net-pci,netdev=bn1,bus=br0,addr=0x2,disable-legacy=on,iommu_platform=on",
}

const (
	bridgedKernel = "0000:01:01.0" // stays on virtio-pci
	bridgedVFIO   = "0000:01:02.0" // bound to vfio-pci
)

// expressNIC is a virtio-net device behind a PCIe root port: a PCIe
// device, which offers function-level reset. The firmware numbers the
// port's bus 2, after the bridge's.
var expressNIC = []string{
	"-device", "pcie-root-port,id=rp0,chassis=2,addr=0x1b",
	"-netdev", "socket,id=en0,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
	"-device", "virtio-net-pci,netdev=en0,bus=rp0,disable-legacy=on,iommu_platform=on",
}

const expressVFIO = "0000:02:00.0"

// TestVirtioNetThroughVFIO boots one guest with three virtio-net devices
// on vfio-pci (modern with MSI-X, modern without, transitional) and a
// bridged pair whose IOMMU group is not viable, and proves the package on
// them.
func TestVirtioNetThroughVFIO(t *testing.T) {
	if !vmtest.InGuest() {
		w := listenWire(t)
		cfg := vmtest.Config{
			NICs: []vmtest.NIC{
				{Backend: w.backend(t), Modern: true, IOMMUPlatform: true, VFIO: true, MAC: "52:54:00:00:00:11"},
				{Backend: w.backend(t), Modern: true, IOMMUPlatform: true, VFIO: true, MAC: "52:54:00:00:00:12", Vectors: vmtest.NoMSIX},
				{Backend: w.backend(t), VFIO: true, MAC: "52:54:00:00:00:13"},
			},
			Modules:  vmtest.VirtioNetModules, // for the bridged device left to the kernel
			QEMUArgs: append(append([]string(nil), bridgedPair...), expressNIC...),
			BindVFIO: []string{bridgedVFIO, expressVFIO},
		}
		cfg.Env = []string{
			"NIC_MSIX=" + cfg.NICAddr(0), "MAC_MSIX=" + cfg.NICs[0].MAC,
			"NIC_INTX=" + cfg.NICAddr(1), "MAC_INTX=" + cfg.NICs[1].MAC,
			"NIC_LEGACY=" + cfg.NICAddr(2), "MAC_LEGACY=" + cfg.NICs[2].MAC,
		}
		vmtest.RunInGuest(t, cfg)
		w.requireFrame(t, "gopmd vfio msix")
		w.requireFrame(t, "gopmd vfio intx 1")
		w.requireFrame(t, "gopmd vfio intx 2")
		return
	}
	t.Run("RegionsConfigAndBARs", guestRegionsConfigAndBARs)
	t.Run("DMAFromHugememRaisesMSIX", guestDMAFromHugememRaisesMSIX)
	t.Run("INTxWhenThereIsNoMSIX", guestINTxWhenThereIsNoMSIX)
	t.Run("LegacyIOBARThroughPreadPwrite", guestLegacyIOBAR)
	t.Run("ResetReturnsDeviceToItsInitialState", guestReset)
	t.Run("NotViableGroupNamesTheDriverInTheWay", guestNotViableGroup)
	t.Run("FailuresNameDeviceOperationAndErrno", guestFailures)
}

func guestRegionsConfigAndBARs(t *testing.T) {
	addr := guestAddr(t, "NIC_MSIX")
	c := openContainer(t)
	d, err := c.OpenDevice(addr)
	require.NoError(t, err)
	assert.Equal(t, "type1v2", c.IOMMU())
	assert.Equal(t, []pci.Addr{addr}, d.Group().Members(), "a root-bus device has a group of its own")

	info, err := c.IOMMUInfo()
	require.NoError(t, err)
	assert.NotZero(t, info.PageSizes&4096, "IOMMU maps 4 KiB pages (sizes %#x)", info.PageSizes)
	covered := false
	for _, r := range info.IOVARanges {
		covered = covered || r.Start <= hugemem.IOVABase && r.End >= hugemem.IOVABase+1<<30
	}
	assert.True(t, covered, "usable IOVA ranges %+v cover hugemem's VA-mode IOVAs from %#x", info.IOVARanges, hugemem.IOVABase)

	di := d.Info()
	assert.NotZero(t, di.Flags&vfio.DeviceFlagPCI)
	assert.GreaterOrEqual(t, di.Regions, vfio.RegionConfig+1)
	assert.GreaterOrEqual(t, di.IRQs, vfio.IRQMSIX+1)

	bar4, err := d.Region(vfio.RegionBAR0 + 4)
	require.NoError(t, err)
	assert.Equal(t, uint64(0x4000), bar4.Size, "virtio structures BAR")
	assert.Equal(t, uint32(vfio.RegionRead|vfio.RegionWrite|vfio.RegionMmap), bar4.Flags&(vfio.RegionRead|vfio.RegionWrite|vfio.RegionMmap))
	msixBAR, err := d.Region(vfio.RegionBAR0 + 1)
	require.NoError(t, err)
	t.Logf("BAR1 (MSI-X table) region: %+v", msixBAR)
	cfgRegion, err := d.Region(vfio.RegionConfig)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, cfgRegion.Size, uint64(256))

	_, err = d.BAR(0)
	assert.ErrorContains(t, err, "BAR 0 is not implemented", "a modern-only device has no legacy BAR0")

	cfg, err := d.Config()
	require.NoError(t, err)
	assert.Equal(t, uint16(0x1af4), cfg.VendorID())
	assert.Equal(t, uint16(0x1041), cfg.DeviceID())
	sys, err := pci.Lookup(addr)
	require.NoError(t, err)
	assert.Equal(t, []byte(sys.Config[:4]), []byte(cfg[:4]), "VFIO's config space and sysfs agree on the IDs")
	m, err := cfg.MSIX()
	require.NoError(t, err)
	assert.Equal(t, 1, m.TableBAR)

	v := openVirtioNet(t, d)
	assert.True(t, v.common.bar.Mapped(0, v.common.bar.Size()), "BAR4 is mmap'd whole")
	assert.False(t, v.common.bar.IO())
	features := v.deviceFeatures(t)
	assert.NotZero(t, features&featureVersion1, "VIRTIO_F_VERSION_1 in %#x", features)
	assert.NotZero(t, features&featureAccessPlatform, "VIRTIO_F_ACCESS_PLATFORM in %#x (iommu_platform=on)", features)
	assert.NotZero(t, features&netFeatureMAC, "VIRTIO_NET_F_MAC in %#x", features)
	assert.GreaterOrEqual(t, v.common.r16(t, commonNumQueues), uint16(2), "an RX and a TX queue at least")
	assert.Equal(t, guestMAC(t, "MAC_MSIX"), v.mac(t), "MAC in the device-specific configuration")

	msix, err := d.IRQInfo(vfio.IRQMSIX)
	require.NoError(t, err)
	assert.GreaterOrEqual(t, msix.Count, 2)
	assert.NotZero(t, msix.Flags&vfio.IRQEventFD)

	// A conventional PCI device without FLR or PM reset: the kernel has
	// none to offer (ResetReturnsDeviceToItsInitialState has one).
	require.Zero(t, di.Flags&vfio.DeviceFlagReset, "device flags %#x", di.Flags)
	assert.ErrorContains(t, d.Reset(), "the kernel has no reset for this device")
}

func guestDMAFromHugememRaisesMSIX(t *testing.T) {
	c := openContainer(t)
	d, err := c.OpenDevice(guestAddr(t, "NIC_MSIX"))
	require.NoError(t, err)
	mem := guestMemory(t, "vfio-msix")
	require.NoError(t, c.MapMemory(mem))
	for _, s := range mem.Segments() {
		assert.True(t, c.Mapped(hugemem.IOVABase+s.Off), "segment at offset %#x mapped at its VA-mode IOVA", s.Off)
	}
	rxq := newSplitQueue(t, mem, "rxq", true)
	txq := newSplitQueue(t, mem, "txq", true)

	// A reservation larger than a segment grows the group; MapMemory maps
	// just the new segment, and the packet buffers live there.
	before := len(mem.Segments())
	big, err := mem.Reserve("big", 6<<20, 4096)
	require.NoError(t, err)
	require.Greater(t, len(mem.Segments()), before, "the group grew a segment")
	bigIOVA, err := mem.IOVA(big.Off)
	require.NoError(t, err)
	assert.False(t, c.Mapped(bigIOVA))
	require.NoError(t, c.MapMemory(mem))
	assert.True(t, c.Mapped(bigIOVA), "the new segment is mapped after MapMemory again")

	v := openVirtioNet(t, d)
	evs, err := d.EnableMSIX(3)
	require.NoError(t, err)
	require.Len(t, evs, 3)
	require.NoError(t, d.SetBusMaster(true))
	v.start(t, rxq, txq, vectors{config: 0, rx: 1, tx: 2})
	defer v.reset(t)

	// RX: the device writes frames the host sends into hugemem.
	const rxBuf = 2048
	for i := range uint64(4) {
		rxq.post(bigIOVA+(1+i)*rxBuf, rxBuf, descFlagWrite)
	}
	rxq.kick(t, v.ntfy.bar)
	// TX: the device reads a frame from hugemem and sends it to the host.
	n := frame(big.Bytes(), v.mac(t), "gopmd vfio msix")
	idx := txq.post(bigIOVA, n, 0)
	txq.kick(t, v.ntfy.bar)

	got, err := evs[2].Wait(5 * time.Second)
	require.NoError(t, err, "TX used-buffer interrupt on MSI-X vector 2")
	txq.waitUsed(t, idx)
	t.Logf("TX: device used the descriptor, %d interrupt(s) on vector 2", got)

	got, err = evs[1].Wait(5 * time.Second)
	require.NoError(t, err, "RX interrupt on MSI-X vector 1 (the host sends a probe frame every 20 ms)")
	rxq.waitUsed(t, 1)
	id, written := rxq.used(0)
	require.Less(t, id, uint32(4), "used descriptor id")
	require.GreaterOrEqual(t, written, uint32(netHdrLen+14+len(probePayload)), "bytes the device wrote")
	buf := big.Bytes()[(1+uint64(id))*rxBuf:][:written]
	assert.Equal(t, probePayload, string(buf[netHdrLen+14:][:len(probePayload)]), "the device wrote the host's frame into hugemem")
	t.Logf("RX: %d interrupt(s) on vector 1, %d bytes written into descriptor %d", got, written, id)

	extra, err := evs[0].Read()
	require.NoError(t, err)
	t.Logf("config vector 0 saw %d interrupt(s)", extra)
}

func guestINTxWhenThereIsNoMSIX(t *testing.T) {
	c := openContainer(t)
	d, err := c.OpenDevice(guestAddr(t, "NIC_INTX"))
	require.NoError(t, err)
	_, err = d.EnableMSIX(1)
	require.ErrorContains(t, err, "the device has no MSI-X interrupt")

	mem := guestMemory(t, "vfio-intx")
	require.NoError(t, c.MapMemory(mem))
	q := newSplitQueue(t, mem, "txq", true)
	v := openVirtioNet(t, d)
	ev, err := d.EnableINTx()
	require.NoError(t, err)
	require.NoError(t, d.SetBusMaster(true))
	v.start(t, nil, q, vectors{noVector, noVector, noVector})
	defer v.reset(t)

	buf := unsafe.Slice((*byte)(mem.Ptr(q.bufOff)), 4096)
	for round := 1; round <= 2; round++ {
		n := frame(buf, v.mac(t), fmt.Sprintf("gopmd vfio intx %d", round))
		idx := q.post(q.bufIOVA, n, 0)
		q.kick(t, v.ntfy.bar)
		_, err := ev.Wait(5 * time.Second)
		require.NoError(t, err, "INTx on the eventfd, round %d", round)
		q.waitUsed(t, idx)
		isr := v.isr.r8(t, 0) // reading clears it and lowers the line
		assert.NotZero(t, isr&1, "ISR says a queue interrupt, round %d", round)
		// VFIO masked the line when it fired; a second interrupt needs it
		// unmasked.
		require.NoError(t, d.UnmaskINTx())
	}
}

func guestLegacyIOBAR(t *testing.T) {
	c := openContainer(t)
	d, err := c.OpenDevice(guestAddr(t, "NIC_LEGACY"))
	require.NoError(t, err)
	bar, err := d.BAR(0)
	require.NoError(t, err)
	assert.True(t, bar.IO(), "transitional virtio's BAR0 is I/O space")
	assert.Equal(t, uint64(32), bar.Size())
	assert.False(t, bar.Mapped(0, 4), "I/O BARs are never mmap'd")

	// Legacy virtio header (virtio 0.9.5): host features at 0, status at
	// 18, device configuration at 20 (24 while MSI-X is on).
	features, err := bar.Read32(0)
	require.NoError(t, err)
	assert.NotZero(t, features&netFeatureMAC, "legacy host features %#x offer the MAC", features)
	cfg, err := d.Config()
	require.NoError(t, err)
	m, err := cfg.MSIX()
	require.NoError(t, err)
	devCfg := uint64(20)
	if m.Enabled {
		devCfg = 24
	}
	var mac [6]byte
	for i := range mac {
		mac[i], err = bar.Read8(devCfg + uint64(i))
		require.NoError(t, err)
	}
	assert.Equal(t, guestMAC(t, "MAC_LEGACY"), mac, "MAC read byte by byte through pread")

	require.NoError(t, bar.Write8(18, statusAcknowledge))
	st, err := bar.Read8(18)
	require.NoError(t, err)
	assert.Equal(t, uint8(statusAcknowledge), st, "status written through pwrite reads back")
	require.NoError(t, bar.Write8(18, 0))

	_, err = bar.Read64(0)
	assert.ErrorContains(t, err, "I/O ports take 1, 2 or 4 bytes")

	modern, err := d.BAR(4)
	require.NoError(t, err)
	assert.False(t, modern.IO(), "a transitional device has the modern memory BAR too")
}

func guestReset(t *testing.T) {
	a, err := pci.ParseAddr(expressVFIO)
	require.NoError(t, err)
	c := openContainer(t)
	d, err := c.OpenDevice(a)
	require.NoError(t, err)
	require.NotZero(t, d.Info().Flags&vfio.DeviceFlagReset, "a PCIe virtio device offers FLR (flags %#x)", d.Info().Flags)
	v := openVirtioNet(t, d)
	v.common.w8(t, commonStatus, statusAcknowledge|statusDriver)
	v.common.w16(t, commonQSelect, txQueue)
	v.common.w16(t, commonQSize, 16)
	require.Equal(t, uint8(statusAcknowledge|statusDriver), v.common.r8(t, commonStatus))
	require.NoError(t, d.SetBusMaster(true))

	require.NoError(t, d.Reset())
	assert.Equal(t, uint8(0), v.common.r8(t, commonStatus), "device status after reset")
	v.common.w16(t, commonQSelect, txQueue)
	assert.NotEqual(t, uint16(16), v.common.r16(t, commonQSize), "queue size back to the device's own")
	var cmd [2]byte
	require.NoError(t, d.ConfigRead(pci.ConfigCommand, cmd[:]))
	assert.NotZero(t, cmd[0]&pci.CommandBusMaster, "the kernel restores config space around the reset: bus mastering stays on")
	require.NoError(t, v.common.bar.Write8(v.common.off+commonStatus, statusAcknowledge), "BAR still mapped and decoding")
}

func guestNotViableGroup(t *testing.T) {
	a, err := pci.ParseAddr(bridgedVFIO)
	require.NoError(t, err)
	d, err := pci.Lookup(a)
	require.NoError(t, err)
	require.Equal(t, "vfio-pci", d.Driver)

	c := openContainer(t)
	_, err = c.OpenDevice(a)
	require.ErrorIs(t, err, pci.ErrNotViable)
	assert.EqualError(t, err, fmt.Sprintf("vfio: group %d is not viable: device %s is bound to virtio-pci (bind it to vfio-pci too, or unbind it): %v",
		d.IOMMUGroup, bridgedKernel, pci.ErrNotViable))
}

func guestFailures(t *testing.T) {
	c := openContainer(t)
	addr := guestAddr(t, "NIC_MSIX")
	d, err := c.OpenDevice(addr)
	require.NoError(t, err)

	// The kernel refuses the VGA region of a device that is no VGA card.
	_, err = d.Region(vfio.RegionVGA)
	var ve *vfio.Error
	require.ErrorAs(t, err, &ve)
	assert.Equal(t, unix.EINVAL, ve.Errno)
	assert.EqualError(t, err, "vfio: "+addr.String()+": VFIO_DEVICE_GET_REGION_INFO region 8: errno EINVAL (invalid argument)")

	page, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	defer unix.Munmap(page)
	va := uintptr(unsafe.Pointer(&page[0]))
	require.NoError(t, c.MapDMA(va, 1<<28, 4096))
	err = c.MapDMA(va, 1<<28, 4096)
	require.ErrorIs(t, err, unix.EEXIST)
	assert.EqualError(t, err, fmt.Sprintf("vfio: container: VFIO_IOMMU_MAP_DMA vaddr %#x iova 0x10000000 size 0x1000: errno EEXIST (file exists)", va))
	require.NoError(t, c.UnmapDMA(1<<28, 4096))
	assert.ErrorContains(t, c.UnmapDMA(1<<28, 4096), "unmapped 0x0 bytes")
	assert.ErrorContains(t, c.MapDMA(va+1, 1<<28, 4096), "must be non-zero multiples of 4096")

	_, err = d.EnableMSIX(99)
	assert.ErrorContains(t, err, "99 MSI-X vectors asked for, the device has 1..")

	other := guestAddr(t, "NIC_INTX")
	_, err = d.Group().Device(other)
	assert.ErrorContains(t, err, fmt.Sprintf("device %s is not in IOMMU group %d", other, d.Group().Number()))

	_, err = c.AddGroup(d.Group().Number() + 1000)
	assert.ErrorContains(t, err, "does not exist: no device of the group is bound to vfio-pci")
}

// TestSecondaryDrivesQueueWithPrimarysFDs: a primary opens the device,
// maps group memory and sets up a TX queue with MSI-X; a secondary process
// receives the container, group and device descriptors over mp IPC, reads
// the device through them, DMA-maps a private page through the received
// container, posts a frame from it and rings the doorbell through its own
// mapping of the BAR. The primary sees the interrupt, the host the frame.
func TestSecondaryDrivesQueueWithPrimarysFDs(t *testing.T) {
	if !vmtest.InGuest() {
		w := listenWire(t)
		cfg := vmtest.Config{
			NICs: []vmtest.NIC{
				{Backend: w.backend(t), Modern: true, IOMMUPlatform: true, VFIO: true, MAC: "52:54:00:00:00:21"},
			},
		}
		cfg.Env = []string{"NIC_MSIX=" + cfg.NICAddr(0), "MAC_MSIX=" + cfg.NICs[0].MAC}
		vmtest.RunInGuest(t, cfg)
		w.requireFrame(t, "gopmd vfio secondary")
		return
	}
	addr := guestAddr(t, "NIC_MSIX")
	opts := hugemem.Options{Prefix: "vfiomp", RuntimeDir: t.TempDir(), Limit: 32 << 20, SegmentSize: 4 << 20}
	p, err := mp.Start(mp.Config{Type: mp.Primary, Memory: opts})
	require.NoError(t, err)
	defer p.Close()

	c := openContainer(t)
	d, err := c.OpenDevice(addr)
	require.NoError(t, err)
	require.NoError(t, c.MapMemory(p.Mem))
	require.NoError(t, vfio.Serve(p.IPC(), c))
	v := openVirtioNet(t, d)
	evs, err := d.EnableMSIX(2)
	require.NoError(t, err)
	require.NoError(t, d.SetBusMaster(true))
	q := newSplitQueue(t, p.Mem, "txq", true)
	v.start(t, nil, q, vectors{config: 0, tx: 1})
	defer v.reset(t)

	out := runSecondary(t, childSpec{Mem: opts, Addr: addr.String(), Other: "0000:00:05.0"})
	assert.Contains(t, out, "status DRIVER_OK", "the secondary sees the device state the primary set")
	n, err := evs[1].Wait(5 * time.Second)
	require.NoError(t, err, "the primary gets the interrupt for the secondary's frame")
	assert.GreaterOrEqual(t, n, uint64(1))
	assert.Equal(t, uint16(1), q.usedIdx(), "the device used the secondary's descriptor")
}

// childSpec tells the secondary, this test binary again, what to do.
type childSpec struct {
	Mem   hugemem.Options
	Addr  string // device the primary has open
	Other string // a device it has not
}

func runSecondary(t *testing.T, spec childSpec) string {
	cmd := testproc.Command(t, testproc.Config{Spec: spec})
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	var lines []string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		t.Logf("[secondary %d] %s", cmd.Process.Pid, sc.Text())
		lines = append(lines, sc.Text())
	}
	require.NoError(t, cmd.Wait(), "secondary failed; its output is above")
	return strings.Join(lines, "\n")
}

// childT lets the test helpers run in the secondary: a failure prints and
// exits.
type childT struct{}

func (childT) Errorf(format string, args ...any) { fmt.Printf("FAIL: "+format+"\n", args...) }
func (childT) FailNow()                          { os.Exit(1) }

func secondaryMain(spec childSpec) {
	t := childT{}
	p, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: spec.Mem})
	require.NoError(t, err)
	defer p.Close()
	addr, err := pci.ParseAddr(spec.Addr)
	require.NoError(t, err)
	other, err := pci.ParseAddr(spec.Other)
	require.NoError(t, err)

	_, err = vfio.Attach(p.IPC(), other)
	require.ErrorIs(t, err, ipc.ErrRemote)
	require.ErrorContains(t, err, "device "+spec.Other+" is not open in the primary")

	d, err := vfio.Attach(p.IPC(), addr)
	require.NoError(t, err)
	defer d.Container().Close()
	fmt.Printf("attached: container fd %d, group %d fd %d, device fd %d\n", d.Container().FD(), d.Group().Number(), d.Group().FD(), d.FD())

	cfg, err := d.Config()
	require.NoError(t, err)
	require.Equal(t, uint16(0x1041), cfg.DeviceID(), "config space through the received device fd")
	v := openVirtioNet(t, d)
	if v.common.r8(t, commonStatus)&statusDriverOK != 0 {
		fmt.Println("status DRIVER_OK")
	}
	q := newSplitQueue(t, p.Mem, "txq", false)
	v.common.w16(t, commonQSelect, txQueue)
	q.index = txQueue
	q.notifyOff = v.ntfy.off + uint64(v.common.r16(t, commonQNotifyOff))*uint64(v.notifyMult)

	// A page of this process only, mapped for the device through the
	// received container: the frame comes from here.
	page, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
	require.NoError(t, err)
	const privateIOVA = 1 << 28
	require.NoError(t, d.Container().MapDMA(uintptr(unsafe.Pointer(&page[0])), privateIOVA, 4096))
	n := frame(page, v.mac(t), fmt.Sprintf("gopmd vfio secondary %d", os.Getpid()))
	idx := q.post(privateIOVA, n, 0)
	q.kick(t, v.ntfy.bar)
	q.waitUsed(t, idx)
	require.NoError(t, d.Container().UnmapDMA(privateIOVA, 4096))
	fmt.Println("frame sent from a private page, used index", idx)
}

func TestMain(m *testing.M) {
	var spec childSpec
	if testproc.IsChild(&spec) {
		secondaryMain(spec)
		os.Exit(0)
	}
	os.Exit(m.Run())
}
