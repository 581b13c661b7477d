package virtio

import (
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/pmd/virtio/internal/virtqueue"
	"github.com/stretchr/testify/require"
)

// ethdev.BindLcore reaches a virtio tx queue: what it frees goes through
// the bound lcore's cache of the packets' pool. A packet of more segments
// than the ring has descriptors is freed at once, so no device is needed.
func TestBoundTxQueueFreesThroughTheLcoresCacheOfThePacketsPool(t *testing.T) {
	mem := testmem.New(t, "viol")
	pool, err := mbuf.CreatePool(mem, "pkts", mbuf.PoolConfig{N: 255, CacheSize: 64})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	const size = 16
	z, err := mem.Reserve("txq", virtqueue.ZoneSize(virtqueue.Split, size), virtqueue.ZoneAlign)
	require.NoError(t, err)
	require.NoError(t, virtqueue.Init(mem, z, virtqueue.Config{Kind: virtqueue.Split, Role: virtqueue.RoleTx, Size: size, HdrLen: 12,
		Addressing: virtqueue.Addressing{Linear: true, Base: userAddrBase}}))
	vq, err := virtqueue.Attach(mem, z, virtqueue.Attachment{})
	require.NoError(t, err)
	vq.Enable()
	tx := &TxQueue{vq}

	ethdev.BindLcore(tx, 2)
	var head *mbuf.Mbuf
	for range size {
		m, err := pool.Alloc(nil)
		require.NoError(t, err)
		_, err = m.Append(10)
		require.NoError(t, err)
		if head == nil {
			head = m
		} else {
			require.NoError(t, head.Chain(m))
		}
	}
	cache := pool.Cache(2)
	require.Zero(t, cache.Len(), "lcore 2's cache before")
	require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{head}), "the unsendable packet is taken")
	require.Equal(t, size, cache.Len(), "its %d segments in lcore 2's cache", size)
	require.Equal(t, uint64(1), vq.Stats().Oversize)
}
