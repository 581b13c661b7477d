package shared

import (
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/ring"
	"github.com/stretchr/testify/require"
)

func TestRecordsKeepEachWriterOnItsOwnCacheLine(t *testing.T) {
	require.Equal(t, uintptr(128), unsafe.Sizeof(Client{}))
	require.Equal(t, uintptr(64), unsafe.Offsetof(Client{}.Rx), "the client's counters start the second line")
	require.Zero(t, unsafe.Offsetof(Info{}.Ports)%64, "ports start on a cache line")
	require.Zero(t, unsafe.Offsetof(Info{}.Clients)%64, "client records start on a cache line")
}

func TestEveryClientRingNameFitsTheRingNameLimit(t *testing.T) {
	require.Equal(t, "MProc_Client_3_RX", RingName(3))
	require.LessOrEqual(t, len(RingName(MaxClients-1)), ring.MaxNameLen)
}

func TestPortsArePairedAndAnOddLastOneIsItsOwnPeer(t *testing.T) {
	require.Equal(t, []int{1, 0, 3, 2, 4}, []int{PeerOf(0, 5), PeerOf(1, 5), PeerOf(2, 5), PeerOf(3, 5), PeerOf(4, 5)})
	require.Equal(t, 0, PeerOf(0, 1))
}
