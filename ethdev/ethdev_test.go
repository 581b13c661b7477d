package ethdev_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/ring"
	"github.com/stretchr/testify/require"
)

func group(t *testing.T) hugemem.Options {
	o := testmem.Options(t, "eth")
	o.Limit, o.SegmentSize = 128<<20, 32<<20
	return o
}

func primary(t *testing.T, g hugemem.Options) *mp.Process {
	t.Helper()
	return testport.Primary(t, g)
}

// loopbackPort is a started net_ring port with n queue pairs and a pool.
func loopbackPort(t *testing.T, proc *mp.Process, n int) (*ethdev.Port, *mbuf.Pool) {
	t.Helper()
	pool := testport.Pool(t, proc, "pkts", mbuf.PoolConfig{N: 4095, CacheSize: 64})
	return testport.Start(t, proc, "net_ring0", n, 512, pool), pool
}

func TestLoopbackPortCarriesFramesIntactAndCountsThem(t *testing.T) {
	proc := primary(t, group(t))
	port, pool := loopbackPort(t, proc, 2)
	cache := pool.Cache(0)
	tx, err := port.TxQueue(1)
	require.NoError(t, err)
	rx, err := port.RxQueue(1)
	require.NoError(t, err)

	out := make([]*mbuf.Mbuf, 32)
	require.NoError(t, pool.AllocBulk(cache, out))
	for i, m := range out {
		b, err := m.Append(64)
		require.NoError(t, err)
		for j := range b {
			b[j] = byte(i + j)
		}
	}
	require.Equal(t, 32, tx.TxBurst(out))
	in := make([]*mbuf.Mbuf, 64)
	require.Equal(t, 32, rx.RxBurst(in))
	for i, m := range in[:32] {
		require.Len(t, m.Data(), 64)
		require.Equal(t, byte(i+5), m.Data()[5], "frame %d", i)
	}
	require.NoError(t, mbuf.FreeBulk(cache, in[:32]))

	s := port.Stats()
	require.Equal(t, uint64(32), s.TxPackets)
	require.Equal(t, uint64(32), s.RxPackets)
	require.Equal(t, uint64(32*64), s.RxBytes)
	require.Equal(t, uint64(32), s.RxQueues[1].Packets)
	require.Zero(t, s.RxQueues[0].Packets)
	require.True(t, port.Link().Up)
}

func TestBurstsAllocateNothing(t *testing.T) {
	proc := primary(t, group(t))
	port, pool := loopbackPort(t, proc, 1)
	cache := pool.Cache(0)
	tx, err := port.TxQueue(0)
	require.NoError(t, err)
	rx, err := port.RxQueue(0)
	require.NoError(t, err)
	pkts := make([]*mbuf.Mbuf, 32)
	var failure error // the first thing that went wrong in a burst; the closure must not allocate
	errShort := errors.New("a burst moved fewer than 32 packets")
	allocs := testing.AllocsPerRun(1000, func() {
		if failure != nil {
			return
		}
		if err := pool.AllocBulk(cache, pkts); err != nil {
			failure = err
			return
		}
		if tx.TxBurst(pkts) != 32 || rx.RxBurst(pkts) != 32 {
			failure = errShort
			return
		}
		if err := mbuf.FreeBulk(cache, pkts); err != nil {
			failure = err
		}
	})
	require.NoError(t, failure)
	require.Zero(t, allocs)
	s := port.Stats()
	require.Equal(t, uint64(1001*32), s.TxPackets, "every burst (1000 and the warm-up) sent 32")
	require.Equal(t, uint64(1001*32), s.RxPackets, "and received them")
	require.Zero(t, pool.Mempool().InUse(), "every mbuf went back")
}

func TestBadPortRequestsAreClearErrors(t *testing.T) {
	proc := primary(t, group(t))
	_, err := ethdev.Create(proc, "net_nosuch0")
	require.ErrorContains(t, err, `no driver "net_nosuch"`)
	_, err = ethdev.Create(proc, "net_ring0,size=3")
	require.ErrorContains(t, err, `size="3": want a power of two`)
	_, err = ethdev.Create(proc, "net_ring0,colour=blue")
	require.ErrorContains(t, err, `unknown argument "colour"`)

	port, err := ethdev.Create(proc, "net_ring0")
	require.NoError(t, err)
	defer port.Close()
	_, err = ethdev.Create(proc, "net_ring0")
	require.ErrorContains(t, err, `a port named "net_ring0" already exists`)
	require.ErrorContains(t, port.Configure(ethdev.Config{RxQueues: 0, TxQueues: 1}), "0 rx queues; the device takes 1 to 16")
	require.ErrorContains(t, port.Configure(ethdev.Config{RxQueues: 17, TxQueues: 17}), "17 rx queues")
	require.ErrorContains(t, port.Start(), "configure it first")
	require.NoError(t, port.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}))
	require.ErrorContains(t, port.SetupRxQueue(3, 512, nil), "rx queue 3 does not exist; the port has 1")
	require.ErrorContains(t, port.SetupRxQueue(0, 512, nil), "needs a packet pool")
	_, err = port.RxQueue(0)
	require.ErrorContains(t, err, "the port is not started")
	_, err = ethdev.Attach(proc, "net_ring7")
	require.ErrorIs(t, err, hugemem.ErrNotFound)
}

// The multi-process tests run secondaries as real processes: this binary
// again, with a childSpec describing what to do.
type childSpec struct {
	Mem   hugemem.Options
	Lcore int
	Port  string
	RxQ   int
}

func TestMain(m *testing.M) {
	var spec childSpec
	if testproc.IsChild(&spec) {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}

// runChild attaches as a secondary, claims an rx queue, echoes what it
// receives back on the same queue's tx side, and waits for stdin to close.
func runChild(spec childSpec) int {
	proc, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: spec.Mem, Lcores: []mp.Lcore{{ID: spec.Lcore, CPUs: []int{1}}}})
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
	rx, err := port.RxQueue(spec.RxQ)
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Println("polling")
	pkts := make([]*mbuf.Mbuf, 32)
	stop := make(chan struct{})
	go func() { io.Copy(io.Discard, os.Stdin); close(stop) }()
	for {
		select {
		case <-stop:
			return 0
		default:
		}
		n := rx.RxBurst(pkts)
		for _, m := range pkts[:n] {
			fmt.Printf("got %s\n", m.Data())
		}
		if n == 0 {
			time.Sleep(time.Millisecond)
		}
	}
}

func TestSecondaryPollsItsQueueAndTheClaimIsExclusiveUntilItDies(t *testing.T) {
	g := group(t)
	proc := primary(t, g)
	port, pool := loopbackPort(t, proc, 2)
	cache := pool.Cache(0)

	child := testproc.Start(t, testproc.Config{Name: "secondary", Spec: childSpec{Mem: g, Lcore: 1, Port: "net_ring0", RxQ: 1}})
	child.Expect("polling")

	_, err := port.RxQueue(1)
	require.ErrorIs(t, err, ethdev.ErrQueueTaken)
	require.ErrorContains(t, err, fmt.Sprintf("rx queue 1 is polled by pid %d", child.Pid()))

	tx, err := port.TxQueue(1)
	require.NoError(t, err)
	m, err := pool.Alloc(cache)
	require.NoError(t, err)
	b, err := m.Append(5)
	require.NoError(t, err)
	copy(b, "hello")
	require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{m}))
	child.Expect("got hello")
	require.Equal(t, uint64(1), port.Stats().RxQueues[1].Packets, "the secondary's polling shows in the primary's stats")

	child.Kill()
	_, err = port.RxQueue(1)
	require.NoError(t, err, "a dead poller's claim is reclaimed")
	require.True(t, port.Started(), "the port keeps running after the secondary died")
}

func TestSecondaryCannotCreateOrChangePorts(t *testing.T) {
	g := group(t)
	proc := primary(t, g)
	loopbackPort(t, proc, 1)
	sec, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: g, Lcores: []mp.Lcore{{ID: 1, CPUs: []int{1}}}})
	require.NoError(t, err)
	defer sec.Close()
	_, err = ethdev.Create(sec, "net_ring1")
	require.ErrorContains(t, err, "only the primary creates ports")
	port, err := ethdev.Attach(sec, "net_ring0")
	require.NoError(t, err)
	require.ErrorContains(t, port.Stop(), "only the primary may change the device")
	require.ErrorContains(t, port.SetPromiscuous(true), "only the primary")
}

func TestPrimaryCannotStopOrCloseAPortAnotherProcessPolls(t *testing.T) {
	g := group(t)
	proc := primary(t, g)
	port, pool := loopbackPort(t, proc, 2)

	child := testproc.Start(t, testproc.Config{Name: "secondary", Spec: childSpec{Mem: g, Lcore: 1, Port: "net_ring0", RxQ: 1}})
	child.Expect("polling")
	held := fmt.Sprintf("rx queue 1 is polled by pid %d", child.Pid())
	err := port.Stop()
	require.ErrorIs(t, err, ethdev.ErrQueueTaken)
	require.ErrorContains(t, err, held)
	err = port.Close()
	require.ErrorIs(t, err, ethdev.ErrQueueTaken)
	require.ErrorContains(t, err, held)
	require.True(t, port.Started(), "the port still runs for its poller")

	tx, err := port.TxQueue(1)
	require.NoError(t, err, "the port is still open")
	m, err := pool.Alloc(nil)
	require.NoError(t, err)
	b, err := m.Append(5)
	require.NoError(t, err)
	copy(b, "still")
	require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{m}))
	child.Expect("got still")

	require.NoError(t, child.Kill())
	require.NoError(t, port.Stop(), "a dead poller holds nothing")
	require.NoError(t, port.Close())
}

func TestSecondaryCannotChangeSharedPortState(t *testing.T) {
	g := group(t)
	proc := primary(t, g)
	port, pool := loopbackPort(t, proc, 1)
	tx, err := port.TxQueue(0)
	require.NoError(t, err)
	rx, err := port.RxQueue(0)
	require.NoError(t, err)
	sec, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: g, Lcores: []mp.Lcore{{ID: 1, CPUs: []int{1}}}})
	require.NoError(t, err)
	defer sec.Close()
	sp, err := ethdev.Attach(sec, "net_ring0")
	require.NoError(t, err)
	defer sp.Close()

	mac, link := port.MAC(), port.Link()
	sp.SetMAC(net.HardwareAddr{0x02, 0, 0, 0, 0, 0x99})
	sp.SetLink(ethdev.Link{Up: false})
	require.Equal(t, mac, port.MAC(), "a secondary's SetMAC changes nothing")
	require.Equal(t, link, port.Link(), "a secondary's SetLink changes nothing")

	src := make([]*mbuf.Mbuf, 4)
	require.NoError(t, pool.AllocBulk(nil, src))
	require.Equal(t, 4, tx.TxBurst(src))
	require.Equal(t, 4, rx.RxBurst(src))
	require.NoError(t, mbuf.FreeBulk(nil, src))
	require.ErrorContains(t, sp.ResetStats(), "only the primary")
	require.Equal(t, uint64(4), port.Stats().RxPackets, "the counters stay")
	require.NoError(t, port.ResetStats())
	require.Zero(t, port.Stats().RxPackets)
}
