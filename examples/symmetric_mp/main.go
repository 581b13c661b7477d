// Command symmetric_mp is the Go counterpart of DPDK's symmetric_mp sample:
// N processes of one group forward packets side by side, each on its own
// queue of every port, with no process in the data path of another.
//
//	symmetric_mp [EAL options] -- --num-procs N --proc-id I
//
// Process 0 is started with --proc-type primary (or auto): it creates the
// ports from its --vdev options, gives each N rx and N tx queues, starts
// them, and publishes their names in the memzone "symmetric_mp_ports".
// Processes 1 to N-1 are started with --proc-type secondary (or auto) and
// distinct lcores; they wait up to 10 s for the ports to be started and
// attach to them by name. Then every process I, the primary included,
// polls rx queue I of every port and sends what it receives on tx queue I
// of the paired port (ports 0 and 1, 2 and 3, ...; an odd last port sends
// back out of itself), on its main lcore.
//
// On SIGINT or SIGTERM a process stops, prints its own counts per port
// ("Port P: RX - n, TX - n, Drop - n"; drops are packets the tx queue did
// not take) and exits with status 0. A secondary does the same when the
// primary exits.
//
// Example, forwarding between two memif ports with two processes:
//
//	symmetric_mp -l 0 --proc-type primary --vdev net_memif0,role=client,socket=/run/a.sock \
//	    --vdev net_memif1,role=client,socket=/run/b.sock -- --num-procs 2 --proc-id 0
//	symmetric_mp -l 1 --proc-type secondary -- --num-procs 2 --proc-id 1
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
	"unsafe"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/memif"
	_ "github.com/gopmd/gopmd/pmd/ring"
	"golang.org/x/sys/unix"
)

const (
	poolName  = "MProc_pktmbuf_pool"
	portsZone = "symmetric_mp_ports"
	burst     = 32
	rxDesc    = 1024
	txDesc    = 1024
	poolCache = 256
	// attachWait is how long a secondary waits for the primary's ports.
	attachWait = 10 * time.Second
	maxPorts   = 16
)

// portList is the memzone in which the primary names its ports for the
// secondaries. Plain data; Ready is set last.
type portList struct {
	Ready    uint32
	NumPorts uint32
	NumProcs uint32
	_        uint32
	Names    [maxPorts][32]byte
}

// appConfig is the application part of the command line.
type appConfig struct {
	numProcs, procID int
}

func parseApp(args []string, errOut io.Writer) (appConfig, error) {
	var c appConfig
	fs := flag.NewFlagSet("symmetric_mp", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.IntVar(&c.numProcs, "num-procs", 0, "number of processes sharing the ports' queues")
	fs.IntVar(&c.procID, "proc-id", -1, "this process's number, 0 to num-procs-1: the queue it polls")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	switch {
	case fs.NArg() > 0:
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case c.numProcs < 1 || c.numProcs > ethdev.MaxQueues:
		return c, fmt.Errorf("--num-procs %d: want 1 to %d (one queue per process)", c.numProcs, ethdev.MaxQueues)
	case c.procID < 0 || c.procID >= c.numProcs:
		return c, fmt.Errorf("--proc-id %d: want 0 to %d (--num-procs %d)", c.procID, c.numProcs-1, c.numProcs)
	}
	return c, nil
}

func main() {
	os.Exit(eal.Main("symmetric_mp", os.Args[1:], parseApp, run))
}

func run(env *eal.Env, cfg appConfig) int {
	out := os.Stdout
	// Catch signals from here on, so that a signal during setup still ends
	// in an orderly exit.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	var ports []*ethdev.Port
	var err error
	if env.Proc.Type() == mp.Primary {
		ports, err = createPorts(env, cfg)
	} else {
		ports, err = attachPorts(env, cfg)
	}
	defer func() {
		for _, p := range ports {
			p.Close()
		}
	}()
	if err != nil {
		fmt.Fprintln(os.Stderr, "symmetric_mp:", err)
		return 1
	}
	f, err := newForwarder(env, cfg, ports)
	if err != nil {
		fmt.Fprintln(os.Stderr, "symmetric_mp:", err)
		return 1
	}
	defer f.pool.Close()
	fmt.Fprintf(out, "symmetric_mp: %s process %d of %d (pid %d) forwarding queue %d of %d port(s) on lcore %d\n",
		env.Proc.Type(), cfg.procID, cfg.numProcs, os.Getpid(), cfg.procID, len(ports), env.Launcher.Main())

	stopping := func(s os.Signal) {
		if s == nil {
			fmt.Fprintln(out, "symmetric_mp: the primary has exited, stopping")
			return
		}
		fmt.Fprintf(out, "symmetric_mp: signal %v received, stopping\n", s)
	}
	if err := env.RunMainUntil(sig, stopping, f.loop); err != nil {
		fmt.Fprintln(os.Stderr, "symmetric_mp:", err)
		return 1
	}
	f.printStats(out)
	return 0
}

// createPorts makes the ports from --vdev (primary): N queue pairs each,
// started, and named in the ports memzone.
func createPorts(env *eal.Env, cfg appConfig) ([]*ethdev.Port, error) {
	vdevs := env.Options.VDevs
	if len(vdevs) == 0 {
		return nil, errors.New("the primary needs at least one port: give --vdev, e.g. --vdev net_memif0,role=client")
	}
	if len(vdevs) > maxPorts {
		return nil, fmt.Errorf("%d --vdev ports: at most %d", len(vdevs), maxPorts)
	}
	zone, err := env.Mem.Reserve(portsZone, uint64(unsafe.Sizeof(portList{})), 0)
	if err != nil {
		return nil, err
	}
	list := (*portList)(zone.Ptr())
	n := len(vdevs)*(cfg.numProcs*(rxDesc+txDesc)+burst) + cfg.numProcs*(poolCache*3/2+burst) + 1024
	pool, err := mbuf.CreatePool(env.Mem, poolName, mbuf.PoolConfig{N: uint32(n), CacheSize: poolCache})
	if err != nil {
		return nil, err
	}
	defer pool.Close() // the ports name it; the forwarder opens its own handle
	var ports []*ethdev.Port
	for i, v := range vdevs {
		p, err := ethdev.Create(env.Proc, v.String())
		if err != nil {
			return ports, err
		}
		ports = append(ports, p)
		if err := setUpPort(p, cfg.numProcs, pool); err != nil {
			return ports, err
		}
		copy(list.Names[i][:len(list.Names[i])-1], p.Name())
	}
	list.NumPorts = uint32(len(ports))
	list.NumProcs = uint32(cfg.numProcs)
	atomic.StoreUint32(&list.Ready, 1)
	return ports, nil
}

func setUpPort(p *ethdev.Port, queues int, pool *mbuf.Pool) error {
	if err := p.Configure(ethdev.Config{RxQueues: queues, TxQueues: queues}); err != nil {
		return err
	}
	for q := range queues {
		if err := p.SetupRxQueue(q, rxDesc, pool); err != nil {
			return err
		}
		if err := p.SetupTxQueue(q, txDesc); err != nil {
			return err
		}
	}
	if err := p.SetPromiscuous(true); err != nil {
		return err
	}
	return p.Start()
}

// attachPorts waits for the primary to publish its started ports and
// attaches to each by name (secondary).
func attachPorts(env *eal.Env, cfg appConfig) ([]*ethdev.Port, error) {
	deadline := time.Now().Add(attachWait)
	var lastErr error
	for {
		ports, err := tryAttach(env, cfg)
		if err == nil || !errors.Is(err, errNotReady) {
			return ports, err
		}
		for _, p := range ports {
			p.Close()
		}
		lastErr = err
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("the primary's ports were not ready within %v: %w", attachWait, lastErr)
		}
		select {
		case <-env.Proc.PrimaryGone():
			return nil, errors.New("the primary exited before its ports were ready")
		case <-time.After(50 * time.Millisecond):
		}
	}
}

var errNotReady = errors.New("not ready")

func tryAttach(env *eal.Env, cfg appConfig) ([]*ethdev.Port, error) {
	zone, err := env.Mem.Lookup(portsZone)
	if errors.Is(err, hugemem.ErrNotFound) {
		return nil, fmt.Errorf("no memzone %q yet: %w", portsZone, errNotReady)
	}
	if err != nil {
		return nil, err
	}
	list := (*portList)(zone.Ptr())
	if atomic.LoadUint32(&list.Ready) == 0 {
		return nil, fmt.Errorf("the primary is still setting up its ports: %w", errNotReady)
	}
	if int(list.NumProcs) != cfg.numProcs {
		return nil, fmt.Errorf("--num-procs %d, but the primary set the ports up for %d processes", cfg.numProcs, list.NumProcs)
	}
	if list.NumPorts > maxPorts {
		return nil, fmt.Errorf("memzone %q names %d ports, at most %d fit: corrupted", portsZone, list.NumPorts, maxPorts)
	}
	var ports []*ethdev.Port
	for i := range int(list.NumPorts) {
		name := unix.ByteSliceToString(list.Names[i][:])
		p, err := ethdev.Attach(env.Proc, name)
		if err != nil {
			return ports, err
		}
		ports = append(ports, p)
		if !p.Started() {
			return ports, fmt.Errorf("port %s is not started: %w", name, errNotReady)
		}
	}
	return ports, nil
}

// path is one direction this process forwards: its rx queue of a port to
// its tx queue of the paired port.
type path struct {
	in, out int // port indexes
	rx      ethdev.RxQueue
	tx      ethdev.TxQueue
}

// counts are one port's figures for this process alone.
type counts struct{ rx, tx, drop uint64 }

type forwarder struct {
	pool  *mbuf.Pool
	lcore int
	paths []path
	stats []counts // by port
}

func newForwarder(env *eal.Env, cfg appConfig, ports []*ethdev.Port) (*forwarder, error) {
	pool, err := mbuf.LookupPool(env.Mem, poolName)
	if err != nil {
		return nil, err
	}
	f := &forwarder{pool: pool, lcore: env.Launcher.Main(), stats: make([]counts, len(ports))}
	for i, p := range ports {
		o := peerOf(i, len(ports))
		rx, err := p.RxQueue(cfg.procID)
		if err != nil {
			return nil, err
		}
		tx, err := ports[o].TxQueue(cfg.procID)
		if err != nil {
			return nil, err
		}
		ethdev.BindLcore(rx, f.lcore)
		ethdev.BindLcore(tx, f.lcore)
		f.paths = append(f.paths, path{in: i, out: o, rx: rx, tx: tx})
	}
	return f, nil
}

// peerOf pairs ports 0-1, 2-3, ...; an odd last port is its own peer.
func peerOf(i, n int) int {
	if i^1 < n {
		return i ^ 1
	}
	return i
}

// loop forwards until stop is set, on the main lcore.
func (f *forwarder) loop(stop *atomic.Bool) {
	cache := f.pool.Cache(f.lcore)
	pkts := make([]*mbuf.Mbuf, burst)
	for !stop.Load() {
		for _, p := range f.paths {
			n := p.rx.RxBurst(pkts)
			if n == 0 {
				continue
			}
			sent := p.tx.TxBurst(pkts[:n])
			if sent < n {
				mbuf.FreeBulk(cache, pkts[sent:n])
			}
			f.stats[p.in].rx += uint64(n)
			f.stats[p.out].tx += uint64(sent)
			f.stats[p.out].drop += uint64(n - sent)
		}
	}
}

func (f *forwarder) printStats(out io.Writer) {
	for i, c := range f.stats {
		fmt.Fprintf(out, "Port %d: RX - %d, TX - %d, Drop - %d\n", i, c.rx, c.tx, c.drop)
	}
}
