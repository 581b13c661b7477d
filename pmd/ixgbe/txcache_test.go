package ixgbe

import (
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

// A tx queue bound to an lcore frees what it sent through that lcore's
// cache of the packets' own pool, whatever pool the port receives into:
// here the rx pool has no cache at all.
func TestTxFreesSentMbufsThroughTheBoundLcoresCacheOfTheirPool(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	rxPool, err := mbuf.CreatePool(r.proc.Mem, "rx_nocache", mbuf.PoolConfig{N: 1023})
	require.NoError(t, err)
	t.Cleanup(rxPool.Close)
	p, err := ethdev.Create(r.proc, "net_ixgbe0,pci="+addr)
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	require.NoError(t, p.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}))
	require.NoError(t, p.SetupRxQueue(0, 64, rxPool))
	require.NoError(t, p.SetupTxQueue(0, 64))
	require.NoError(t, p.Start())
	tx, err := p.TxQueue(0)
	require.NoError(t, err)
	ethdev.BindLcore(tx, 0)

	cache := r.pool.Cache(0)
	require.NotNil(t, cache)
	require.Zero(t, cache.Len(), "lcore 0's cache of the tx pool before sending")
	pkts := make([]*mbuf.Mbuf, txBatch)
	for i := range pkts {
		pkts[i] = r.packet(udpFrame(macPeer, uint16(i), 64), 0)
	}
	require.Equal(t, txBatch, tx.TxBurst(pkts))
	require.Equal(t, int64(txBatch), b.sentN.Load(), "frames on the wire")
	require.Zero(t, tx.TxBurst(nil), "a burst of nothing cleans the done batch")
	require.Equal(t, txBatch, cache.Len(), "sent mbufs in lcore 0's cache of their pool")

	empty, err := r.pool.Alloc(nil)
	require.NoError(t, err)
	require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{empty}), "an unsendable packet is taken")
	require.Equal(t, txBatch+1, cache.Len(), "and freed through the same cache")
	require.Zero(t, xstat(t, p, "tx_q0_mbufs_lost"), "mbufs lost")
}
