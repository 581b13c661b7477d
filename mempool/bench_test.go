package mempool

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
)

// BenchmarkPerf is DPDK's mempool_perf_autotest loop: each core gets keep
// objects in bulks, then puts them back in bulks, over and over. One op is
// one object got and put; objs/s is the figure DPDK prints (rate_persec).
// The pool has the size DPDK gives it for two lcores: 2*(128+512)-1.
func BenchmarkPerf(b *testing.B) {
	const keep, eltSize, n = 128, 2048, 2*(128+MaxCacheSize) - 1
	for _, cache := range []uint32{0, MaxCacheSize} {
		for _, cores := range []int{1, 2} {
			for _, bulk := range []int{1, 32} {
				b.Run(fmt.Sprintf("cache=%d/cores=%d/bulk=%d/keep=%d", cache, cores, bulk, keep), func(b *testing.B) {
					mem := benchMemory(b)
					p := newPool(b, mem, "perf", Config{N: n, EltSize: eltSize, CacheSize: cache})
					perCore := b.N/cores + 1
					var wg sync.WaitGroup
					b.ResetTimer()
					for l := range cores {
						wg.Go(func() {
							runtime.LockOSThread()
							defer runtime.UnlockOSThread()
							if err := perfLoop(p, p.Cache(l), perCore, keep, bulk); err != nil {
								b.Error(err)
							}
						})
					}
					wg.Wait()
					b.StopTimer()
					b.ReportMetric(float64(perCore*cores)/b.Elapsed().Seconds(), "objs/s")
				})
			}
		}
	}
}

func perfLoop(p *Pool, c *Cache, objects, keep, bulk int) error {
	table := make([]uint64, keep)
	for done := 0; done < objects; done += keep {
		for i := 0; i < keep; i += bulk {
			objs := table[i : i+bulk]
			if c == nil || !c.TryGetBulk(objs) {
				if err := p.GetBulk(c, objs); err != nil {
					return err
				}
			}
		}
		for i := 0; i < keep; i += bulk {
			objs := table[i : i+bulk]
			if c == nil || !c.TryPutBulk(objs) {
				if err := p.PutBulk(c, objs); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// BenchmarkCacheGetPut is one get and one put of bulk objects through a
// warm cache: the cost of the fast paths.
func BenchmarkCacheGetPut(b *testing.B) {
	for _, bulk := range []int{1, 32} {
		b.Run(fmt.Sprintf("bulk=%d", bulk), func(b *testing.B) {
			mem := benchMemory(b)
			p := newPool(b, mem, "fast", Config{N: 2048, EltSize: 64, CacheSize: MaxCacheSize})
			c := p.Cache(0)
			objs := make([]uint64, bulk)
			for b.Loop() {
				p.GetBulk(c, objs)
				p.PutBulk(c, objs)
			}
		})
	}
}
