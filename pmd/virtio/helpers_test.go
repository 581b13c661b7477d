package virtio_test

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"github.com/stretchr/testify/require"
)

var seq atomic.Int64

// group is a fresh memory group; hugepages when the test runs as root, so
// that the vhost-user back-end maps the same kind of memory as in use.
func group(t testing.TB) hugemem.Options {
	o := testmem.Options(t, "vio")
	o.NoHuge = os.Geteuid() != 0
	o.Limit, o.SegmentSize = 256<<20, 128<<20
	return o
}

func primary(t testing.TB, g hugemem.Options) *mp.Process {
	t.Helper()
	p := testport.Primary(t, g)
	protectSegments(t, p.Mem)
	return p
}

func newPool(t testing.TB, proc *mp.Process, name string) *mbuf.Pool {
	t.Helper()
	return testport.Pool(t, proc, name, mbuf.PoolConfig{N: 8191, CacheSize: 64})
}

// startPort creates, configures and starts a port with n queue pairs.
func startPort(t testing.TB, proc *mp.Process, device string, n int, pool *mbuf.Pool) *ethdev.Port {
	t.Helper()
	return testport.Start(t, proc, device, n, 256, pool)
}

func waitLink(t testing.TB, port *ethdev.Port, up bool) {
	t.Helper()
	testport.WaitLink(t, port, up)
}

// Test frames are IPv4/UDP, so that a multi-queue tap spreads flows, and
// carry a marker, their queue and their number after the UDP header.
var peerMAC = [6]byte{0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee}

var frameMarker = []byte("gpmdvio")

const payloadOff = 14 + 20 + 8

// minFrame is the smallest test frame: headers, marker, queue and number.
const minFrame = payloadOff + 7 + 6

// frame builds test frame i of queue q: to peerMAC from src, then q, i
// and a pattern.
func frame(t testing.TB, pool *mbuf.Pool, src []byte, q, i, size int) *mbuf.Mbuf {
	t.Helper()
	m, err := pool.Alloc(nil)
	require.NoError(t, err)
	if size > m.Tailroom() {
		// Larger than one mbuf: a chain.
		m.Free(nil)
		b := make([]byte, size)
		fill(b, src, q, i)
		return chainFrom(t, pool, b)
	}
	b, err := m.Append(size)
	require.NoError(t, err)
	fill(b, src, q, i)
	return m
}

func chainFrom(t testing.TB, pool *mbuf.Pool, b []byte) *mbuf.Mbuf {
	var head *mbuf.Mbuf
	for len(b) > 0 {
		m, err := pool.Alloc(nil)
		require.NoError(t, err)
		k := min(len(b), m.Tailroom())
		d, _ := m.Append(k)
		copy(d, b[:k])
		b = b[k:]
		if head == nil {
			head = m
		} else {
			require.NoError(t, head.Chain(m))
		}
	}
	return head
}

func fill(b, src []byte, q, i int) {
	copy(b[0:6], peerMAC[:])
	copy(b[6:12], src)
	binary.BigEndian.PutUint16(b[12:], 0x0800)
	ip := b[14:]
	ip[0], ip[1] = 0x45, 0
	binary.BigEndian.PutUint16(ip[2:], uint16(len(b)-14))
	binary.BigEndian.PutUint32(ip[4:], 0)
	ip[8], ip[9] = 64, 17 // TTL, UDP
	binary.BigEndian.PutUint16(ip[10:], 0)
	copy(ip[12:], []byte{10, 0, 0, 1, 10, 0, 0, 2})
	udp := b[34:]
	binary.BigEndian.PutUint16(udp[0:], uint16(10000+i%testFlows)) // many flows
	binary.BigEndian.PutUint16(udp[2:], uint16(20000+q))
	binary.BigEndian.PutUint16(udp[4:], uint16(len(b)-34))
	binary.BigEndian.PutUint16(udp[6:], 0)
	p := b[payloadOff:]
	copy(p, frameMarker)
	binary.BigEndian.PutUint16(p[7:], uint16(q))
	binary.BigEndian.PutUint32(p[9:], uint32(i))
	for j := payloadOff + 13; j < len(b); j++ {
		b[j] = byte(j + i)
	}
}

// testFlows is how many UDP flows fill spreads a queue's frames over.
const testFlows = 256

// primeTapFlows sends on tx one frame of each flow fill gives queue q,
// with a marker frameID does not accept, so the host's tap reflector
// ignores it, and returns how many it sent. A multi-queue tap hands a
// reply to the queue its flow was last sent from, but it records a flow
// only after passing the frame to the host's stack: a reflector quick
// enough to answer the first frame of a flow beats the record, and the
// reply goes to a queue chosen by hash (seen once in a CI run). Sent on
// the same queue before the test frames, the primers record every flow
// first.
func primeTapFlows(tx ethdev.TxQueue, pool *mbuf.Pool, src []byte, q int) (int, error) {
	frames := make([]*mbuf.Mbuf, testFlows)
	for i := range frames {
		m, err := pool.Alloc(nil)
		if err != nil {
			mbuf.FreeBulk(nil, frames[:i])
			return 0, err
		}
		b, _ := m.Append(minFrame)
		fill(b, src, q, i)
		b[payloadOff] ^= 0xff // not a test frame
		frames[i] = m
	}
	for deadline := time.Now().Add(5 * time.Second); len(frames) > 0; {
		if time.Now().After(deadline) {
			mbuf.FreeBulk(nil, frames)
			return testFlows - len(frames), fmt.Errorf("queue %d took %d of %d flow primers", q, testFlows-len(frames), testFlows)
		}
		frames = frames[tx.TxBurst(frames[:min(32, len(frames))]):]
	}
	return testFlows, nil
}

// frameID reads q and i back from a test frame.
func frameID(b []byte) (q, i int, ok bool) {
	if len(b) < minFrame || binary.BigEndian.Uint16(b[12:]) != 0x0800 || string(b[payloadOff:payloadOff+7]) != string(frameMarker) {
		return 0, 0, false
	}
	p := b[payloadOff:]
	return int(binary.BigEndian.Uint16(p[7:])), int(binary.BigEndian.Uint32(p[9:])), true
}

// checkEcho checks that b is test frame (q, i) of size bytes as it was
// sent from src, with the addresses swapped if swapped.
func checkEcho(t testing.TB, b, src []byte, q, i, size int, swapped bool) {
	t.Helper()
	want := make([]byte, size)
	fill(want, src, q, i)
	if swapped {
		copy(want[0:6], src)
		copy(want[6:12], peerMAC[:])
	}
	require.Equal(t, want, b, "frame %d of queue %d", i, q)
}

func packetBytes(m *mbuf.Mbuf) []byte {
	var b []byte
	for s := m; s != nil; s = s.Next() {
		b = append(b, s.Data()...)
	}
	return b
}
