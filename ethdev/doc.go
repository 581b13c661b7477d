// Package ethdev is the port API every gopmd poll-mode driver implements,
// and the registry that gives a port the same id and name in every process
// of a group.
//
// # Ports across processes
//
// The primary creates a port from a device string (Create, for example
// "net_memif0,role=server,socket=/run/memif.sock"), configures its queues,
// starts it, and owns its device-global state: reset, link, MAC, filters.
// The port's description lives in the group's shared memory, so a
// secondary can Attach to it by name; the secondary's copy of the driver
// builds its own Go objects from that shared data (drivers never keep a Go
// or function pointer in shared memory).
//
// Any process polls a queue after claiming it with RxQueue or TxQueue. A
// queue has one owner at a time, recorded in shared memory: a second
// process asking for it is refused, naming the holder, and the claim of a
// process that died is reclaimed. A secondary that exits or dies therefore
// leaves the port running for everyone else. The other way round, the
// primary cannot Stop or Close a port while another live process polls
// one of its queues (ErrQueueTaken, naming it): the driver would take the
// queue's memory away under that poller. Changes to the port's shared
// state (SetMAC, SetLink, ResetStats, configuration) are the primary's.
//
// # The fast path
//
// RxQueue and TxQueue return small driver objects with RxBurst and TxBurst:
// as many packets as are ready (burst semantics), no allocation, no lock,
// no system call unless the transport needs a kick. Per-queue counters live
// in shared memory, written only by the queue's owner, so the primary's
// Stats sees the packets its secondaries handled.
//
// # Drivers
//
// A driver registers itself by name (Register) from its package's init, in
// the manner of database/sql; a program imports the drivers it wants for
// their side effect.
package ethdev
