package virtqueue

import (
	"sync/atomic"
	"testing"

	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

// A tx queue has no pool of its own: bound to an lcore, it frees what the
// device sent through that lcore's cache of each packet's pool.
func TestBoundTxQueueFreesSentPacketsThroughTheLcoresCache(t *testing.T) {
	mem := testmem.New(t, "vqlc")
	pool, err := mbuf.CreatePool(mem, "pkts", mbuf.PoolConfig{N: 255, CacheSize: 64})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	const size, sent = 16, 8
	z, err := mem.Reserve("txq", ZoneSize(Split, size), ZoneAlign)
	require.NoError(t, err)
	require.NoError(t, Init(mem, z, Config{Kind: Split, Role: RoleTx, Size: size, HdrLen: 12,
		Addressing: Addressing{Linear: true, Base: 1 << 40}}))
	q, err := Attach(mem, z, Attachment{})
	require.NoError(t, err)
	q.Enable()
	q.BindLcore(3)

	pkts := make([]*mbuf.Mbuf, sent)
	for i := range pkts {
		pkts[i], err = pool.Alloc(nil)
		require.NoError(t, err)
		_, err = pkts[i].Append(60)
		require.NoError(t, err)
	}
	require.Equal(t, sent, q.Tx(pkts))
	// The device uses every chain it was given, in order.
	for i := range uint32(sent) {
		q.usedRing[i] = usedElem{ID: uint32(q.availRing[i])}
	}
	atomic.StoreUint32(q.usedWord, sent<<16)

	cache := pool.Cache(3)
	require.Zero(t, cache.Len(), "lcore 3's cache before the used entries are reclaimed")
	require.Zero(t, q.Tx(nil), "a burst of nothing reclaims")
	require.Equal(t, sent, cache.Len(), "sent packets in lcore 3's cache")
	require.Equal(t, uint64(sent), q.Stats().Completed)
}
