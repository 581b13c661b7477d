// Package ring is the net_ring driver: a port whose queues are shared-memory
// rings, so packets sent on tx queue q come back on rx queue q of the same
// port. It needs no device, which makes it the simplest way to exercise
// ethdev, the forwarding loop and multi-process queue ownership; like
// DPDK's net_ring, it moves mbuf references and never copies a packet.
//
//	--vdev net_ring0[,size=N]   (N ring slots per queue, a power of two; 1024 by default)
//
// The rings are memzones named after the port and the queue. The primary
// makes them fresh on each Configure (freeing the mbufs a previous
// configuration left in them) and, when the port closes, frees the mbufs
// still in flight and the rings; a port created again under the same name
// so starts from empty rings of the size it asks for.
package ring

import (
	"errors"
	"fmt"
	"strconv"
	"unsafe"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/ring"
)

func init() { ethdev.Register("net_ring", driver{}) }

const (
	defaultSize = 1024
	maxBurst    = 512 // packets one RxBurst or TxBurst handles; larger slices are served in part
)

type driver struct{}

func (driver) Probe(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	d, err := newDevice(p, dev)
	if err != nil {
		return nil, err
	}
	p.SetMAC([]byte{0x02, 0x70, 0x6d, 0x64, 0x00, byte(p.ID)}) // locally administered
	p.SetLink(ethdev.Link{Up: true, Mbps: 10000})
	return d, nil
}

func (driver) Attach(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	return newDevice(p, dev)
}

func newDevice(p *ethdev.Port, dev eal.VDev) (*device, error) {
	d := &device{port: p, size: defaultSize}
	for _, kv := range dev.Args {
		switch kv.Key {
		case "size":
			n, err := strconv.ParseUint(kv.Value, 10, 32)
			if err != nil || n < 2 || n&(n-1) != 0 || n > 1<<20 {
				return nil, fmt.Errorf("size=%q: want a power of two from 2 to 1048576", kv.Value)
			}
			d.size = uint32(n)
		default:
			return nil, fmt.Errorf("unknown argument %q (net_ring takes size)", kv.Key)
		}
	}
	return d, nil
}

type device struct {
	port *ethdev.Port
	size uint32
}

func (d *device) ringName(q int) string { return fmt.Sprintf("%s_%d", d.port.Name(), q) }

func (d *device) Info() ethdev.Info {
	return ethdev.Info{MaxRxQueues: ethdev.MaxQueues, MaxTxQueues: ethdev.MaxQueues,
		MinRxDesc: 1, MaxRxDesc: 1 << 15, MinTxDesc: 1, MaxTxDesc: 1 << 15}
}

// Configure creates one ring per queue pair; rx and tx queue q share it.
// Rings of an earlier configuration, or of an earlier port of the same
// name, are drained and freed first: their size may differ, and the mbuf
// offsets in them are stale.
func (d *device) Configure(cfg ethdev.Config) error {
	if cfg.RxQueues != cfg.TxQueues {
		return fmt.Errorf("net_ring loops tx queue q back to rx queue q, so it needs as many rx as tx queues (got %d and %d)", cfg.RxQueues, cfg.TxQueues)
	}
	if err := d.freeRings(); err != nil {
		return err
	}
	mem := d.port.Memory()
	for q := range cfg.RxQueues {
		if _, err := ring.Create(mem, d.ringName(q), d.size, ring.SPEnq|ring.SCDeq); err != nil {
			return err
		}
	}
	return nil
}

// freeRings frees the mbufs in every ring of the port, then the rings.
func (d *device) freeRings() error {
	mem := d.port.Memory()
	var errs []error
	for q := range ethdev.MaxQueues {
		r, err := ring.Lookup(mem, d.ringName(q))
		if errors.Is(err, hugemem.ErrNotFound) {
			continue
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		errs = append(errs, drain(mem, r), r.Free())
	}
	return errors.Join(errs...)
}

// drain frees the mbufs whose offsets r holds.
func drain(mem *hugemem.Memory, r *ring.Ring) error {
	var offs [64]uint64
	var ms [64]*mbuf.Mbuf
	var errs []error
	for {
		n := int(r.DequeueBurst(offs[:]))
		if n == 0 {
			return errors.Join(errs...)
		}
		for i, off := range offs[:n] {
			ms[i] = mbuf.FromOff(mem, off)
		}
		if err := mbuf.FreeBulk(nil, ms[:n]); err != nil {
			errs = append(errs, fmt.Errorf("free mbufs left in ring %q: %w", r.Name(), err))
		}
	}
}

func (d *device) SetupRxQueue(q, desc int, pool *mbuf.Pool) error { return nil }
func (d *device) SetupTxQueue(q, desc int) error                  { return nil }
func (d *device) Start() error                                    { return nil }
func (d *device) Stop() error                                     { return nil }
func (d *device) SetPromiscuous(bool) error                       { return nil }
func (d *device) XStats() []ethdev.XStat                          { return nil }

// Close frees, in the primary, the mbufs in flight and the rings: ethdev
// closes a port in the primary only once no other process polls it.
func (d *device) Close() error {
	if !d.port.Primary() {
		return nil
	}
	return d.freeRings()
}

func (d *device) RxQueue(q int, c *ethdev.QueueCounters) (ethdev.RxQueue, error) {
	return d.queue(q, c)
}

func (d *device) TxQueue(q int, c *ethdev.QueueCounters) (ethdev.TxQueue, error) {
	return d.queue(q, c)
}

// queue gives each claim its own object: rx and tx of one queue pair may be
// polled by different goroutines or processes, and offs is scratch space.
func (d *device) queue(q int, c *ethdev.QueueCounters) (*queue, error) {
	r, err := ring.Lookup(d.port.Memory(), d.ringName(q))
	if err != nil {
		return nil, err
	}
	return &queue{r: r, mem: d.port.Memory(), counters: c}, nil
}

// queue is one end of a ring: rx dequeues from it, tx enqueues to it.
type queue struct {
	r        *ring.Ring
	mem      *hugemem.Memory
	counters *ethdev.QueueCounters
	offs     [maxBurst]uint64 // group offsets of the mbufs in flight
}

// RxBurst takes mbuf offsets off the ring and turns them into pointers in
// this process.
func (q *queue) RxBurst(pkts []*mbuf.Mbuf) int {
	n := int(q.r.SCDequeueBurst(q.offs[:min(len(pkts), maxBurst)]))
	var bytes uint64
	for i, off := range q.offs[:n] {
		m := (*mbuf.Mbuf)(q.mem.Ptr(off))
		pkts[i] = m
		bytes += uint64(m.PktLen())
	}
	if n > 0 {
		q.counters.Count(uint64(n), bytes)
	}
	return n
}

// TxBurst puts the mbufs' offsets on the ring; the receiver frees them.
func (q *queue) TxBurst(pkts []*mbuf.Mbuf) int {
	pkts = pkts[:min(len(pkts), maxBurst)]
	var bytes uint64
	for i, m := range pkts {
		q.offs[i] = q.mem.Off(unsafe.Pointer(m))
		bytes += uint64(m.PktLen())
	}
	n := int(q.r.SPEnqueueBurst(q.offs[:len(pkts)]))
	if n < len(pkts) {
		for _, m := range pkts[n:] {
			bytes -= uint64(m.PktLen())
		}
	}
	if n > 0 {
		q.counters.Count(uint64(n), bytes)
	}
	return n
}
