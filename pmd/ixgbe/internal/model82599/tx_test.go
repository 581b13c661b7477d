package model82599

import (
	"encoding/binary"
	"hash/crc32"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func crc32IEEE(b []byte) uint32 { return crc32.ChecksumIEEE(b) }

func startedTx(t *testing.T, n int, opts ...harnessOpt) (*harness, *txRing) {
	h := newHarness(t, opts...)
	h.resetAndInit()
	return h, h.setupTx(0, n, true)
}

func TestTransmitSendsFramesAndWritesBackDD(t *testing.T) {
	h, tx := startedTx(t, 32, pedantic)
	var frames [][]byte
	for i := range 5 {
		f := udpFrame(macPeer, 20+i)
		frames = append(frames, f)
		tx.put(f, txEOP|txIFCS|txRS, len(f))
	}
	h.w(oTDT(0), uint32(tx.tail))
	require.Equal(t, frames, h.sent, "frames on the wire, in order")
	for i := range 5 {
		require.Truef(t, tx.done(i), "descriptor %d has DD", i)
	}
	require.Equal(t, uint32(5), h.r(oTDH(0)), "TDH caught up with TDT")
	require.Equal(t, uint32(5), h.r(oGPTC))
	require.Equal(t, uint32(5), h.r(oTPT))
	require.Equal(t, uint32(5), h.r(oQPTC(0)))
	var octets int
	for _, f := range frames {
		octets += len(f) + 4
	}
	require.Equal(t, uint32(octets), h.r(oGOTCL), "GOTC counts DA through the appended CRC")
	require.Zero(t, h.r(oGOTCH))
	h.requireNoViolations()
}

func TestTransmitWritesDDOnlyWhereRSIsSet(t *testing.T) {
	h, tx := startedTx(t, 32)
	f := udpFrame(macPeer, 20)
	a := tx.put(f, txEOP|txIFCS, len(f))
	b := tx.put(f, txEOP|txIFCS|txRS, len(f))
	h.w(oTDT(0), uint32(tx.tail))
	require.Len(t, h.sent, 2)
	require.False(t, tx.done(a), "no RS, no write-back")
	require.True(t, tx.done(b))
	require.Equal(t, uint32(2), h.r(0x06030), "QPTC[0] at its 82598 address")
	require.Zero(t, h.r(oQPTC(0)), "the same counter, cleared by that read")
	h.requireNoViolations()
}

func TestTransmitGathersAPacketFromSeveralDescriptors(t *testing.T) {
	h, tx := startedTx(t, 32)
	f := udpFrame(macPeer, 300)
	tx.put(f[:100], txIFCS, len(f))
	tx.put(f[100:250], 0, 0)
	h.w(oTDT(0), uint32(tx.tail))
	require.Empty(t, h.sent, "no EOP yet: the device waits for the rest")
	last := tx.put(f[250:], txEOP|txRS, 0)
	h.w(oTDT(0), uint32(tx.tail))
	require.Equal(t, [][]byte{f}, h.sent)
	require.True(t, tx.done(last))
	require.Equal(t, uint32(3), h.r(oTDH(0)))
	h.requireNoViolations()
}

func TestTransmitHeadWriteBackReplacesDescriptorWriteBack(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	hw, hwIOVA := h.zone(64, 64)
	tx := h.setupTx(0, 32, false)
	h.w(oTDWBAL(0), uint32(hwIOVA)|1)
	h.w(oTDWBAH(0), uint32(hwIOVA>>32))
	h.set(oDMATXCTL, bitTE)
	h.set(oTXDCTL(0), bitENABLE)
	h.poll(oTXDCTL(0), bitENABLE)
	i := tx.send(udpFrame(macPeer, 20))
	tx.send(udpFrame(macPeer, 20))
	require.Equal(t, uint32(2), atomic.LoadUint32((*uint32)(unsafe.Pointer(&hw[0]))), "head written back")
	require.False(t, tx.done(i), "no descriptor write-back with Head_WB_En")
	h.requireNoViolations()
}

func TestTransmitPadsShortFramesToMinimum(t *testing.T) {
	h, tx := startedTx(t, 32)
	short := udpFrame(macPeer, 0)[:42]
	tx.send(short)
	require.Len(t, h.sent, 1)
	require.Len(t, h.sent[0], 60, "HLREG0.TXPADEN pads to 64 bytes with the FCS")
	require.Equal(t, short, h.sent[0][:42])
	require.Equal(t, make([]byte, 18), h.sent[0][42:])
	h.requireNoViolations()
}

func TestTransmitInsertsTheVLANTagOfTheContext(t *testing.T) {
	h, tx := startedTx(t, 32)
	// Advanced context descriptor (7.2.3.2.3): VLAN 0x0123 in bits 31:16 of
	// the first dword, DTYP 0010b, DEXT, IDX 0.
	c := tx.ring[0:16]
	binary.LittleEndian.PutUint32(c[0:4], 0x0123<<16|14<<9|20)
	binary.LittleEndian.PutUint32(c[8:12], 2<<20|txDEXT)
	binary.LittleEndian.PutUint32(c[12:16], 0)
	tx.tail = 1
	f := udpFrame(macPeer, 40)
	tx.put(f, txEOP|txIFCS|txRS|txVLE, len(f))
	h.w(oTDT(0), uint32(tx.tail))
	require.Len(t, h.sent, 1)
	want := append(append(append([]byte{}, f[:12]...), 0x81, 0x00, 0x01, 0x23), f[12:]...)
	require.Equal(t, want, h.sent[0])
	h.requireNoViolations()
}

func TestLoopbackFeedsTransmittedFramesToTheReceiver(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	r := h.setupRx(0, rxOpts{n: 8})
	tx := h.setupTx(0, 32, true)
	h.enableRx()
	h.set(oHLREG0, 1<<15) // LPBK
	f := udpFrame(macDev, 20)
	tx.send(f)
	require.Empty(t, h.sent, "nothing on the wire in loopback")
	d, ok := r.take()
	require.True(t, ok)
	require.Equal(t, f, d.data)
	h.requireNoViolations()
}

func TestTransmitWaitsForTheLink(t *testing.T) {
	h, tx := startedTx(t, 32)
	h.dev.SetLink(false)
	i := tx.send(udpFrame(macPeer, 20))
	require.Empty(t, h.sent)
	require.False(t, tx.done(i))
	h.dev.SetLink(true)
	require.Len(t, h.sent, 1, "sent once the link came up")
	require.True(t, tx.done(i))
	h.requireNoViolations()
}
