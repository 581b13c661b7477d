package vfio_test

import (
	"encoding/binary"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/pci"
	"github.com/gopmd/gopmd/vfio"
)

// Just enough of a virtio 1.x network driver to make a device DMA and
// interrupt: reset, feature negotiation, one split TX queue. The real
// driver belongs in pmd/virtio; this only proves the vfio package.

// Virtio PCI common configuration (struct virtio_pci_common_cfg).
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

	statusAcknowledge = 1
	statusDriver      = 2
	statusDriverOK    = 4
	statusFeaturesOK  = 8

	featureVersion1       = 1 << 32
	featureAccessPlatform = 1 << 33
	netFeatureMAC         = 1 << 5

	noVector = 0xffff

	descFlagWrite = 2 // VRING_DESC_F_WRITE: the device writes the buffer

	rxQueue      = 0 // virtio-net queue 0 receives, 1 transmits
	txQueue      = 1
	netHdrLen    = 12
	vringDescLen = 16
)

// regs is one virtio structure: a BAR and the structure's offset in it.
type regs struct {
	bar *vfio.BAR
	off uint64
}

func (r regs) r8(t require.TestingT, o uint64) uint8 {
	v, err := r.bar.Read8(r.off + o)
	require.NoError(t, err)
	return v
}

func (r regs) r16(t require.TestingT, o uint64) uint16 {
	v, err := r.bar.Read16(r.off + o)
	require.NoError(t, err)
	return v
}

func (r regs) r32(t require.TestingT, o uint64) uint32 {
	v, err := r.bar.Read32(r.off + o)
	require.NoError(t, err)
	return v
}

func (r regs) w8(t require.TestingT, o uint64, v uint8) { require.NoError(t, r.bar.Write8(r.off+o, v)) }
func (r regs) w16(t require.TestingT, o uint64, v uint16) {
	require.NoError(t, r.bar.Write16(r.off+o, v))
}
func (r regs) w32(t require.TestingT, o uint64, v uint32) {
	require.NoError(t, r.bar.Write32(r.off+o, v))
}
func (r regs) w64(t require.TestingT, o uint64, v uint64) {
	r.w32(t, o, uint32(v))
	r.w32(t, o+4, uint32(v>>32))
}

// virtioNet is a modern virtio-net device found through its vendor
// capabilities.
type virtioNet struct {
	dev                       *vfio.Device
	common, isr, device, ntfy regs
	notifyMult                uint32
}

func openVirtioNet(t require.TestingT, d *vfio.Device) *virtioNet {
	cfg, err := d.Config()
	require.NoError(t, err)
	v := &virtioNet{dev: d}
	find := func(typ uint8) regs {
		c, err := cfg.VirtioCap(typ)
		require.NoError(t, err)
		b, err := d.BAR(c.BAR)
		require.NoError(t, err)
		if typ == pci.VirtioNotifyCfg {
			v.notifyMult = c.NotifyOffMultiplier
		}
		return regs{b, uint64(c.Offset)}
	}
	v.common, v.isr, v.device, v.ntfy = find(pci.VirtioCommonCfg), find(pci.VirtioISRCfg), find(pci.VirtioDeviceCfg), find(pci.VirtioNotifyCfg)
	return v
}

func (v *virtioNet) reset(t require.TestingT) {
	v.common.w8(t, commonStatus, 0)
	for deadline := time.Now().Add(time.Second); v.common.r8(t, commonStatus) != 0; {
		require.True(t, time.Now().Before(deadline), "device status did not read 0 within 1 s of reset")
		time.Sleep(time.Millisecond)
	}
}

func (v *virtioNet) deviceFeatures(t require.TestingT) uint64 {
	v.common.w32(t, commonDFSelect, 0)
	lo := v.common.r32(t, commonDF)
	v.common.w32(t, commonDFSelect, 1)
	return uint64(v.common.r32(t, commonDF))<<32 | uint64(lo)
}

func (v *virtioNet) mac(t require.TestingT) [6]byte {
	var m [6]byte
	for i := range m {
		m[i] = v.device.r8(t, uint64(i))
	}
	return m
}

// vectors are the MSI-X vectors a device is told to use; noVector for
// INTx (or none).
type vectors struct {
	config, rx, tx uint16
}

// start resets the device, negotiates VERSION_1 (and ACCESS_PLATFORM, so
// the device's DMA goes through the IOMMU), sets up the TX queue and, if
// rx is not nil, the RX queue, and sets DRIVER_OK. MSI-X or INTx must be
// enabled in VFIO before.
func (v *virtioNet) start(t require.TestingT, rx, tx *splitQueue, vec vectors) {
	v.reset(t)
	v.common.w8(t, commonStatus, statusAcknowledge|statusDriver)
	offered := v.deviceFeatures(t)
	require.NotZero(t, offered&featureVersion1, "device offers VIRTIO_F_VERSION_1 (features %#x)", offered)
	want := uint64(featureVersion1) | offered&featureAccessPlatform
	v.common.w32(t, commonGFSelect, 0)
	v.common.w32(t, commonGF, uint32(want))
	v.common.w32(t, commonGFSelect, 1)
	v.common.w32(t, commonGF, uint32(want>>32))
	v.common.w8(t, commonStatus, statusAcknowledge|statusDriver|statusFeaturesOK)
	require.NotZero(t, v.common.r8(t, commonStatus)&statusFeaturesOK, "device accepted features %#x", want)

	v.common.w16(t, commonMSIXConfig, vec.config)
	require.Equal(t, vec.config, v.common.r16(t, commonMSIXConfig), "config change vector accepted")
	if rx != nil {
		v.setupQueue(t, rxQueue, rx, vec.rx)
	}
	v.setupQueue(t, txQueue, tx, vec.tx)
	v.common.w8(t, commonStatus, statusAcknowledge|statusDriver|statusFeaturesOK|statusDriverOK)
}

func (v *virtioNet) setupQueue(t require.TestingT, index uint16, q *splitQueue, vector uint16) {
	v.common.w16(t, commonQSelect, index)
	require.NotZero(t, v.common.r16(t, commonQSize), "queue %d exists", index)
	v.common.w16(t, commonQSize, q.size)
	v.common.w64(t, commonQDesc, q.descIOVA)
	v.common.w64(t, commonQDriver, q.availIOVA)
	v.common.w64(t, commonQDevice, q.usedIOVA)
	v.common.w16(t, commonQMSIX, vector)
	require.Equal(t, vector, v.common.r16(t, commonQMSIX), "queue %d vector accepted", index)
	v.common.w16(t, commonQEnable, 1)
	q.index = index
	q.notifyOff = v.ntfy.off + uint64(v.common.r16(t, commonQNotifyOff))*uint64(v.notifyMult)
}

// splitQueue is a virtio split virtqueue in a hugemem memzone, described
// by offsets and IOVAs only, so any process of the group can post to it.
type splitQueue struct {
	index                         uint16 // virtqueue number
	mem                           *hugemem.Memory
	size                          uint16
	descOff, availOff, usedOff    uint64 // group offsets
	descIOVA, availIOVA, usedIOVA uint64
	bufOff                        uint64 // a buffer for one frame after the rings
	bufIOVA                       uint64
	notifyOff                     uint64 // of the queue's doorbell in its BAR
}

const queueSize = 64

// newSplitQueue lays out a queue in memzone name (reserving it, or
// finding it when another process already did).
func newSplitQueue(t require.TestingT, mem *hugemem.Memory, name string, reserve bool) *splitQueue {
	var z *hugemem.Memzone
	var err error
	if reserve {
		z, err = mem.Reserve(name, 64<<10, 4096)
	} else {
		z, err = mem.Lookup(name)
	}
	require.NoError(t, err)
	q := &splitQueue{mem: mem, size: queueSize, descOff: z.Off}
	q.availOff = q.descOff + queueSize*vringDescLen
	q.usedOff = (q.availOff + 6 + 2*queueSize + 3) &^ 3
	q.bufOff = (q.usedOff + 6 + 8*queueSize + 4095) &^ 4095
	iova := func(off uint64) uint64 {
		v, err := mem.IOVA(off)
		require.NoError(t, err)
		return v
	}
	q.descIOVA, q.availIOVA, q.usedIOVA, q.bufIOVA = iova(q.descOff), iova(q.availOff), iova(q.usedOff), iova(q.bufOff)
	return q
}

// frame writes a virtio-net header and a broadcast Ethernet frame
// carrying payload into dst, and returns their length.
func frame(dst []byte, src [6]byte, payload string) uint32 {
	clear(dst[:netHdrLen+60])
	f := dst[netHdrLen:]
	copy(f, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(f[6:], src[:])
	binary.BigEndian.PutUint16(f[12:], 0x88b5) // local experimental EtherType
	copy(f[14:], payload)
	return netHdrLen + uint32(max(60, 14+len(payload)))
}

// post puts one descriptor (iova, n bytes, flags 0 for the device to
// read or descFlagWrite for it to write) at the head of the avail ring and
// returns the avail index after it.
func (q *splitQueue) post(iova uint64, n uint32, flags uint16) uint16 {
	availWord := (*uint32)(q.mem.Ptr(q.availOff)) // flags | idx<<16
	idx := uint16(atomic.LoadUint32(availWord) >> 16)
	slot := idx % q.size
	d := unsafe.Slice((*byte)(q.mem.Ptr(q.descOff+uint64(slot)*vringDescLen)), vringDescLen)
	binary.LittleEndian.PutUint64(d[0:], iova)
	binary.LittleEndian.PutUint32(d[8:], n)
	binary.LittleEndian.PutUint16(d[12:], flags)
	binary.LittleEndian.PutUint16(d[14:], 0)
	*(*uint16)(q.mem.Ptr(q.availOff + 4 + 2*uint64(slot))) = slot
	// Publish the entry with the index: flags stay 0 (interrupts wanted).
	atomic.StoreUint32(availWord, uint32(idx+1)<<16)
	return idx + 1
}

// usedIdx reads the device's used ring index.
func (q *splitQueue) usedIdx() uint16 {
	return uint16(atomic.LoadUint32((*uint32)(q.mem.Ptr(q.usedOff))) >> 16)
}

// used returns used ring entry i: the descriptor id and the bytes the
// device wrote.
func (q *splitQueue) used(i uint16) (id, n uint32) {
	e := unsafe.Slice((*byte)(q.mem.Ptr(q.usedOff+4+8*uint64(i%q.size))), 8)
	return binary.LittleEndian.Uint32(e), binary.LittleEndian.Uint32(e[4:])
}

// waitUsed waits until the device has used descriptors up to avail
// index idx (or beyond: the ring's indexes wrap at 2^16).
func (q *splitQueue) waitUsed(t require.TestingT, idx uint16) {
	for deadline := time.Now().Add(5 * time.Second); int16(q.usedIdx()-idx) < 0; time.Sleep(time.Millisecond) {
		require.True(t, time.Now().Before(deadline), "used index %d, want %d after 5 s", q.usedIdx(), idx)
	}
}

// kick rings the queue's doorbell in bar.
func (q *splitQueue) kick(t require.TestingT, bar *vfio.BAR) {
	require.NoError(t, bar.Write16(q.notifyOff, q.index))
}
