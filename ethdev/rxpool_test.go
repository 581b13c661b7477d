package ethdev_test

import (
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

// RxPool opens the queue's pool once and the Port closes that handle: the
// application's own handle is the last one, whatever RxPool was asked.
func TestRxPoolHandleIsThePortsAndClosedWithIt(t *testing.T) {
	proc := testport.Primary(t, testmem.Options(t, "erxp"))
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 511, CacheSize: 32})
	require.NoError(t, err)
	port := testport.Start(t, proc, "net_ring0", 2, 512, pool)

	first, err := port.RxPool(0)
	require.NoError(t, err)
	require.Equal(t, "pkts", first.Name())
	for q := range 2 {
		for range 3 {
			again, err := port.RxPool(q)
			require.NoError(t, err)
			require.Same(t, first, again, "rx queue %d's pool", q)
		}
	}
	_, err = port.RxPool(ethdev.MaxQueues)
	require.ErrorContains(t, err, "out of range")

	require.NoError(t, port.Close())
	require.NotNil(t, pool.Cache(0), "the application's handle is still open after the port closed")
	pool.Close()
	require.Nil(t, pool.Cache(0), "the application's Close was the last: the port left no handle open")
}
