package ixgbe

import (
	"fmt"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
)

// What every process of the group must agree on: the port's state in one
// memzone named after the port, and one memzone per queue holding its
// descriptor ring followed by its mbuf table. Plain numbers only (group
// offsets, indexes, counters); TestSharedLayout checks the sizes. Bump
// sharedVersion on any change.
const (
	sharedMagic   = 0x6770_6d64_6978_6762 // "gpmdixgb"
	sharedVersion = 3
	maxQueues     = ethdev.MaxQueues // RSS reaches 16 queues: a RETA entry has 4 bits (8.2.3.7)
)

// shared is the port's state. The primary writes the configuration and
// the hardware counters; a queue's cursors belong to the process polling
// it, so whoever claims the queue next carries on where the last owner
// stopped.
type shared struct {
	Magic    uint64
	Version  uint32
	DeviceID uint16 // PCI device id
	_        uint16
	NbRx     uint32 // configured queues
	NbTx     uint32
	Started  uint32 // 1 while the queues run
	_        [36]byte
	Rx       [maxQueues]rxShared
	Tx       [maxQueues]txShared
	HW       [numHWStats]uint64 // hardware counters accumulated by the primary (hwStats order)
}

// rxShared is one receive queue. The first cache line is the owner's, the
// second the primary's.
type rxShared struct {
	Zone    uint64 // group offset of the queue's memzone: ring, then mbuf table; 0 when not set up
	Size    uint32 // descriptors, a power of two
	BufLen  uint32 // bytes the device may write per buffer (SRRCTL.BSIZEPACKET)
	Next    uint32 // owner: the next descriptor to look at
	Tail    uint32 // owner: the descriptor RDT points at: armed, but not the device's
	Discard uint32 // owner: dropping the rest of a frame whose first part had no EOP
	_       [36]byte

	HWDropped uint64 // primary: frames the device dropped for want of descriptors (QPRDC)
	DropSeen  uint64 // owner: the part of HWDropped already added to the queue's counters
	_         [48]byte
}

// txShared is one transmit queue; its cursors are the owner's.
type txShared struct {
	Zone  uint64 // group offset of the queue's memzone: ring, then mbuf table
	Size  uint32 // descriptors, a power of two
	Next  uint32 // the next free descriptor, which TDT points at
	Clean uint32 // the oldest descriptor whose mbuf is not freed yet
	_     uint32
	Lost  uint64 // mbufs whose free failed, kept out of their pool (see txQueue.lost)
	_     [32]byte
}

// Compile-time size checks: one cache line per tx queue, two per rx queue.
var (
	_ [64 - unsafe.Sizeof(txShared{})]byte
	_ [unsafe.Sizeof(txShared{}) - 64]byte
	_ [128 - unsafe.Sizeof(rxShared{})]byte
	_ [unsafe.Sizeof(rxShared{}) - 128]byte
)

// queueZone is the memory of one queue: size descriptors of 16 bytes, then
// size mbuf group offsets (0: no mbuf). The zone is aligned to the ring's
// size, so the ring never straddles a hugepage and is IOVA-contiguous in
// PA mode too (7.1.9 and 7.2.3.3 want one contiguous ring).
func queueZone(mem *hugemem.Memory, name string, size uint32) (*hugemem.Memzone, error) {
	ringBytes := uint64(size) * descSize
	z, err := mem.Reserve(name, ringBytes+uint64(size)*8, ringBytes)
	if err != nil {
		return nil, fmt.Errorf("ring of %d descriptors: %w", size, err)
	}
	return z, nil
}
