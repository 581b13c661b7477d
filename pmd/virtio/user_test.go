package virtio_test

import (
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/pmd/virtio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// maxInFlight bounds the frames echo has sent and not yet received on one
// queue pair: well under an rx ring, so that the back-end never finds it
// full (with mergeable buffers a frame may take three).
const maxInFlight = 64

// echo sends n frames per queue pair through port, lets the back-end send
// them back, and checks each arrives once, intact, on the queue it left
// from. It returns when all are back.
func echo(t *testing.T, port *ethdev.Port, pool *mbuf.Pool, pairs, n int, size func(i int) int, swapped bool) {
	t.Helper()
	src := port.MAC()
	type dir struct {
		tx      ethdev.TxQueue
		rx      ethdev.RxQueue
		pending []*mbuf.Mbuf
		got     []bool
		count   int
		sent    int
	}
	dirs := make([]*dir, pairs)
	for q := range pairs {
		d := &dir{got: make([]bool, n)}
		var err error
		d.tx, err = port.TxQueue(q)
		require.NoError(t, err)
		d.rx, err = port.RxQueue(q)
		require.NoError(t, err)
		for i := range n {
			d.pending = append(d.pending, frame(t, pool, src, q, i, size(i)))
		}
		dirs[q] = d
	}
	pkts := make([]*mbuf.Mbuf, 32)
	deadline := time.Now().Add(10 * time.Second)
	for {
		done := true
		for q, d := range dirs {
			// Never more in flight than the rx ring holds: the back-end
			// drops what it cannot put in our rx ring, as a NIC would.
			if room := maxInFlight - (d.sent - d.count); len(d.pending) > 0 && room > 0 {
				k := d.tx.TxBurst(d.pending[:min(32, len(d.pending), room)])
				d.pending = d.pending[k:]
				d.sent += k
			}
			got := d.rx.RxBurst(pkts)
			for _, m := range pkts[:got] {
				b := packetBytes(m)
				fq, i, ok := frameID(b)
				require.True(t, ok, "queue %d received a frame that is not ours: % x", q, b[:min(len(b), 32)])
				require.Equal(t, q, fq, "frame %d came back on queue %d, sent on %d", i, q, fq)
				require.False(t, d.got[i], "frame %d of queue %d came back twice", i, q)
				checkEcho(t, b, src, q, i, size(i), swapped)
				d.got[i] = true
				d.count++
				m.Free(nil)
			}
			if d.count < n {
				done = false
			}
		}
		if done {
			return
		}
		if time.Now().After(deadline) {
			for q, d := range dirs {
				t.Errorf("queue %d: %d of %d frames came back, %d not yet sent", q, d.count, n, len(d.pending))
			}
			t.FailNow()
		}
	}
}

// TestEchoThroughDPDKVhost runs our virtio_user port against DPDK's
// net_vhost in testpmd, which sends every frame back (io) or back with its
// addresses swapped (macswap), for split and packed rings, mergeable
// buffers on and off, one and two queue pairs. Every frame must come back
// once and intact, and both sides must count exactly. One testpmd per
// queue count serves the runs one after the other, each over a new
// connection.
func TestEchoThroughDPDKVhost(t *testing.T) {
	const n = 3000
	for _, pairs := range []int{1, 2} {
		t.Run(fmt.Sprintf("%dq", pairs), func(t *testing.T) {
			sock := sockPath(t)
			peer := startVhost(t, sock, pairs, "")
			for _, c := range []struct {
				mode   string
				mrg    int
				packed int
			}{
				{"io", 1, 0},
				{"macswap", 0, 0},
				{"macswap", 1, 1},
				{"io", 0, 1},
			} {
				ring := map[int]string{0: "split", 1: "packed"}[c.packed]
				t.Run(fmt.Sprintf("%s/%s/mrg%d", c.mode, ring, c.mrg), func(t *testing.T) {
					peer.run("set fwd "+c.mode, "Set "+c.mode+" packet forwarding mode")
					peer.run("start", "packets/burst=")
					proc := primary(t, group(t))
					pool := newPool(t, proc, "pkts")
					port := startPort(t, proc, fmt.Sprintf("virtio_user0,path=%s,queues=%d,mrg_rxbuf=%d,packed_vq=%d",
						sock, pairs, c.mrg, c.packed), pairs, pool)
					waitLink(t, port, true)
					neg, ok := virtio.Negotiated(port)
					require.True(t, ok)
					assert.Equal(t, c.mrg == 1, neg.Has(virtio.FeatMrgRxbuf), "MRG_RXBUF negotiated: %v", neg)
					assert.Equal(t, c.packed == 1, neg.Has(virtio.FeatRingPacked), "RING_PACKED negotiated: %v", neg)
					assert.Equal(t, pairs > 1, neg.Has(virtio.FeatMQ), "MQ negotiated: %v", neg)
					size := func(i int) int { return 60 + (i*37)%1455 } // up to 1514
					if c.mrg == 1 {
						size = func(i int) int { // some frames need several rx buffers
							if i%10 == 0 {
								return 2000 + i%3000
							}
							return 60 + (i*37)%1455
						}
					}
					echo(t, port, pool, pairs, n, size, c.mode == "macswap")

					rx, tx := peer.stop()
					total := uint64(pairs * n)
					assert.Equal(t, total, rx, "frames testpmd received")
					assert.Equal(t, total, tx, "frames testpmd sent")
					st := port.Stats()
					assert.Equal(t, total, st.TxPackets, "frames we sent")
					assert.Equal(t, total, st.RxPackets, "frames we received")
					assert.Zero(t, st.RxErrors+st.TxErrors, "errors")
					require.NoError(t, port.Close())
				})
			}
		})
	}
}

// TestReconnectsWhenTheBackendRestarts kills the back-end (SIGKILL, as a
// crash), starts a new one on the same socket, and expects the link to go
// down and up again, with events, and frames to flow as before.
func TestReconnectsWhenTheBackendRestarts(t *testing.T) {
	for _, packed := range []int{0, 1} {
		t.Run(map[int]string{0: "split", 1: "packed"}[packed], func(t *testing.T) {
			sock := sockPath(t)
			peer := startVhost(t, sock, 1, "")
			peer.run("set fwd io", "Set io packet forwarding mode")
			peer.run("start", "packets/burst=")
			proc := primary(t, group(t))
			events, err := proc.Subscribe()
			require.NoError(t, err)
			pool := newPool(t, proc, "pkts")
			port := startPort(t, proc, fmt.Sprintf("virtio_user0,path=%s,packed_vq=%d", sock, packed), 1, pool)
			waitLink(t, port, true)
			size := func(i int) int { return 60 + i%1400 }
			echo(t, port, pool, 1, 1000, size, false)

			require.NoError(t, peer.cmd.Process.Kill())
			waitLink(t, port, false)
			expectLinkEvent(t, events, port, false)
			os.Remove(sock) // a killed testpmd leaves its socket file

			// Frames sent meanwhile wait in the tx ring.
			tx, err := port.TxQueue(0)
			require.NoError(t, err)
			var early []*mbuf.Mbuf
			for i := range 10 {
				early = append(early, frame(t, pool, port.MAC(), 0, 5000+i, 100))
			}
			require.Equal(t, 10, tx.TxBurst(early))

			peer = startVhost(t, sock, 1, "")
			peer.run("set fwd io", "Set io packet forwarding mode")
			peer.run("start", "packets/burst=")
			waitLink(t, port, true)
			expectLinkEvent(t, events, port, true)
			// The frames sent while no back-end was there come back first.
			rx, err := port.RxQueue(0)
			require.NoError(t, err)
			pkts := make([]*mbuf.Mbuf, 32)
			got := 0
			for deadline := time.Now().Add(5 * time.Second); got < 10 && time.Now().Before(deadline); {
				n := rx.RxBurst(pkts)
				for _, m := range pkts[:n] {
					checkEcho(t, packetBytes(m), port.MAC(), 0, 5000+got, 100, false)
					got++
					m.Free(nil)
				}
			}
			require.Equal(t, 10, got, "frames queued while the back-end was away")
			echo(t, port, pool, 1, 1000, size, false)
			rxd, txd := peer.stop()
			assert.Equal(t, uint64(1010), rxd)
			assert.Equal(t, uint64(1010), txd)
		})
	}
}

func expectLinkEvent(t *testing.T, events <-chan mp.Event, port *ethdev.Port, up bool) {
	t.Helper()
	deadline := time.After(5 * time.Second)
	for {
		select {
		case ev := <-events:
			if id, l, ok := ethdev.ParseLinkEvent(ev); ok && id == port.ID && l.Up == up {
				return
			}
		case <-deadline:
			t.Fatalf("no link event up=%v for port %d within 5 s", up, port.ID)
		}
	}
}

// TestServerModeTakesTheBackendsConnection listens (server=1) and lets
// DPDK's vhost port connect as a client.
func TestServerModeTakesTheBackendsConnection(t *testing.T) {
	sock := sockPath(t)
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, fmt.Sprintf("virtio_user0,path=%s,server=1,queues=2", sock), 2, pool)
	assert.False(t, port.Link().Up, "no back-end yet")
	peer := startVhost(t, sock, 2, ",client=1")
	peer.run("set fwd macswap", "Set macswap packet forwarding mode")
	peer.run("start", "packets/burst=")
	waitLink(t, port, true)
	echo(t, port, pool, 2, 2000, func(i int) int { return 60 + i%1000 }, true)
	rx, tx := peer.stop()
	assert.Equal(t, uint64(4000), rx)
	assert.Equal(t, uint64(4000), tx)
}

func TestBadDeviceArgumentsAreClearErrors(t *testing.T) {
	proc := primary(t, group(t))
	for _, c := range []struct{ dev, want string }{
		{"virtio_user0", "path= is required"},
		{"virtio_user0,path=/x,queues=0", "queues=\"0\": want a number from 1 to 16"},
		{"virtio_user0,path=/x,queue_size=100", "power of two"},
		{"virtio_user0,path=/x,mrg_rxbuf=maybe", "want 0 or 1"},
		{"virtio_user0,path=/x,mac=01:00:00:00:00:01", "unicast"},
		{"virtio_user0,path=/x,in_order=1", "unknown argument \"in_order\""},
		{"virtio_user0,path=/nonexistent/sock", "connect /nonexistent/sock"},
	} {
		_, err := ethdev.Create(proc, c.dev)
		require.Error(t, err, c.dev)
		assert.Contains(t, err.Error(), c.want, c.dev)
	}
}

// TestBurstsAllocateNothing measures the fast path against DPDK's back-end:
// tx, rx and the kicks between them allocate nothing.
func TestBurstsAllocateNothing(t *testing.T) {
	for _, packed := range []int{0, 1} {
		t.Run(map[int]string{0: "split", 1: "packed"}[packed], func(t *testing.T) {
			sock := sockPath(t)
			peer := startVhost(t, sock, 1, "")
			peer.run("set fwd macswap", "Set macswap packet forwarding mode")
			peer.run("start", "packets/burst=")
			proc := primary(t, group(t))
			pool := newPool(t, proc, "pkts")
			port := startPort(t, proc, fmt.Sprintf("virtio_user0,path=%s,packed_vq=%d", sock, packed), 1, pool)
			waitLink(t, port, true)
			echo(t, port, pool, 1, 100, func(int) int { return 64 }, true) // the back-end is ready
			before := port.Stats().RxPackets
			tx, err := port.TxQueue(0)
			require.NoError(t, err)
			rx, err := port.RxQueue(0)
			require.NoError(t, err)
			pkts := make([]*mbuf.Mbuf, 32)
			allocs := testing.AllocsPerRun(2000, func() {
				require.NoError(t, pool.AllocBulk(nil, pkts[:8]))
				for _, m := range pkts[:8] {
					m.Append(64)
				}
				n := tx.TxBurst(pkts[:8])
				mbuf.FreeBulk(nil, pkts[n:8])
				n = rx.RxBurst(pkts)
				mbuf.FreeBulk(nil, pkts[:n])
			})
			assert.Zero(t, allocs, "allocations per tx+rx burst")
			// A back-end starved of CPU may echo only after the loop ended.
			for deadline := time.Now().Add(5 * time.Second); port.Stats().RxPackets == before && time.Now().Before(deadline); {
				n := rx.RxBurst(pkts)
				mbuf.FreeBulk(nil, pkts[:n])
			}
			assert.Greater(t, port.Stats().RxPackets, before, "the frames sent during the measurement came back")
		})
	}
}

// TestBuffersInASegmentAddedLaterReachTheBackend creates a pool after the
// port started, in a new segment of the group, and sends frames from it:
// the back-end must have been given the new segment.
func TestBuffersInASegmentAddedLaterReachTheBackend(t *testing.T) {
	sock := sockPath(t)
	peer := startVhost(t, sock, 1, "")
	peer.run("set fwd io", "Set io packet forwarding mode")
	peer.run("start", "packets/burst=")
	g := group(t)
	g.SegmentSize, g.Limit = 32<<20, 128<<20
	proc := primary(t, g)
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, "virtio_user0,path="+sock, 1, pool)
	waitLink(t, port, true)
	before := len(proc.Mem.Segments())
	later := newPool(t, proc, "later")
	require.Greater(t, len(proc.Mem.Segments()), before, "the second pool needed a new segment")
	protectSegments(t, proc.Mem)
	time.Sleep(300 * time.Millisecond) // the monitor looks every 100 ms
	echo(t, port, later, 1, 1000, func(i int) int { return 60 + i%1000 }, false)
}

// TestStopAndStartAgain stops the port (GET_VRING_BASE stops the
// back-end's rings, in-flight mbufs are freed) and starts it again on
// fresh rings.
func TestStopAndStartAgain(t *testing.T) {
	sock := sockPath(t)
	peer := startVhost(t, sock, 2, "")
	peer.run("set fwd macswap", "Set macswap packet forwarding mode")
	peer.run("start", "packets/burst=")
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, "virtio_user0,path="+sock+",queues=2,packed_vq=1", 2, pool)
	waitLink(t, port, true)
	size := func(i int) int { return 60 + i%500 }
	echo(t, port, pool, 2, 500, size, true)
	inUse := pool.Mempool().InUse()
	require.NoError(t, port.Stop())
	assert.Less(t, pool.Mempool().InUse(), inUse, "stopping freed the rx buffers")
	require.NoError(t, port.Start())
	port.ResetStats()
	echo(t, port, pool, 2, 500, size, true)
	assert.Equal(t, uint64(1000), port.Stats().RxPackets)
}
