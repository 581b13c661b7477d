package mbuf

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
		Prefix:     fmt.Sprintf("mb%d-%d", os.Getpid(), groupSeq.Add(1)),
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
