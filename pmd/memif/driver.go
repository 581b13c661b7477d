package memif

import (
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
)

func init() { ethdev.Register("net_memif", driver{}) }

// linkMbps is the speed a connected memif reports, as DPDK's does.
const linkMbps = 100000

type driver struct{}

func (driver) Probe(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	cfg, err := parseArgs(dev)
	if err != nil {
		return nil, err
	}
	sh, err := createShared(p.Memory(), p.Name(), cfg.role)
	if err != nil {
		return nil, err
	}
	p.SetMAC(cfg.mac)
	p.SetLink(ethdev.Link{})
	return &device{port: p, cfg: cfg, sh: sh, primary: true, log: logger(p, cfg)}, nil
}

func (driver) Attach(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	cfg, err := parseArgs(dev)
	if err != nil {
		return nil, err
	}
	sh, err := lookupShared(p.Memory(), p.Name())
	if err != nil {
		return nil, err
	}
	return &device{port: p, cfg: cfg, sh: sh, log: logger(p, cfg)}, nil
}

func logger(p *ethdev.Port, cfg config) *slog.Logger {
	return slog.Default().With("port", p.Name(), "role", cfg.role.String(), "socket", cfg.socket, "id", cfg.id)
}

// device is one process's net_memif driver object. In the primary it also
// owns the control channel.
type device struct {
	port    *ethdev.Port
	cfg     config
	sh      *sharedState
	primary bool
	log     *slog.Logger

	mu       sync.Mutex
	nrx, ntx int      // configured queues (primary)
	ctl      *control // running control channel (primary, started port)
	queues   []*queue // this process's pollers, unmapped on Close
}

func (d *device) Info() ethdev.Info {
	return ethdev.Info{MaxRxQueues: ethdev.MaxQueues, MaxTxQueues: ethdev.MaxQueues,
		MinRxDesc: 1, MaxRxDesc: 1 << 16, MinTxDesc: 1, MaxTxDesc: 1 << 16}
}

// Configure records the queue counts: they bound the rings a connection
// gets (a client asks for one ring per queue, a server accepts no more).
// Descriptor counts given to the queue setups are ignored: the ring size
// is rsize, negotiated with the peer.
func (d *device) Configure(cfg ethdev.Config) error {
	if d.cfg.role == roleClient {
		rings := uint64(cfg.RxQueues + cfg.TxQueues)
		size := rings * (ringBytes(d.cfg.log2Ring) + uint64(d.cfg.bufSize)<<d.cfg.log2Ring)
		if size > maxRegionSize {
			return fmt.Errorf("%d rings of 2^%d buffers of %d bytes need a region of %d bytes; memif offsets are 32-bit, so at most %d",
				rings, d.cfg.log2Ring, d.cfg.bufSize, size, uint64(maxRegionSize))
		}
	}
	d.mu.Lock()
	d.nrx, d.ntx = cfg.RxQueues, cfg.TxQueues
	d.mu.Unlock()
	return nil
}

func (d *device) queueCounts() (rx, tx int) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.nrx, d.ntx
}

func (d *device) SetupRxQueue(q, desc int, pool *mbuf.Pool) error { return nil }
func (d *device) SetupTxQueue(q, desc int) error                  { return nil }

// SetPromiscuous accepts either setting: a memif link carries every frame.
func (d *device) SetPromiscuous(bool) error { return nil }

// Start opens the control channel: a server listens, a client starts
// connecting (and keeps retrying).
func (d *device) Start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.ctl != nil {
		return nil
	}
	c, err := startControl(d)
	if err != nil {
		return err
	}
	d.ctl = c
	return nil
}

// Stop disconnects the peer (telling it why) and closes the control
// channel; the link goes down.
func (d *device) Stop() error {
	d.mu.Lock()
	c := d.ctl
	d.ctl = nil
	d.mu.Unlock()
	if c != nil {
		c.stop()
	}
	return nil
}

func (d *device) RxQueue(q int, counters *ethdev.QueueCounters) (ethdev.RxQueue, error) {
	pool, err := d.port.RxPool(q)
	if err != nil {
		return nil, fmt.Errorf("packet pool of rx queue %d: %w", q, err)
	}
	return d.newQueue(q, true, counters, pool), nil
}

func (d *device) TxQueue(q int, counters *ethdev.QueueCounters) (ethdev.TxQueue, error) {
	return d.newQueue(q, false, counters, nil), nil
}

func (d *device) newQueue(q int, rx bool, counters *ethdev.QueueCounters, pool *mbuf.Pool) *queue {
	qq := &queue{sh: d.sh, q: q, rx: rx, server: d.cfg.role == roleServer, counters: counters,
		pool: pool, lcore: -1, port: d.port.ID, log: d.log}
	d.mu.Lock()
	d.queues = append(d.queues, qq)
	d.mu.Unlock()
	return qq
}

// XStats are the connection counters.
func (d *device) XStats() []ethdev.XStat {
	return []ethdev.XStat{
		{Name: "memif_connects", Value: atomic.LoadUint64(&d.sh.Connects)},
		{Name: "memif_disconnects", Value: atomic.LoadUint64(&d.sh.Disconnects)},
		{Name: "memif_refused_peers", Value: atomic.LoadUint64(&d.sh.Refused)},
		{Name: "memif_ring_errors", Value: atomic.LoadUint64(&d.sh.RingErrors)},
	}
}

// Close unmaps this process's view of the rings; the pollers must have
// stopped. The rx pools' handles are the Port's (ethdev.Port.RxPool), which
// closes them after this. In the primary it also ends the control channel.
// The shared state memzone stays, for a port of the same name to reuse.
func (d *device) Close() error {
	d.Stop()
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, q := range d.queues {
		q.unmapAll()
	}
	d.queues = nil
	return nil
}
