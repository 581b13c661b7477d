package ethdev

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/mbuf"
)

// Driver makes ports of one kind. Its methods run in the process that calls
// Create (Probe) or Attach (Attach).
type Driver interface {
	// Probe brings up the device behind a new port, in the primary. It
	// records what other processes need in shared memory (SetMAC, SetLink,
	// memzones named after the port) and returns this process's Device.
	Probe(p *Port, dev eal.VDev) (Device, error)
	// Attach builds this process's Device for a port the primary probed,
	// from the shared state alone.
	Attach(p *Port, dev eal.VDev) (Device, error)
}

// Device is one process's driver object for a port. The primary calls every
// method; a secondary calls RxQueue, TxQueue, XStats and Close.
type Device interface {
	// Info says what the device supports.
	Info() Info
	// Configure sets the number of queues while the port is stopped.
	Configure(cfg Config) error
	// SetupRxQueue prepares rx queue q with desc descriptors, filled from pool.
	SetupRxQueue(q, desc int, pool *mbuf.Pool) error
	// SetupTxQueue prepares tx queue q with desc descriptors.
	SetupTxQueue(q, desc int) error
	// Start makes the device move packets; Stop halts it.
	Start() error
	Stop() error
	// SetPromiscuous turns promiscuous reception on or off.
	SetPromiscuous(on bool) error
	// RxQueue returns this process's poller for rx queue q of a started
	// port; counters are the queue's shared counters, for the poller to
	// update.
	RxQueue(q int, counters *QueueCounters) (RxQueue, error)
	// TxQueue returns this process's sender for tx queue q.
	TxQueue(q int, counters *QueueCounters) (TxQueue, error)
	// XStats returns driver-specific named counters.
	XStats() []XStat
	// Close releases what this process holds; in the primary it also
	// releases the device.
	Close() error
}

// RxQueue receives packets: RxBurst fills pkts with as many as are ready
// and returns how many. The caller owns the packets it receives.
type RxQueue interface {
	RxBurst(pkts []*mbuf.Mbuf) int
}

// TxQueue sends packets: TxBurst takes as many of pkts as there is room for
// and returns how many; the queue frees those once sent. The caller keeps
// the rest (to retry or free).
type TxQueue interface {
	TxBurst(pkts []*mbuf.Mbuf) int
}

// Info describes a device's limits.
type Info struct {
	MaxRxQueues int
	MaxTxQueues int
	MaxRxDesc   int
	MaxTxDesc   int
	MinRxDesc   int
	MinTxDesc   int
}

// Config is what Configure takes.
type Config struct {
	RxQueues int
	TxQueues int
}

// XStat is a named counter.
type XStat struct {
	Name  string
	Value uint64
}

var (
	driversMu sync.Mutex
	drivers   = map[string]Driver{}
)

// Register makes a driver available under name (such as "net_memif"). It is
// meant for a driver package's init and panics on a duplicate, as a
// programming error.
func Register(name string, d Driver) {
	driversMu.Lock()
	defer driversMu.Unlock()
	if _, dup := drivers[name]; dup {
		panic("ethdev: driver " + name + " registered twice")
	}
	drivers[name] = d
}

// Drivers lists the registered driver names.
func Drivers() []string {
	driversMu.Lock()
	defer driversMu.Unlock()
	var names []string
	for n := range drivers {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// driverFor finds the driver of a device name: the name without its
// instance number ("net_memif0" is driven by "net_memif").
func driverFor(devName string) (string, Driver, error) {
	name := strings.TrimRight(devName, "0123456789")
	driversMu.Lock()
	d, ok := drivers[name]
	driversMu.Unlock()
	if !ok {
		return name, nil, fmt.Errorf("ethdev: no driver %q for device %q (registered: %s; import the driver's package)",
			name, devName, strings.Join(Drivers(), ", "))
	}
	return name, d, nil
}

// LcoreBinder is implemented by queues that allocate or free mbufs and can
// do it through the polling lcore's mempool cache. Go has no thread-local
// lcore id, so the application says which lcore polls a queue.
type LcoreBinder interface {
	BindLcore(lcore int)
}

// BindLcore tells queue q (an RxQueue or TxQueue) that lcore polls it, so
// it may use that lcore's mempool caches; queues without caches ignore it.
// Call it from the process that claimed the queue, before polling.
func BindLcore(q any, lcore int) {
	if b, ok := q.(LcoreBinder); ok {
		b.BindLcore(lcore)
	}
}
