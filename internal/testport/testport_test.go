package testport_test

import (
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/ring"
	"github.com/stretchr/testify/require"
)

func TestAStartedPortCarriesFramesAndCleanupClosesEverything(t *testing.T) {
	g := testmem.Options(t, "tport")
	g.RuntimeDir = t.TempDir() // outlives the subtest
	t.Run("port", func(t *testing.T) {
		proc := testport.Primary(t, g)
		require.Equal(t, mp.Primary, proc.Type())
		pool := testport.Pool(t, proc, "pkts", mbuf.PoolConfig{N: 255})
		port := testport.Start(t, proc, "net_ring0", 2, 64, pool)
		require.True(t, port.Started())
		testport.WaitLink(t, port, true)

		tx, err := port.TxQueue(1)
		require.NoError(t, err)
		rx, err := port.RxQueue(1)
		require.NoError(t, err, "queue pair 1 is set up")
		m, err := pool.Alloc(nil)
		require.NoError(t, err)
		b, err := m.Append(5)
		require.NoError(t, err)
		copy(b, "hello")
		require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{m}))
		got := make([]*mbuf.Mbuf, 4)
		require.Equal(t, 1, rx.RxBurst(got), "the ring port loops tx back to rx")
		require.Equal(t, "hello", string(got[0].Data()))
		require.NoError(t, got[0].Free(nil))
	})
	// A second primary of the same group starts only if the first is gone.
	proc, err := mp.Start(mp.Config{Type: mp.Primary, Memory: g, Lcores: []mp.Lcore{{ID: 0, CPUs: []int{0}}}})
	require.NoError(t, err, "the primary of the subtest was closed at its cleanup")
	defer proc.Close()
	_, err = ethdev.Attach(proc, "net_ring0")
	require.Error(t, err, "the port of the subtest was closed")
}
