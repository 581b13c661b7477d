package virtio_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Multi-process tests run a secondary as a real process: this test binary
// again, with GOPMD_VIRTIO_CHILD saying what to do.
type childSpec struct {
	Mem    hugemem.Options
	Port   string
	Queue  int
	Frames int
}

func TestMain(m *testing.M) {
	if js := os.Getenv("GOPMD_VIRTIO_CHILD"); js != "" {
		var spec childSpec
		if err := json.Unmarshal([]byte(js), &spec); err != nil {
			fmt.Println("error:", err)
			os.Exit(2)
		}
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

func startChild(t *testing.T, spec childSpec) <-chan string {
	js, _ := json.Marshal(spec)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "GOPMD_VIRTIO_CHILD="+string(js))
	cmd.Stderr = os.Stderr
	in, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	require.NoError(t, cmd.Start())
	lines := make(chan string, 100)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	t.Cleanup(func() { in.Close(); cmd.Process.Kill(); cmd.Wait() })
	return lines
}

func expectLine(t *testing.T, lines <-chan string, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-lines:
			require.True(t, ok, "the secondary exited while we waited for %q", prefix)
			require.False(t, strings.HasPrefix(l, "error:"), "the secondary failed: %s", l)
			if strings.HasPrefix(l, prefix) {
				return l
			}
		case <-deadline:
			t.Fatalf("the secondary printed no %q within %v", prefix, timeout)
		}
	}
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

	lines := startChild(t, childSpec{Mem: g, Port: port.Name(), Queue: 1, Frames: n})
	expectLine(t, lines, "polling", 10*time.Second)
	echo(t, port, pool, 1, n, func(i int) int { return 60 + i%1000 }, false)
	assert.Equal(t, fmt.Sprintf("echoed %d", n), expectLine(t, lines, "echoed", 15*time.Second))

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
	assert.Equal(t, "link up=false", expectLine(t, lines, "link", 5*time.Second))
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
	fmt.Println("polling")
	src := port.MAC()
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
