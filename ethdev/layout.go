package ethdev

import (
	"unsafe"

	"github.com/gopmd/gopmd/mp"
)

// The port registry is one memzone, portsZone, holding a fixed table of
// port descriptions. Plain data only; TestSharedLayout checks the sizes.
const (
	portsZone    = "ethdev_ports"
	portsMagic   = 0x67706d645f657468 // "gpmd_eth"
	portsVersion = 1

	// MaxPorts is how many ports a group can have.
	MaxPorts = 32
	// MaxQueues is how many rx (and tx) queues a port can have.
	MaxQueues = 16

	nameLen = 32
	argsLen = 256
)

// Port states, in sharedPort.State.
const (
	stateFree uint32 = iota
	stateProbed
	stateConfigured
	stateStarted
	stateStopped
)

type portTable struct {
	Magic   uint64
	Version uint32
	_       uint32
	_       [48]byte
	Ports   [MaxPorts]sharedPort
}

type sharedPort struct {
	State    uint32
	Promisc  uint32
	Name     [nameLen]byte // e.g. "net_memif0"
	Driver   [nameLen]byte // e.g. "net_memif"
	Args     [argsLen]byte // the device string Create was given
	MAC      [6]byte
	_        [2]byte
	NbRxq    uint16
	NbTxq    uint16
	RxDesc   uint16
	TxDesc   uint16
	LinkUp   uint32
	LinkMbps uint32
	Owner    mp.Owner // the process that created the port (the primary)
	RxPool   [MaxQueues][nameLen]byte
	RxOwner  [MaxQueues]mp.Owner
	TxOwner  [MaxQueues]mp.Owner
	_        [40]byte
	RxStats  [MaxQueues]QueueCounters
	TxStats  [MaxQueues]QueueCounters
}

// QueueCounters are one queue's counters in shared memory. Only the queue's
// owner writes them, so plain increments are safe; readers in other
// processes may see a value a burst old.
type QueueCounters struct {
	Packets uint64
	Bytes   uint64
	Errors  uint64 // frames the driver dropped as bad (bad descriptors, too long ...)
	Dropped uint64 // rx: no mbuf or no room; tx: not sent
	_       [4]uint64
}

var _ [64 - unsafe.Sizeof(QueueCounters{})]byte // one cache line each
