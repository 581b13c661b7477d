package memif_test

import (
	"path/filepath"
	"testing"

	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

// The memif driver polls its rx queues with the pool handle the Port owns
// (ethdev.Port.RxPool): closing the port closes that handle once, and the
// application's own handle stays open.
func TestClosingThePortLeavesTheApplicationsPoolHandleOpen(t *testing.T) {
	proc := testport.Primary(t, testmem.Options(t, "mifp"))
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 511, CacheSize: 32})
	require.NoError(t, err)
	sock := filepath.Join(t.TempDir(), "m.sock")
	port := testport.Start(t, proc, "net_memif0,role=server,socket-abstract=no,socket="+sock, 2, 1024, pool)
	for q := range 2 {
		_, err := port.RxQueue(q)
		require.NoError(t, err)
		_, err = port.TxQueue(q)
		require.NoError(t, err)
	}

	require.NoError(t, port.Close())
	require.NotNil(t, pool.Cache(0), "the application's handle is still open after the port closed")
	pool.Close()
	require.Nil(t, pool.Cache(0), "the application's Close was the last")
}
