package mp

import (
	"encoding/binary"
	"fmt"
	"time"

	"github.com/gopmd/gopmd/mp/ipc"
	"golang.org/x/sys/unix"
)

// actionSegmentFDs asks the primary for the file descriptors of the group's
// memory segments, for a secondary that must hand them on (to a vhost-user
// backend, say) without reopening files by path.
//
// A group may have more segments than one message carries descriptors
// (ipc.MaxFDs), so the request pages: its payload is the index of the first
// segment wanted (uint32, little endian); the reply's payload is the
// group's segment count (uint32) and then, for each descriptor attached,
// the segment's offset, length and page size (uint64 each).
const actionSegmentFDs = "mp_segment_fds"

const segmentEntry = 24 // bytes per segment in a reply

func (p *Process) registerSegmentFDs() error {
	return p.ep.Register(actionSegmentFDs, func(c *ipc.Call) error {
		c.CloseFDs()
		if !c.IsRequest() || len(c.Payload) != 4 {
			return fmt.Errorf("mp: %s from %s: want a request with a 4-byte start index, got %d bytes", actionSegmentFDs, c.From, len(c.Payload))
		}
		start := int(binary.LittleEndian.Uint32(c.Payload))
		if err := p.Mem.Sync(); err != nil {
			return err
		}
		segs := p.Mem.Segments()
		if start > len(segs) {
			return fmt.Errorf("mp: %s: start index %d is beyond the group's %d segments", actionSegmentFDs, start, len(segs))
		}
		page := segs[start:min(len(segs), start+ipc.MaxFDs)]
		payload := binary.LittleEndian.AppendUint32(make([]byte, 0, 4+segmentEntry*len(page)), uint32(len(segs)))
		fds := make([]int, 0, len(page))
		for _, s := range page {
			payload = binary.LittleEndian.AppendUint64(payload, s.Off)
			payload = binary.LittleEndian.AppendUint64(payload, s.Len)
			payload = binary.LittleEndian.AppendUint64(payload, s.PageSize)
			fds = append(fds, s.FD) // Reply passes duplicates; the Memory keeps its own
		}
		return c.Reply(ipc.Message{Payload: payload, FDs: fds})
	})
}

// SegmentFD is a segment's file descriptor, received from the primary.
type SegmentFD struct {
	Off, Len, PageSize uint64
	FD                 int // owned by the caller, who must close it
}

// SegmentFDs returns a descriptor for every segment of the group, including
// ones other processes added (it syncs first). A secondary asks the primary,
// as many times as the segments need messages. The descriptors are new ones,
// owned by the caller, who must close them (CloseSegmentFDs); on error none
// are left open.
func (p *Process) SegmentFDs() ([]SegmentFD, error) {
	if p.typ == Primary {
		if err := p.Mem.Sync(); err != nil {
			return nil, fmt.Errorf("mp: segment fds: %w", err)
		}
		var out []SegmentFD
		for _, s := range p.Mem.Segments() {
			fd, err := unix.FcntlInt(uintptr(s.FD), unix.F_DUPFD_CLOEXEC, 0)
			if err != nil {
				CloseSegmentFDs(out)
				return nil, fmt.Errorf("mp: duplicate the descriptor of segment at offset %#x: %w", s.Off, err)
			}
			out = append(out, SegmentFD{Off: s.Off, Len: s.Len, PageSize: s.PageSize, FD: fd})
		}
		return out, nil
	}
	var out []SegmentFD
	for total := -1; total < 0 || len(out) < total; {
		page, n, err := p.segmentFDPage(len(out))
		if err != nil {
			CloseSegmentFDs(out)
			return nil, err
		}
		out = append(out, page...)
		total = n
		if len(page) == 0 && len(out) < total {
			CloseSegmentFDs(out)
			return nil, fmt.Errorf("mp: segment fds: the primary sent none from index %d of %d segments", len(out), total)
		}
	}
	return out, nil
}

// segmentFDPage asks the primary for the segments from index start on.
func (p *Process) segmentFDPage(start int) ([]SegmentFD, int, error) {
	req := binary.LittleEndian.AppendUint32(nil, uint32(start))
	reply, err := p.ep.Request(ipc.PrimarySocket, ipc.Message{Action: actionSegmentFDs, Payload: req}, time.Now().Add(2*time.Second))
	if err != nil {
		return nil, 0, fmt.Errorf("mp: segment fds from the primary: %w", err)
	}
	if len(reply.Payload) != 4+segmentEntry*len(reply.FDs) {
		reply.CloseFDs()
		return nil, 0, fmt.Errorf("mp: segment fds reply has %d bytes for %d fds, want 4 + %d each", len(reply.Payload), len(reply.FDs), segmentEntry)
	}
	total := int(binary.LittleEndian.Uint32(reply.Payload))
	if start+len(reply.FDs) > total {
		reply.CloseFDs()
		return nil, 0, fmt.Errorf("mp: segment fds reply has segments %d..%d of a group it says has %d", start, start+len(reply.FDs)-1, total)
	}
	out := make([]SegmentFD, len(reply.FDs))
	for i, fd := range reply.FDs {
		b := reply.Payload[4+segmentEntry*i:]
		out[i] = SegmentFD{Off: binary.LittleEndian.Uint64(b), Len: binary.LittleEndian.Uint64(b[8:]), PageSize: binary.LittleEndian.Uint64(b[16:]), FD: fd}
	}
	return out, total, nil
}

// CloseSegmentFDs closes the descriptors SegmentFDs returned.
func CloseSegmentFDs(segs []SegmentFD) {
	for _, s := range segs {
		unix.Close(s.FD)
	}
}
