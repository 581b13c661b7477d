// Package ringperf is a port of DPDK 22.11's ring_perf_autotest (the
// "legacy APIs" half, 8-byte entries) to gopmd's ring, and a parser for the
// autotest's output, so vsdpdk can put both results side by side.
//
// The port keeps the autotest's loops, iteration counts, ring size, thread
// placement and division, so every number is TSC cycles per
// enqueue+dequeue iteration of the named size, exactly as DPDK prints it
// (per object, summed over both sides, for the two-lcore tests). Run
// creates one ring in the caller's hugemem group, uses it for all tests like
// the autotest does, and frees it before returning.
package ringperf

import (
	"fmt"

	"github.com/gopmd/gopmd/bench/internal/machine"
)

// Sync is the producer/consumer mode of a test.
type Sync int

const (
	SPSC Sync = iota // single producer, single consumer
	MPMC             // multi producer, multi consumer
)

func (s Sync) String() string {
	if s == SPSC {
		return "SP/SC"
	}
	return "MP/MC"
}

// Op is the kind of enqueue/dequeue call a test makes.
type Op int

const (
	Single Op = iota // one object per call
	Burst            // as many as possible, up to the size
	Bulk             // exactly the size or nothing
)

func (o Op) String() string {
	return [...]string{"single", "burst", "bulk"}[o]
}

// Place is where and how a test runs.
type Place int

const (
	SingleCore Place = iota // enqueue then dequeue on one lcore
	Empty                   // dequeue from an empty ring on one lcore
	TwoLcores               // enqueue on one lcore, dequeue on another
)

// Test is one row of ring_perf_autotest's legacy section.
type Test struct {
	Name  string
	Place Place
	Sync  Sync
	Op    Op
	Size  int // objects per call; 1 for Single
}

// The autotest's parameters (test_ring_perf.c).
const (
	ringSize   = 4096 // RING_SIZE, flags 0: capacity 4095
	maxBurst   = 32   // MAX_BURST, the length of the object array
	singleIter = 1 << 24
	bulkIter   = 1 << 23 // burst and bulk tests
	emptyIter  = 1 << 26
	pairIter   = 1 << 15
)

// bulkSizes are the autotest's sizes, in its order; the empty-ring test uses
// the first.
var bulkSizes = []int{8, 32}

// pairPrefix is the row-name prefix of the two-lcore tests for each way two
// CPUs can relate; DPDK names the section the same way.
var pairPrefix = map[machine.Relation]string{
	machine.Hyperthreads: "two-hyperthread",
	machine.Cores:        "two-core",
	machine.Sockets:      "two-socket",
}

// Tests lists the legacy tests in the autotest's order. pair says how the
// two lcores relate and so which section the two-lcore rows belong to.
func Tests(pair machine.Relation) []Test {
	var ts []Test
	add := func(place Place, prefix string, s Sync, op Op, size int) {
		ts = append(ts, Test{Name: rowName(prefix, s, op, size), Place: place, Sync: s, Op: op, Size: size})
	}
	for _, s := range []Sync{SPSC, MPMC} {
		add(SingleCore, "single-core", s, Single, 1)
	}
	for _, op := range []Op{Burst, Bulk} {
		for _, s := range []Sync{SPSC, MPMC} {
			for _, n := range bulkSizes {
				add(SingleCore, "single-core", s, op, n)
			}
		}
	}
	for _, s := range []Sync{SPSC, MPMC} {
		add(Empty, "empty", s, Bulk, bulkSizes[0])
	}
	for _, n := range bulkSizes {
		for _, s := range []Sync{SPSC, MPMC} {
			add(TwoLcores, pairPrefix[pair], s, Bulk, n)
		}
	}
	return ts
}

// rowName is e.g. "single-core SP/SC single" or "two-core MP/MC bulk 32".
func rowName(prefix string, s Sync, op Op, size int) string {
	if op == Single {
		return fmt.Sprintf("%s %s %s", prefix, s, op)
	}
	return fmt.Sprintf("%s %s %s %d", prefix, s, op, size)
}
