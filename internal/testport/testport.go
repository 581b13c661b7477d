// Package testport sets up what the tests of ethdev and its drivers start
// from: a primary process of a fresh group, a packet pool, a started port,
// a link that came up. Everything it makes is closed at the test's cleanup,
// in the reverse order of making.
package testport

import (
	"testing"
	"time"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
)

// Primary starts the primary process of group g on lcore 0 (CPU 0).
func Primary(tb testing.TB, g hugemem.Options) *mp.Process {
	tb.Helper()
	p, err := mp.Start(mp.Config{Type: mp.Primary, Memory: g, Lcores: []mp.Lcore{{ID: 0, CPUs: []int{0}}}})
	if err != nil {
		tb.Fatalf("testport: start the primary: %v", err)
	}
	tb.Cleanup(func() { p.Close() })
	return p
}

// Pool creates an mbuf pool in proc's group. Closing it at cleanup keeps
// mbuf's process-wide pool table from outliving the group.
func Pool(tb testing.TB, proc *mp.Process, name string, cfg mbuf.PoolConfig) *mbuf.Pool {
	tb.Helper()
	pool, err := mbuf.CreatePool(proc.Mem, name, cfg)
	if err != nil {
		tb.Fatalf("testport: pool %q: %v", name, err)
	}
	tb.Cleanup(pool.Close)
	return pool
}

// Start creates the port device names, configures n queue pairs of desc
// descriptors each, the receive side filled from pool, and starts it.
func Start(tb testing.TB, proc *mp.Process, device string, n, desc int, pool *mbuf.Pool) *ethdev.Port {
	tb.Helper()
	port, err := ethdev.Create(proc, device)
	if err != nil {
		tb.Fatalf("testport: create %q: %v", device, err)
	}
	tb.Cleanup(func() { port.Close() })
	if err := port.Configure(ethdev.Config{RxQueues: n, TxQueues: n}); err != nil {
		tb.Fatalf("testport: %s: configure %d queue pairs: %v", device, n, err)
	}
	for q := range n {
		if err := port.SetupRxQueue(q, desc, pool); err != nil {
			tb.Fatalf("testport: %s: rx queue %d: %v", device, q, err)
		}
		if err := port.SetupTxQueue(q, desc); err != nil {
			tb.Fatalf("testport: %s: tx queue %d: %v", device, q, err)
		}
	}
	if err := port.Start(); err != nil {
		tb.Fatalf("testport: start %s: %v", device, err)
	}
	return port
}

// LinkTimeout bounds WaitLink. It guards against a hang only.
const LinkTimeout = 10 * time.Second

// WaitLink waits until the port's link is up, or down if up is false.
func WaitLink(tb testing.TB, port *ethdev.Port, up bool) {
	tb.Helper()
	deadline := time.Now().Add(LinkTimeout)
	for port.Link().Up != up {
		if time.Now().After(deadline) {
			tb.Fatalf("link of %s: want up=%v, still %v after %v", port.Name(), up, port.Link().Up, LinkTimeout)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
