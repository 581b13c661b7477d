package ixgbe

import (
	"errors"
	"net"
	"sync/atomic"
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"github.com/stretchr/testify/require"
)

// hookedRegs calls a test's function before each register write.
type hookedRegs struct {
	registers
	before atomic.Pointer[func(off, v uint32)]
}

func (r *hookedRegs) Write32(off, v uint32) {
	if f := r.before.Load(); f != nil {
		(*f)(off, v)
	}
	r.registers.Write32(off, v)
}

// TestTxCursorIsSharedBeforeTheTailMoves: when TDT moves, the shared
// cursor already says where the ring ends, so an owner dying between the
// two leaves nothing for the next owner to overwrite under the device.
func TestTxCursorIsSharedBeforeTheTailMoves(t *testing.T) {
	r := newRig(t)
	b, addr := r.board()
	hooked := &hookedRegs{registers: b.dev}
	b.regs = hooked
	p := r.port(0, addr, 1, 64)
	tx, err := p.TxQueue(0)
	require.NoError(t, err)
	sh := &dev(p).sh.Tx[0]
	tails := 0
	check := func(off, v uint32) {
		if off != txq(0, tqTDT) {
			return
		}
		tails++
		if sh.Next != v {
			t.Errorf("TDT written with %d while the shared cursor still says %d: a dying owner would leave its successor rewriting descriptors the device owns", v, sh.Next)
		}
	}
	hooked.before.Store(&check)
	for i := range 3 {
		pkts := []*mbuf.Mbuf{r.packet(udpFrame(macPeer, uint16(i), 64), 0), r.packet(udpFrame(macPeer, uint16(i), 80), 0)}
		require.Equal(t, 2, tx.TxBurst(pkts))
	}
	hooked.before.Store(nil)
	require.Equal(t, 3, tails, "one tail write per burst")
}

// secondaryPort attaches a secondary, a second group member in this
// process, to the primary's port p.
func secondaryPort(t *testing.T, r *rig, p *ethdev.Port) (*mp.Process, *ethdev.Port) {
	sec, err := mp.Start(mp.Config{Type: mp.Secondary, Memory: r.opts, Lcores: []mp.Lcore{{ID: 1, CPUs: []int{1}}}})
	require.NoError(t, err)
	t.Cleanup(func() { sec.Close() })
	sp, err := ethdev.Attach(sec, p.Name())
	require.NoError(t, err)
	t.Cleanup(func() { sp.Close() })
	return sec, sp
}

func TestSecondaryCannotChangeTheDevice(t *testing.T) {
	r := newRig(t)
	_, addr := r.board()
	p := r.port(0, addr, 2, 64)
	_, sp := secondaryPort(t, r, p)
	d := dev(sp) // reachable through Port.Device, past ethdev's own checks
	group := net.HardwareAddr{0x01, 0x00, 0x5e, 0, 0, 1}
	for name, err := range map[string]error{
		"Configure":         d.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}),
		"SetupRxQueue":      d.SetupRxQueue(0, 64, r.pool),
		"SetupTxQueue":      d.SetupTxQueue(0, 64),
		"Start":             d.Start(),
		"Stop":              d.Stop(),
		"SetPromiscuous":    d.SetPromiscuous(true),
		"SetAllMulticast":   d.SetAllMulticast(true),
		"SetMulticastAddrs": d.SetMulticastAddrs([]net.HardwareAddr{group}),
	} {
		require.ErrorContains(t, err, "only the primary process may", "%s in a secondary", name)
	}
	pd := dev(p)
	require.Equal(t, uint32(1), pd.sh.Started, "the port still runs")
	require.Equal(t, uint32(2), pd.sh.NbRx, "the configuration is the primary's")
	require.Zero(t, pd.r(regFCTRL)&fctrlMPE, "the filters are the primary's")
}

// TestTxFreeThatFailsIsCountedAndAllocatesNothing: a secondary sending
// mbufs of a pool it does not have open cannot give them back; each clean
// counts them, without allocating, instead of dropping the error.
func TestTxFreeThatFailsIsCountedAndAllocatesNothing(t *testing.T) {
	r := newRig(t)
	b, addr := r.board(countOnly)
	p := r.port(0, addr, 1, 256)
	sec, sp := secondaryPort(t, r, p)
	stx, err := sp.TxQueue(0)
	require.NoError(t, err)
	// The secondary closes every handle it has of the pool (TxQueue opened
	// one for its lcore caches): it no longer has a pool open in the group.
	for range 3 {
		pl, err := mbuf.LookupPool(sec.Mem, r.pool.Name())
		require.NoError(t, err)
		pl.Close()
		pl.Close()
	}
	inUse := r.pool.Mempool().InUse() // the rx ring's buffers
	probe := mbuf.FromOff(sec.Mem, r.packet(udpFrame(macPeer, 9, 64), 0).Off(r.proc.Mem))
	require.True(t, errors.Is(probe.Free(nil), mbuf.ErrPoolNotOpen), "the secondary has no pool open")

	bursts := make([][]*mbuf.Mbuf, 4)
	for i := range bursts {
		bursts[i] = make([]*mbuf.Mbuf, txBatch)
		for j := range bursts[i] {
			m := r.packet(udpFrame(macPeer, uint16(j), 64), 0)
			bursts[i][j] = mbuf.FromOff(sec.Mem, m.Off(r.proc.Mem))
		}
	}
	require.Equal(t, txBatch, stx.TxBurst(bursts[0]))
	require.Equal(t, txBatch, stx.TxBurst(bursts[1]), "cleans burst 0, in vain")
	i := 2
	allocs := testing.AllocsPerRun(1, func() {
		if stx.TxBurst(bursts[i]) != txBatch {
			panic("burst not taken")
		}
		i++
	})
	require.Zero(t, allocs, "a burst whose clean fails allocates nothing")
	require.Equal(t, int64(4*txBatch), b.sentN.Load())
	require.Equal(t, uint64(3*txBatch), xstat(t, p, "tx_q0_mbufs_lost"), "every mbuf of the three cleaned batches counted")
	require.Equal(t, inUse+1+4*txBatch, r.pool.Mempool().InUse(), "the lost mbufs (and the probe) stay out of the pool")
}
