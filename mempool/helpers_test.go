package mempool

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

var groupSeq atomic.Int64

func memOptions(t testing.TB) hugemem.Options {
	return hugemem.Options{
		Prefix:     fmt.Sprintf("mp%d-%d", os.Getpid(), groupSeq.Add(1)),
		NoHuge:     true,
		Limit:      256 << 20,
		RuntimeDir: t.TempDir(),
	}
}

// newMemory gives the test a group of its own on memfd-backed memory.
func newMemory(t testing.TB) *hugemem.Memory {
	t.Helper()
	mem, err := hugemem.Create(memOptions(t))
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	return mem
}

// benchMemory is hugepage-backed memory when the machine has it, as DPDK
// runs, else memfd-backed memory (4 KiB pages: more TLB misses).
func benchMemory(b *testing.B) *hugemem.Memory {
	b.Helper()
	o := memOptions(b)
	o.NoHuge = false
	mem, err := hugemem.Create(o)
	if err != nil {
		b.Logf("hugepages unavailable (%v): memfd-backed memory", err)
		return newMemory(b)
	}
	b.Cleanup(func() { mem.Close() })
	if !mem.HugePages() {
		b.Logf("memfd-backed memory: no hugepages")
	}
	return mem
}

func newPool(t testing.TB, mem *hugemem.Memory, name string, cfg Config) *Pool {
	t.Helper()
	p, err := Create(mem, name, cfg)
	require.NoError(t, err)
	return p
}

func getN(t testing.TB, p *Pool, c *Cache, n int) []uint64 {
	t.Helper()
	objs := make([]uint64, n)
	require.NoError(t, p.GetBulk(c, objs))
	return objs
}
