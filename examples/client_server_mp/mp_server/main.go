// Command mp_server is the server of the client_server_mp sample, the Go
// counterpart of DPDK's: the primary process receives on every port and
// hands the packets round-robin to its clients (mp_client) through one
// ring per client, MProc_Client_<n>_RX; the clients send them out.
//
//	mp_server [EAL options] -- -n NUM_CLIENTS [--stats-period SECONDS]
//
// The ports come from --vdev. The server creates the packet pool
// MProc_pktmbuf_pool, gives each port one rx queue and a tx queue per
// client, creates the clients' rings, and describes the ports in the
// memzone MProc_port_info, where every client also keeps its counters.
// It polls on its main lcore and prints the ports', the clients' and the
// pool's figures every stats period, and once more when SIGINT or SIGTERM
// stops it (exit status 0).
//
// A client that dies (kill -9) leaves packets in its ring. The server
// learns of the death from the process table (mp.OnProcessExit), stops
// delivering to that client, and drains its ring back to the pool; a client
// that exits cleanly hands its id back the same way. A new client may then
// take the id.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/examples/client_server_mp/internal/shared"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mempool"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/memif"
	_ "github.com/gopmd/gopmd/pmd/ring"
	"github.com/gopmd/gopmd/ring"
)

const (
	rxDesc    = 1024
	txDesc    = 1024
	poolCache = 256
	// mbufsPerClient covers a full ring and what a client's cache holds;
	// mbufsPerPort what the ports and the server's cache hold.
	mbufsPerClient = shared.RingSize + 512
	mbufsPerPort   = 1536
)

type appConfig struct {
	clients     int
	statsPeriod time.Duration
}

func parseApp(args []string, errOut io.Writer) (appConfig, error) {
	var c appConfig
	fs := flag.NewFlagSet("mp_server", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.IntVar(&c.clients, "n", 0, "number of clients")
	period := fs.Float64("stats-period", 1, "seconds between statistics")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.clients < 1 || c.clients > shared.MaxClients:
		return c, fmt.Errorf("-n %d: want 1 to %d clients", c.clients, shared.MaxClients)
	case *period <= 0:
		return c, fmt.Errorf("--stats-period %v: want a positive number of seconds", *period)
	}
	c.statsPeriod = time.Duration(*period * float64(time.Second))
	return c, nil
}

func main() {
	os.Exit(eal.Main("mp_server", os.Args[1:], parseApp, run))
}

func run(env *eal.Env, cfg appConfig) int {
	out := os.Stdout
	if env.Proc.Type() != mp.Primary {
		fmt.Fprintln(os.Stderr, "mp_server: the server must be the group's primary process; another primary runs (use --proc-type primary and its own --file-prefix)")
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	s, err := newServer(env, cfg, out)
	if s != nil {
		defer s.close()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "mp_server:", err)
		return 1
	}
	fmt.Fprintf(out, "mp_server: ready: %d port(s), %d client ring(s), pool of %d mbufs, polling on lcore %d\n",
		len(s.ports), cfg.clients, s.pool.Mempool().Size(), s.lcore)

	var stop atomic.Bool
	go func() {
		tick := time.NewTicker(cfg.statsPeriod)
		defer tick.Stop()
		for {
			select {
			case <-tick.C:
				s.printStats()
			case sg := <-sig:
				fmt.Fprintf(out, "mp_server: signal %v received, stopping\n", sg)
				stop.Store(true)
				return
			}
		}
	}()
	if err := env.Launcher.RunMain(func(int) error { s.loop(&stop); return nil }); err != nil {
		fmt.Fprintln(os.Stderr, "mp_server:", err)
		return 1
	}
	s.printStats()
	return 0
}

type server struct {
	env   *eal.Env
	out   io.Writer
	lcore int
	pool  *mbuf.Pool
	info  *shared.Info
	rings []*ring.Ring
	ports []*ethdev.Port
	rx    []ethdev.RxQueue

	started time.Time
	reports atomic.Uint64
}

func newServer(env *eal.Env, cfg appConfig, out io.Writer) (*server, error) {
	vdevs := env.Options.VDevs
	switch {
	case len(vdevs) == 0:
		return nil, errors.New("no port: give at least one --vdev, e.g. --vdev net_memif0,role=server")
	case len(vdevs) > shared.MaxPorts:
		return nil, fmt.Errorf("%d --vdev ports: at most %d", len(vdevs), shared.MaxPorts)
	}
	s := &server{env: env, out: out, lcore: env.Launcher.Main(), started: time.Now()}
	n := cfg.clients*mbufsPerClient + len(vdevs)*mbufsPerPort
	var err error
	if s.pool, err = mbuf.CreatePool(env.Mem, shared.PoolName, mbuf.PoolConfig{N: uint32(n), CacheSize: poolCache}); err != nil {
		return s, err
	}
	for id := range cfg.clients {
		r, err := ring.Create(env.Mem, shared.RingName(id), shared.RingSize, ring.SPEnq|ring.SCDeq)
		if err != nil {
			return s, err
		}
		s.rings = append(s.rings, r)
	}
	var described []shared.Port
	for _, v := range vdevs {
		p, err := ethdev.Create(env.Proc, v.String())
		if err != nil {
			return s, err
		}
		s.ports = append(s.ports, p)
		if err := setUpPort(p, cfg.clients, s.pool); err != nil {
			return s, err
		}
		rx, err := p.RxQueue(0)
		if err != nil {
			return s, err
		}
		ethdev.BindLcore(rx, s.lcore)
		s.rx = append(s.rx, rx)
		described = append(described, shared.NewPort(p.Name(), p.ID))
	}
	if s.info, err = shared.Create(env.Mem, described, cfg.clients); err != nil {
		return s, err
	}
	env.Proc.OnProcessExit(s.clientDied)
	return s, nil
}

// setUpPort gives a port one rx queue and a tx queue per client.
func setUpPort(p *ethdev.Port, clients int, pool *mbuf.Pool) error {
	if err := p.Configure(ethdev.Config{RxQueues: 1, TxQueues: clients}); err != nil {
		return err
	}
	if err := p.SetupRxQueue(0, rxDesc, pool); err != nil {
		return err
	}
	for q := range clients {
		if err := p.SetupTxQueue(q, txDesc); err != nil {
			return err
		}
	}
	if err := p.SetPromiscuous(true); err != nil {
		return err
	}
	return p.Start()
}

func (s *server) close() {
	for _, p := range s.ports {
		p.Close()
	}
	if s.pool != nil {
		s.pool.Close()
	}
}

// clientDied runs (on its own goroutine) for every group member that died
// without closing: a client's record goes to Leaving, and the polling loop
// drains its ring. Under the group lock, so that a new client taking over
// the record and this cannot both win.
func (s *server) clientDied(ev mp.ExitedProcess) {
	s.env.Mem.WithLock(func() error {
		for id := range int(s.info.NumClients) {
			c := &s.info.Clients[id]
			if atomic.LoadUint32(&c.State) == shared.Running && int(c.Owner.PID) == ev.PID {
				atomic.StoreUint32(&c.State, shared.Leaving)
			}
		}
		return nil
	})
}

// loop is the server's lcore: receive a burst on each port, deal the
// packets out to the running clients in turn, and drain the rings of
// clients that left.
func (s *server) loop(stop *atomic.Bool) {
	cache := s.pool.Cache(s.lcore)
	nClients := int(s.info.NumClients)
	pkts := make([]*mbuf.Mbuf, shared.Burst)
	pending := make([][]uint64, nClients) // handles for each client's ring
	for i := range pending {
		pending[i] = make([]uint64, 0, shared.Burst)
	}
	running := make([]int, 0, nClients)
	next := 0 // round-robin position among the running clients
	for !stop.Load() {
		running = running[:0]
		for id := range nClients {
			switch atomic.LoadUint32(&s.info.Clients[id].State) {
			case shared.Running:
				running = append(running, id)
			case shared.Leaving:
				s.drain(id, cache)
			}
		}
		for _, rx := range s.rx {
			n := rx.RxBurst(pkts)
			if n == 0 {
				continue
			}
			if len(running) == 0 {
				mbuf.FreeBulk(cache, pkts[:n]) // nobody to hand them to
				continue
			}
			for _, m := range pkts[:n] {
				next = (next + 1) % len(running)
				id := running[next]
				pending[id] = append(pending[id], m.Off(s.env.Mem))
			}
			for _, id := range running {
				s.deliver(id, pending[id], cache)
				pending[id] = pending[id][:0]
			}
		}
	}
}

// deliver puts handles on client id's ring; what does not fit is freed and
// counted as the client's rx drops.
func (s *server) deliver(id int, handles []uint64, cache *mempool.Cache) {
	if len(handles) == 0 {
		return
	}
	k := int(s.rings[id].SPEnqueueBurst(handles))
	if k == len(handles) {
		return
	}
	var drop [shared.Burst]*mbuf.Mbuf
	for i, h := range handles[k:] {
		drop[i] = mbuf.FromOff(s.env.Mem, h)
	}
	mbuf.FreeBulk(cache, drop[:len(handles)-k])
	shared.Add(&s.info.Clients[id].RxDrop, uint64(len(handles)-k))
}

// drain empties the ring of a client that left, back into the pool, and
// makes its id free again. Only the server consumes from the ring now: the
// client is gone, and no new one takes a Leaving id.
func (s *server) drain(id int, cache *mempool.Cache) {
	var handles [shared.Burst]uint64
	var pkts [shared.Burst]*mbuf.Mbuf
	c := &s.info.Clients[id]
	total := uint64(0)
	for {
		n := int(s.rings[id].SCDequeueBurst(handles[:]))
		if n == 0 {
			break
		}
		for i, h := range handles[:n] {
			pkts[i] = mbuf.FromOff(s.env.Mem, h)
		}
		mbuf.FreeBulk(cache, pkts[:n])
		total += uint64(n)
	}
	shared.Add(&c.Drained, total)
	pid := c.Owner.PID
	atomic.StoreUint32(&c.State, shared.Idle)
	fmt.Fprintf(s.out, "mp_server: client %d (pid %d) left; %d packet(s) drained from its ring back to the pool\n", id, pid, total)
}

// printStats prints one numbered block of figures: ports (all processes'
// queues), clients, pool.
func (s *server) printStats() {
	n := s.reports.Add(1)
	fmt.Fprintf(s.out, "stats %d at %.1f s\n", n, time.Since(s.started).Seconds())
	for _, p := range s.ports {
		st := p.Stats()
		fmt.Fprintf(s.out, "  port %d %s: rx=%d tx=%d\n", p.ID, p.Name(), st.RxPackets, st.TxPackets)
	}
	for id := range int(s.info.NumClients) {
		c := &s.info.Clients[id]
		fmt.Fprintf(s.out, "  client %d: state=%s pid=%d rx=%d rx_drop=%d tx=%d tx_drop=%d drained=%d\n",
			id, shared.StateName(atomic.LoadUint32(&c.State)), c.Owner.PID,
			shared.Counter(&c.Rx), shared.Counter(&c.RxDrop), shared.Counter(&c.Tx), shared.Counter(&c.TxDrop), shared.Counter(&c.Drained))
	}
	mpool := s.pool.Mempool()
	fmt.Fprintf(s.out, "  pool %s: in_use=%d avail=%d size=%d\n", mpool.Name(), mpool.InUse(), mpool.Avail(), mpool.Size())
}
