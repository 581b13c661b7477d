package hash

import (
	"fmt"
	"testing"

	"github.com/gopmd/gopmd/timer"
)

// The lookup benchmarks fill a table with 16-byte keys (DPDK's
// hash_perf_autotest default key length is 16 too) and look them up in
// insertion order, which is random order for the buckets. They report TSC
// cycles per op next to ns/op. BenchmarkGoMapLookup is the same work on a
// process-local Go map, for scale.

var benchSizes = []int{1 << 10, 1 << 16, 1 << 20}

func cycles(b *testing.B, start uint64) {
	b.ReportMetric(float64(timer.Cycles()-start)/float64(b.N), "cycles/op")
}

func benchTable(b *testing.B, n int, f HashFunc) (*Table, [][]byte) {
	tbl := makeTable(b, Config{Name: "bench", KeyLen: 16, Entries: n, Hash: f})
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = key16(i)
		if err := tbl.Add(keys[i], uint64(i)); err != nil {
			b.Fatal(err)
		}
	}
	return tbl, keys
}

func BenchmarkLookup(b *testing.B) {
	for _, f := range []HashFunc{HashCRC32C, HashFNV1a64} {
		for _, n := range benchSizes {
			b.Run(fmt.Sprintf("%v/keys=%d", f, n), func(b *testing.B) {
				tbl, keys := benchTable(b, n, f)
				b.ReportAllocs()
				b.ResetTimer()
				start := timer.Cycles()
				for i := 0; i < b.N; i++ {
					if _, err := tbl.Lookup(keys[i&(n-1)]); err != nil {
						b.Fatal(err)
					}
				}
				cycles(b, start)
			})
		}
	}
}

func BenchmarkLookupWithHash(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			tbl, keys := benchTable(b, n, HashCRC32C)
			hashes := make([]uint64, n)
			for i, k := range keys {
				hashes[i] = tbl.Hash(k)
			}
			b.ReportAllocs()
			b.ResetTimer()
			start := timer.Cycles()
			for i := 0; i < b.N; i++ {
				if _, err := tbl.LookupWithHash(keys[i&(n-1)], hashes[i&(n-1)]); err != nil {
					b.Fatal(err)
				}
			}
			cycles(b, start)
		})
	}
}

func BenchmarkLookupMiss(b *testing.B) {
	const n = 1 << 16
	tbl, _ := benchTable(b, n, HashCRC32C)
	missing := make([][]byte, n)
	for i := range missing {
		missing[i] = key16(n + i)
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		if _, err := tbl.Lookup(missing[i&(n-1)]); err != ErrNotFound {
			b.Fatal(err)
		}
	}
	cycles(b, start)
}

// BenchmarkAddDelete adds and deletes one key per op in a table kept
// 7/8 full: a writer's cost, lock included.
func BenchmarkAddDelete(b *testing.B) {
	const n = 1 << 16
	tbl := makeTable(b, Config{Name: "bench", KeyLen: 16, Entries: n})
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = key16(i)
	}
	for i := 0; i < n*7/8; i++ {
		if err := tbl.Add(keys[i], 1); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		k := keys[n*7/8+i%(n/8)]
		if err := tbl.Add(k, 1); err != nil {
			b.Fatal(err)
		}
		if err := tbl.Delete(k); err != nil {
			b.Fatal(err)
		}
	}
	cycles(b, start)
}

func BenchmarkGoMapLookup(b *testing.B) {
	for _, n := range benchSizes {
		b.Run(fmt.Sprintf("keys=%d", n), func(b *testing.B) {
			m := make(map[[16]byte]uint64, n)
			keys := make([][16]byte, n)
			for i := range keys {
				copy(keys[i][:], key16(i))
				m[keys[i]] = uint64(i)
			}
			b.ResetTimer()
			start := timer.Cycles()
			for i := 0; i < b.N; i++ {
				if _, ok := m[keys[i&(n-1)]]; !ok {
					b.Fatal("missing")
				}
			}
			cycles(b, start)
		})
	}
}
