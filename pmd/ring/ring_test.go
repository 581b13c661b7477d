package ring_test

import (
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/ring"
	"github.com/gopmd/gopmd/ring"
	"github.com/stretchr/testify/require"
)

func primary(t *testing.T) *mp.Process {
	t.Helper()
	g := testmem.Options(t, "pr")
	g.Limit, g.SegmentSize = 64<<20, 32<<20
	return testport.Primary(t, g)
}

func startedPort(t *testing.T, proc *mp.Process, device string, pool *mbuf.Pool) *ethdev.Port {
	t.Helper()
	return testport.Start(t, proc, device, 1, 64, pool)
}

// sendUnreceived puts n mbufs on the port's loopback ring and leaves them there.
func sendUnreceived(t *testing.T, port *ethdev.Port, pool *mbuf.Pool, n int) {
	tx, err := port.TxQueue(0)
	require.NoError(t, err)
	ms := make([]*mbuf.Mbuf, n)
	require.NoError(t, pool.AllocBulk(nil, ms))
	require.Equal(t, n, tx.TxBurst(ms))
}

func TestClosedPortFreesItsRingsAndTheMbufsInThem(t *testing.T) {
	proc := primary(t)
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 255})
	require.NoError(t, err)
	port := startedPort(t, proc, "net_ring0,size=64", pool)
	sendUnreceived(t, port, pool, 10)
	require.Equal(t, uint32(10), pool.Mempool().InUse())

	require.NoError(t, port.Close())
	require.Zero(t, pool.Mempool().InUse(), "the mbufs left in the ring are back in the pool")
	_, err = ring.Lookup(proc.Mem, "net_ring0_0")
	require.ErrorIs(t, err, hugemem.ErrNotFound, "the ring is freed")

	again := startedPort(t, proc, "net_ring0,size=256", pool)
	r, err := ring.Lookup(proc.Mem, "net_ring0_0")
	require.NoError(t, err)
	require.Equal(t, uint32(255), r.Capacity(), "the port made again has the size it asked for")
	rx, err := again.RxQueue(0)
	require.NoError(t, err)
	require.Zero(t, rx.RxBurst(make([]*mbuf.Mbuf, 32)), "and receives nothing of its predecessor")
}

func TestConfigureAgainStartsFromEmptyRings(t *testing.T) {
	proc := primary(t)
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 255})
	require.NoError(t, err)
	port := startedPort(t, proc, "net_ring0", pool)
	sendUnreceived(t, port, pool, 7)

	require.NoError(t, port.Stop())
	require.NoError(t, port.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}))
	require.Zero(t, pool.Mempool().InUse(), "reconfiguring frees what the old rings held")
	require.NoError(t, port.Start())
	rx, err := port.RxQueue(0)
	require.NoError(t, err)
	require.Zero(t, rx.RxBurst(make([]*mbuf.Mbuf, 32)))
}
