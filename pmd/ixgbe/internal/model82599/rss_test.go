package model82599

import (
	"encoding/binary"
	"net/netip"
	"testing"

	"github.com/stretchr/testify/require"
)

// The RSS verification suite of 7.1.2.8.3 (Microsoft's "Verifying the RSS
// Hash Calculation"): one key, example addresses and ports, and the hash
// over addresses only and over addresses and ports.
var verificationKey = [rssKeyLen]byte{
	0x6d, 0x5a, 0x56, 0xda, 0x25, 0x5b, 0x0e, 0xc2,
	0x41, 0x67, 0x25, 0x3d, 0x43, 0xa3, 0x8f, 0xb0,
	0xd0, 0xca, 0x2b, 0xcb, 0xae, 0x7b, 0x30, 0xb4,
	0x77, 0xcb, 0x2d, 0xa3, 0x80, 0x30, 0xf2, 0x0c,
	0x6a, 0x42, 0xb7, 0x3b, 0xbe, 0xac, 0x01, 0xfa,
}

type rssVector struct {
	dst, src         string
	dport, sport     uint16
	addrOnly, withL4 uint32
}

var rssIPv4Vectors = []rssVector{
	{"161.142.100.80", "66.9.149.187", 1766, 2794, 0x323e8fc2, 0x51ccc178},
	{"65.69.140.83", "199.92.111.2", 4739, 14230, 0xd718262a, 0xc626b0ea},
	{"12.22.207.184", "24.19.198.95", 38024, 12898, 0xd2d0a5de, 0x5c2b394a},
	{"209.142.163.6", "38.27.205.30", 2217, 48228, 0x82989176, 0xafc7327f},
	{"202.188.127.2", "153.39.163.191", 1303, 44251, 0x5d1809c5, 0x10e828a2},
}

var rssIPv6Vectors = []rssVector{
	{"3ffe:2501:200:3::1", "3ffe:2501:200:1fff::7", 1766, 2794, 0x2cc18cd5, 0x40207d3d},
	{"ff02::1", "3ffe:501:8::260:97ff:fe40:efab", 4739, 14230, 0x0f0c461c, 0xdde51bbf},
	{"fe80::200:f8ff:fe21:67cf", "3ffe:1900:4545:3:200:f8ff:fe21:67cf", 38024, 44251, 0x4b61e985, 0x02d1feef},
}

// hashInput is the datasheet's concatenation: source address, destination
// address, then source and destination ports when withPorts.
func hashInput(v rssVector, withPorts bool) []byte {
	src, dst := netip.MustParseAddr(v.src), netip.MustParseAddr(v.dst)
	in := append(src.AsSlice(), dst.AsSlice()...)
	if withPorts {
		in = binary.BigEndian.AppendUint16(in, v.sport)
		in = binary.BigEndian.AppendUint16(in, v.dport)
	}
	return in
}

func TestToeplitzMatchesTheRSSVerificationSuite(t *testing.T) {
	var table rssTable
	table.build(&verificationKey)
	for _, v := range append(append([]rssVector{}, rssIPv4Vectors...), rssIPv6Vectors...) {
		for _, ports := range []bool{false, true} {
			want := v.addrOnly
			if ports {
				want = v.withL4
			}
			in := hashInput(v, ports)
			require.Equalf(t, want, toeplitz(&verificationKey, in), "bitwise hash of %s -> %s ports=%t", v.src, v.dst, ports)
			require.Equalf(t, want, table.hash(in), "table hash of %s -> %s ports=%t", v.src, v.dst, ports)
		}
	}
}

// programRSS writes the key, a redirection table sending RSS index i%16 to
// entry i, and MRQC with RSS over IPv4/IPv6, TCP and UDP.
func (h *harness) programRSS(key [rssKeyLen]byte, queues int) {
	for i := range 10 {
		h.w(oRSSRK0+4*uint32(i), binary.LittleEndian.Uint32(key[4*i:]))
	}
	for i := range 32 {
		var v uint32
		for k := range 4 {
			v |= uint32((4*i+k)%queues) << (8 * k)
		}
		h.w(oRETA0+4*uint32(i), v)
	}
	h.w(oRXCSUM, 1<<13) // PCSD: the write-back carries the RSS hash
	h.w(oMRQC, 1|1<<16|1<<17|1<<20|1<<21|1<<22|1<<23)
}

func TestRSSVerificationSuiteThroughTheReceivePath(t *testing.T) {
	h := newHarness(t, pedantic)
	h.clock.advance(settleTime)
	h.resetAndInit()
	h.programRSS(verificationKey, 16)
	rings := make([]*rxRing, 16)
	for q := range rings {
		rings[q] = h.setupRx(q, rxOpts{n: 8})
	}
	h.enableRx()

	check := func(frame []byte, wantHash uint32, wantType uint32) {
		t.Helper()
		require.True(t, h.dev.Receive(frame))
		wantQ := int(wantHash&0x7F) % 16
		d, ok := rings[wantQ].take()
		require.Truef(t, ok, "frame with hash %#x expected on queue %d", wantHash, wantQ)
		require.Equal(t, wantHash, d.rss, "RSS hash in the write-back")
		require.Equal(t, wantType, d.lo&0xF, "RSS type in the write-back")
	}
	for _, v := range rssIPv4Vectors {
		src, dst := netip.MustParseAddr(v.src).As4(), netip.MustParseAddr(v.dst).As4()
		check(ether(macDev, macPeer, 0x0800, ipv4(src, dst, 6, v.sport, v.dport, nil)), v.withL4, 1)
		check(ether(macDev, macPeer, 0x0800, ipv4(src, dst, 1, 0, 0, make([]byte, 8))), v.addrOnly, 2)
	}
	for _, v := range rssIPv6Vectors {
		src, dst := netip.MustParseAddr(v.src).As16(), netip.MustParseAddr(v.dst).As16()
		check(ether(macDev, macPeer, 0x86DD, ipv6(src, dst, 6, v.sport, v.dport, nil)), v.withL4, 3)
		check(ether(macDev, macPeer, 0x86DD, ipv6(src, dst, 59, 0, 0, make([]byte, 8))), v.addrOnly, 5)
	}
	h.requireNoViolations()
}

func TestRSSSpreadsFlowsOverQueuesAndKeepsEachFlowOnOne(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	h.programRSS(verificationKey, 4)
	rings := make([]*rxRing, 4)
	for q := range rings {
		rings[q] = h.setupRx(q, rxOpts{n: 256})
	}
	h.enableRx()
	perQueue := make([]int, 4)
	flowQueue := map[uint16]int{}
	for round := range 2 {
		for port := uint16(1000); port < 1100; port++ {
			f := ether(macDev, macPeer, 0x0800, ipv4([4]byte{10, 1, 0, 1}, [4]byte{10, 2, 0, 2}, 17, port, 53, make([]byte, 18)))
			require.True(t, h.dev.Receive(f))
			got := -1
			for q, r := range rings {
				if d, ok := r.take(); ok {
					require.Equal(t, uint32(7), d.lo&0xF, "RSS type UDP/IPv4")
					got = q
				}
			}
			require.NotEqual(t, -1, got, "port %d was delivered nowhere", port)
			if round == 0 {
				flowQueue[port] = got
				perQueue[got]++
			} else {
				require.Equal(t, flowQueue[port], got, "flow with source port %d moved queues", port)
			}
		}
	}
	for q, n := range perQueue {
		require.Greaterf(t, n, 10, "queue %d got %d of 100 flows: %v", q, n, perQueue)
	}
	h.requireNoViolations()
}

func TestRSSSendsFragmentsAndNonIPToQueueZeroWithTypeNone(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	h.w(oMRQC, 1|1<<16) // RSS, TCP/IPv4 only
	rings := []*rxRing{h.setupRx(0, rxOpts{}), h.setupRx(1, rxOpts{})}
	h.enableRx()
	arp := ether(macDev, macPeer, 0x0806, make([]byte, 28))
	udp := udpFrame(macDev, 20) // UDP hashing is not enabled
	for _, f := range [][]byte{arp, udp} {
		require.True(t, h.dev.Receive(f))
		d, ok := rings[0].take()
		require.True(t, ok)
		require.Zero(t, d.lo&0xF, "RSS type")
	}
	h.requireNoViolations()
}
