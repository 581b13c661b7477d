// Package memif is the net_memif driver: the shared memory packet
// interface of DPDK, VPP and libmemif (memif protocol 2.0), in copy mode.
// It interoperates with DPDK 22.11's net_memif in either role. A program
// imports it for its side effect and creates ports such as
//
//	--vdev net_memif0,role=server,socket=/run/memif.sock,id=0
//
// Arguments, with DPDK's names and defaults:
//
//	role=server|client     client
//	id=N                   0            interface id, matched by the server
//	socket=PATH            /run/memif.sock
//	socket-abstract=yes|no yes          abstract unix address (no file), as DPDK 22.11
//	rsize=N                10           log2 of the ring size, 1..14
//	bsize=N                2048         packet buffer size (client), 1..65535
//	secret=S                            up to 23 bytes; the server requires a match
//	mac=XX:XX:XX:XX:XX:XX  random       locally administered
//	zero-copy=no                        zero-copy is not supported
//
// # Protocol in brief
//
// The control channel is a SOCK_SEQPACKET unix socket carrying 128-byte
// messages. The server greets with HELLO (its versions and limits); the
// client answers INIT (version, id, mode, secret), then ADD_REGION for each
// shared memory region (its memfd rides along), ADD_RING for each ring
// (with an eventfd), and CONNECT; the server acknowledges each with ACK and
// finishes with CONNECTED. Either side may send DISCONNECT with a reason at
// any time. The client owns the memory: its regions hold the rings and the
// packet buffers. A ring is a header (cookie, flags, head, tail) and 2^rsize
// 16-byte descriptors (flags, region, length, offset). The client writes
// head and the server writes tail, on both rings: on a c2s ring the client
// produces into its own buffers; on an s2c ring the client offers buffers
// (head) and the server fills them (tail). A frame longer than a buffer
// spans several descriptors, chained with the NEXT flag.
//
// Rx queue q of a server consumes c2s ring q and its tx queue q produces
// into s2c ring q; a client's are the other way round. Bursts copy between
// mbufs and memif buffers. Both sides poll: we set the ring flag that tells
// the producer not to signal our eventfd, and we never signal the peer's
// (a peer that relies on interrupts is not served).
//
// # Roles
//
// A server listens on its socket from Start to Stop and serves one client
// at a time; another is refused ("Already connected"), and after a
// disconnection the next client is accepted. A client connects at Start and
// reconnects after any disconnection, retrying every 250 ms (backing off
// to 4 s while handshakes fail). One server port per socket: ids only
// check that the client asked for this interface.
//
// As a client we make, per connection, one memfd region in DPDK's layout
// (c2s rings, s2c rings, then each ring's buffers), sealed so that it can
// never shrink. It does not come from the group's hugepage memory: memif
// maps a region from offset 0 of the fd it is given, so passing a group
// segment would hand the peer write access to every pool and table of the
// group.
//
// # Across processes
//
// The control channel lives in the primary, on goroutines started by Start.
// Everything a poller needs is plain data in the memzone "memif_<port
// name>": a connection generation (odd while connected), the primary's
// pid, each region's fd number (in the primary) and size, the region,
// offset and size of the ring behind each rx and tx queue, and our buffer
// size. The primary writes them and then bumps the generation; on
// disconnection it bumps the generation before it closes the fds. A queue,
// in whichever process claimed it, notices a new generation at its next
// burst and maps the regions itself, by opening /proc/<pid>/fd/<fd>, then
// checks that the generation did not move meanwhile; it unmaps them when
// the generation moves on. So the control channel never pulls memory from
// under a burst, and a secondary never touches the socket. The link state
// is the port's, set by the primary. Bursts take no lock, make no system
// call and allocate nothing; a queue bound to its polling lcore
// (ethdev.BindLcore) takes and returns mbufs through that lcore's caches,
// an unbound one through the pools' rings.
//
// Start opens the control channel, Stop disconnects the peer (telling it
// why) and closes it, Close unmaps this process's view. The memzone stays
// for a later port of the same name.
//
// # What a peer can and cannot do
//
// Everything the peer writes is untrusted: messages, ring indices and
// descriptors. A message that is not exactly 128 bytes, carries more than
// one fd, comes out of sequence, or names a wrong version, id, mode,
// secret, region index (regions come in order, at most 16, each at most
// 4 GiB), ring index (beyond our queues, or twice), ring size (beyond
// 2^14) or a ring lying outside its region gets the connection refused: a
// DISCONNECT with the reason, a warning in the log, the memif_refused_peers
// counter. A handshake must finish within 5 s. A region fd that could
// shrink under our mapping (not a sealable memfd) is refused, since a
// shrunk mapping would fault.
//
// Each descriptor is read once and checked against its region: one that
// points outside it, or is longer than our buffer (client) or 64 KiB
// (server), or a chain longer than 64 KiB, loses its frame, counted in the
// queue's errors; the slots are still consumed. A ring index that moves
// more than a ring ahead of our cursor, a chain that fills the whole ring,
// a buffer a client offers outside its region, or a peer hammering the
// head word, is corruption: it is counted (queue errors and
// memif_ring_errors), the queue stops using the ring, and the primary
// disconnects the peer within 100 ms ("Ring corrupted"). Recovery is a new
// connection with fresh rings. Our cursors live in the pollers, never read
// back from shared memory the peer can write. So a peer can garble, drop
// or withhold its own traffic and get itself disconnected; it cannot make
// us touch memory outside its regions, fault, loop, or allocate.
package memif
