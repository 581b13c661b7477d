package ipc

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Reply is one peer's answer to RequestAll.
type Reply struct {
	Peer    string
	Message       // the reply; its FDs belong to the caller
	Err     error // why there is no reply from Peer
}

// pending is a request waiting for its reply. The receive loop (with the
// reply) or Close (with ErrClosed) removes it from Endpoint.pending and
// delivers on ch, both under Endpoint.mu, so exactly one delivery happens
// for each pending entry that is not taken back by its requester.
type pending struct {
	peer, action string
	idx          int
	ch           chan<- delivery
}

type delivery struct {
	idx int
	msg Message
	err error
}

// Request sends m to the peer named to and waits for its reply until
// deadline. It fails at once with ErrPeerGone if the peer's socket is
// missing or orphaned, and soon after the peer exits while the request is
// outstanding; with ErrUnknownAction if the peer has no handler for
// m.Action; with ErrRemote if the peer's handler failed; with ErrTimeout at
// the deadline. The reply's FDs belong to the caller.
//
// A handler may call Request: replies are read by the receive loop, not
// by the handler goroutine.
func (e *Endpoint) Request(to string, m Message, deadline time.Time) (Message, error) {
	if err := checkPeer(to); err != nil {
		return Message{}, fmt.Errorf("ipc: request %q: %w: %v", m.Action, ErrInvalid, err)
	}
	r := e.request([]string{to}, m, deadline, false)[0]
	return r.Message, r.Err
}

// RequestAll sends m as a request to every other endpoint in the runtime
// directory (from the primary: every secondary) and waits until all have
// answered or the deadline has passed. It returns one Reply per peer that
// was reached, sorted by peer name, and the errors of those that failed
// joined into one (nil if all answered). Socket files whose process is
// gone are skipped and removed.
func (e *Endpoint) RequestAll(m Message, deadline time.Time) ([]Reply, error) {
	if err := m.check(); err != nil {
		return nil, fmt.Errorf("ipc: request %q to all: %w: %v", truncate(m.Action, MaxActionLen), ErrInvalid, err)
	}
	peers, err := e.Peers()
	if err != nil {
		return nil, err
	}
	var replies []Reply
	var errs []error
	for _, r := range e.request(peers, m, deadline, true) {
		if r.goneAtSend {
			continue
		}
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
		replies = append(replies, r.Reply)
	}
	return replies, errors.Join(errs...)
}

// Broadcast sends m as a one-way message to every other endpoint in the
// runtime directory (from the primary: every secondary) and returns how
// many got it. Socket files whose process is gone are skipped and removed;
// other failures are joined into the error.
func (e *Endpoint) Broadcast(m Message) (int, error) {
	if err := m.check(); err != nil {
		return 0, fmt.Errorf("ipc: broadcast %q: %w: %v", truncate(m.Action, MaxActionLen), ErrInvalid, err)
	}
	peers, err := e.Peers()
	if err != nil {
		return 0, err
	}
	b := appendDatagram(nil, kindMessage, statusOK, 0, m.Action, m.Payload, len(m.FDs))
	oob := rights(m.FDs)
	sent := 0
	var errs []error
	for _, p := range peers {
		err := e.send(p, b, oob, time.Now().Add(sendTimeout))
		switch {
		case err == nil:
			sent++
		case errors.Is(err, ErrPeerGone):
			e.removeStale(p, err)
		default:
			errs = append(errs, fmt.Errorf("ipc: broadcast %q to %s: %w", m.Action, p, err))
		}
	}
	return sent, errors.Join(errs...)
}

// Peers lists the socket names of the other endpoints in the runtime
// directory, sorted. Some may belong to processes that are gone.
func (e *Endpoint) Peers() ([]string, error) {
	ents, err := os.ReadDir(e.dir)
	if err != nil {
		return nil, fmt.Errorf("ipc: list peers in %s: %w", e.dir, err)
	}
	var peers []string
	for _, d := range ents {
		if d.Type()&os.ModeSocket != 0 && d.Name() != e.name && validPeerName(d.Name()) {
			peers = append(peers, d.Name())
		}
	}
	return peers, nil
}

// removeStale deletes the socket file of a peer whose send failed with
// ECONNREFUSED: the file exists but no process has it bound, and while it
// exists nobody can bind that name, so it is not a newer peer's file.
func (e *Endpoint) removeStale(peer string, sendErr error) {
	if !errors.Is(sendErr, unix.ECONNREFUSED) {
		return
	}
	if err := unix.Unlink(e.path(peer)); err == nil {
		e.log.Info("ipc: removed stale socket of a gone peer", "peer", peer)
	} else if !errors.Is(err, unix.ENOENT) {
		e.log.Warn("ipc: cannot remove stale socket", "peer", peer, "err", err)
	}
}

// request sends m as a request to each peer and collects the replies.
// discovered says the peers come from the runtime directory, so that an
// orphaned socket file among them is removed.
func (e *Endpoint) request(peers []string, m Message, deadline time.Time, discovered bool) []replyState {
	out := make([]replyState, len(peers))
	for i, p := range peers {
		out[i].Peer = p
	}
	if err := m.check(); err != nil {
		for i := range out {
			out[i].Err = fmt.Errorf("ipc: request %q to %s: %w: %v", truncate(m.Action, MaxActionLen), out[i].Peer, ErrInvalid, err)
		}
		return out
	}
	start := time.Now()
	if !deadline.After(start) {
		for i := range out {
			out[i].Err = fmt.Errorf("ipc: request %q to %s: %w: the deadline %v had passed before sending",
				m.Action, out[i].Peer, ErrTimeout, deadline.Format(time.RFC3339Nano))
		}
		return out
	}
	ch := make(chan delivery, len(peers))
	oob := rights(m.FDs)
	waiting := 0
	for i, peer := range peers {
		id := e.nextID.Add(1)
		e.mu.Lock()
		if e.closed {
			e.mu.Unlock()
			out[i].Err = fmt.Errorf("ipc: request %q to %s: %w", m.Action, peer, ErrClosed)
			continue
		}
		e.pending[id] = &pending{peer: peer, action: m.Action, idx: i, ch: ch}
		e.mu.Unlock()
		b := appendDatagram(nil, kindRequest, statusOK, id, m.Action, m.Payload, len(m.FDs))
		err := e.send(peer, b, oob, deadline)
		if err == nil {
			out[i].id = id
			waiting++
			continue
		}
		if !e.takeBack(id) {
			out[i].id = id // Close delivered ErrClosed meanwhile
			waiting++
			continue
		}
		out[i].Err = fmt.Errorf("ipc: request %q to %s: %w", m.Action, peer, err)
		if errors.Is(err, ErrPeerGone) {
			out[i].goneAtSend = true
			if discovered {
				e.removeStale(peer, err)
			}
		}
	}

	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	tick := time.NewTicker(livenessInterval)
	defer tick.Stop()
	for waiting > 0 {
		select {
		case d := <-ch:
			out[d.idx].Message, out[d.idx].Err, out[d.idx].id = d.msg, d.err, 0
			waiting--
		case <-timer.C:
			for i := range out {
				if out[i].id != 0 && e.takeBack(out[i].id) {
					out[i].Err = fmt.Errorf("ipc: request %q to %s: %w: no reply within %v",
						m.Action, out[i].Peer, ErrTimeout, time.Since(start).Round(time.Millisecond))
					out[i].id = 0
					waiting--
				}
			}
			for ; waiting > 0; waiting-- { // the rest were delivered before they could be taken back
				d := <-ch
				out[d.idx].Message, out[d.idx].Err, out[d.idx].id = d.msg, d.err, 0
			}
		case <-tick.C:
			// A peer that exits without answering would otherwise hold the
			// request until the deadline. Fail it after two checks in a row
			// find its socket orphaned, so that a reply it sent just before
			// exiting has time to be read.
			for i := range out {
				r := &out[i]
				if r.id == 0 {
					continue
				}
				perr := probe(e.path(r.Peer))
				if !isGone(perr) {
					r.suspect = false
					continue
				}
				if r.suspect && e.takeBack(r.id) {
					r.Err = fmt.Errorf("ipc: request %q to %s: %w: it exited before replying (%w)", m.Action, r.Peer, ErrPeerGone, perr)
					r.id = 0
					waiting--
				}
				r.suspect = true
			}
		}
	}
	return out
}

// replyState is a Reply while its request is outstanding.
type replyState struct {
	Reply
	id         uint64 // pending request id; 0 once settled
	suspect    bool   // the last liveness check found the peer gone
	goneAtSend bool   // the peer was gone before the request was sent
}

// takeBack removes a pending request so that no reply will be delivered for
// it. It reports false if a delivery already happened.
func (e *Endpoint) takeBack(id uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, ok := e.pending[id]; !ok {
		return false
	}
	delete(e.pending, id)
	return true
}

// deliverReply hands a reply to its waiting request, or returns why not.
func (e *Endpoint) deliverReply(peer string, h header, action string, payload []byte, fds []int) (reject string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	p := e.pending[h.id]
	switch {
	case p == nil:
		return fmt.Sprintf("reply %q to unknown request id %d (timed out, already answered or never sent)", action, h.id)
	case p.peer != peer:
		return fmt.Sprintf("reply to request id %d came from %s, but the request went to %s", h.id, peer, p.peer)
	case p.action != action:
		return fmt.Sprintf("reply to request id %d names action %q, but the request was %q", h.id, action, p.action)
	}
	delete(e.pending, h.id)
	d := delivery{idx: p.idx}
	if h.status == statusOK {
		d.msg = Message{Action: action, Payload: clone(payload), FDs: fds}
	} else {
		d.err = statusError(action, peer, h.status, string(payload))
	}
	p.ch <- d
	return ""
}

func statusError(action, peer string, st status, text string) error {
	text = strings.ToValidUTF8(text, "?")
	switch st {
	case statusNoHandler:
		return fmt.Errorf("ipc: request %q to %s: %w", action, peer, ErrUnknownAction)
	case statusHandlerError:
		return fmt.Errorf("ipc: request %q to %s: %w: handler error: %q", action, peer, ErrRemote, text)
	case statusBusy:
		return fmt.Errorf("ipc: request %q to %s: %w: peer is busy: %q", action, peer, ErrRemote, text)
	default:
		return fmt.Errorf("ipc: request %q to %s: %w: %q", action, peer, ErrRemote, text)
	}
}
