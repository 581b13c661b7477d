package ringperf

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"

	"github.com/gopmd/gopmd/bench/internal/spin"
	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/ring"
	"github.com/gopmd/gopmd/timer"
)

// RingName is the ring Run creates in the group, the autotest's name.
const RingName = "RING_PERF"

// Run runs tests in their order on gopmd's ring and returns the cycles of
// each, in the same unit as the autotest. One ring of the autotest's size
// and default (MP/MC) flags is created in mem and shared by all tests. As in
// the autotest, the single-lcore tests run on l's main lcore, and the
// two-lcore tests enqueue on the main lcore and dequeue on the first worker
// lcore. ctx is checked between tests.
func Run(ctx context.Context, mem *hugemem.Memory, l *eal.Launcher, tests []Test) ([]float64, error) {
	if len(l.Workers()) == 0 {
		for _, t := range tests {
			if t.Place == TwoLcores {
				return nil, fmt.Errorf("ring perf %s: needs a worker lcore besides the main one", t.Name)
			}
		}
	}
	r, err := ring.Create(mem, RingName, ringSize, 0)
	if err != nil {
		return nil, fmt.Errorf("ring perf: %w", err)
	}
	defer r.Free()

	// The two-lcore tests measure SP/SC and MP/MC in one run per size, like
	// the autotest; a selected row of either mode runs the pair once.
	pairs := map[int]pairResult{}
	out := make([]float64, len(tests))
	for i, t := range tests {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		// The autotest ignores what the calls return; one untimed round
		// first makes sure they succeed here (and that a pair test cannot
		// spin forever), so a broken ring cannot pass for a fast one.
		if err := l.RunMain(func(int) error { return probe(r, t) }); err != nil {
			return nil, fmt.Errorf("ring perf %s: %w", t.Name, err)
		}
		if t.Place == TwoLcores {
			p, done := pairs[t.Size]
			if !done {
				if p, err = runPair(r, l, t.Size); err != nil {
					return nil, fmt.Errorf("ring perf %s: %w", t.Name, err)
				}
				pairs[t.Size] = p
			}
			out[i] = p.spsc
			if t.Sync == MPMC {
				out[i] = p.mpmc
			}
		} else {
			err = l.RunMain(func(int) error {
				out[i] = runOneLcore(r, t)
				return nil
			})
			if err != nil {
				return nil, fmt.Errorf("ring perf %s: %w", t.Name, err)
			}
		}
		if n := r.Count(); n != 0 {
			return nil, fmt.Errorf("ring perf %s: ring holds %d entries after the test, want 0 (an enqueue or dequeue failed)", t.Name, n)
		}
	}
	return out, nil
}

// probe makes one enqueue and one dequeue of the test's kind (or, for
// Empty, one dequeue) and checks that they move the right number of
// entries.
func probe(r *ring.Ring, t Test) error {
	objs := make([]uint64, t.Size)
	enq, deq := uint32(0), uint32(0)
	switch {
	case t.Place == Empty:
		if t.Sync == SPSC {
			deq = r.SCDequeueBulk(objs)
		} else {
			deq = r.MCDequeueBulk(objs)
		}
		if deq != 0 {
			return fmt.Errorf("dequeue of %d from the empty ring returned %d, want 0", t.Size, deq)
		}
		return nil
	case t.Op == Single:
		// The autotest's loops move the ring's indices by whole cache
		// lines (8 entries) only, so the bulks of 8 and 32 of the tests
		// that follow each fill whole lines of slots; one entry in and
		// out would shift them all across two lines (about 1.5x the
		// cycles in the two-lcore tests). So the probe moves 8.
		for range cacheLineEntries {
			var ok1, ok2 bool
			if t.Sync == SPSC {
				ok1 = r.SPEnqueue(1)
				_, ok2 = r.SCDequeue()
			} else {
				ok1 = r.MPEnqueue(1)
				_, ok2 = r.MCDequeue()
			}
			enq, deq = b2u(ok1), b2u(ok2)
			if !ok1 || !ok2 {
				break
			}
		}
	case t.Op == Burst && t.Sync == SPSC:
		enq, deq = r.SPEnqueueBurst(objs), r.SCDequeueBurst(objs)
	case t.Op == Burst:
		enq, deq = r.MPEnqueueBurst(objs), r.MCDequeueBurst(objs)
	case t.Sync == SPSC:
		enq, deq = r.SPEnqueueBulk(objs), r.SCDequeueBulk(objs)
	default:
		enq, deq = r.MPEnqueueBulk(objs), r.MCDequeueBulk(objs)
	}
	if enq != uint32(t.Size) || deq != uint32(t.Size) {
		return fmt.Errorf("%s %s of %d entries moved %d in and %d out, want %d and %d", t.Sync, t.Op, t.Size, enq, deq, t.Size, t.Size)
	}
	return nil
}

// cacheLineEntries is how many 8-byte entries fill a 64-byte cache line.
const cacheLineEntries = 8

func b2u(b bool) uint32 {
	if b {
		return 1
	}
	return 0
}

// runOneLcore runs a single-lcore test and returns cycles per iteration:
// test_single_enqueue_dequeue, test_burst_bulk_enqueue_dequeue (for one
// size) and test_empty_dequeue. Each mode has its own loop so the loop body
// is the call itself, as in the autotest after inlining.
func runOneLcore(r *ring.Ring, t Test) float64 {
	objs := make([]uint64, maxBurst)
	b := objs[:t.Size]
	var start, end uint64
	iters := bulkIter
	switch {
	case t.Place == Empty:
		iters = emptyIter
		if t.Sync == SPSC {
			start = timer.Cycles()
			for i := 0; i < iters; i++ {
				r.SCDequeueBulk(b)
			}
			end = timer.Cycles()
		} else {
			start = timer.Cycles()
			for i := 0; i < iters; i++ {
				r.MCDequeueBulk(b)
			}
			end = timer.Cycles()
		}
	case t.Op == Single:
		iters = singleIter
		if t.Sync == SPSC {
			start = timer.Cycles()
			for i := 0; i < iters; i++ {
				r.SPEnqueue(objs[0])
				objs[0], _ = r.SCDequeue()
			}
			end = timer.Cycles()
		} else {
			start = timer.Cycles()
			for i := 0; i < iters; i++ {
				r.MPEnqueue(objs[0])
				objs[0], _ = r.MCDequeue()
			}
			end = timer.Cycles()
		}
	case t.Op == Burst && t.Sync == SPSC:
		start = timer.Cycles()
		for i := 0; i < iters; i++ {
			r.SPEnqueueBurst(b)
			r.SCDequeueBurst(b)
		}
		end = timer.Cycles()
	case t.Op == Burst && t.Sync == MPMC:
		start = timer.Cycles()
		for i := 0; i < iters; i++ {
			r.MPEnqueueBurst(b)
			r.MCDequeueBurst(b)
		}
		end = timer.Cycles()
	case t.Op == Bulk && t.Sync == SPSC:
		start = timer.Cycles()
		for i := 0; i < iters; i++ {
			r.SPEnqueueBulk(b)
			r.SCDequeueBulk(b)
		}
		end = timer.Cycles()
	default: // Bulk, MPMC
		start = timer.Cycles()
		for i := 0; i < iters; i++ {
			r.MPEnqueueBulk(b)
			r.MCDequeueBulk(b)
		}
		end = timer.Cycles()
	}
	return float64(end-start) / float64(iters)
}

// pairResult is the autotest's result for one size on two lcores: cycles
// per object of the enqueue side plus those of the dequeue side.
type pairResult struct{ spsc, mpmc float64 }

// runPair is run_on_core_pair for one size: the main lcore enqueues and the
// first worker dequeues, first pairIter bulks with SP/SC, then pairIter with
// MP/MC, each side timing itself and retrying (with a pause) while the ring
// is full or empty. Both start together, like the autotest's lcore_count
// barrier.
func runPair(r *ring.Ring, l *eal.Launcher, size int) (pairResult, error) {
	var arrived atomic.Int32
	side := func(enqueue bool) (res pairResult) {
		objs := make([]uint64, maxBurst)
		b := objs[:size]
		if arrived.Add(1) != 2 {
			for arrived.Load() != 2 {
				spin.Pause()
			}
		}
		var spStart, spEnd, mpStart, mpEnd uint64
		if enqueue {
			spStart = timer.Cycles()
			for n := 0; n < pairIter; n++ {
				for r.SPEnqueueBulk(b) == 0 {
					spin.Pause()
				}
			}
			spEnd = timer.Cycles()
			mpStart = timer.Cycles()
			for n := 0; n < pairIter; n++ {
				for r.MPEnqueueBulk(b) == 0 {
					spin.Pause()
				}
			}
			mpEnd = timer.Cycles()
		} else {
			spStart = timer.Cycles()
			for n := 0; n < pairIter; n++ {
				for r.SCDequeueBulk(b) == 0 {
					spin.Pause()
				}
			}
			spEnd = timer.Cycles()
			mpStart = timer.Cycles()
			for n := 0; n < pairIter; n++ {
				for r.MCDequeueBulk(b) == 0 {
					spin.Pause()
				}
			}
			mpEnd = timer.Cycles()
		}
		perObj := float64(pairIter * size)
		return pairResult{spsc: float64(spEnd-spStart) / perObj, mpmc: float64(mpEnd-mpStart) / perObj}
	}

	var enq, deq pairResult
	worker := l.Workers()[0]
	if err := l.RemoteLaunch(worker, func(int) error { deq = side(false); return nil }); err != nil {
		return pairResult{}, err
	}
	mainRan := false
	mainErr := l.RunMain(func(int) error { mainRan = true; enq = side(true); return nil })
	if !mainRan {
		side(true) // the worker waits for a partner; release it before reporting
	}
	if err := errors.Join(mainErr, l.Wait(worker)); err != nil {
		return pairResult{}, err
	}
	return pairResult{spsc: enq.spsc + deq.spsc, mpmc: enq.mpmc + deq.mpmc}, nil
}
