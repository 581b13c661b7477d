// Package ipc carries control messages between the processes of a gopmd
// group over Unix datagram sockets, in the manner of DPDK's rte_mp: named
// actions with a small payload and optional file descriptors, sent one-way
// or as requests that get a reply. It is the control path (attach this
// device, here is a memory segment fd, shut down); packets never go
// through it.
//
// # Endpoints and sockets
//
// Each process opens one Endpoint with Listen, bound in the group's
// runtime directory. The primary binds PrimarySocket ("mp_socket"); a
// secondary binds "mp_socket_<pid>_<n>". Socket files have mode 0600. An
// endpoint's socket name is its address: Send and Request take the name of
// the peer, and a handler sees the sender's name in Call.From. Broadcast
// and RequestAll find their peers by listing the socket files in the
// runtime directory; a file whose process is gone (sending to it gives
// ECONNREFUSED) is skipped and removed. Close removes the endpoint's own
// file. Only endpoints bound in the same directory may send: datagrams from
// any other address are rejected.
//
// Datagrams, not a stream or SOCK_SEQPACKET: one socket per process talks
// to every peer with no connection state, the sender's bound path comes
// with each datagram and is where the reply goes, each message arrives
// whole with its own SCM_RIGHTS descriptors, and a peer that is gone is
// reported by the send itself (ECONNREFUSED or ENOENT), so a request to it
// fails at once rather than at its deadline.
//
// # Messages
//
// A message is an action name of 1..MaxActionLen (64) bytes of printable
// ASCII without spaces, a payload of at most MaxPayload (4096) bytes and at
// most MaxFDs (8) file descriptors. Each datagram starts with a fixed
// 24-byte header (magic, version, kind, reply status, fd count, request id,
// name and payload lengths) that the receiver checks field by field. A
// message over a limit is refused by the sender with ErrInvalid.
//
// # Descriptors
//
// Sending never gives away the sender's descriptors: the receiver gets
// duplicates. Received descriptors belong to whoever the message is handed
// to, the handler (Call.FDs) or the caller of Request and RequestAll
// (Message.FDs), who must close them. Descriptors that arrive with a
// datagram nobody takes (malformed, unknown action, reply nobody waits for,
// failure reply) are closed by the endpoint.
//
// # Bad input
//
// A datagram that is truncated, oversized, malformed, from a foreign
// sender, for an action without a handler, or a reply to an unknown request
// id is dropped with a warning on the endpoint's slog.Logger saying what
// was wrong (and the sender's pid), counted in Stats.Rejected, and its
// descriptors closed; the endpoint goes on receiving. A request for an
// unknown action is answered with a failure that the requester sees as
// ErrUnknownAction.
//
// # Goroutines and handlers
//
// An endpoint runs two goroutines. The receive loop reads datagrams,
// hands replies to the waiting requests and queues the rest. The handler
// goroutine runs handlers one at a time in arrival order, so handlers need
// no locking among themselves, and since replies do not wait for it, a
// handler may itself call Request, even to the peer it is answering. A
// slow handler delays the ones after it; when more than 256 messages wait,
// new ones are dropped and requests among them are answered as busy.
// Close stops both goroutines, fails pending requests with ErrClosed and
// removes the socket file; a handler must not call Close directly.
package ipc
