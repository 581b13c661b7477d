package model82599

import (
	"encoding/binary"
	"testing"

	"github.com/stretchr/testify/require"
)

// Advanced receive write-back bits, 7.1.6.2.
const (
	wbDD    = 1 << 0
	wbEOP   = 1 << 1
	wbVP    = 1 << 3
	wbUDPCS = 1 << 4
	wbL4CS  = 1 << 5
	wbIPCS  = 1 << 6
	wbPIF   = 1 << 7
	wbTCPE  = 1 << 30
	wbIPE   = 1 << 31

	ptypeIPv4 = 1 << 4
	ptypeIPv6 = 1 << 6
	ptypeTCP  = 1 << 8
	ptypeUDP  = 1 << 9
)

func startedRx(t *testing.T, o rxOpts, opts ...harnessOpt) (*harness, *rxRing) {
	h := newHarness(t, opts...)
	h.resetAndInit()
	r := h.setupRx(0, o)
	h.enableRx()
	return h, r
}

func TestReceiveWritesTheAdvancedWriteBack(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8}, pedantic)
	f := udpFrame(macDev, 100)
	require.True(t, h.dev.Receive(f))

	d, ok := r.take()
	require.True(t, ok, "DD set")
	require.Equal(t, uint32(wbDD|wbEOP|wbIPCS|wbL4CS|wbUDPCS), d.status, "status: done, end of packet, checksums verified, no errors")
	require.Equal(t, uint32(len(f)), d.length, "length excludes the stripped CRC")
	require.Equal(t, f, d.data)
	require.Equal(t, uint32(ptypeIPv4|ptypeUDP), d.lo&0x1FFF0, "packet type")
	require.Equal(t, uint32(0x1234), d.rss, "without RXCSUM.PCSD the IP identification is reported")
	require.Equal(t, uint32(1), h.r(oRDH(0)), "RDH advanced")
	_, ok = r.take()
	require.False(t, ok, "one frame, one descriptor")
	h.requireNoViolations()
}

func TestReceiveOnlyUsesDescriptorsBeforeTheTail(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8, dropEn: true})
	f := udpFrame(macDev, 40)
	for range 7 {
		require.True(t, h.dev.Receive(f))
	}
	require.True(t, h.dev.Receive(f), "taken into the packet buffer, then dropped (Drop_En)")
	require.Equal(t, uint32(7), h.r(oRDH(0)), "RDT=7: descriptors 0..6 belonged to the device")
	require.Equal(t, uint32(1), h.r(oRNBC0), "RNBC counts the frame that found no descriptor")
	require.Equal(t, uint32(1), h.r(oQPRDC(0)), "QPRDC counts its drop")
	for range 7 {
		_, ok := r.take()
		require.True(t, ok)
	}
	_, ok := r.take()
	require.False(t, ok)
	h.requireNoViolations()
}

func TestReceiveWithoutDropEnWaitsInThePacketBuffer(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8})
	h.clr(oRXCTRL, bitRXEN)
	h.w(oRXPBSIZE0, 4096) // a tiny packet buffer: two 1500-byte frames
	h.enableRx()
	small := udpFrame(macDev, 40)
	for range 7 {
		require.True(t, h.dev.Receive(small))
	}
	big := udpFrame(macDev, 1400)
	require.True(t, h.dev.Receive(big), "waits in the packet buffer")
	require.True(t, h.dev.Receive(big), "waits behind it")
	require.False(t, h.dev.Receive(big), "packet buffer full")
	require.Equal(t, uint32(1), h.r(oMPC0), "MPC counts the miss")
	for i := range 7 {
		d, ok := r.take() // each take moves the tail and lets one more in
		require.Truef(t, ok, "frame %d", i)
		require.Equal(t, uint32(len(small)), d.length)
	}
	for range 2 {
		d, ok := r.take()
		require.True(t, ok)
		require.Equal(t, uint32(len(big)), d.length, "the buffered frames arrive in order")
	}
	require.Equal(t, uint32(9), h.r(oGPRC), "the missed frame is not a good one")
	h.requireNoViolations()
}

func TestReceiveFiltersByDestinationAddress(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 32})
	other := [6]byte{0x02, 0, 0, 0, 0, 0x99}
	bcast := [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	mcast := [6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}

	require.False(t, h.dev.Receive(udpFrame(other, 20)), "unicast to another station")
	require.False(t, h.dev.Receive(udpFrame(mcast, 20)), "multicast not in the table")
	require.True(t, h.dev.Receive(udpFrame(bcast, 20)), "broadcast with FCTRL.BAM")
	d, _ := r.take()
	require.Zero(t, d.status&wbPIF, "broadcast is not an inexact match")

	// MTA with MO=00: bits 47:36 of the address index the table.
	vec := uint32(mcast[4])>>4 | uint32(mcast[5])<<4
	h.clr(oRXCTRL, bitRXEN)
	h.w(oMTA0+4*(vec>>5), 1<<(vec&31))
	h.w(oMCSTCTRL, 1<<2)
	h.enableRx()
	require.True(t, h.dev.Receive(udpFrame(mcast, 20)), "multicast in the table")
	d, _ = r.take()
	require.Equal(t, uint32(wbPIF), d.status&wbPIF, "passed only the inexact filter")

	h.clr(oRXCTRL, bitRXEN)
	h.set(oFCTRL, 1<<9) // UPE
	h.enableRx()
	require.True(t, h.dev.Receive(udpFrame(other, 20)), "unicast promiscuous")
	d, _ = r.take()
	require.Equal(t, uint32(wbPIF), d.status&wbPIF)
	require.Equal(t, uint32(1), h.r(oBPRC))
	require.Equal(t, uint32(1), h.r(oMPRC))
	h.requireNoViolations()
}

func TestReceiveSplitsAFrameLargerThanTheBuffer(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8, bufKB: 1})
	f := udpFrame(macDev, 1400)
	require.True(t, h.dev.Receive(f))
	first, ok := r.take()
	require.True(t, ok)
	require.Equal(t, uint32(wbDD), first.status&(wbDD|wbEOP), "first buffer: done, not the end")
	require.Equal(t, uint32(1024), first.length)
	second, ok := r.take()
	require.True(t, ok)
	require.Equal(t, uint32(wbDD|wbEOP), second.status&(wbDD|wbEOP))
	require.Equal(t, f, append(first.data, second.data...))
	h.requireNoViolations()
}

func TestReceiveLegacyDescriptors(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8, legacy: true})
	f := udpFrame(macDev, 64)
	require.True(t, h.dev.Receive(f))
	d := r.ring[0:16]
	require.Equal(t, r.bufIOVA[0], binary.LittleEndian.Uint64(d[0:8]), "7.1.5: the buffer address stays")
	require.Equal(t, uint16(len(f)), binary.LittleEndian.Uint16(d[8:10]), "length")
	require.Equal(t, byte(wbDD|wbEOP|wbIPCS|wbL4CS|wbUDPCS), d[12], "status byte")
	require.Zero(t, d[13], "errors byte")
	require.Equal(t, f, r.bufs[0][:len(f)])
	h.requireNoViolations()
}

func TestReceiveStripsTheVLANTagWithVME(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8, vme: true})
	inner := udpFrame(macDev, 40)
	tagged := append(append(append([]byte{}, inner[:12]...), 0x81, 0x00, 0x20, 0x07), inner[12:]...)
	require.True(t, h.dev.Receive(tagged))
	d, ok := r.take()
	require.True(t, ok)
	require.Equal(t, uint32(wbVP), d.status&wbVP, "VP: tag stripped")
	require.Equal(t, uint32(0x2007), d.vlan, "tag in the write-back")
	require.Equal(t, inner, d.data, "frame without the tag")
	h.requireNoViolations()
}

func TestReceiveReportsBadChecksums(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8})
	f := udpFrame(macDev, 40)
	f[14+10] ^= 0xFF // IPv4 header checksum
	f[len(f)-1] ^= 0xFF
	f[14+20+6] ^= 0x01 // UDP checksum
	require.True(t, h.dev.Receive(f), "checksum errors do not filter (7.1.11)")
	d, ok := r.take()
	require.True(t, ok)
	require.Equal(t, uint32(wbIPE|wbTCPE), d.status&(wbIPE|wbTCPE))
	h.requireNoViolations()
}

func TestReceiveKeepsTheCRCWhenNotStripping(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	h.clr(oHLREG0, 1<<1)
	h.clr(oRDRXCTL, 1<<1)
	r := h.setupRx(0, rxOpts{n: 8})
	h.enableRx()
	f := udpFrame(macDev, 40)
	require.True(t, h.dev.Receive(f))
	d, _ := r.take()
	require.Equal(t, uint32(len(f)+4), d.length)
	require.Equal(t, f, d.data[:len(f)])
	// The FCS of a frame makes the CRC-32 residue of the whole frame constant.
	require.Equal(t, uint32(0x2144DF1C), crc32IEEE(d.data), "valid FCS appended")
	h.requireNoViolations()
}

func TestReceiveCountsRuntsAndGiantsWithoutDelivering(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8})
	require.False(t, h.dev.Receive(make([]byte, 50)))
	require.False(t, h.dev.Receive(udpFrame(macDev, 1500)))
	_, ok := r.take()
	require.False(t, ok)
	require.Equal(t, uint32(1), h.r(oRUC))
	require.Equal(t, uint32(1), h.r(0x040AC), "ROC")
	h.requireNoViolations()
}

func TestReceiveNeedsLinkAndRXEN(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8})
	h.dev.SetLink(false)
	require.False(t, h.dev.Receive(udpFrame(macDev, 20)))
	h.dev.SetLink(true)
	h.clr(oRXCTRL, bitRXEN)
	require.False(t, h.dev.Receive(udpFrame(macDev, 20)))
	_, ok := r.take()
	require.False(t, ok)
	h.requireNoViolations()
}

func TestReceiveOnAnIPv6TCPFrame(t *testing.T) {
	h, r := startedRx(t, rxOpts{n: 8})
	src := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 1}
	dst := [16]byte{0x20, 0x01, 0x0d, 0xb8, 15: 2}
	f := ether(macDev, macPeer, 0x86DD, ipv6(src, dst, 6, 4000, 80, make([]byte, 10)))
	require.True(t, h.dev.Receive(f))
	d, ok := r.take()
	require.True(t, ok)
	require.Equal(t, uint32(ptypeIPv6|ptypeTCP), d.lo&0x1FFF0)
	require.Equal(t, uint32(wbDD|wbEOP|wbL4CS), d.status)
	h.requireNoViolations()
}

func TestChecksumSumMatchesTheWordByWordDefinition(t *testing.T) {
	b := make([]byte, 101)
	for i := range b {
		b[i] = byte(i*37 + 11)
	}
	for n := range len(b) + 1 {
		require.Equalf(t, ^csum(b[:n], 0), fold(sum16(b[:n], 0)), "length %d", n)
	}
}
