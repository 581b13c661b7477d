package memif_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

// testpmd drives DPDK's dpdk-testpmd in interactive mode through a pipe.
type testpmd struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	mu    sync.Mutex
	out   []string // every output line so far
	lines chan string
	done  chan struct{}
}

// startTestpmd runs testpmd with one net_memif port. Its forwarding lcore
// runs on CPU 0 and its main lcore on CPU 1. Memory comes from --no-huge:
// memif's copy mode needs no DMA-able memory.
func startTestpmd(t *testing.T, vdev string, extra ...string) *testpmd {
	bin := testenv.RequireCommand(t, "dpdk-testpmd")
	stdbuf := testenv.RequireCommand(t, "stdbuf") // testpmd's stdout to a pipe is block-buffered
	testenv.RequireRoot(t)
	prefix := fmt.Sprintf("gmif%d_%d", os.Getpid(), seq.Add(1))
	args := []string{"--no-pci", "--no-huge", "-m", "512", "--file-prefix=" + prefix, "--lcores=0@1,1@0",
		"--vdev", vdev, "--log-level=pmd.net.memif:info",
		"--", "-i", "--total-num-mbufs=8192", "--nb-cores=1", "--no-flush-rx"}
	args = append(args, extra...)
	t.Logf("%s %s", bin, strings.Join(args, " "))
	cmd := exec.Command(stdbuf, append([]string{"-oL", bin}, args...)...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	p := &testpmd{t: t, cmd: cmd, in: in, lines: make(chan string, 4096), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			p.out = append(p.out, l)
			p.mu.Unlock()
			select {
			case p.lines <- l:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		in.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
		}
		cmd.Wait()
		os.RemoveAll("/var/run/dpdk/" + prefix)
		if t.Failed() {
			p.mu.Lock()
			t.Logf("testpmd output:\n%s", strings.Join(p.out, "\n"))
			p.mu.Unlock()
		}
	})
	return p
}

// run sends a command and waits for an output line containing until.
func (p *testpmd) run(cmd, until string) []string {
	p.t.Helper()
	for len(p.lines) > 0 {
		<-p.lines
	}
	_, err := io.WriteString(p.in, cmd+"\n")
	require.NoError(p.t, err)
	var got []string
	timeout := time.After(10 * time.Second)
	for {
		select {
		case l, ok := <-p.lines:
			require.True(p.t, ok, "testpmd exited during %q", cmd)
			got = append(got, l)
			if strings.Contains(l, until) {
				return got
			}
		case <-timeout:
			p.t.Fatalf("testpmd printed no %q within 10 s of %q", until, cmd)
		}
	}
}

var statRE = regexp.MustCompile(`(RX|TX)-packets:\s+(\d+)`)

// stop stops forwarding and returns testpmd's accumulated forward
// statistics (over all ports and queues).
func (p *testpmd) stop() (rx, tx uint64) {
	p.t.Helper()
	rx, tx = ^uint64(0), ^uint64(0)
	accumulated := false
	for _, l := range p.run("stop", "Done.") {
		if strings.Contains(l, "Accumulated forward statistics") {
			accumulated = true
		}
		if !accumulated {
			continue
		}
		for _, m := range statRE.FindAllStringSubmatch(l, -1) {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			if m[1] == "RX" && rx == ^uint64(0) {
				rx = n
			}
			if m[1] == "TX" && tx == ^uint64(0) {
				tx = n
			}
		}
	}
	require.NotEqual(p.t, ^uint64(0), rx, "no accumulated RX-packets in testpmd's stop output")
	require.NotEqual(p.t, ^uint64(0), tx, "no accumulated TX-packets in testpmd's stop output")
	return rx, tx
}

func (p *testpmd) quit() {
	io.WriteString(p.in, "quit\n")
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatal("testpmd did not quit within 10 s")
	}
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
	pmd.quit()
	waitLink(t, port, false)
}

func TestInteropWithDPDKTestpmdAsClient(t *testing.T) {
	testenv.RequireCommand(t, "dpdk-testpmd")
	testenv.RequireRoot(t)
	sock := filepath.Join(t.TempDir(), "gopmd.sock")
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	port := startPort(t, proc, "net_memif0,role=server,socket-abstract=no,socket="+sock, 1, pool)
	pmd := startTestpmd(t, "net_memif0,role=client,socket-abstract=no,socket="+sock)
	waitLink(t, port, true)
	interop(t, pmd, port, pool)
	pmd.quit()
	waitLink(t, port, false)
}

func interop(t *testing.T, pmd *testpmd, port *ethdev.Port, pool *mbuf.Pool) {
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
		pmd.run("set fwd rxonly", "Set rxonly packet forwarding mode")
		pmd.run("start", "packets/burst=")
		pkts := frames()
		for len(pkts) > 0 {
			k := tx.TxBurst(pkts)
			pkts = pkts[k:]
			if k == 0 {
				time.Sleep(50 * time.Microsecond)
			}
		}
		time.Sleep(200 * time.Millisecond) // testpmd drains the ring
		rxd, txd := pmd.stop()
		require.Equal(t, uint64(n), rxd, "frames testpmd received")
		require.Zero(t, txd)
	})

	t.Run("testpmd echoes our frames with MACs swapped", func(t *testing.T) {
		pmd.run("set fwd macswap", "Set macswap packet forwarding mode")
		pmd.run("start", "packets/burst=")
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
		rxd, txd := pmd.stop()
		require.Equal(t, uint64(n), rxd, "frames testpmd received")
		require.Equal(t, uint64(n), txd, "frames testpmd sent back")
	})

	t.Run("we receive what testpmd generates", func(t *testing.T) {
		pmd.run("set fwd txonly", "Set txonly packet forwarding mode")
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
		pmd.run("start", "packets/burst=")
		time.Sleep(300 * time.Millisecond)
		rxd, txd := pmd.stop()
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
		pmd.run("port stop 0", "Done")
		waitLink(t, port, false)
		pmd.run("port start 0", "Done")
		waitLink(t, port, true)
		pmd.run("set fwd macswap", "Set macswap packet forwarding mode")
		pmd.run("start", "packets/burst=")
		var pkts []*mbuf.Mbuf
		for i := range 100 {
			pkts = append(pkts, frame(t, pool, 0, i, 64))
		}
		got := transfer(t, tx, rx, pkts)
		require.Len(t, got, 100)
		freeAll(t, got)
		rxd, txd := pmd.stop()
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
	pmd.run("set fwd macswap", "Set macswap packet forwarding mode")
	pmd.run("start", "packets/burst=")
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
	rxd, txd := pmd.stop()
	require.Equal(t, uint64(2*n), rxd)
	require.Equal(t, uint64(2*n), txd)
	s := port.Stats()
	require.Equal(t, uint64(n), s.RxQueues[0].Packets)
	require.Equal(t, uint64(n), s.RxQueues[1].Packets)
	pmd.quit()
}
