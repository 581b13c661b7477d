package mp

import (
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/gopmd/gopmd/mp/ipc"
)

// Events remove DPDK's "interrupts only in the primary" limitation: device
// events (a link going up or down, say) happen in the primary, which owns the
// device, and the primary forwards each one to every process that
// subscribed, over the group's IPC sockets.
const (
	actionSubscribe = "mp_subscribe"
	actionEvent     = "mp_event"

	eventQueue = 256 // events a subscriber may fall behind by before they are dropped
)

// Event is a device event: a short name ("link", ...) and a payload whose
// layout the publisher defines (plain bytes: it crosses processes).
type Event struct {
	Name string
	Data []byte
}

// events is the primary's list of subscribers and every process's local
// delivery channel.
type events struct {
	mu      sync.Mutex
	subs    map[string]bool // secondary endpoint names, in the primary
	local   chan Event      // this process's subscription, nil until Subscribe
	dropped atomic.Uint64
	forged  atomic.Uint64 // events refused because a process other than the primary sent them
}

// startIPC opens the process's endpoint and registers the event actions.
func (p *Process) startIPC() error {
	ep, err := ipc.Listen(ipc.Options{Dir: p.Mem.RuntimeDir(), Primary: p.typ == Primary})
	if err != nil {
		return fmt.Errorf("mp: IPC endpoint: %w", err)
	}
	p.ep = ep
	p.ev.subs = map[string]bool{}
	if err := p.registerActions(); err != nil {
		ep.Close()
		return fmt.Errorf("mp: IPC endpoint: %w", err)
	}
	return nil
}

// registerActions installs the group's own actions: in the primary the
// subscription and segment-descriptor requests, in a secondary the
// delivery of events, accepted from the primary only. Every handler closes
// descriptors it was sent, which none of them expects.
func (p *Process) registerActions() error {
	if p.typ == Primary {
		if err := p.ep.Register(actionSubscribe, func(c *ipc.Call) error {
			c.CloseFDs()
			p.ev.mu.Lock()
			p.ev.subs[c.From] = true
			p.ev.mu.Unlock()
			return nil
		}); err != nil {
			return err
		}
		return p.registerSegmentFDs()
	}
	return p.ep.Register(actionEvent, func(c *ipc.Call) error {
		c.CloseFDs()
		if c.From != ipc.PrimarySocket {
			// Only the primary publishes; anything else is forged.
			if p.ev.forged.Add(1) == 1 {
				slog.Warn("mp: dropping an event not sent by the primary", "from", c.From)
			}
			return fmt.Errorf("event from %s refused: only the primary (%s) sends events", c.From, ipc.PrimarySocket)
		}
		name, data, ok := decodeEvent(c.Payload)
		if !ok {
			return fmt.Errorf("malformed event of %d bytes", len(c.Payload))
		}
		p.deliver(Event{Name: name, Data: data})
		return nil
	})
}

// IPC returns the process's messaging endpoint, for packages that exchange
// their own actions (for example to pass device file descriptors).
func (p *Process) IPC() *ipc.Endpoint { return p.ep }

// Subscribe returns a channel on which this process receives every event
// the primary publishes from now on. In a secondary it registers with the
// primary. Events that arrive while the channel is full are dropped and
// counted (DroppedEvents).
func (p *Process) Subscribe() (<-chan Event, error) {
	p.ev.mu.Lock()
	if p.ev.local == nil {
		p.ev.local = make(chan Event, eventQueue)
	}
	ch := p.ev.local
	p.ev.mu.Unlock()
	if p.typ == Secondary {
		_, err := p.ep.Request(ipc.PrimarySocket, ipc.Message{Action: actionSubscribe}, time.Now().Add(2*time.Second))
		if err != nil {
			return nil, fmt.Errorf("mp: subscribe to the primary's events: %w", err)
		}
	}
	return ch, nil
}

// Publish sends an event to every subscriber, the primary's own included.
// Only the primary publishes. Subscribers that have gone are forgotten.
func (p *Process) Publish(ev Event) error {
	if p.typ != Primary {
		return fmt.Errorf("mp: only the primary publishes events (event %q)", ev.Name)
	}
	payload, err := encodeEvent(ev)
	if err != nil {
		return err
	}
	p.deliver(ev)
	p.ev.mu.Lock()
	subs := make([]string, 0, len(p.ev.subs))
	for s := range p.ev.subs {
		subs = append(subs, s)
	}
	p.ev.mu.Unlock()
	var errs []error
	for _, s := range subs {
		err := p.ep.Send(s, ipc.Message{Action: actionEvent, Payload: payload})
		if errors.Is(err, ipc.ErrPeerGone) {
			p.ev.mu.Lock()
			delete(p.ev.subs, s)
			p.ev.mu.Unlock()
			continue
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("event %q to %s: %w", ev.Name, s, err))
		}
	}
	return errors.Join(errs...)
}

// DroppedEvents counts events lost because this process's channel was full.
func (p *Process) DroppedEvents() uint64 { return p.ev.dropped.Load() }

func (p *Process) deliver(ev Event) {
	p.ev.mu.Lock()
	ch := p.ev.local
	p.ev.mu.Unlock()
	if ch == nil {
		return
	}
	select {
	case ch <- ev:
	default:
		if p.ev.dropped.Add(1) == 1 {
			slog.Warn("mp: event channel full; dropping events", "event", ev.Name)
		}
	}
}

// An event travels as one byte of name length, the name, then the data.
func encodeEvent(ev Event) ([]byte, error) {
	if ev.Name == "" || len(ev.Name) > 255 || 1+len(ev.Name)+len(ev.Data) > ipc.MaxPayload {
		return nil, fmt.Errorf("mp: event %q with %d bytes of data does not fit a message (%d bytes)", ev.Name, len(ev.Data), ipc.MaxPayload)
	}
	b := append([]byte{byte(len(ev.Name))}, ev.Name...)
	return append(b, ev.Data...), nil
}

func decodeEvent(b []byte) (name string, data []byte, ok bool) {
	if len(b) < 1 || b[0] == 0 || int(b[0]) > len(b)-1 {
		return "", nil, false
	}
	n := int(b[0])
	return string(b[1 : 1+n]), append([]byte(nil), b[1+n:]...), true
}
