package main

import (
	"fmt"
	"path/filepath"
	"sync"
	"sync/atomic"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
)

// generator is the built-in traffic source used when no device is given:
// a memif pair inside this process. The server end is the port testpmd
// forwards on; the generator drives the client end, sending txonly bursts
// into it and draining whatever the forwarding sends back.
type generator struct {
	fwdPort, genPort *ethdev.Port
	pool             *mbuf.Pool
	cfg              appConfig

	stopFl       atomic.Bool
	wg           sync.WaitGroup
	sent, recved atomic.Uint64
}

func newGenerator(env *eal.Env, pool *mbuf.Pool, cfg appConfig) (*generator, error) {
	sock := filepath.Join(env.Mem.RuntimeDir(), "testpmd-memif.sock")
	fwd, err := ethdev.Create(env.Proc, fmt.Sprintf("net_memif0,role=server,socket=%s,id=0", sock))
	if err != nil {
		return nil, fmt.Errorf("built-in memif pair: %w", err)
	}
	gen, err := ethdev.Create(env.Proc, fmt.Sprintf("net_memif1,role=client,socket=%s,id=0", sock))
	if err != nil {
		fwd.Close()
		return nil, fmt.Errorf("built-in memif pair: %w", err)
	}
	g := &generator{fwdPort: fwd, genPort: gen, pool: pool, cfg: cfg}
	if err := gen.Configure(ethdev.Config{RxQueues: cfg.rxq, TxQueues: cfg.rxq}); err != nil {
		g.close()
		return nil, err
	}
	for q := range cfg.rxq {
		if err := gen.SetupRxQueue(q, cfg.rxd, pool); err != nil {
			g.close()
			return nil, err
		}
		if err := gen.SetupTxQueue(q, cfg.txd); err != nil {
			g.close()
			return nil, err
		}
	}
	if err := gen.Start(); err != nil {
		g.close()
		return nil, err
	}
	return g, nil
}

// start runs the generator on its own goroutine, outside the lcores.
func (g *generator) start() {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		g.loop()
	}()
}

func (g *generator) loop() {
	var rx []ethdev.RxQueue
	var tx []ethdev.TxQueue
	for q := range g.cfg.rxq {
		r, err1 := g.genPort.RxQueue(q)
		t, err2 := g.genPort.TxQueue(q)
		if err1 != nil || err2 != nil {
			return
		}
		rx, tx = append(rx, r), append(tx, t)
	}
	pkts := make([]*mbuf.Mbuf, g.cfg.burst)
	tmpl := newTemplate(g.cfg.txpkts)
	src := [6]byte(g.genPort.MAC())
	dst := [6]byte(g.fwdPort.MAC())
	for !g.stopFl.Load() {
		for q := range tx {
			if g.pool.AllocBulk(nil, pkts) == nil {
				for _, m := range pkts {
					tmpl.write(m, src, dst)
				}
				n := tx[q].TxBurst(pkts)
				g.sent.Add(uint64(n))
				mbuf.FreeBulk(nil, pkts[n:])
			}
			if n := rx[q].RxBurst(pkts); n > 0 {
				g.recved.Add(uint64(n))
				mbuf.FreeBulk(nil, pkts[:n])
			}
		}
	}
}

func (g *generator) counts() (sent, received uint64) { return g.sent.Load(), g.recved.Load() }

func (g *generator) stop() {
	g.stopFl.Store(true)
	g.wg.Wait()
}

func (g *generator) close() {
	g.stop()
	g.genPort.Close()
	g.fwdPort.Close()
}
