package virtio_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Multi-process tests run a secondary as a real process: this test binary
// again, with a childSpec saying what to do.
type childSpec struct {
	Mem    hugemem.Options
	Port   string
	Queue  int
	Frames int
	Prime  bool // primeTapFlows first
}

func TestMain(m *testing.M) {
	var spec childSpec
	if testproc.IsChild(&spec) {
		os.Exit(runChild(spec))
	}
	slog.SetLogLoggerLevel(slog.LevelWarn)
	os.Exit(m.Run())
}

// runChild attaches as a secondary, claims queue pair spec.Queue, sends
// spec.Frames frames through it and checks each comes back once; it then
// reports link events until stdin closes.
func runChild(spec childSpec) int {
	fail := func(err error) int { fmt.Println("error:", err); return 2 }
	proc, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: spec.Mem, Lcores: []mp.Lcore{{ID: 1, CPUs: []int{1}}}})
	if err != nil {
		return fail(err)
	}
	defer proc.Close()
	events, err := proc.Subscribe()
	if err != nil {
		return fail(err)
	}
	port, err := ethdev.Attach(proc, spec.Port)
	if err != nil {
		return fail(err)
	}
	defer port.Close()
	back := 0
	if spec.Frames > 0 { // else it only listens for events
		if back, err = childEcho(port, spec); err != nil {
			return fail(err)
		}
	}
	fmt.Println("echoed", back)
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	for {
		select {
		case <-stop:
			return 0
		case ev := <-events:
			if id, l, ok := ethdev.ParseLinkEvent(ev); ok && id == port.ID {
				fmt.Printf("link up=%v\n", l.Up)
			}
		}
	}
}

// protectSegments takes a shared flock on each segment file of mem. A DPDK
// process starting with hugepages deletes every "*map_*" file in the
// hugetlbfs mounts that nobody holds such a lock on (EAL's clear_hugedir),
// which includes hugemem's files, and a secondary attaching afterwards
// finds them gone. hugemem does not take the lock itself (yet).
func protectSegments(t testing.TB, mem *hugemem.Memory) {
	for _, s := range mem.Segments() {
		if s.Path != "" {
			require.NoError(t, unix.Flock(s.FD, unix.LOCK_SH), "flock %s", s.Path)
		}
	}
}

// startChild starts a secondary; the test's cleanup ends it.
func startChild(t *testing.T, spec childSpec) *testproc.Child {
	return testproc.Start(t, testproc.Config{Name: "secondary", Spec: spec})
}

// TestPrimaryAndSecondaryEachPollAQueuePair runs a 2-queue-pair
// virtio_user port: the primary polls pair 0, a secondary process pair 1
// (kicking through eventfds it got from the primary). Every frame is
// counted once, on its own queue, in the primary's statistics; the
// secondary hears of the link going down when the back-end dies.
func TestPrimaryAndSecondaryEachPollAQueuePair(t *testing.T) {
	const n = 3000
	sock := sockPath(t)
	peer := startVhost(t, sock, 2, "")
	peer.run("set fwd io", "Set io packet forwarding mode")
	peer.run("start", "packets/burst=")
	g := group(t)
	proc := primary(t, g)
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, "virtio_user0,path="+sock+",queues=2", 2, pool)
	waitLink(t, port, true)
	protectSegments(t, proc.Mem)

	sec := startChild(t, childSpec{Mem: g, Port: port.Name(), Queue: 1, Frames: n})
	sec.Expect("polling")
	echo(t, port, pool, 1, n, func(i int) int { return 60 + i%1000 }, false)
	assert.Equal(t, fmt.Sprintf("echoed %d", n), sec.Expect("echoed"))

	st := port.Stats()
	for q := range 2 {
		assert.Equal(t, uint64(n), st.RxQueues[q].Packets, "frames received on queue %d", q)
		assert.Equal(t, uint64(n), st.TxQueues[q].Packets, "frames sent on queue %d", q)
	}
	rx, tx := peer.stop()
	assert.Equal(t, uint64(2*n), rx, "frames testpmd received")
	assert.Equal(t, uint64(2*n), tx, "frames testpmd sent")

	_, err := port.RxQueue(1)
	require.ErrorIs(t, err, ethdev.ErrQueueTaken, "the secondary holds queue 1")

	require.NoError(t, peer.cmd.Process.Kill())
	waitLink(t, port, false)
	assert.Equal(t, "link up=false", sec.Expect("link"))
}

// childEcho sends spec.Frames frames on queue pair spec.Queue and checks
// each comes back once.
func childEcho(port *ethdev.Port, spec childSpec) (int, error) {
	rx, err := port.RxQueue(spec.Queue)
	if err != nil {
		return 0, err
	}
	tx, err := port.TxQueue(spec.Queue)
	if err != nil {
		return 0, err
	}
	pool, err := port.RxPool(spec.Queue)
	if err != nil {
		return 0, err
	}
	src := port.MAC()
	if spec.Prime {
		if _, err := primeTapFlows(tx, pool, src, spec.Queue); err != nil {
			return 0, err
		}
	}
	fmt.Println("polling")
	got := make([]bool, spec.Frames)
	sent, back := 0, 0
	pkts := make([]*mbuf.Mbuf, 32)
	out := make([]*mbuf.Mbuf, 0, 32)
	for deadline := time.Now().Add(15 * time.Second); back < spec.Frames; {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("%d of %d frames came back", back, spec.Frames)
		}
		out = out[:0]
		for sent+len(out) < spec.Frames && len(out) < 32 && sent+len(out)-back < maxInFlight {
			m, err := pool.Alloc(nil)
			if err != nil {
				return 0, err
			}
			i := sent + len(out)
			b, _ := m.Append(60 + i%1000)
			fill(b, src, spec.Queue, i)
			out = append(out, m)
		}
		k := tx.TxBurst(out)
		mbuf.FreeBulk(nil, out[k:])
		sent += k
		n := rx.RxBurst(pkts)
		for _, m := range pkts[:n] {
			q, i, ok := frameID(packetBytes(m))
			if !ok || q != spec.Queue || i >= spec.Frames || got[i] {
				return 0, fmt.Errorf("unexpected frame on queue %d: q=%d i=%d ok=%v", spec.Queue, q, i, ok)
			}
			got[i] = true
			back++
			m.Free(nil)
		}
	}
	return back, nil
}
