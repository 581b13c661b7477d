package mbuf

import (
	"fmt"
	"os"
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

// TestClosingTheMemoryForgetsItsPools: a pool left open when its group
// memory closes must not be found again through a later memory that
// happens to map at the same address.
func TestClosingTheMemoryForgetsItsPools(t *testing.T) {
	opts := func(i int) hugemem.Options {
		return hugemem.Options{Prefix: fmt.Sprintf("mbclose%d-%d", os.Getpid(), i), NoHuge: true, Limit: 32 << 20, RuntimeDir: t.TempDir()}
	}
	mem, err := hugemem.Create(opts(1))
	require.NoError(t, err)
	p, err := CreatePool(mem, "leaky", PoolConfig{N: 63})
	require.NoError(t, err)
	key := p.desc
	require.NotNil(t, pools.find(unsafeKey(key)))
	require.NoError(t, mem.Close())
	require.Nil(t, pools.find(unsafeKey(key)), "the closed memory's pools are forgotten")
}

func unsafeKey(d *poolDesc) unsafe.Pointer { return unsafe.Pointer(d) }
