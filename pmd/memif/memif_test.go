package memif_test

import (
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/memif"
	"github.com/stretchr/testify/require"
)

func group(t testing.TB) hugemem.Options {
	o := testmem.Options(t, "mif")
	o.Limit, o.SegmentSize = 256<<20, 64<<20
	return o
}

func primary(t testing.TB, g hugemem.Options) *mp.Process {
	t.Helper()
	return testport.Primary(t, g)
}

func newPool(t testing.TB, proc *mp.Process, name string) *mbuf.Pool {
	t.Helper()
	return testport.Pool(t, proc, name, mbuf.PoolConfig{N: 8191, CacheSize: 64})
}

// startPort creates, configures and starts a port with n queue pairs.
func startPort(t testing.TB, proc *mp.Process, device string, n int, pool *mbuf.Pool) *ethdev.Port {
	t.Helper()
	return testport.Start(t, proc, device, n, 1024, pool)
}

func waitLink(t testing.TB, port *ethdev.Port, up bool) {
	t.Helper()
	testport.WaitLink(t, port, up)
}

// frame builds a packet whose bytes encode its queue, sequence number
// and length, so that any corruption or mix-up shows.
func frame(t testing.TB, pool *mbuf.Pool, q, i, size int) *mbuf.Mbuf {
	m, err := pool.Alloc(nil)
	require.NoError(t, err)
	b, err := m.Append(size)
	require.NoError(t, err)
	fill(b, q, i)
	return m
}

func fill(b []byte, q, i int) {
	for j := range b {
		b[j] = byte(q*31 + i*7 + j)
	}
	if len(b) >= 14 {
		binary.BigEndian.PutUint32(b[0:], uint32(q))
		binary.BigEndian.PutUint32(b[4:], uint32(i))
		binary.BigEndian.PutUint16(b[12:], uint16(len(b)))
	}
}

func checkFrame(t testing.TB, data []byte, q, i, size int) {
	t.Helper()
	want := make([]byte, size)
	fill(want, q, i)
	require.Equal(t, size, len(data), "queue %d frame %d: length", q, i)
	require.Equal(t, want, data, "queue %d frame %d: payload", q, i)
}

// packetBytes gathers a packet's segments.
func packetBytes(m *mbuf.Mbuf) []byte {
	var b []byte
	for s := m; s != nil; s = s.Next() {
		b = append(b, s.Data()...)
	}
	return b
}

func freeAll(t testing.TB, pkts []*mbuf.Mbuf) {
	require.NoError(t, mbuf.FreeBulk(nil, pkts))
}

// pair starts a Go memif server and client connected over a socket.
func pair(t testing.TB, proc *mp.Process, pool *mbuf.Pool, n int, args string) (server, client *ethdev.Port) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	server = startPort(t, proc, fmt.Sprintf("net_memif0,role=server,socket=%s%s", sock, args), n, pool)
	client = startPort(t, proc, fmt.Sprintf("net_memif1,role=client,socket=%s%s", sock, args), n, pool)
	waitLink(t, server, true)
	waitLink(t, client, true)
	return server, client
}

// exchange sends count frames each way on every queue pair and checks
// that each arrives intact, in order, on the same queue of the other port.
func exchange(t *testing.T, from, to *ethdev.Port, pool *mbuf.Pool, n, count int, size func(i int) int) {
	for q := range n {
		tx, err := from.TxQueue(q)
		require.NoError(t, err)
		rx, err := to.RxQueue(q)
		require.NoError(t, err)
		var pkts []*mbuf.Mbuf
		for i := range count {
			pkts = append(pkts, frame(t, pool, q, i, size(i)))
		}
		got := transfer(t, tx, rx, pkts)
		for i, m := range got {
			checkFrame(t, packetBytes(m), q, i, size(i))
			require.Equal(t, to.ID, m.Port(), "mbuf port")
		}
		freeAll(t, got)
	}
}

// transfer sends pkts on tx while receiving on rx, until as many came
// back, and checks that no more follow. It keeps at most 256 frames in
// flight, well below a ring, so that a forwarder in between (testpmd)
// never finds our rx ring full and drops: memif has no backpressure.
func transfer(t testing.TB, tx ethdev.TxQueue, rx ethdev.RxQueue, pkts []*mbuf.Mbuf) []*mbuf.Mbuf {
	t.Helper()
	const window = 256
	want := len(pkts)
	var got []*mbuf.Mbuf
	buf := make([]*mbuf.Mbuf, 64)
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < want {
		sent := 0
		if inFlight := want - len(pkts) - len(got); len(pkts) > 0 && inFlight < window {
			sent = tx.TxBurst(pkts[:min(len(pkts), 32, window-inFlight)])
			pkts = pkts[sent:]
		}
		k := rx.RxBurst(buf)
		got = append(got, buf[:k]...)
		if k == 0 && sent == 0 {
			if time.Now().After(deadline) {
				t.Fatalf("received %d packets in 10 s, want %d (%d unsent)", len(got), want, len(pkts))
			}
			time.Sleep(50 * time.Microsecond)
		}
	}
	time.Sleep(20 * time.Millisecond)
	require.Zero(t, rx.RxBurst(buf), "packets beyond the %d sent", want)
	return got
}

func TestGoServerAndClientCarryFramesIntactBothWays(t *testing.T) {
	for _, n := range []int{1, 2} {
		t.Run(fmt.Sprintf("%d queue pairs", n), func(t *testing.T) {
			proc := primary(t, group(t))
			pool := newPool(t, proc, "pkts")
			server, client := pair(t, proc, pool, n, ",socket-abstract=no")
			size := func(i int) int { return 60 + i%1400 }
			exchange(t, client, server, pool, n, 3000, size) // more than a ring: wraps around
			exchange(t, server, client, pool, n, 3000, size)

			s, c := server.Stats(), client.Stats()
			require.Equal(t, uint64(3000*n), s.RxPackets)
			require.Equal(t, uint64(3000*n), s.TxPackets)
			require.Equal(t, c.TxPackets, s.RxPackets)
			require.Equal(t, c.TxBytes, s.RxBytes)
			require.Equal(t, s.TxBytes, c.RxBytes)
			require.Zero(t, s.RxErrors+c.RxErrors+s.TxErrors+c.TxErrors)
			require.Equal(t, pool.Mempool().Avail(), pool.Mempool().Size(), "every mbuf is back in the pool")
		})
	}
}

func TestFramesLargerThanABufferAreChained(t *testing.T) {
	// 256-byte memif buffers, and 512-byte mbufs on the server's side:
	// frames span several descriptors, and several mbufs once received.
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	small, err := mbuf.CreatePool(proc.Mem, "small", mbuf.PoolConfig{N: 8191, DataRoom: mbuf.DefaultHeadroom + 512})
	require.NoError(t, err)
	t.Cleanup(small.Close)
	sock := filepath.Join(t.TempDir(), "m.sock")
	server := startPort(t, proc, "net_memif0,role=server,bsize=256,rsize=6,socket="+sock, 1, small)
	client := startPort(t, proc, "net_memif1,role=client,bsize=256,rsize=6,socket="+sock, 1, pool)
	waitLink(t, client, true)
	size := func(i int) int { return 200 + 37*i%1800 }
	exchange(t, client, server, pool, 1, 500, size)
	exchange(t, server, client, pool, 1, 500, size)

	// A two-segment mbuf goes out as one frame.
	tx, _ := client.TxQueue(0)
	rx, _ := server.RxQueue(0)
	head, tail := frame(t, pool, 0, 0, 100), frame(t, pool, 0, 0, 700)
	require.NoError(t, head.Chain(tail))
	want := packetBytes(head)
	got := transfer(t, tx, rx, []*mbuf.Mbuf{head})
	require.Equal(t, want, packetBytes(got[0]))
	require.Equal(t, uint16(2), got[0].NumSegs(), "800 bytes in 512-byte mbufs")
	require.Equal(t, uint32(800), got[0].PktLen())
	freeAll(t, got)
	require.Equal(t, small.Mempool().Size(), small.Mempool().Avail(), "every small mbuf is back")
}

func TestLinkFollowsThePeerAndTheClientReconnects(t *testing.T) {
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	server, client := pair(t, proc, pool, 1, "")
	exchange(t, client, server, pool, 1, 10, func(int) int { return 64 })

	require.NoError(t, server.Stop())
	waitLink(t, server, false)
	waitLink(t, client, false)
	tx, _ := client.TxQueue(0)
	m := frame(t, pool, 0, 0, 64)
	require.Zero(t, tx.TxBurst([]*mbuf.Mbuf{m}), "no transmission while disconnected")
	freeAll(t, []*mbuf.Mbuf{m})

	require.NoError(t, server.Start())
	waitLink(t, server, true)
	waitLink(t, client, true)
	exchange(t, client, server, pool, 1, 10, func(int) int { return 64 })
	exchange(t, server, client, pool, 1, 10, func(int) int { return 64 })

	xs := map[string]uint64{}
	for _, x := range client.XStats() {
		xs[x.Name] = x.Value
	}
	require.Equal(t, uint64(2), xs["memif_connects"])
	require.Equal(t, uint64(1), xs["memif_disconnects"])
}

func TestBadDeviceArgumentsAreClearErrors(t *testing.T) {
	proc := primary(t, group(t))
	for arg, want := range map[string]string{
		"role=master":                       `role="master": want server or client`,
		"rsize=15":                          `rsize="15": want the log2 of the ring size, 1 to 14`,
		"bsize=0":                           `bsize="0"`,
		"bsize=70000":                       `bsize="70000"`,
		"id=-1":                             `id="-1"`,
		"mac=zz":                            `mac="zz"`,
		"zero-copy=yes":                     "zero-copy=yes: not supported",
		"socket-abstract=1":                 `socket-abstract="1": want yes or no`,
		"colour=blue":                       `unknown argument "colour"`,
		"secret=" + strings.Repeat("s", 24): "at most 23 bytes",
	} {
		_, err := ethdev.Create(proc, "net_memif0,"+arg)
		require.ErrorContains(t, err, want, arg)
	}
	port, err := ethdev.Create(proc, "net_memif0,role=client,rsize=14,bsize=65535")
	require.NoError(t, err)
	defer port.Close()
	err = port.Configure(ethdev.Config{RxQueues: 16, TxQueues: 16})
	require.ErrorContains(t, err, "memif offsets are 32-bit")
}

func TestASecondServerOnTheSameSocketIsRefused(t *testing.T) {
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	sock := filepath.Join(t.TempDir(), "m.sock")
	startPort(t, proc, "net_memif0,role=server,socket-abstract=no,socket="+sock, 1, pool)
	port, err := ethdev.Create(proc, "net_memif1,role=server,socket-abstract=no,socket="+sock)
	require.NoError(t, err)
	defer port.Close()
	require.NoError(t, port.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}))
	require.NoError(t, port.SetupRxQueue(0, 64, pool))
	require.NoError(t, port.SetupTxQueue(0, 64))
	require.ErrorContains(t, port.Start(), "a server is already listening on it")
}

func TestBurstsAllocateNothing(t *testing.T) {
	proc := primary(t, group(t))
	pool := newPool(t, proc, "pkts")
	server, client := pair(t, proc, pool, 1, "")
	for _, dir := range []struct {
		name     string
		from, to *ethdev.Port
	}{{"client to server", client, server}, {"server to client", server, client}} {
		tx, _ := dir.from.TxQueue(0)
		rx, _ := dir.to.RxQueue(0)
		pkts := make([]*mbuf.Mbuf, 32)
		allocs := testing.AllocsPerRun(1000, func() {
			if pool.AllocBulk(nil, pkts) != nil {
				panic("pool empty")
			}
			for _, m := range pkts {
				m.Append(64)
			}
			n := tx.TxBurst(pkts)
			mbuf.FreeBulk(nil, pkts[n:])
			n = rx.RxBurst(pkts)
			mbuf.FreeBulk(nil, pkts[:n])
		})
		require.Zero(t, allocs, dir.name)
		require.NotZero(t, dir.to.Stats().RxPackets, dir.name)
	}
}

func BenchmarkCopy64B(b *testing.B)   { benchCopy(b, 64) }
func BenchmarkCopy1500B(b *testing.B) { benchCopy(b, 1500) }

// benchCopy measures a client-to-server burst of 32 frames through the
// rings in one goroutine (so both copies count).
func benchCopy(b *testing.B, size int) {
	proc := primary(b, group(b))
	pool := newPool(b, proc, "pkts")
	server, client := pair(b, proc, pool, 1, "")
	tx, _ := client.TxQueue(0)
	rx, _ := server.RxQueue(0)
	pkts := make([]*mbuf.Mbuf, 32)
	b.SetBytes(int64(32 * size))
	b.ReportAllocs()
	for b.Loop() {
		pool.AllocBulk(nil, pkts)
		for _, m := range pkts {
			m.Append(size)
		}
		n := tx.TxBurst(pkts)
		mbuf.FreeBulk(nil, pkts[n:])
		n = rx.RxBurst(pkts)
		mbuf.FreeBulk(nil, pkts[:n])
	}
}

// The multi-process test runs a secondary as a real process: this test
// binary again, with a childSpec describing what to do.
type childSpec struct {
	Mem  hugemem.Options
	Port string
}

func TestMain(m *testing.M) {
	var spec childSpec
	if testproc.IsChild(&spec) {
		os.Exit(runChild(spec))
	}
	slog.SetLogLoggerLevel(slog.LevelWarn)
	os.Exit(m.Run())
}

// runChild attaches as a secondary, claims queue pair 0 of the port, and
// echoes every frame back with its first byte incremented, until stdin
// closes.
func runChild(spec childSpec) int {
	proc, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: spec.Mem, Lcores: []mp.Lcore{{ID: 1, CPUs: []int{1}}}})
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	defer proc.Close()
	port, err := ethdev.Attach(proc, spec.Port)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	defer port.Close()
	rx, err := port.RxQueue(0)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	tx, err := port.TxQueue(0)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Println("polling")
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	pkts := make([]*mbuf.Mbuf, 32)
	for {
		select {
		case <-stop:
			return 0
		default:
		}
		n := rx.RxBurst(pkts)
		for _, m := range pkts[:n] {
			m.Data()[0]++
		}
		sent := 0
		for sent < n {
			sent += tx.TxBurst(pkts[sent:n])
		}
		if n == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
}

func TestASecondaryPollsTheRingsAndFollowsReconnections(t *testing.T) {
	g := group(t)
	proc := primary(t, g)
	pool := newPool(t, proc, "pkts")
	server, client := pair(t, proc, pool, 1, "")

	sec := testproc.Start(t, testproc.Config{Name: "secondary", Spec: childSpec{Mem: g, Port: server.Name()}})
	require.Equal(t, "polling", sec.Expect(""), "the secondary's first line")
	echo := func(count int) {
		tx, _ := client.TxQueue(0)
		rx, _ := client.RxQueue(0)
		var pkts []*mbuf.Mbuf
		for i := range count {
			pkts = append(pkts, frame(t, pool, 0, i, 60+i%1400))
		}
		got := transfer(t, tx, rx, pkts)
		for i, m := range got {
			want := make([]byte, 60+i%1400)
			fill(want, 0, i)
			want[0]++
			require.Equal(t, want, packetBytes(m), "echoed frame %d", i)
		}
		freeAll(t, got)
	}
	echo(2000)
	require.Equal(t, uint64(2000), server.Stats().RxQueues[0].Packets, "the secondary's polling shows in the primary's stats")

	// The client goes away and comes back: new regions, new fds; the
	// secondary maps them without being told.
	require.NoError(t, client.Stop())
	waitLink(t, server, false)
	require.NoError(t, client.Start())
	waitLink(t, server, true)
	waitLink(t, client, true)
	echo(500)
}
