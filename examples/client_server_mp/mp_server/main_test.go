package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/examples/client_server_mp/internal/shared"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/memif"
	"github.com/stretchr/testify/require"
)

// proc is one example process and what it printed.
type proc struct {
	t      *testing.T
	name   string
	cmd    *exec.Cmd
	mu     sync.Mutex
	out    []string
	lines  chan string
	done   chan struct{}
	onLine func(string)
}

func start(t *testing.T, name string, onLine func(string), bin string, args ...string) *proc {
	t.Logf("%s: %s %s", name, filepath.Base(bin), strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	p := &proc{t: t, name: name, cmd: cmd, lines: make(chan string, 10000), done: make(chan struct{}), onLine: onLine}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			if !strings.HasPrefix(l, "  ") { // stats blocks are parsed, not logged
				t.Logf("[%s] %s", name, l)
			}
			if onLine != nil {
				onLine(l)
			}
			p.mu.Lock()
			p.out = append(p.out, l)
			p.mu.Unlock()
			select {
			case p.lines <- l:
			default:
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

func (p *proc) expect(want string) string {
	p.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, want) {
				return l
			}
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q:\n%s", p.name, want, p.output())
		case <-timeout:
			p.t.Fatalf("%s printed no %q within 15 s", p.name, want)
		}
	}
}

func (p *proc) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

// stop sends SIGINT and returns the exit status.
func (p *proc) stop() int {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGINT))
	return p.wait()
}

func (p *proc) wait() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit within 15 s", p.name)
	}
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

// stats is the last block of figures the server printed.
type stats struct {
	seq     int
	portRx  uint64
	clients map[int]clientStats
	inUse   uint64
	avail   uint64
}

type clientStats struct {
	state      string
	pid        int
	rx, rxDrop uint64
	tx, txDrop uint64
	drained    uint64
}

var (
	statsHead  = regexp.MustCompile(`^stats (\d+) at`)
	portLine   = regexp.MustCompile(`^  port \d+ \S+: rx=(\d+) tx=(\d+)$`)
	clientLine = regexp.MustCompile(`^  client (\d+): state=(\w+) pid=(\d+) rx=(\d+) rx_drop=(\d+) tx=(\d+) tx_drop=(\d+) drained=(\d+)$`)
	poolLine   = regexp.MustCompile(`^  pool \S+: in_use=(\d+) avail=(\d+) size=(\d+)$`)
)

// statsReader follows the server's output and keeps its last whole block.
type statsReader struct {
	mu      sync.Mutex
	cur     stats
	last    stats
	changed chan struct{}
}

func newStatsReader() *statsReader {
	return &statsReader{changed: make(chan struct{}, 1)}
}

func atou(s string) uint64 { n, _ := strconv.ParseUint(s, 10, 64); return n }

func (r *statsReader) line(l string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if m := statsHead.FindStringSubmatch(l); m != nil {
		seq, _ := strconv.Atoi(m[1])
		r.cur = stats{seq: seq, clients: map[int]clientStats{}}
	} else if m := portLine.FindStringSubmatch(l); m != nil {
		r.cur.portRx += atou(m[1])
	} else if m := clientLine.FindStringSubmatch(l); m != nil {
		id, _ := strconv.Atoi(m[1])
		pid, _ := strconv.Atoi(m[3])
		r.cur.clients[id] = clientStats{state: m[2], pid: pid, rx: atou(m[4]), rxDrop: atou(m[5]),
			tx: atou(m[6]), txDrop: atou(m[7]), drained: atou(m[8])}
	} else if m := poolLine.FindStringSubmatch(l); m != nil {
		r.cur.inUse, r.cur.avail = atou(m[1]), atou(m[2])
		r.last = r.cur // the pool line ends a block
		select {
		case r.changed <- struct{}{}:
		default:
		}
	}
}

// next waits for a block printed after the one seen last and returns it.
func (r *statsReader) next(t *testing.T, after stats) stats {
	t.Helper()
	deadline := time.After(10 * time.Second)
	for {
		r.mu.Lock()
		s := r.last
		r.mu.Unlock()
		if s.seq > after.seq {
			return s
		}
		select {
		case <-r.changed:
		case <-deadline:
			t.Fatalf("the server printed no statistics after block %d within 10 s", after.seq)
		}
	}
}

// until waits up to 10 s for a block that satisfies ok.
func (r *statsReader) until(t *testing.T, what string, ok func(stats) bool) stats {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	var s stats
	for time.Now().Before(deadline) {
		if s = r.next(t, s); ok(s) {
			return s
		}
	}
	t.Fatalf("no statistics with %s within 10 s; last: %+v", what, s)
	return s
}

// generator is the traffic source: a memif client port in a group of the
// test process's own, sending 64-byte frames on its one tx queue and
// receiving what the clients send back, on one rx queue per client.
type generator struct {
	port     *ethdev.Port
	pool     *mbuf.Pool
	sending  atomic.Bool
	stop     atomic.Bool
	done     chan struct{}
	sent     atomic.Uint64
	received [2]atomic.Uint64
}

func startGenerator(t *testing.T, sock string) *generator {
	g := hugemem.Options{Prefix: fmt.Sprintf("csgen%d", os.Getpid()), NoHuge: true,
		Limit: 128 << 20, SegmentSize: 32 << 20, RuntimeDir: t.TempDir()}
	proc, err := mp.Start(mp.Config{Type: mp.Primary, Memory: g, Lcores: []mp.Lcore{{ID: 0, CPUs: []int{0}}}})
	require.NoError(t, err)
	t.Cleanup(func() { proc.Close() })
	pool, err := mbuf.CreatePool(proc.Mem, "gen", mbuf.PoolConfig{N: 4095})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	port, err := ethdev.Create(proc, "net_memif0,role=client,socket-abstract=no,socket="+sock)
	require.NoError(t, err)
	t.Cleanup(func() { port.Close() })
	require.NoError(t, port.Configure(ethdev.Config{RxQueues: 2, TxQueues: 1}))
	for q := range 2 {
		require.NoError(t, port.SetupRxQueue(q, 1024, pool))
	}
	require.NoError(t, port.SetupTxQueue(0, 1024))
	require.NoError(t, port.Start())
	gen := &generator{port: port, pool: pool, done: make(chan struct{})}
	gen.sending.Store(true)
	go gen.run(t)
	t.Cleanup(func() { gen.stop.Store(true); <-gen.done })
	return gen
}

func (g *generator) run(t *testing.T) {
	defer close(g.done)
	tx, err := g.port.TxQueue(0)
	if err != nil {
		t.Error(err)
		return
	}
	var rx [2]ethdev.RxQueue
	for q := range rx {
		if rx[q], err = g.port.RxQueue(q); err != nil {
			t.Error(err)
			return
		}
	}
	pkts := make([]*mbuf.Mbuf, 32)
	for !g.stop.Load() {
		if g.sending.Load() && g.pool.AllocBulk(nil, pkts) == nil {
			for _, m := range pkts {
				b, _ := m.Append(64)
				clear(b)
				b[12], b[13] = 0x08, 0x00
			}
			n := tx.TxBurst(pkts)
			g.sent.Add(uint64(n))
			mbuf.FreeBulk(nil, pkts[n:])
		}
		for q := range rx {
			if n := rx[q].RxBurst(pkts); n > 0 {
				g.received[q].Add(uint64(n))
				mbuf.FreeBulk(nil, pkts[:n])
			}
		}
		time.Sleep(100 * time.Microsecond) // a modest rate: the CPUs are shared
	}
}

func build(t *testing.T, dir, pkg, name string) string {
	bin := filepath.Join(dir, name)
	out, err := exec.Command("go", "build", "-o", bin, pkg).CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// A server, two clients and a generator on a memif port. Killing one
// client with SIGKILL leaves the server and the other client forwarding;
// the server drains the dead client's ring back to the pool; a new client
// takes the id over; and when the traffic stops, the pool's mbufs are all
// back but for at most the one burst the dead client held.
func TestServerAndClientsForwardAndSurviveAClientsDeath(t *testing.T) {
	dir := t.TempDir()
	server := build(t, dir, ".", "mp_server")
	client := build(t, dir, "../mp_client", "mp_client")
	sock := filepath.Join(dir, "memif.sock")
	prefix := fmt.Sprintf("csmp-%d", os.Getpid())
	// What outlives the server's Close: the killed client's IPC socket.
	t.Cleanup(func() { os.RemoveAll(hugemem.RuntimeDir(prefix)) })
	group := []string{"--file-prefix", prefix, "--no-huge", "-m", "128"}

	st := newStatsReader()
	srv := start(t, "server", st.line, server, append(append([]string{"-l", "0",
		"--vdev", "net_memif0,role=server,socket-abstract=no,socket=" + sock}, group...),
		"--", "-n", "2", "--stats-period", "0.2")...)
	srv.expect("mp_server: ready: 1 port(s), 2 client ring(s)")
	gen := startGenerator(t, sock)

	clientArgs := func(id int, lcores string) []string {
		return append(append([]string{"--lcores", lcores, "--proc-type", "auto"}, group...), "--", "-n", strconv.Itoa(id))
	}
	c0 := start(t, "client 0", nil, client, clientArgs(0, "1@1")...)
	c0.expect("mp_client 0: running")
	c1 := start(t, "client 1", nil, client, clientArgs(1, "2@0")...)
	c1.expect("mp_client 1: running")

	s := st.until(t, "both clients sending", func(s stats) bool {
		return s.clients[0].tx > 100 && s.clients[1].tx > 100
	})
	require.Positive(t, gen.received[0].Load(), "the generator receives what client 0 sends on tx queue 0")
	require.Positive(t, gen.received[1].Load(), "the generator receives what client 1 sends on tx queue 1")

	in := start(t, "duplicate", nil, client, clientArgs(0, "3@1")...)
	in.expect(fmt.Sprintf("client id 0 is in use by pid %d", c0.cmd.Process.Pid))
	require.Equal(t, 1, in.wait(), "exit status of a client whose id is taken")

	require.NoError(t, c0.cmd.Process.Signal(syscall.SIGKILL))
	c0.wait()
	srv.expect(fmt.Sprintf("mp_server: client 0 (pid %d) left", c0.cmd.Process.Pid))
	before := st.until(t, "client 0 idle", func(s stats) bool { return s.clients[0].state == "idle" })
	genBefore := gen.received[1].Load()
	time.Sleep(time.Second)
	after := st.next(t, before)
	require.Greater(t, after.portRx, before.portRx, "the server keeps receiving")
	require.Greater(t, after.clients[1].rx, before.clients[1].rx, "client 1 keeps receiving")
	require.Greater(t, after.clients[1].tx, before.clients[1].tx, "client 1 keeps sending")
	require.Greater(t, gen.received[1].Load(), genBefore, "client 1's packets keep arriving")
	require.Equal(t, before.clients[0].rx+before.clients[0].rxDrop, after.clients[0].rx+after.clients[0].rxDrop,
		"nothing is handed to the dead client")
	t.Logf("after client 0's death: %d packets drained from its ring", after.clients[0].drained)

	c0 = start(t, "client 0 again", nil, client, clientArgs(0, "1@1")...)
	c0.expect("mp_client 0: running")
	s = st.until(t, "the new client 0 sending", func(s stats) bool {
		return s.clients[0].state == "running" && s.clients[0].pid == c0.cmd.Process.Pid && s.clients[0].tx > after.clients[0].tx
	})

	gen.sending.Store(false)
	time.Sleep(300 * time.Millisecond) // the last packets go round
	s = st.next(t, st.next(t, s))
	t.Logf("traffic stopped: pool in use %d, available %d", s.inUse, s.avail)
	require.LessOrEqual(t, s.inUse, uint64(shared.Burst),
		"mbufs still out of the pool once traffic stopped: at most the burst client 0 held when it was killed")

	require.Equal(t, 0, c0.stop(), "client 0's exit status after SIGINT")
	require.Equal(t, 0, c1.stop(), "client 1's exit status after SIGINT")
	srv.expect("mp_server: client 1")
	require.Equal(t, 0, srv.stop(), "server's exit status after SIGINT")
}

func TestBadServerOptionsAreNamed(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-n 0: want 1 to 16 clients"},
		{[]string{"-n", "17"}, "-n 17: want 1 to 16 clients"},
		{[]string{"-n", "2", "--stats-period", "0"}, "--stats-period 0: want a positive number"},
		{[]string{"-n", "2", "extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseApp(c.args, new(strings.Builder))
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
}
