package mempool

import (
	"testing"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/require"
)

func memOptions(t testing.TB) hugemem.Options { return testmem.Options(t, "mp") }

// newMemory gives the test a group of its own on memfd-backed memory.
func newMemory(t testing.TB) *hugemem.Memory { return testmem.New(t, "mp") }

// benchMemory is hugepage-backed memory when the machine has it.
func benchMemory(b *testing.B) *hugemem.Memory { return testmem.ForBenchmark(b, "mp") }

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
