package mbuf

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLookupPoolReusesTheOpenHandleAndDoesNotGrowTheRegistry(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "again", PoolConfig{N: 16})
	before := len(pools.load())
	var handles []*Pool
	for range 100 {
		q, err := LookupPool(mem, "again")
		require.NoError(t, err)
		require.Same(t, p, q, "a pool open in this process opens as the same handle")
		handles = append(handles, q)
	}
	assert.Equal(t, before, len(pools.load()), "100 lookups of an open pool add no registry entries")

	for _, q := range handles {
		q.Close()
	}
	require.Same(t, p, pools.find(unsafe.Pointer(p.desc)), "the creator's handle is still open after the lookups' Close")
	m := alloc(t, p)
	require.NoError(t, m.Free(nil), "frees still find the pool")

	p.Close()
	assert.Nil(t, pools.find(unsafe.Pointer(p.desc)), "the last Close closes the pool in this process")
	assert.Equal(t, before-1, len(pools.load()))
}
