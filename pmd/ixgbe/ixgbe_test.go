package ixgbe

import (
	"bytes"
	"context"
	"encoding/binary"
	"net"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"github.com/stretchr/testify/require"
)

func TestInitializationFollowsTheDatasheetWithoutAViolation(t *testing.T) {
	r := newRig(t)
	b, addr := r.board(pedantic) // "should" advice reported too, every report fails the test
	p := r.port(0, addr, 4, 256)
	require.Equal(t, net.HardwareAddr(macDev[:]), p.MAC(), "MAC from the EEPROM (RAL[0]/RAH[0])")
	require.Equal(t, ethdev.Link{Up: true, Mbps: 10000}, p.Link(), "link after auto-negotiation")
	d := dev(p)
	require.Equal(t, uint32(rxctrlRXEN), d.r(regRXCTRL)&rxctrlRXEN, "reception enabled")
	require.Equal(t, uint32(dmatxctlTE), d.r(regDMATXCTL)&dmatxctlTE, "transmission enabled")
	for q := range 4 {
		require.Equal(t, uint32(2|srrctlAdvOneBuf|srrctlDropEn), d.r(rxq(q, rqSRRCTL)), "SRRCTL[%d]: 2 KB buffers, advanced descriptors, Drop_En", q)
		require.Equal(t, uint32(255), d.r(rxq(q, rqRDT)), "RDT[%d]: every descriptor but the last handed over", q)
		require.Equal(t, uint32(rxdctlEnable), d.r(rxq(q, rqRXDCTL))&rxdctlEnable, "RXDCTL[%d].ENABLE", q)
		require.Equal(t, uint32(txdctlEnable), d.r(txq(q, tqTXDCTL))&txdctlEnable, "TXDCTL[%d].ENABLE", q)
	}
	require.Equal(t, uint32(mrqcRSS|mrqcAllFields), d.r(regMRQC), "MRQC: RSS over IPv4/IPv6, TCP and UDP")
	require.NoError(t, p.Stop())
	require.NoError(t, p.Start(), "a stopped port starts again")
	require.NoError(t, p.Close())
	require.Empty(t, b.dev.Violations())
	require.Equal(t, r.pool.Mempool().Size(), r.pool.Mempool().Avail(), "every mbuf back in the pool after close")
}

func TestStoppedPortStartsAgainAndCarriesFrames(t *testing.T) {
	r := newRig(t)
	b, addr := r.board(pedantic)
	p := r.port(0, addr, 1, 64)
	for round := range 3 {
		rx, err := p.RxQueue(0)
		require.NoError(t, err)
		tx, err := p.TxQueue(0)
		require.NoError(t, err)
		for i := range 40 { // past a batch of 32, so some mbufs are in flight at Stop
			f := udpFrame(macDev, uint16(i), 100)
			require.True(t, b.dev.Receive(f), "round %d frame %d", round, i)
			got := receiveAll(t, rx, 1)
			require.Equal(t, f, got[0].Data())
			require.Equal(t, 1, tx.TxBurst(got))
			require.Equal(t, f, b.waitSent(t))
		}
		require.NoError(t, p.Stop())
		require.False(t, b.dev.Receive(udpFrame(macDev, 1, 100)), "a stopped port takes nothing")
		require.Equal(t, r.pool.Mempool().Size(), r.pool.Mempool().Avail(), "round %d: every mbuf back after Stop", round)
		require.NoError(t, p.Start())
	}
}

func TestLinkChangesArriveAsEthdevEventsThroughTheInterrupt(t *testing.T) {
	testLinkEvents(t)
}

func TestLinkChangesArriveAsEthdevEventsWithoutAnInterrupt(t *testing.T) {
	testLinkEvents(t, noIRQ) // the driver polls LINKS instead
}

func testLinkEvents(t *testing.T, opts ...boardOpt) {
	r := newRig(t)
	b, addr := r.board(opts...)
	p := r.port(0, addr, 1, 64)
	events, err := r.proc.Subscribe()
	require.NoError(t, err)
	next := func() ethdev.Link {
		t.Helper()
		select {
		case ev := <-events:
			port, l, ok := ethdev.ParseLinkEvent(ev)
			require.True(t, ok, "event %q is a link event", ev.Name)
			require.Equal(t, p.ID, port)
			return l
		case <-time.After(2 * time.Second):
			t.Fatal("no link event within 2 s")
			return ethdev.Link{}
		}
	}
	b.dev.SetLink(false)
	require.Equal(t, ethdev.Link{}, next(), "cable pulled")
	require.False(t, p.Link().Up)
	b.dev.SetLink(true)
	require.Equal(t, ethdev.Link{Up: true, Mbps: 10000}, next(), "cable back")
	require.Equal(t, ethdev.Link{Up: true, Mbps: 10000}, p.Link())
}

func TestFramesCrossBothWaysIntact(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 128)
	rx, err := p.RxQueue(0)
	require.NoError(t, err)
	tx, err := p.TxQueue(0)
	require.NoError(t, err)

	sizes := []int{60, 61, 64, 128, 511, 1000, 1514}
	var frames [][]byte
	for i, n := range sizes {
		payload := make([]byte, n-42)
		for k := range payload {
			payload[k] = byte(k * (i + 1))
		}
		f := ipv4(net.IPv4(10, 0, 0, 2), net.IPv4(10, 0, 0, 1), 17, uint16(1000+i), 53, payload)
		frames = append(frames, f)
		require.True(t, b.dev.Receive(f), "the device takes frame %d", i)
	}
	got := receiveAll(t, rx, len(frames))
	for i, m := range got {
		require.Equal(t, frames[i], m.Data(), "frame %d (%d bytes) as received", i, len(frames[i]))
		require.Equal(t, uint32(len(frames[i])), m.PktLen())
		require.Equal(t, p.ID, m.Port())
		require.Equal(t, uint64(olRxIPGood|olRxL4Good), m.OlFlags(), "checksum flags of frame %d", i)
	}
	// Back out: the received mbufs themselves, then chained ones.
	require.Equal(t, len(got), tx.TxBurst(got))
	for i := range frames {
		require.Equal(t, frames[i], b.waitSent(t), "frame %d as sent", i)
	}
	for i, f := range frames {
		m := r.packet(f, 100) // segments of 100 bytes
		require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{m}))
		require.Equal(t, f, b.waitSent(t), "frame %d sent from %d segments", i, m.NumSegs())
	}
}

// The RSS verification suite of 7.1.2.8.3 (Microsoft's "Verifying the RSS
// Hash Calculation"): with its key, which is the driver's, each example
// flow hashes to the published value.
var rssVectors = []struct {
	dst, src         string
	dport, sport     uint16
	addrOnly, withL4 uint32
}{
	{"161.142.100.80", "66.9.149.187", 1766, 2794, 0x323e8fc2, 0x51ccc178},
	{"65.69.140.83", "199.92.111.2", 4739, 14230, 0xd718262a, 0xc626b0ea},
	{"12.22.207.184", "24.19.198.95", 38024, 12898, 0xd2d0a5de, 0x5c2b394a},
	{"209.142.163.6", "38.27.205.30", 2217, 48228, 0x82989176, 0xafc7327f},
	{"202.188.127.2", "153.39.163.191", 1303, 44251, 0x5d1809c5, 0x10e828a2},
	{"3ffe:2501:200:3::1", "3ffe:2501:200:1fff::7", 1766, 2794, 0x2cc18cd5, 0x40207d3d},
	{"ff02::1", "3ffe:501:8::260:97ff:fe40:efab", 4739, 14230, 0x0f0c461c, 0xdde51bbf},
	{"fe80::200:f8ff:fe21:67cf", "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 38024, 44251, 0x4b61e985, 0x02d1feef},
}

func TestRSSSendsTheVerificationVectorsWhereTheRedirectionTableSays(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	const nq = 16
	p := r.port(0, addr, nq, 64)
	d := dev(p)
	rxs := make([]ethdev.RxQueue, nq)
	for q := range rxs {
		var err error
		rxs[q], err = p.RxQueue(q)
		require.NoError(t, err)
	}
	// RETA as the device holds it: entry i is byte i%4 of register i/4.
	queueOf := func(hash uint32) int {
		i := hash & 0x7F
		return int(d.r(regRETA0+4*(i/4)) >> (8 * (i % 4)) & 0xF)
	}
	check := func(frame []byte, want uint32, what string) {
		t.Helper()
		require.True(t, b.dev.Receive(frame), what)
		wantQ := queueOf(want)
		pkts := make([]*mbuf.Mbuf, 4)
		for q, rx := range rxs {
			n := rx.RxBurst(pkts)
			if q != wantQ {
				require.Zero(t, n, "%s: hash %#x says queue %d, but queue %d got it", what, want, wantQ, q)
				continue
			}
			require.Equal(t, 1, n, "%s: expected on queue %d (RETA[%#x])", what, wantQ, want&0x7F)
			require.Equal(t, want, pkts[0].RSSHash(), "%s: hash in the write-back", what)
			require.NotZero(t, pkts[0].OlFlags()&olRxRSSHash, "%s: RSS hash flag", what)
			require.Equal(t, frame, pkts[0].Data())
			pkts[0].Free(nil)
		}
	}
	seen := map[int]bool{}
	for _, v := range rssVectors {
		src, dst := net.ParseIP(v.src), net.ParseIP(v.dst)
		if src.To4() != nil {
			check(ipv4(src, dst, 6, v.sport, v.dport, nil), v.withL4, "TCP/IPv4 "+v.src+" -> "+v.dst)
			check(ipv4(src, dst, 1, 0, 0, make([]byte, 8)), v.addrOnly, "IPv4 (ICMP) "+v.src+" -> "+v.dst)
		} else {
			check(ipv6(src, dst, 6, v.sport, v.dport, nil), v.withL4, "TCP/IPv6 "+v.src+" -> "+v.dst)
			check(ipv6(src, dst, 59, 0, 0, make([]byte, 8)), v.addrOnly, "IPv6 (no next header) "+v.src+" -> "+v.dst)
		}
		seen[queueOf(v.withL4)], seen[queueOf(v.addrOnly)] = true, true
	}
	require.Greater(t, len(seen), 4, "the vectors reach several queues: %v", seen)
}

func TestRSSSpreadsFlowsOverTheQueuesAndKeepsEachFlowOnOne(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	const nq = 4
	p := r.port(0, addr, nq, 512)
	rxs := make([]ethdev.RxQueue, nq)
	for q := range rxs {
		var err error
		rxs[q], err = p.RxQueue(q)
		require.NoError(t, err)
	}
	flowQueue := map[uint16]int{}
	perQueue := make([]int, nq)
	pkts := make([]*mbuf.Mbuf, 1)
	for round := range 2 {
		for sport := uint16(1000); sport < 1200; sport++ {
			require.True(t, b.dev.Receive(udpFrame(macDev, sport, 64)))
			got := -1
			for q, rx := range rxs {
				if rx.RxBurst(pkts) == 1 {
					require.Equal(t, -1, got, "flow %d delivered twice", sport)
					got = q
					pkts[0].Free(nil)
				}
			}
			require.NotEqual(t, -1, got, "flow %d delivered nowhere", sport)
			if round == 0 {
				flowQueue[sport] = got
				perQueue[got]++
			} else {
				require.Equal(t, flowQueue[sport], got, "flow %d moved queues", sport)
			}
		}
	}
	for q, n := range perQueue {
		require.Greater(t, n, 25, "queue %d got %d of 200 flows: %v", q, n, perQueue)
	}
}

func TestStatisticsMatchWhatCrossedTheWire(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 256)
	rx, _ := p.RxQueue(0)
	tx, _ := p.TxQueue(0)
	sizes := []int{60, 100, 200, 600, 1200, 1514}
	var inBytes, wireBytes uint64
	for _, n := range sizes {
		require.True(t, b.dev.Receive(udpFrame(macDev, 7, n)))
		inBytes += uint64(n)
		wireBytes += uint64(n + 4) // the device counts the FCS
	}
	bcast := [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	require.True(t, b.dev.Receive(udpFrame(bcast, 7, 60)))
	inBytes += 60
	wireBytes += 64
	got := receiveAll(t, rx, len(sizes)+1)
	require.Equal(t, len(got), tx.TxBurst(got))
	for range got {
		b.waitSent(t)
	}
	s := p.Stats()
	require.Equal(t, uint64(len(sizes)+1), s.RxPackets, "rx packets")
	require.Equal(t, inBytes, s.RxBytes, "rx bytes (no FCS)")
	require.Equal(t, uint64(len(sizes)+1), s.TxPackets, "tx packets")
	require.Equal(t, inBytes, s.TxBytes, "tx bytes")
	require.Zero(t, s.RxErrors+s.TxErrors+s.RxDropped+s.TxDropped, "errors and drops: %+v", s)

	require.Equal(t, uint64(7), xstat(t, p, "hw_rx_good_packets"), "GPRC")
	require.Equal(t, wireBytes, xstat(t, p, "hw_rx_good_bytes"), "GORC")
	require.Equal(t, uint64(7), xstat(t, p, "hw_rx_q0_packets"), "QPRC[0]")
	require.Equal(t, uint64(7), xstat(t, p, "hw_tx_good_packets"), "GPTC")
	require.Equal(t, wireBytes, xstat(t, p, "hw_tx_good_bytes"), "GOTC")
	require.Equal(t, uint64(7), xstat(t, p, "tx_total_packets"), "TPT")
	require.Equal(t, uint64(7), xstat(t, p, "hw_tx_q0_packets"), "QPTC[0]")
	require.Equal(t, uint64(1), xstat(t, p, "rx_broadcast_packets"), "BPRC")
	require.Equal(t, uint64(1), xstat(t, p, "tx_broadcast_packets"), "BPTC")
	// Size bins count with the FCS: 64, 104, 204, 604, 1204, 1518 and 64 bytes.
	require.Equal(t, uint64(2), xstat(t, p, "rx_size_64_packets"), "PRC64: the two 60-byte frames")
	require.Equal(t, uint64(1), xstat(t, p, "rx_size_65_to_127_packets"), "PRC127")
	require.Equal(t, uint64(1), xstat(t, p, "rx_size_128_to_255_packets"), "PRC255")
	require.Equal(t, uint64(0), xstat(t, p, "rx_size_256_to_511_packets"), "PRC511")
	require.Equal(t, uint64(1), xstat(t, p, "rx_size_512_to_1023_packets"), "PRC1023")
	require.Equal(t, uint64(2), xstat(t, p, "rx_size_1024_to_max_packets"), "PRC1522")
	require.Equal(t, uint64(2), xstat(t, p, "tx_size_64_packets"), "PTC64")
	require.Equal(t, uint64(2), xstat(t, p, "tx_size_1024_to_max_packets"), "PTC1522")
	require.Equal(t, uint64(7), xstat(t, p, "hw_rx_good_packets"), "counters accumulate across reads")
	require.Equal(t, uint64(len(sizes)+1), p.Stats().RxPackets)
}

func TestPromiscuousAndMulticastModesFilterAsConfigured(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 128)
	d := dev(p)
	rx, _ := p.RxQueue(0)
	other := [6]byte{0x02, 0x11, 0x22, 0x33, 0x44, 0x55}
	group := [6]byte{0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb}
	otherGroup := [6]byte{0x01, 0x00, 0x5e, 0x7f, 0x12, 0x34}
	bcast := [6]byte{0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF}
	passes := func(dst [6]byte) bool {
		t.Helper()
		took := b.dev.Receive(udpFrame(dst, 9, 64))
		pkts := make([]*mbuf.Mbuf, 2)
		n := rx.RxBurst(pkts)
		require.Equal(t, took, n == 1, "the device took the frame to %x but the driver delivered %d", dst, n)
		if n == 1 {
			pkts[0].Free(nil)
		}
		return took
	}
	require.True(t, passes(macDev), "own address")
	require.True(t, passes(bcast), "broadcast")
	require.False(t, passes(other), "another station's frame, not promiscuous")
	require.False(t, passes(group), "a group not joined")

	require.NoError(t, p.SetPromiscuous(true))
	require.True(t, passes(other), "promiscuous: another station's frame")
	require.True(t, passes(group), "promiscuous: any group")
	require.NoError(t, p.SetPromiscuous(false))
	require.False(t, passes(other), "promiscuous off again")

	require.NoError(t, d.SetMulticastAddrs([]net.HardwareAddr{group[:]}))
	require.True(t, passes(group), "a joined group")
	require.False(t, passes(otherGroup), "a group not joined")
	require.NoError(t, d.SetAllMulticast(true))
	require.True(t, passes(otherGroup), "all-multicast")
	require.False(t, passes(other), "all-multicast is not unicast promiscuous")
	require.NoError(t, d.SetAllMulticast(false))
	require.False(t, passes(otherGroup), "all-multicast off")
	require.ErrorContains(t, d.SetMulticastAddrs([]net.HardwareAddr{other[:]}), "group address")
}

func TestWriteBackLongerThanTheBufferIsDroppedAndCounted(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 64)
	rx, _ := p.RxQueue(0)
	require.True(t, b.dev.Receive(udpFrame(macDev, 1, 100)))
	desc := rxDescAt(p, 0, 0)
	require.NotZero(t, atomic.LoadUint64(&desc.hi)&rxStatDD, "the device wrote descriptor 0")
	desc.hi = desc.hi&^(0xFFFF<<rxLenShift) | 4000<<rxLenShift // a device claiming 4000 bytes in a 2 KB buffer
	pkts := make([]*mbuf.Mbuf, 8)
	require.Zero(t, rx.RxBurst(pkts), "the bad write-back is not delivered")
	require.Equal(t, uint64(1), p.Stats().RxErrors, "and it is counted")
	f := udpFrame(macDev, 2, 100)
	require.True(t, b.dev.Receive(f))
	require.Equal(t, 1, rx.RxBurst(pkts), "the queue carries on")
	require.Equal(t, f, pkts[0].Data())
	// The dropped descriptor was re-armed with its buffer: after a lap of
	// the ring it receives again.
	for i := range 70 {
		require.True(t, b.dev.Receive(udpFrame(macDev, uint16(i), 100)))
		require.Equal(t, 1, rx.RxBurst(pkts[1:]), "frame %d", i)
		pkts[1].Free(nil)
	}
}

func TestDoneBitOnADescriptorTheDriverDidNotPostIsIgnoredAndCounted(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 64)
	rx, _ := p.RxQueue(0)
	tail := dev(p).sh.Rx[0].Tail
	require.Equal(t, uint32(63), tail)
	// A device writing back into the descriptor RDT points at, which is not its own.
	bogus := rxDescAt(p, 0, tail)
	atomic.StoreUint64(&bogus.hi, rxStatDD|rxStatEOP|60<<rxLenShift)
	pkts := make([]*mbuf.Mbuf, 64)
	require.Zero(t, rx.RxBurst(pkts), "nothing delivered from a descriptor the device does not own")
	var frames [][]byte
	for i := range 63 { // every posted descriptor, up to the bogus one
		f := udpFrame(macDev, uint16(i), 80)
		frames = append(frames, f)
		require.True(t, b.dev.Receive(f))
	}
	got := receiveAll(t, rx, 63)
	for i, m := range got {
		require.Equal(t, frames[i], m.Data(), "frame %d", i)
	}
	require.Equal(t, uint64(1), p.Stats().RxErrors, "the bogus write-back counted once")
	mbuf.FreeBulk(nil, got)
	f := udpFrame(macDev, 99, 80)
	require.True(t, b.dev.Receive(f), "descriptor %d goes to the device re-armed", tail)
	require.Equal(t, 1, rx.RxBurst(pkts))
	require.Equal(t, f, pkts[0].Data())
}

func TestFrameWithoutEndOfPacketIsDroppedWithItsLastPart(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 64)
	rx, _ := p.RxQueue(0)
	for i := range 3 {
		require.True(t, b.dev.Receive(udpFrame(macDev, uint16(i), 100)))
	}
	// Make descriptor 0 look like the first buffer of a two-buffer frame.
	desc := rxDescAt(p, 0, 0)
	desc.hi &^= rxStatEOP
	pkts := make([]*mbuf.Mbuf, 8)
	require.Equal(t, 1, rx.RxBurst(pkts), "descriptors 0 and 1 are one broken frame; 2 is whole")
	require.Equal(t, udpFrame(macDev, 2, 100), pkts[0].Data())
	require.Equal(t, uint64(1), p.Stats().RxErrors)
}

func TestEmptyPoolLeavesFramesInTheRingAndDeviceDropsReachStats(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	small, err := mbuf.CreatePool(r.proc.Mem, "small", mbuf.PoolConfig{N: 64 + 8})
	require.NoError(t, err)
	p, err := ethdev.Create(r.proc, "net_ixgbe0,pci="+addr)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}))
	require.NoError(t, p.SetupRxQueue(0, 64, small))
	require.NoError(t, p.SetupTxQueue(0, 64))
	require.NoError(t, p.Start())
	rx, _ := p.RxQueue(0)

	for i := range 20 {
		require.True(t, b.dev.Receive(udpFrame(macDev, uint16(i), 64)))
	}
	var held []*mbuf.Mbuf
	pkts := make([]*mbuf.Mbuf, 32)
	for {
		n := rx.RxBurst(pkts)
		if n == 0 {
			break
		}
		held = append(held, pkts[:n]...)
	}
	require.Len(t, held, 8, "as many frames as the pool has spare mbufs")
	// The 8 received descriptors went back to the device re-armed: of its
	// 63, 12 hold frames and 51 are free, so 58 more frames overflow by 7,
	// which the device drops (Drop_En) and counts.
	for i := range 58 {
		b.dev.Receive(udpFrame(macDev, uint16(100+i), 64))
	}
	require.Equal(t, uint64(7), xstat(t, p, "hw_rx_q0_dropped"), "QPRDC[0]")
	require.Zero(t, rx.RxBurst(pkts), "still no mbufs")
	require.Equal(t, uint64(7), p.Stats().RxDropped, "the device's drops in the queue's counters")
	mbuf.FreeBulk(nil, held)
	total := len(held)
	for {
		n := rx.RxBurst(pkts)
		if n == 0 {
			break
		}
		total += n
		mbuf.FreeBulk(nil, pkts[:n])
	}
	require.Equal(t, 20+58-7, total, "every frame that found a descriptor, once mbufs were back")
}

func TestTxRingFullTakesWhatFitsAndDrainsWhenTheLinkReturns(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 64)
	tx, _ := p.TxQueue(0)
	b.dev.SetLink(false) // frames wait in the ring for the link
	taken := 0
	for range 4 {
		pkts := make([]*mbuf.Mbuf, 32)
		for i := range pkts {
			pkts[i] = r.packet(udpFrame(macPeer, uint16(i), 64), 0)
		}
		n := tx.TxBurst(pkts)
		taken += n
		mbuf.FreeBulk(nil, pkts[n:])
	}
	require.Equal(t, 63, taken, "a 64-descriptor ring holds 63 packets")
	require.Zero(t, b.sentN.Load())
	b.dev.SetLink(true)
	require.Equal(t, int64(63), b.sentN.Load(), "sent once the link came back")
	m := r.packet(udpFrame(macPeer, 1, 64), 0)
	require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{m}), "room again after cleaning")
	require.NoError(t, p.Close())
	require.Equal(t, r.pool.Mempool().Size(), r.pool.Mempool().Avail(), "every mbuf back in the pool")
}

func TestUnsendablePacketIsFreedAndCounted(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 1, 64)
	tx, _ := p.TxQueue(0)
	empty, err := r.pool.Alloc(nil)
	require.NoError(t, err)
	good := r.packet(udpFrame(macPeer, 1, 64), 0)
	scattered := r.packet(udpFrame(macPeer, 2, 1000), 20) // 50 segments: more than a packet may use
	require.Equal(t, uint16(50), scattered.NumSegs())
	avail := r.pool.Mempool().Avail()
	require.Equal(t, 3, tx.TxBurst([]*mbuf.Mbuf{empty, good, scattered}), "all taken")
	require.Equal(t, avail+1+50, r.pool.Mempool().Avail(), "the unsendable ones freed at once")
	s := p.Stats()
	require.Equal(t, uint64(2), s.TxErrors)
	require.Equal(t, uint64(1), s.TxPackets)
	require.Equal(t, int64(1), b.sentN.Load())
}

func TestSecondaryPollsItsQueuePair(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	p := r.port(0, addr, 2, 256)
	prx, _ := p.RxQueue(0)
	// The secondary is a second group member in this process: its own
	// mapping of the group memory, at other addresses, and its own driver
	// object built from the shared state alone. (A secondary in another
	// process needs BAR0 through VFIO; the model lives in this one.)
	sec, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: r.opts, Lcores: []mp.Lcore{{ID: 1, CPUs: []int{1}}}})
	require.NoError(t, err)
	defer sec.Close()
	require.NotEqual(t, r.proc.Mem.Ptr(0), sec.Mem.Ptr(0), "the secondary maps the group elsewhere")
	sp, err := ethdev.Attach(sec, p.Name())
	require.NoError(t, err)
	defer sp.Close()
	require.ErrorContains(t, sp.Start(), "only the primary")
	srx, err := sp.RxQueue(1)
	require.NoError(t, err)
	stx, err := sp.TxQueue(1)
	require.NoError(t, err)

	const flows = 64
	for sport := range uint16(flows) {
		require.True(t, b.dev.Receive(udpFrame(macDev, 2000+sport, 100)))
	}
	pkts := make([]*mbuf.Mbuf, 64)
	n0 := prx.RxBurst(pkts)
	mbuf.FreeBulk(nil, pkts[:n0])
	n1 := srx.RxBurst(pkts)
	require.Equal(t, flows, n0+n1, "every flow on one of the two queues")
	require.NotZero(t, n1, "RSS gave the secondary's queue some flows")
	for _, m := range pkts[:n1] {
		sport := binary.BigEndian.Uint16(m.Data()[34:36])
		require.True(t, sport >= 2000 && sport < 2000+flows, "source port %d is one of the flows sent", sport)
	}
	require.Equal(t, n1, stx.TxBurst(pkts[:n1]), "the secondary sends on its tx queue")
	for range n1 {
		b.waitSent(t)
	}
	s := p.Stats()
	require.Equal(t, uint64(n1), s.RxQueues[1].Packets, "the primary sees the secondary's rx counters")
	require.Equal(t, uint64(n1), s.TxQueues[1].Packets, "and its tx counters")
	require.Equal(t, uint64(n0), s.RxQueues[0].Packets)
	// The primary's per-queue hardware counters agree.
	require.Equal(t, uint64(n1), xstat(t, p, "hw_rx_q1_packets"))
	require.Equal(t, uint64(n1), xstat(t, p, "hw_tx_q1_packets"))
	require.Equal(t, uint64(n1), xstat(t, sp, "hw_tx_q1_packets"), "the secondary reads the totals the primary keeps")
}

func TestDriverWorksWithADeviceRunningBesideIt(t *testing.T) {
	r := newRig(t)
	b, addr := r.board(polled, pedantic) // queue enables acknowledged later, frames moved by Step
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { b.dev.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	p := r.port(0, addr, 2, 128)
	rxs := make([]ethdev.RxQueue, 2)
	for q := range rxs {
		rxs[q], _ = p.RxQueue(q)
	}
	for i := range 100 {
		require.True(t, b.dev.Receive(udpFrame(macDev, uint16(i), 200)))
	}
	var got []*mbuf.Mbuf
	pkts := make([]*mbuf.Mbuf, 32)
	deadline := time.Now().Add(2 * time.Second)
	for len(got) < 100 && time.Now().Before(deadline) {
		for _, rx := range rxs {
			n := rx.RxBurst(pkts)
			got = append(got, pkts[:n]...)
		}
	}
	require.Len(t, got, 100, "frames received from both queues")
	tx, _ := p.TxQueue(1)
	for sent := 0; sent < len(got) && time.Now().Before(deadline); {
		sent += tx.TxBurst(got[sent:])
	}
	for b.sentN.Load() < 100 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Microsecond)
	}
	require.Equal(t, int64(100), b.sentN.Load(), "frames sent")
}

func TestBurstsAllocateNothing(t *testing.T) {
	for _, cached := range []bool{false, true} {
		r := newRig(t)
		b, addr := r.board(countOnly)
		p := r.port(0, addr, 1, 512)
		rx, _ := p.RxQueue(0)
		tx, _ := p.TxQueue(0)
		if cached {
			ethdev.BindLcore(rx, 0)
			ethdev.BindLcore(tx, 0)
		}
		frame := udpFrame(macDev, 5, 64)
		pkts := make([]*mbuf.Mbuf, 32)
		allocs := testing.AllocsPerRun(200, func() {
			for range 32 {
				b.dev.Receive(frame)
			}
			n := rx.RxBurst(pkts)
			if tx.TxBurst(pkts[:n]) != 32 {
				panic("burst lost frames")
			}
		})
		require.Zero(t, allocs, "allocations per burst of 32 in and out (lcore cache %t)", cached)
		require.Equal(t, int64(201*32), b.sentN.Load())
	}
}

func TestProbeRefusesWhatItCannotDrive(t *testing.T) {
	r := newRig(t)
	_, addr := r.board(deviceID(0x1234))
	_, err := ethdev.Create(r.proc, "net_ixgbe0,pci="+addr)
	require.ErrorContains(t, err, "PCI device 8086:1234 is not one net_ixgbe drives")
	require.ErrorContains(t, err, "10fb")
	_, err = ethdev.Create(r.proc, "net_ixgbe0")
	require.ErrorContains(t, err, "net_ixgbe0,pci=0000:03:00.0")
	_, err = ethdev.Create(r.proc, "net_ixgbe0,pci=0000:01:00.0,rss=1")
	require.ErrorContains(t, err, `unknown argument "rss"`)
	_, err = ethdev.Create(r.proc, "net_ixgbe0,pci=zz")
	require.ErrorContains(t, err, "PCI address")

	_, addr = r.board()
	p, err := ethdev.Create(r.proc, "net_ixgbe0,pci="+addr)
	require.NoError(t, err)
	defer p.Close()
	require.NoError(t, p.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}))
	require.ErrorContains(t, p.SetupRxQueue(0, 100, r.pool), "power of two")
	tiny, err := mbuf.CreatePool(r.proc.Mem, "tiny", mbuf.PoolConfig{N: 127, DataRoom: 1024 + 128})
	require.NoError(t, err)
	require.ErrorContains(t, p.SetupRxQueue(0, 64, tiny), "the device needs 2048")
	require.ErrorContains(t, p.Start(), "rx queue 0 is not set up")
}

func TestSharedLayout(t *testing.T) {
	require.Equal(t, uintptr(64), unsafe.Sizeof(txShared{}))
	require.Equal(t, uintptr(128), unsafe.Sizeof(rxShared{}))
	require.Equal(t, uintptr(64), unsafe.Offsetof(rxShared{}.HWDropped), "the primary's counters on their own line")
	require.Zero(t, unsafe.Offsetof(shared{}.Rx)%64, "queues start on a cache line")
	require.Equal(t, uintptr(64), unsafe.Offsetof(shared{}.Rx))
	require.Equal(t, uintptr(64+maxQueues*128+maxQueues*64+numHWStats*8), unsafe.Sizeof(shared{}))
	require.Equal(t, uintptr(16), unsafe.Sizeof(rxDesc{}))
	require.Equal(t, uintptr(16), unsafe.Sizeof(txDesc{}))
}

func TestHugepageMemoryGivesTheDeviceRealIOVAs(t *testing.T) {
	testenv.RequireRoot(t)
	r := newRig(t)
	if !r.proc.Mem.HugePages() {
		testenv.Missing(t, "free hugepages (the group fell back to memfd memory)")
	}
	b, addr := r.board()
	require.Nil(t, b.iova, "no translator: the driver takes IOVAs from hugemem and the mbufs")
	p := r.port(0, addr, 1, 64)
	m, err := r.pool.Alloc(nil)
	require.NoError(t, err)
	want, err := r.proc.Mem.IOVA(r.proc.Mem.Off(unsafe.Pointer(unsafe.SliceData(m.Buf()))))
	require.NoError(t, err)
	require.Equal(t, want, m.BufIOVA())
	m.Free(nil)
	rx, _ := p.RxQueue(0)
	f := udpFrame(macDev, 1, 300)
	require.True(t, b.dev.Receive(f))
	got := receiveAll(t, rx, 1)
	require.Equal(t, f, got[0].Data())
}

func TestMemfdMemoryWorksThroughATranslator(t *testing.T) {
	r := newRig(t, noHuge)
	b, addr := r.board()
	require.NotNil(t, b.iova)
	p := r.port(0, addr, 1, 64)
	rx, _ := p.RxQueue(0)
	tx, _ := p.TxQueue(0)
	f := udpFrame(macDev, 1, 300)
	require.True(t, b.dev.Receive(f))
	got := receiveAll(t, rx, 1)
	require.True(t, bytes.Equal(f, got[0].Data()))
	require.Equal(t, 1, tx.TxBurst(got))
	require.Equal(t, f, b.waitSent(t))
}

func TestOpenVFIOChecksTheDeviceInSysfsFirst(t *testing.T) {
	_, err := openVFIO(nil, eal.PCIAddr{Domain: 0xFFFF, Bus: 0xFF, Device: 31, Function: 7}, true)
	require.ErrorContains(t, err, "ffff:ff:1f.7")
	require.ErrorContains(t, err, "lspci -D")
}

// recordingRegs notes which registers the driver writes.
type recordingRegs struct {
	registers
	written map[uint32]int
}

func (r *recordingRegs) Write32(off, v uint32) {
	r.written[off]++
	r.registers.Write32(off, v)
}

func TestLinkSetupRestartsAutonegotiationOnlyOn82599(t *testing.T) {
	for _, c := range []struct {
		id       uint16
		restarts int
	}{{0x10FB, 1}, {0x1528, 0}, {0x15D1, 0}} {
		r := newRig(t)
		b, addr := r.board(deviceID(c.id))
		rec := &recordingRegs{registers: b.dev, written: map[uint32]int{}}
		b.regs = rec
		p := r.port(0, addr, 1, 64)
		require.Equal(t, c.restarts, rec.written[regAUTOC], "AUTOC writes for device %04x", c.id)
		require.Equal(t, ethdev.Link{Up: true, Mbps: 10000}, p.Link(), "device %04x", c.id)
	}
}
