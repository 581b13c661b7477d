// Command mp_client is a client of the client_server_mp sample, the Go
// counterpart of DPDK's: a secondary process that takes the packets
// mp_server hands it on its ring, MProc_Client_<n>_RX, and sends each out
// of the port paired with the one it came in on (ports 0 and 1, 2 and 3,
// ...; an odd last port sends back out of itself), on tx queue n.
//
//	mp_client [EAL options] --proc-type auto -- -n CLIENT_ID
//
// Give each client its own lcore id (-l, or --lcores to put several on
// one CPU) and the server's --file-prefix. The client finds the pool, its
// ring and the ports through the memzone MProc_port_info, where it also
// keeps its counters for the server to print. It refuses an id that a live
// client holds; the id of a client that died is free again once the server
// has drained its ring (a new client waits up to 5 s for that).
//
// On SIGINT or SIGTERM, or when the server exits, the client stops, hands
// its id back (the server drains what is left in its ring), prints its
// counts and exits with status 0.
package main

import (
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
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/memif"
	_ "github.com/gopmd/gopmd/pmd/ring"
	"github.com/gopmd/gopmd/ring"
)

// claimWait is how long a client waits for its id to be handed back.
const claimWait = 5 * time.Second

func parseApp(args []string, errOut io.Writer) (int, error) {
	fs := flag.NewFlagSet("mp_client", flag.ContinueOnError)
	fs.SetOutput(errOut)
	id := fs.Int("n", -1, "client id, 0 to the server's number of clients - 1")
	if err := fs.Parse(args); err != nil {
		return 0, err
	}
	switch {
	case fs.NArg() > 0:
		return 0, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	case *id < 0 || *id >= shared.MaxClients:
		return 0, fmt.Errorf("-n %d: want a client id from 0 to %d", *id, shared.MaxClients-1)
	}
	return *id, nil
}

func main() {
	os.Exit(eal.Main("mp_client", os.Args[1:], parseApp, run))
}

func run(env *eal.Env, id int) int {
	out := os.Stdout
	if env.Proc.Type() != mp.Secondary {
		fmt.Fprintf(os.Stderr, "mp_client: no mp_server runs in group %q (this process became the primary): start the server first\n", env.Options.FilePrefix)
		return 1
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)

	c, err := newClient(env, id)
	if c != nil {
		defer c.close()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "mp_client %d: %v\n", id, err)
		return 1
	}
	fmt.Fprintf(out, "mp_client %d: running (pid %d) on lcore %d, sending on tx queue %d of %d port(s)\n",
		id, os.Getpid(), c.lcore, id, len(c.ports))

	stopping := func(s os.Signal) {
		if s == nil {
			fmt.Fprintf(out, "mp_client %d: the server has exited, stopping\n", id)
			return
		}
		fmt.Fprintf(out, "mp_client %d: signal %v received, stopping\n", id, s)
	}
	if err := env.RunMainUntil(sig, stopping, c.loop); err != nil {
		fmt.Fprintf(os.Stderr, "mp_client %d: %v\n", id, err)
		return 1
	}
	c.leave()
	rec := c.rec
	fmt.Fprintf(out, "mp_client %d: rx=%d tx=%d tx_drop=%d\n", id, rec.Rx, rec.Tx, rec.TxDrop)
	return 0
}

type client struct {
	env     *eal.Env
	id      int
	lcore   int
	info    *shared.Info
	rec     *shared.Client
	claimed bool
	ring    *ring.Ring
	pool    *mbuf.Pool
	ports   []*ethdev.Port
	tx      []ethdev.TxQueue
	index   [ethdev.MaxPorts]int // port id -> index in ports, -1 for none
}

func newClient(env *eal.Env, id int) (*client, error) {
	info, err := shared.Lookup(env.Mem)
	if err != nil {
		return nil, err
	}
	if id >= int(info.NumClients) {
		return nil, fmt.Errorf("-n %d: the server serves clients 0 to %d", id, info.NumClients-1)
	}
	c := &client{env: env, id: id, lcore: env.Launcher.Main(), info: info, rec: &info.Clients[id]}
	if err := c.claim(); err != nil {
		return nil, err
	}
	if c.ring, err = ring.Lookup(env.Mem, shared.RingName(id)); err != nil {
		return c, err
	}
	if c.pool, err = mbuf.LookupPool(env.Mem, shared.PoolName); err != nil {
		return c, err
	}
	for i := range c.index {
		c.index[i] = -1
	}
	for i := range int(info.NumPorts) {
		p, err := ethdev.Attach(env.Proc, info.PortName(i))
		if err != nil {
			return c, err
		}
		c.ports = append(c.ports, p)
		if int(p.ID) < len(c.index) {
			c.index[p.ID] = i
		}
	}
	for i := range c.ports {
		tx, err := c.ports[i].TxQueue(id)
		if err != nil {
			return c, err
		}
		ethdev.BindLcore(tx, c.lcore)
		c.tx = append(c.tx, tx)
	}
	return c, nil
}

// claim takes the client record: an idle one, or a running one whose owner
// died before the server noticed (the ring's packets are then ours to
// send). A record the server is draining is waited for.
func (c *client) claim() error {
	deadline := time.Now().Add(claimWait)
	for {
		var busy error
		err := c.env.Mem.WithLock(func() error {
			switch st := atomic.LoadUint32(&c.rec.State); {
			case st == shared.Idle, st == shared.Running && !c.rec.Owner.Alive():
				c.rec.Owner = mp.Self()
				atomic.StoreUint32(&c.rec.State, shared.Running)
				return nil
			case st == shared.Running:
				return fmt.Errorf("client id %d is in use by pid %d", c.id, c.rec.Owner.PID)
			default:
				busy = fmt.Errorf("client id %d is %s: the server is draining its ring", c.id, shared.StateName(st))
				return busy
			}
		})
		if err == nil {
			c.claimed = true
			return nil
		}
		if busy == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// leave hands the id back: the server drains the ring and frees the id.
func (c *client) leave() {
	if !c.claimed {
		return
	}
	c.claimed = false
	me := mp.Self()
	c.env.Mem.WithLock(func() error {
		if atomic.LoadUint32(&c.rec.State) == shared.Running && c.rec.Owner == me {
			atomic.StoreUint32(&c.rec.State, shared.Leaving)
		}
		return nil
	})
}

func (c *client) close() {
	c.leave()
	for _, p := range c.ports {
		p.Close()
	}
	if c.pool != nil {
		c.pool.Close()
	}
}

// loop takes bursts from the ring and sends each packet out of the port
// paired with its input port, until stop is set.
func (c *client) loop(stop *atomic.Bool) {
	cache := c.pool.Cache(c.lcore)
	mem := c.env.Mem
	n := len(c.ports)
	var handles [shared.Burst]uint64
	out := make([][]*mbuf.Mbuf, n)
	for i := range out {
		out[i] = make([]*mbuf.Mbuf, 0, shared.Burst)
	}
	var strays [shared.Burst]*mbuf.Mbuf
	for !stop.Load() {
		k := int(c.ring.SCDequeueBurst(handles[:]))
		if k == 0 {
			continue
		}
		shared.Add(&c.rec.Rx, uint64(k))
		nstray := 0
		for _, h := range handles[:k] {
			m := mbuf.FromOff(mem, h)
			in := -1
			if p := int(m.Port()); p < len(c.index) {
				in = c.index[p]
			}
			if in < 0 { // not from one of the server's ports
				strays[nstray] = m
				nstray++
				continue
			}
			o := shared.PeerOf(in, n)
			out[o] = append(out[o], m)
		}
		var sent, dropped int
		for i, pkts := range out {
			if len(pkts) == 0 {
				continue
			}
			s := c.tx[i].TxBurst(pkts)
			if s < len(pkts) {
				mbuf.FreeBulk(cache, pkts[s:])
			}
			sent += s
			dropped += len(pkts) - s
			out[i] = pkts[:0]
		}
		if nstray > 0 {
			mbuf.FreeBulk(cache, strays[:nstray])
			dropped += nstray
		}
		shared.Add(&c.rec.Tx, uint64(sent))
		shared.Add(&c.rec.TxDrop, uint64(dropped))
	}
}
