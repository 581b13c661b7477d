package mp

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gopmd/gopmd/mp/ipc"
)

// actionSegmentFDs asks the primary for the file descriptors of the group's
// memory segments, for a secondary that must hand them on (to a vhost-user
// backend, say) without reopening files by path.
const actionSegmentFDs = "mp_segment_fds"

func (p *Process) registerSegmentFDs() {
	if p.typ != Primary {
		return
	}
	p.ep.Register(actionSegmentFDs, func(c *ipc.Call) error {
		segs := p.Mem.Segments()
		if len(segs) > ipc.MaxFDs {
			segs = segs[:ipc.MaxFDs]
		}
		payload := make([]byte, 0, 24*len(segs))
		fds := make([]int, 0, len(segs))
		for _, s := range segs {
			payload = binary.LittleEndian.AppendUint64(payload, s.Off)
			payload = binary.LittleEndian.AppendUint64(payload, s.Len)
			payload = binary.LittleEndian.AppendUint64(payload, s.PageSize)
			fds = append(fds, s.FD)
		}
		return c.Reply(ipc.Message{Action: actionSegmentFDs, Payload: payload, FDs: fds})
	})
}

// SegmentFD is a segment's file descriptor, received from the primary.
type SegmentFD struct {
	Off, Len, PageSize uint64
	FD                 int // owned by the caller, who must close it
}

// SegmentFDs asks the primary for the file descriptors of the group's
// segments (at most ipc.MaxFDs of them).
func (p *Process) SegmentFDs() ([]SegmentFD, error) {
	if p.typ == Primary {
		var out []SegmentFD
		for _, s := range p.Mem.Segments() {
			out = append(out, SegmentFD{Off: s.Off, Len: s.Len, PageSize: s.PageSize, FD: s.FD})
		}
		return out, nil
	}
	reply, err := p.ep.Request(ipc.PrimarySocket, ipc.Message{Action: actionSegmentFDs}, time.Now().Add(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("mp: segment fds from the primary: %w", err)
	}
	if len(reply.Payload) != 24*len(reply.FDs) {
		reply.CloseFDs()
		return nil, fmt.Errorf("mp: segment fds reply has %d bytes for %d fds, want 24 each", len(reply.Payload), len(reply.FDs))
	}
	out := make([]SegmentFD, len(reply.FDs))
	for i, fd := range reply.FDs {
		b := reply.Payload[24*i:]
		out[i] = SegmentFD{Off: binary.LittleEndian.Uint64(b), Len: binary.LittleEndian.Uint64(b[8:]), PageSize: binary.LittleEndian.Uint64(b[16:]), FD: fd}
	}
	return out, nil
}
