package ixgbe

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// The driver arms its rx rings and polls its rx queues with the pool
// handle the Port owns (ethdev.Port.RxPool), however often the port starts
// and queues are claimed: closing the port closes that handle once, and
// the application's own handle is the last one.
func TestClosingThePortLeavesTheApplicationsPoolHandleTheLastOne(t *testing.T) {
	r := newRig(t)
	_, addr := r.board()
	p := r.port(0, addr, 2, 64)
	require.NoError(t, p.Stop())
	require.NoError(t, p.Start(), "a second start arms the rings again")
	for q := range 2 {
		_, err := p.RxQueue(q)
		require.NoError(t, err)
		_, err = p.TxQueue(q)
		require.NoError(t, err)
	}

	require.NoError(t, p.Close())
	require.NotNil(t, r.pool.Cache(0), "the application's handle is still open after the port closed")
	r.pool.Close()
	require.True(t, r.pool.Cache(0) == nil,
		"the pool is still open in this process after the application's Close: want its Close the last, got a handle the port left open")
}
