package mbuf

import (
	"testing"
)

// BenchmarkAllocFreeBulk32 allocates and frees 32 mbufs through a warm
// lcore cache, as a receive-then-transmit path does (rte_pktmbuf_alloc_bulk
// and rte_pktmbuf_free_bulk). One op is the 32 of them.
func BenchmarkAllocFreeBulk32(b *testing.B) {
	mem := benchMemory(b)
	p := newPool(b, mem, "bench", PoolConfig{N: 4096, CacheSize: 256})
	c := p.Cache(0)
	ms := make([]*Mbuf, 32)
	for b.Loop() {
		if err := p.AllocBulk(c, ms); err != nil {
			b.Fatal(err)
		}
		if err := FreeBulk(c, ms); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAllocFree is one Alloc and one Free (rte_pktmbuf_alloc and
// rte_pktmbuf_free of a one-segment packet).
func BenchmarkAllocFree(b *testing.B) {
	mem := benchMemory(b)
	p := newPool(b, mem, "bench", PoolConfig{N: 4096, CacheSize: 256})
	c := p.Cache(0)
	for b.Loop() {
		m, err := p.Alloc(c)
		if err != nil {
			b.Fatal(err)
		}
		if err := m.Free(c); err != nil {
			b.Fatal(err)
		}
	}
}
