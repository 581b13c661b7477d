package main

import (
	"fmt"
	"io"
	"sync/atomic"
	"time"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
)

const (
	maxBurst  = 512
	poolCache = 256
)

// testpmd holds the ports, the streams and the forwarding lcores.
type testpmd struct {
	env   *eal.Env
	cfg   appConfig
	out   io.Writer
	pool  *mbuf.Pool
	ports []*ethdev.Port
	gen   *generator // the built-in traffic source, when no device was given

	lanes  [][]*stream // streams of each forwarding lcore
	stopFl atomic.Bool
	failed chan error
	done   chan struct{}

	started  time.Time
	last     time.Time
	lastSeen []ethdev.Stats
}

// stream is one rx queue forwarded to one tx queue.
type stream struct {
	rxPort, txPort *ethdev.Port
	rxq, txq       int
	rx             ethdev.RxQueue
	tx             ethdev.TxQueue
	peerMAC        [6]byte // destination for --forward-mode=mac
	srcMAC         [6]byte // the tx port's address
}

func newTestpmd(env *eal.Env, cfg appConfig, out io.Writer) (*testpmd, error) {
	t := &testpmd{env: env, cfg: cfg, out: out, failed: make(chan error, 1), done: make(chan struct{})}
	nports := len(env.Options.VDevs) + len(env.Options.Allow)
	if nports == 0 {
		nports = 1 // the built-in port
	}
	n := cfg.nbMbufs
	if n == 0 {
		n = nports*(cfg.rxq*cfg.rxd+cfg.txq*cfg.txd) + (cfg.nbCores+2)*(maxBurst+poolCache) + 4096
	}
	var err error
	if t.pool, err = mbuf.CreatePool(env.Mem, "testpmd_pool", mbuf.PoolConfig{N: uint32(n), CacheSize: poolCache}); err != nil {
		return nil, err
	}
	if len(env.Options.VDevs)+len(env.Options.Allow) == 0 {
		if t.gen, err = newGenerator(env, t.pool, cfg); err != nil {
			return nil, err
		}
		t.ports = append(t.ports, t.gen.fwdPort)
	}
	for _, d := range env.Options.Allow {
		p, err := ethdev.CreatePCI(env.Proc, d)
		if err != nil {
			t.close()
			return nil, err
		}
		t.ports = append(t.ports, p)
	}
	for _, v := range env.Options.VDevs {
		p, err := ethdev.Create(env.Proc, v.String())
		if err != nil {
			t.close()
			return nil, err
		}
		t.ports = append(t.ports, p)
	}
	for _, p := range t.ports {
		if err := t.setUpPort(p); err != nil {
			t.close()
			return nil, err
		}
	}
	return t, nil
}

func (t *testpmd) setUpPort(p *ethdev.Port) error {
	if err := p.Configure(ethdev.Config{RxQueues: t.cfg.rxq, TxQueues: t.cfg.txq}); err != nil {
		return err
	}
	for q := range t.cfg.rxq {
		if err := p.SetupRxQueue(q, t.cfg.rxd, t.pool); err != nil {
			return err
		}
	}
	for q := range t.cfg.txq {
		if err := p.SetupTxQueue(q, t.cfg.txd); err != nil {
			return err
		}
	}
	return p.Start()
}

// peerOf pairs ports 0-1, 2-3, ...; an odd last port forwards to itself.
func (t *testpmd) peerOf(i int) int {
	if i^1 < len(t.ports) {
		return i ^ 1
	}
	return i
}

// buildStreams makes one stream per (port, rx queue) and deals them to the
// forwarding lcores. Streams that send on the same tx queue go to the same
// lcore, since a tx queue has one sender.
func (t *testpmd) buildStreams(nLanes int) error {
	t.lanes = make([][]*stream, nLanes)
	for i, rxPort := range t.ports {
		txPort := t.ports[t.peerOf(i)]
		for q := range t.cfg.rxq {
			s := &stream{rxPort: rxPort, txPort: txPort, rxq: q, txq: q % t.cfg.txq}
			copy(s.srcMAC[:], txPort.MAC())
			s.peerMAC = [6]byte{0x02, 0, 0, 0, 0, byte(txPort.ID)}
			var err error
			if s.rx, err = rxPort.RxQueue(s.rxq); err != nil {
				return err
			}
			if s.tx, err = txPort.TxQueue(s.txq); err != nil {
				return err
			}
			lane := s.txq % nLanes
			t.lanes[lane] = append(t.lanes[lane], s)
		}
	}
	return nil
}

// start launches the forwarding lcores (and the generator).
func (t *testpmd) start() error {
	l := t.env.Launcher
	workers := l.Workers()
	nLanes := t.cfg.nbCores
	if len(workers) > 0 {
		nLanes = min(nLanes, len(workers))
	} else {
		nLanes = 1 // only the main lcore: forward there
	}
	nLanes = min(nLanes, len(t.ports)*t.cfg.rxq)
	if err := t.buildStreams(nLanes); err != nil {
		return err
	}
	fwd, err := engine(t.cfg.mode)
	if err != nil {
		return err
	}
	fmt.Fprintf(t.out, "testpmd: %s forwarding on %d lcore(s), %d port(s), burst %d\n", t.cfg.mode, nLanes, len(t.ports), t.cfg.burst)
	for _, p := range t.ports {
		fmt.Fprintf(t.out, "  %s mac %s link %s\n", portName(p), p.MAC(), p.Link())
	}
	t.started = time.Now()
	t.last = t.started
	t.lastSeen = make([]ethdev.Stats, len(t.ports))
	for i, p := range t.ports {
		p.ResetStats()
		t.lastSeen[i] = p.Stats()
	}

	var lanesDone atomic.Int32
	lanesDone.Store(int32(nLanes))
	finish := func() {
		if lanesDone.Add(-1) == 0 {
			close(t.done)
		}
	}
	for i := range nLanes {
		lane := t.lanes[i]
		run := func(lcore int) error {
			defer finish()
			return t.forward(lane, lcore, fwd)
		}
		if len(workers) > 0 {
			if err := l.RemoteLaunch(workers[i], run); err != nil {
				return err
			}
		} else {
			go func() {
				if err := l.RunMain(run); err != nil {
					t.fail(err)
				}
			}()
		}
	}
	if t.gen != nil {
		t.gen.start()
	}
	return nil
}

func (t *testpmd) fail(err error) {
	select {
	case t.failed <- err:
	default:
	}
}

// forward is a forwarding lcore's loop: each stream in turn, until stopped.
func (t *testpmd) forward(lane []*stream, lcore int, fwd engineFunc) error {
	for _, s := range lane {
		ethdev.BindLcore(s.rx, lcore)
		ethdev.BindLcore(s.tx, lcore)
	}
	cache := t.pool.Cache(lcore)
	pkts := make([]*mbuf.Mbuf, t.cfg.burst)
	tmpl := newTemplate(t.cfg.txpkts)
	for !t.stopFl.Load() {
		for _, s := range lane {
			fwd(s, pkts, cache, t.pool, &tmpl)
		}
	}
	return nil
}

// stop ends forwarding and waits for the lcores.
func (t *testpmd) stop() {
	if t.stopFl.Swap(true) {
		return
	}
	if t.gen != nil {
		t.gen.stop()
	}
	if t.lanes != nil {
		<-t.done
		t.env.Launcher.WaitAll()
	}
}

func (t *testpmd) close() {
	t.stop()
	for _, p := range t.ports {
		if t.gen == nil || p != t.gen.fwdPort {
			p.Close()
		}
	}
	if t.gen != nil {
		t.gen.close()
	}
}

func (t *testpmd) printStats() {
	now := time.Now()
	secs := now.Sub(t.last).Seconds()
	for i, p := range t.ports {
		s := p.Stats()
		prev := t.lastSeen[i]
		fmt.Fprintf(t.out, "  %-28s RX-packets: %-12d RX-dropped: %-8d TX-packets: %-12d TX-dropped: %-8d Rx-pps: %-10.0f Tx-pps: %.0f\n",
			portName(p), s.RxPackets, s.RxDropped, s.TxPackets, s.TxDropped,
			float64(s.RxPackets-prev.RxPackets)/secs, float64(s.TxPackets-prev.TxPackets)/secs)
		t.lastSeen[i] = s
	}
	t.last = now
}

func (t *testpmd) printSummary() {
	secs := time.Since(t.started).Seconds()
	fmt.Fprintf(t.out, "\n  ---------------------- Forward statistics, %.1f s ----------------------\n", secs)
	var rx, tx uint64
	for _, p := range t.ports {
		s := p.Stats()
		rx += s.RxPackets
		tx += s.TxPackets
		fmt.Fprintf(t.out, "  %-28s RX-packets: %-12d TX-packets: %-12d RX-dropped: %-8d TX-dropped: %-8d RX-pps: %-10.0f TX-pps: %.0f\n",
			portName(p), s.RxPackets, s.TxPackets, s.RxDropped, s.TxDropped, float64(s.RxPackets)/secs, float64(s.TxPackets)/secs)
	}
	fmt.Fprintf(t.out, "  %-28s RX-packets: %-12d TX-packets: %-12d RX-pps: %-10.0f TX-pps: %.0f\n", "all ports", rx, tx, float64(rx)/secs, float64(tx)/secs)
	if t.gen != nil {
		sent, recv := t.gen.counts()
		fmt.Fprintf(t.out, "  %-28s sent: %d received back: %d\n", "built-in generator", sent, recv)
	}
	fmt.Fprintln(t.out, "Done.")
}
