// Package shared is what mp_server and mp_client agree on: the names of
// the objects the server creates in the group (the packet pool, one ring
// per client, the info memzone) and the layout of that memzone.
//
// The server creates everything and owns it for the life of the group; a
// client looks the objects up by name and builds its own handles. The info
// memzone holds plain data only: the ports' names and ids, and one record
// per client with its state, its owner and its counters. Each field has one
// writer, named in its comment; the state changes under the group lock.
package shared

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mp"
	"golang.org/x/sys/unix"
)

const (
	// PoolName is the packet pool every process allocates from and frees to.
	PoolName = "MProc_pktmbuf_pool"
	// InfoZone is the memzone holding an Info.
	InfoZone = "MProc_port_info"

	// MaxPorts and MaxClients bound the Info tables.
	MaxPorts   = 16
	MaxClients = 16
	// RingSize is the number of slots of a client's ring.
	RingSize = 1024
	// Burst is how many packets a process handles at once (PKT_READ_SIZE).
	Burst = 32

	infoMagic   = 0x6373_6d70_696e_666f // "csmpinfo"
	infoVersion = 1
)

// RingName is the name of the ring through which the server hands packets
// to client id.
func RingName(id int) string { return fmt.Sprintf("MProc_Client_%d_RX", id) }

// Client states, in Client.State.
const (
	// Idle: no client runs under this id; the server delivers nothing.
	Idle uint32 = iota
	// Running: Owner polls the ring and the server delivers to it.
	Running
	// Leaving: the owner exited or died; the server delivers nothing,
	// drains the ring back to the pool, and sets Idle.
	Leaving
)

// StateName is a state as the server prints it.
func StateName(s uint32) string {
	switch s {
	case Idle:
		return "idle"
	case Running:
		return "running"
	case Leaving:
		return "leaving"
	}
	return fmt.Sprintf("state(%d)", s)
}

// Info is the layout of the InfoZone memzone.
type Info struct {
	Magic      uint64 // set last by the server
	Version    uint32
	NumPorts   uint32
	NumClients uint32
	_          [44]byte
	Ports      [MaxPorts]Port
	Clients    [MaxClients]Client
}

// Port is one port of the server, in the order of its --vdev options.
type Port struct {
	Name [32]byte
	ID   uint16 // ethdev port id
	_    [30]byte
}

// Client is the record of one client id: two cache lines, one per writer.
type Client struct {
	// State and Owner change under the group lock: a client goes from Idle
	// to Running (or takes over a Running record whose owner died), and
	// from Running to Leaving when it exits; the server moves a dead
	// owner's record to Leaving and, once the ring is drained, to Idle.
	State uint32
	_     uint32
	Owner mp.Owner

	// Written by the server.
	RxDrop  uint64 // packets for this client that its ring had no room for
	Drained uint64 // packets drained from the ring after a client left
	_       [3]uint64

	// Written by the client.
	Rx     uint64 // packets taken from the ring
	Tx     uint64 // packets sent
	TxDrop uint64 // packets the tx queue did not take, freed
	_      [5]uint64
}

var (
	_ [64 - unsafe.Sizeof(Port{})]byte
	_ [128 - unsafe.Sizeof(Client{})]byte
	_ [unsafe.Sizeof(Client{}) - 128]byte
)

// Create reserves and fills the info memzone (server).
func Create(mem *hugemem.Memory, ports []Port, clients int) (*Info, error) {
	if len(ports) > MaxPorts {
		return nil, fmt.Errorf("%d ports: the info memzone has room for %d", len(ports), MaxPorts)
	}
	if clients < 1 || clients > MaxClients {
		return nil, fmt.Errorf("%d clients: want 1 to %d", clients, MaxClients)
	}
	z, err := mem.Reserve(InfoZone, uint64(unsafe.Sizeof(Info{})), 0)
	if err != nil {
		return nil, err
	}
	info := (*Info)(z.Ptr())
	info.Version = infoVersion
	info.NumPorts = uint32(len(ports))
	info.NumClients = uint32(clients)
	copy(info.Ports[:], ports)
	atomic.StoreUint64(&info.Magic, infoMagic)
	return info, nil
}

// ErrNoServer is wrapped when the group has no info memzone yet.
var ErrNoServer = errors.New("no mp_server has set the group up")

// Lookup finds the info memzone and checks it (client).
func Lookup(mem *hugemem.Memory) (*Info, error) {
	z, err := mem.Lookup(InfoZone)
	if errors.Is(err, hugemem.ErrNotFound) {
		return nil, fmt.Errorf("memzone %s: %w", InfoZone, ErrNoServer)
	}
	if err != nil {
		return nil, err
	}
	if z.Len < uint64(unsafe.Sizeof(Info{})) {
		return nil, fmt.Errorf("memzone %s is %d bytes, this build needs %d: server and client differ", InfoZone, z.Len, unsafe.Sizeof(Info{}))
	}
	info := (*Info)(z.Ptr())
	if m := atomic.LoadUint64(&info.Magic); m != infoMagic || info.Version != infoVersion {
		return nil, fmt.Errorf("memzone %s has magic %#x version %d, want %#x version %d: %w", InfoZone, m, info.Version, uint64(infoMagic), infoVersion, ErrNoServer)
	}
	if info.NumPorts > MaxPorts || info.NumClients > MaxClients {
		return nil, fmt.Errorf("memzone %s claims %d ports and %d clients, at most %d and %d fit: corrupted", InfoZone, info.NumPorts, info.NumClients, MaxPorts, MaxClients)
	}
	return info, nil
}

// PortName returns port i's name.
func (info *Info) PortName(i int) string { return unix.ByteSliceToString(info.Ports[i].Name[:]) }

// NewPort describes a port for Create.
func NewPort(name string, id uint16) Port {
	var p Port
	copy(p.Name[:len(p.Name)-1], name)
	p.ID = id
	return p
}

// PeerOf pairs ports 0-1, 2-3, ...; an odd last port is its own peer.
func PeerOf(i, n int) int {
	if i^1 < n {
		return i ^ 1
	}
	return i
}

// Counter reads a counter another process writes.
func Counter(p *uint64) uint64 { return atomic.LoadUint64(p) }

// Add adds n to a counter this process alone writes, so that readers in
// other processes see whole values.
func Add(p *uint64, n uint64) { atomic.StoreUint64(p, *p+n) }
