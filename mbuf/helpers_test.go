package mbuf

import (
	"testing"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/require"
)

func memOptions(t testing.TB) hugemem.Options { return testmem.Options(t, "mb") }

// newMemory gives the test a group of its own on memfd-backed memory.
func newMemory(t testing.TB) *hugemem.Memory { return testmem.New(t, "mb") }

// benchMemory is hugepage-backed memory when the machine has it.
func benchMemory(b *testing.B) *hugemem.Memory { return testmem.ForBenchmark(b, "mb") }

func newPool(t testing.TB, mem *hugemem.Memory, name string, cfg PoolConfig) *Pool {
	t.Helper()
	p, err := CreatePool(mem, name, cfg)
	require.NoError(t, err)
	t.Cleanup(p.Close)
	return p
}

func alloc(t testing.TB, p *Pool) *Mbuf {
	t.Helper()
	m, err := p.Alloc(nil)
	require.NoError(t, err)
	return m
}

// withData allocates an mbuf of p holding payload.
func withData(t testing.TB, p *Pool, payload string) *Mbuf {
	t.Helper()
	m := alloc(t, p)
	b, err := m.Append(len(payload))
	require.NoError(t, err)
	copy(b, payload)
	return m
}
