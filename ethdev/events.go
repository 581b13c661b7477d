package ethdev

import (
	"encoding/binary"
	"log/slog"

	"github.com/gopmd/gopmd/mp"
)

// LinkEventName names the event the primary publishes (through
// mp.Process.Publish) when a port's link goes up or down. Any process
// receives it with mp.Process.Subscribe and reads it with ParseLinkEvent.
const LinkEventName = "link"

// publishLink tells the group a port's link changed.
func (p *Port) publishLink(l Link) {
	if p.proc.Type() != mp.Primary {
		return
	}
	data := make([]byte, 7)
	binary.LittleEndian.PutUint16(data, p.ID)
	if l.Up {
		data[2] = 1
	}
	binary.LittleEndian.PutUint32(data[3:], l.Mbps)
	if err := p.proc.Publish(mp.Event{Name: LinkEventName, Data: data}); err != nil {
		slog.Warn("ethdev: link event not delivered everywhere", "port", p.Name(), "err", err)
	}
}

// ParseLinkEvent reads a link event: the port id and its new link state.
func ParseLinkEvent(ev mp.Event) (port uint16, l Link, ok bool) {
	if ev.Name != LinkEventName || len(ev.Data) != 7 {
		return 0, Link{}, false
	}
	return binary.LittleEndian.Uint16(ev.Data), Link{Up: ev.Data[2] == 1, Mbps: binary.LittleEndian.Uint32(ev.Data[3:])}, true
}
