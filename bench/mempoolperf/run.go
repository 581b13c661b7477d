package mempoolperf

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/bench/internal/spin"
	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mempool"
	"github.com/gopmd/gopmd/timer"
)

// Pool names, the autotest's.
const (
	nameNoCache = "perf_test_nocache"
	nameCache   = "perf_test_cache"
)

// Run runs rows in order on gopmd's mempool and returns each row's
// rate_persec. Like the autotest it builds two pools in mem of
// PoolSize(lcores) objects of 2048 bytes, where lcores counts l's main and
// worker lcores, one pool without a cache and one with 512-object caches,
// numbers the objects, and runs a row with Cores lcores on the main lcore
// and the first Cores-1 workers, each through the cache of its lcore id.
// Every lcore loops for cycles TSC cycles; the rate is the objects it moved
// divided by seconds, summed over lcores. ctx is checked between rows. The
// pools are freed before Run returns.
func Run(ctx context.Context, mem *hugemem.Memory, l *eal.Launcher, rows []Row, cycles uint64, seconds float64) ([]float64, error) {
	lcores := 1 + len(l.Workers())
	for _, r := range rows {
		if err := r.Check(lcores); err != nil {
			return nil, err
		}
	}
	if cycles == 0 || !(seconds > 0) {
		return nil, fmt.Errorf("mempool perf: duration of %d cycles, %v s: both must be positive", cycles, seconds)
	}
	size := PoolSize(lcores)
	pools := map[int]*mempool.Pool{}
	for _, cache := range []int{0, cacheMax} {
		name := nameNoCache
		if cache != 0 {
			name = nameCache
		}
		var i uint32
		p, err := mempool.Create(mem, name, mempool.Config{
			N: uint32(size), EltSize: EltSize, CacheSize: uint32(cache),
			// The autotest's my_obj_init: zero the object, number it.
			Init: func(_ *mempool.Pool, obj unsafe.Pointer, _ uint64) {
				clear(unsafe.Slice((*byte)(obj), EltSize))
				*(*uint32)(obj) = i
				i++
			},
		})
		if err != nil {
			return nil, fmt.Errorf("mempool perf: %w", err)
		}
		defer p.Free()
		pools[cache] = p
	}

	out := make([]float64, len(rows))
	for i, r := range rows {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		p := pools[r.Cache]
		if avail := p.Avail(); avail != uint32(size) {
			return nil, fmt.Errorf("mempool perf %s: pool %s is not full before the row: %d of %d objects available", r.Name(), p.Name(), avail, size)
		}
		rate, err := runRow(p, l, r, cycles, seconds)
		if err != nil {
			return nil, fmt.Errorf("mempool perf %s: %w", r.Name(), err)
		}
		out[i] = rate
	}
	return out, nil
}

// runRow is launch_cores with per_lcore_mempool_test: workers are launched
// first and wait until the main lcore starts.
func runRow(p *mempool.Pool, l *eal.Launcher, r Row, cycles uint64, seconds float64) (float64, error) {
	var started atomic.Bool
	workers := l.Workers()[:r.Cores-1]
	moved := make([]uint64, r.Cores)
	lcoreLoop := func(slot, lcoreID int) error {
		if slot == 0 {
			started.Store(true)
		} else {
			for !started.Load() {
				spin.Pause()
			}
		}
		n, err := loop(p, p.Cache(lcoreID), r.Keep, r.Get, r.Put, cycles)
		moved[slot] = n
		if err != nil {
			return fmt.Errorf("lcore %d: %w", lcoreID, err)
		}
		return nil
	}
	var errs []error
	launched := workers[:0:0]
	for i, w := range workers {
		if err := l.RemoteLaunch(w, func(id int) error { return lcoreLoop(i+1, id) }); err != nil {
			errs = append(errs, err)
			break
		}
		launched = append(launched, w)
	}
	// The main lcore runs even if a launch failed, so launched workers are
	// released from their wait.
	if err := l.RunMain(func(id int) error { return lcoreLoop(0, id) }); err != nil {
		started.Store(true)
		errs = append(errs, err)
	}
	for _, w := range launched {
		errs = append(errs, l.Wait(w))
	}
	if err := errors.Join(errs...); err != nil {
		return 0, err
	}
	var rate float64
	for _, n := range moved {
		rate += float64(n) / seconds
	}
	return float64(uint64(rate)), nil
}

// loop repeats rounds of objsPerRound objects, each got keep at a time in
// bulks of get and put back in bulks of put, until cycles have passed, and
// returns the objects moved (the autotest's test_loop inside
// per_lcore_mempool_test).
func loop(p *mempool.Pool, c *mempool.Cache, keep, get, put int, cycles uint64) (uint64, error) {
	table := make([]uint64, keep)
	var moved, elapsed uint64
	rounds := objsPerRound / keep // once: the compiler would divide on every round
	start := timer.Cycles()
	for elapsed < cycles {
		for range rounds {
			if err := getAll(p, c, table, get); err != nil {
				return moved, err
			}
			if err := putAll(p, c, table, put); err != nil {
				return moved, err
			}
		}
		elapsed = timer.Cycles() - start
		moved += objsPerRound
	}
	return moved, nil
}

// getAll fills table with objects, bulk at a time. Where DPDK's get is an
// inline function, it uses the cache's inlinable fast paths (TryGet for
// one object at a time, TryGetBulk for a few) and calls Get or GetBulk
// only when they decline, as any hot loop on a mempool should. Go
// functions save no registers across a call, so the loops over table sit
// in functions of their own, with little live across the copy.
func getAll(p *mempool.Pool, c *mempool.Cache, table []uint64, bulk int) error {
	if bulk == 1 && c != nil {
		for i := range table {
			obj, ok := c.TryGet()
			if !ok {
				var err error
				if obj, err = p.Get(c); err != nil {
					return fmt.Errorf("get 1 object: %w", err)
				}
			}
			table[i] = obj
		}
		return nil
	}
	for i := 0; i+bulk <= len(table); i += bulk {
		objs := table[i : i+bulk]
		if c == nil || !c.TryGetBulk(objs) {
			if err := p.GetBulk(c, objs); err != nil {
				return fmt.Errorf("get %d objects: %w", bulk, err)
			}
		}
	}
	return nil
}

// putAll puts table's objects back, bulk at a time, as getAll.
func putAll(p *mempool.Pool, c *mempool.Cache, table []uint64, bulk int) error {
	if bulk == 1 && c != nil {
		for _, obj := range table {
			if !c.TryPut(obj) {
				if err := p.Put(c, obj); err != nil {
					return fmt.Errorf("put 1 object: %w", err)
				}
			}
		}
		return nil
	}
	for i := 0; i+bulk <= len(table); i += bulk {
		objs := table[i : i+bulk]
		if c == nil || !c.TryPutBulk(objs) {
			if err := p.PutBulk(c, objs); err != nil {
				return fmt.Errorf("put %d objects: %w", bulk, err)
			}
		}
	}
	return nil
}
