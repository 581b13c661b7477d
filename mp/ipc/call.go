package ipc

import (
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// Handler handles the messages of one action. For a request, the handler
// may answer with c.Reply; if it returns without replying, the endpoint
// replies for it: an empty message if it returned nil, a failure carrying
// the error's text (ErrRemote at the requester) otherwise. For a one-way
// message a returned error is only logged.
type Handler func(c *Call) error

// Call is a received one-way message or request, handed to the handler
// registered for its action.
type Call struct {
	From string // socket name of the sender; an address for Send and Request
	// Message is what the peer sent. Its FDs belong to the handler, which
	// must close them or keep them; the endpoint never touches them again.
	Message

	e       *Endpoint
	kind    kind
	id      uint64
	replied atomic.Bool
}

// IsRequest reports whether the sender waits for a reply.
func (c *Call) IsRequest() bool { return c.kind == kindRequest }

// Reply answers a request. It must be called before the handler returns,
// at most once. The handler keeps
// its descriptors (the requester gets duplicates), so it may close them
// once Reply returns. m.Action is ignored: a reply carries the request's
// action.
func (c *Call) Reply(m Message) error {
	m.Action = c.Action
	if !c.IsRequest() {
		return fmt.Errorf("ipc: reply to %q from %s: %w: it is a one-way message, not a request", c.Action, c.From, ErrInvalid)
	}
	if err := m.check(); err != nil {
		return fmt.Errorf("ipc: reply to %q from %s: %w: %v", c.Action, c.From, ErrInvalid, err)
	}
	if !c.replied.CompareAndSwap(false, true) {
		return fmt.Errorf("ipc: reply to %q from %s: %w: the request was already answered", c.Action, c.From, ErrInvalid)
	}
	b := appendDatagram(nil, kindReply, statusOK, c.id, c.Action, m.Payload, len(m.FDs))
	if err := c.e.send(c.From, b, rights(m.FDs), time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("ipc: reply to %q from %s: %w", c.Action, c.From, err)
	}
	return nil
}

// fail sends a failure reply with reason as its text, unless the request
// was already answered.
func (c *Call) fail(st status, reason string, deadline time.Time) {
	if !c.replied.CompareAndSwap(false, true) {
		return
	}
	b := appendDatagram(nil, kindReply, st, c.id, c.Action, []byte(truncate(reason, maxStatusLen-3)), 0)
	if err := c.e.send(c.From, b, nil, deadline); err != nil {
		c.e.log.Warn("ipc: failure reply not sent", "action", c.Action, "to", c.From, "reason", reason, "err", err)
	}
}

// Register makes h handle messages whose action is action. An action has
// at most one handler.
func (e *Endpoint) Register(action string, h Handler) error {
	if err := checkAction(action); err != nil {
		return fmt.Errorf("ipc: register: %w", err)
	}
	if h == nil {
		return fmt.Errorf("ipc: register %q: handler is nil", action)
	}
	e.hmu.Lock()
	defer e.hmu.Unlock()
	if _, ok := e.handlers[action]; ok {
		return fmt.Errorf("ipc: register %q: the action already has a handler", action)
	}
	e.handlers[action] = h
	return nil
}

// Unregister removes the handler of action, if any. Messages for it that
// arrive afterwards are rejected as unknown.
func (e *Endpoint) Unregister(action string) {
	e.hmu.Lock()
	delete(e.handlers, action)
	e.hmu.Unlock()
}

// work is the handler goroutine: it runs handlers one at a time, in the
// order their messages arrived.
func (e *Endpoint) work() {
	defer close(e.workDone)
	for c := range e.queue {
		if e.isClosed() {
			e.closeReceived(c.FDs)
			continue
		}
		e.hmu.RLock()
		h := e.handlers[c.Action]
		e.hmu.RUnlock()
		if h == nil {
			e.closeReceived(c.FDs)
			e.log.Warn("ipc: rejected datagram", "reason", fmt.Sprintf("no handler for action %q", c.Action),
				"from", c.From, "kind", c.kind.String(), "fds", len(c.FDs))
			e.rejected.Add(1)
			if c.IsRequest() {
				c.fail(statusNoHandler, fmt.Sprintf("no handler for action %q", c.Action), time.Now().Add(sendTimeout))
			}
			continue
		}
		err := h(c)
		switch {
		case c.IsRequest() && err != nil:
			if c.replied.Load() {
				e.log.Warn("ipc: handler failed after replying", "action", c.Action, "from", c.From, "err", err)
			}
			c.fail(statusHandlerError, err.Error(), time.Now().Add(sendTimeout))
		case c.IsRequest():
			if !c.replied.Load() {
				if rerr := c.Reply(Message{}); rerr != nil && !errors.Is(rerr, ErrInvalid) {
					e.log.Warn("ipc: empty reply not sent", "action", c.Action, "to", c.From, "err", rerr)
				}
			}
		case err != nil:
			e.log.Warn("ipc: handler failed", "action", c.Action, "from", c.From, "err", err)
		}
	}
}
