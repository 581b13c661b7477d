// Package mp is the multi-process model: how the processes of one group
// (one --file-prefix) share memory and devices, find out about each other
// and clean up after each other.
//
// # Roles
//
// Start makes this process a member of a group. A Primary creates the
// group's memory (hugemem.Create) and owns device-global state; there is at
// most one live primary, and a second one fails naming the first one's pid.
// A Secondary attaches to a live primary's memory (hugemem.Attach) and fails,
// creating nothing, when there is none. Auto becomes the primary when no live
// primary holds the group and a secondary otherwise.
//
// # The process table and lcores
//
// Every member records itself (pid, start time, lcores, CPUs) in the group's
// process table, a memzone updated under the group lock. Lcore ids are
// exclusive across the group, because they index per-lcore mempool caches: a
// process asking for an lcore that a live member holds is refused with
// ErrCoreTaken. CPUs may be shared, with a warning, since two busy-polling
// threads on one CPU only cost performance.
//
// # Death and reaping
//
// A member that exits without Close leaves its entry behind. The primary
// looks for such entries every Config.ReapInterval (and any Start does, when
// it claims a slot): it returns the objects the dead member had cached in
// every mempool to the pools' rings, frees its lcores, and then runs the
// OnProcessExit callbacks. Pid reuse is told apart by the process start time
// (Owner, Self, Alive serve other packages' ownership records the same way).
// A secondary learns through PrimaryGone, at once (a pidfd), that the
// primary exited; it should stop its work and Close. The group cannot outlive
// its primary: a new primary starts over, removing what the dead one left.
//
// # Events and IPC
//
// Each member has an ipc.Endpoint (IPC) in the group's runtime directory,
// for its own actions and for other packages' (vfio passes device
// descriptors over it). Device events (a link change, say) happen in the
// primary, which Publishes them; a member that Subscribed receives them on a
// channel. Secondaries accept events from the primary's socket only: one
// sent by any other process is dropped, logged and counted. The primary
// also answers SegmentFDs: descriptors of every memory segment, for a
// secondary that must hand the memory on (to a vhost-user backend, say).
// Segments added by any process are included, and the request pages through
// them when there are more than one message carries.
//
// # Lifetime
//
// Close leaves the group: it stops the watchers, closes the endpoint, flushes
// this process's mempool caches, releases its table entry and closes the
// Memory (the primary's Close removes the group's files; secondaries still
// attached keep their mappings until they Close, and the last member to
// leave removes the emptied runtime directory). Descriptors that
// SegmentFDs returns belong to the caller (CloseSegmentFDs); descriptors an
// IPC handler receives belong to the handler, and this package's handlers
// close them.
package mp
