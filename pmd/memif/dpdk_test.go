package memif_test

import (
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/internal/dpdktest"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

// startTestpmd runs dpdk-testpmd with one net_memif port for t. Its
// forwarding lcore runs on CPU 0 and its main lcore on CPU 1. Memory comes
// from --no-huge: memif's copy mode needs no DMA-able memory.
func startTestpmd(t *testing.T, vdev string, extra ...string) *dpdktest.Peer {
	return dpdktest.StartPeer(t, dpdktest.Config{
		Lcores: "0@1,1@0",
		NoHuge: true,
		VDevs:  []string{vdev},
		EAL:    []string{"--log-level=pmd.net.memif:info"},
		Args:   append([]string{"--total-num-mbufs=8192", "--nb-cores=1", "--no-flush-rx"}, extra...),
	})
}

// The interoperability tests run one testpmd against one Go port and go
// through three forwarding modes: testpmd receives our frames (rxonly),
// echoes them with MACs swapped (macswap), and generates frames for us
// (txonly). Counts must match exactly.
func TestInteropWithDPDKTestpmdAsServer(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "dpdk.sock") // an abstract name, both sides' default
	pmd := startTestpmd(t, "net_memif0,role=server,id=3,socket="+sock)
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, "net_memif0,role=client,id=3,socket="+sock, 1, pool)
	waitLink(t, port, true)
	interop(t, pmd, port, pool)
	pmd.Quit()
	waitLink(t, port, false)
}

func TestInteropWithDPDKTestpmdAsClient(t *testing.T) {
	dpdktest.Require(t)
	sock := filepath.Join(t.TempDir(), "gopmd.sock")
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, "net_memif0,role=server,socket-abstract=no,socket="+sock, 1, pool)
	pmd := startTestpmd(t, "net_memif0,role=client,socket-abstract=no,socket="+sock)
	waitLink(t, port, true)
	interop(t, pmd, port, pool)
	pmd.Quit()
	waitLink(t, port, false)
}

func interop(t *testing.T, pmd *dpdktest.Peer, port *ethdev.Port, pool *mbuf.Pool) {
	tx, err := port.TxQueue(0)
	require.NoError(t, err)
	rx, err := port.RxQueue(0)
	require.NoError(t, err)
	const n = 5000
	size := func(i int) int { return 60 + i%1400 }
	frames := func() []*mbuf.Mbuf {
		var pkts []*mbuf.Mbuf
		for i := range n {
			pkts = append(pkts, frame(t, pool, 0, i, size(i)))
		}
		return pkts
	}

	t.Run("testpmd receives our frames", func(t *testing.T) {
		pmd.SetForwardMode("rxonly")
		pmd.StartForwarding()
		pkts := frames()
		for len(pkts) > 0 {
			k := tx.TxBurst(pkts)
			pkts = pkts[k:]
			if k == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		time.Sleep(200 * time.Millisecond) // testpmd drains the ring
		rxd, txd := pmd.StopForwarding()
		require.Equal(t, uint64(n), rxd, "frames testpmd received")
		require.Zero(t, txd)
	})

	t.Run("testpmd echoes our frames with MACs swapped", func(t *testing.T) {
		pmd.SetForwardMode("macswap")
		pmd.StartForwarding()
		got := transfer(t, tx, rx, frames())
		for i, m := range got {
			want := make([]byte, size(i))
			fill(want, 0, i)
			var dst, src [6]byte
			copy(dst[:], want[0:6])
			copy(src[:], want[6:12])
			copy(want[0:6], src[:])
			copy(want[6:12], dst[:])
			require.Equal(t, want, packetBytes(m), "echoed frame %d", i)
		}
		freeAll(t, got)
		rxd, txd := pmd.StopForwarding()
		require.Equal(t, uint64(n), rxd, "frames testpmd received")
		require.Equal(t, uint64(n), txd, "frames testpmd sent back")
	})

	t.Run("we receive what testpmd generates", func(t *testing.T) {
		pmd.SetForwardMode("txonly")
		var received, bad uint64
		stop := make(chan struct{})
		drained := make(chan struct{})
		stopOnce := sync.OnceFunc(func() { close(stop) })
		t.Cleanup(func() { stopOnce(); <-drained })
		go func() {
			defer close(drained)
			buf := make([]*mbuf.Mbuf, 64)
			quiet := time.Time{}
			for {
				k := rx.RxBurst(buf)
				for _, m := range buf[:k] {
					d := m.Data()
					if m.PktLen() != 64 || len(d) != 64 || d[12] != 0x08 || d[13] != 0x00 {
						bad++
					}
				}
				received += uint64(k)
				mbuf.FreeBulk(nil, buf[:k])
				select {
				case <-stop:
					if k > 0 || quiet.IsZero() {
						quiet = time.Now()
					} else if time.Since(quiet) > 200*time.Millisecond {
						return
					}
				default:
				}
				if k == 0 {
					time.Sleep(20 * time.Microsecond)
				}
			}
		}()
		pmd.StartForwarding()
		time.Sleep(300 * time.Millisecond)
		rxd, txd := pmd.StopForwarding()
		stopOnce()
		<-drained
		t.Logf("testpmd sent %d frames, we received %d", txd, received)
		require.NotZero(t, txd)
		require.Zero(t, rxd)
		require.Equal(t, txd, received, "frames received = frames testpmd sent")
		require.Zero(t, bad, "frames that are not testpmd's 64-byte IPv4 frames")
	})
	s := port.Stats()
	require.Zero(t, s.RxErrors+s.TxErrors, "errors counted on our port")
	require.Equal(t, uint64(2*n), s.TxPackets)

	t.Run("the link follows testpmd's port and comes back", func(t *testing.T) {
		pmd.Run("port stop 0", "Done")
		waitLink(t, port, false)
		pmd.Run("port start 0", "Done")
		waitLink(t, port, true)
		pmd.SetForwardMode("macswap")
		pmd.StartForwarding()
		var pkts []*mbuf.Mbuf
		for i := range 100 {
			pkts = append(pkts, frame(t, pool, 0, i, 64))
		}
		got := transfer(t, tx, rx, pkts)
		require.Len(t, got, 100)
		freeAll(t, got)
		rxd, txd := pmd.StopForwarding()
		require.Equal(t, uint64(100), rxd)
		require.Equal(t, uint64(100), txd)
	})
}

func TestInteropTwoQueuePairsWithDPDKTestpmd(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "dpdk.sock")
	pmd := startTestpmd(t, "net_memif0,role=server,socket="+sock, "--rxq=2", "--txq=2")
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, "net_memif0,role=client,socket="+sock, 2, pool)
	waitLink(t, port, true)
	pmd.SetForwardMode("macswap")
	pmd.StartForwarding()
	const n = 3000
	for q := range 2 {
		tx, _ := port.TxQueue(q)
		rx, _ := port.RxQueue(q)
		var pkts []*mbuf.Mbuf
		for i := range n {
			pkts = append(pkts, frame(t, pool, q, i, 64+i%1000))
		}
		got := transfer(t, tx, rx, pkts)
		for i, m := range got {
			want := make([]byte, 64+i%1000)
			fill(want, q, i)
			want = append(append(append([]byte{}, want[6:12]...), want[0:6]...), want[12:]...)
			require.Equal(t, want, packetBytes(m), "queue %d echoed frame %d", q, i)
		}
		freeAll(t, got)
	}
	rxd, txd := pmd.StopForwarding()
	require.Equal(t, uint64(2*n), rxd)
	require.Equal(t, uint64(2*n), txd)
	s := port.Stats()
	require.Equal(t, uint64(n), s.RxQueues[0].Packets)
	require.Equal(t, uint64(n), s.RxQueues[1].Packets)
	pmd.Quit()
}
