package virtqueue

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"
)

// The control queue carries one command at a time (virtio 1.2 section
// 5.1.6.5): a device-readable buffer with the class, the command and its
// data, then a device-writable byte for the device's answer.

// ctrlStatusOff is where, in the header area, the device writes its answer.
const ctrlStatusOff = ctrlArea - 64

// MaxCommand is the longest command: class, command and data.
const MaxCommand = ctrlStatusOff

// Command sends cmd (class, command, data) on a control queue and waits up
// to timeout for the device's answer byte (VIRTIO_NET_OK is 0).
func (q *Queue) Command(cmd []byte, timeout time.Duration) (byte, error) {
	if q.role != RoleCtrl {
		return 0, fmt.Errorf("virtqueue: %q is not a control queue", q.zone.Name)
	}
	if len(cmd) < 2 || len(cmd) > MaxCommand {
		return 0, fmt.Errorf("virtqueue: control command of %d bytes: want 2 to %d", len(cmd), MaxCommand)
	}
	q.reclaim() // answers to commands that timed out earlier
	st := q.st
	if st.FreeTop < 2 || (q.kind == Packed && st.FreeSlots < 2) {
		return 0, fmt.Errorf("virtqueue: control queue %q is full of unanswered commands", q.zone.Name)
	}
	copy(unsafe.Slice((*byte)(q.hdrs), len(cmd)), cmd)
	atomic.StoreUint32((*uint32)(unsafe.Add(q.hdrs, ctrlStatusOff)), 0xff)
	outAddr, inAddr := q.hdrsAddr, q.hdrsAddr+ctrlStatusOff

	var head uint32
	if q.kind == Split {
		head = q.pop()
		tail := q.pop()
		q.ids[head] = idEntry{Next: uint16(tail), NDesc: 2}
		q.ids[tail] = idEntry{}
		q.desc[head] = splitDesc{Addr: outAddr, Len: uint32(len(cmd)), Flags: descFNext, Next: uint16(tail)}
		q.desc[tail] = splitDesc{Addr: inAddr, Len: 1, Flags: descFWrite}
		q.availRing[st.AvailIdx&q.mask] = uint16(head)
		st.AvailIdx = (st.AvailIdx + 1) & 0xffff
		atomic.StoreUint32(q.availWord, st.AvailIdx<<16|availFNoInterrupt)
	} else {
		head = q.pop()
		q.ids[head] = idEntry{NDesc: 2}
		pos, wrap := st.AvailIdx, st.AvailWrap
		first := &q.pdesc[pos&q.mask]
		first.Addr, first.Len, first.ID = outAddr, uint32(len(cmd)), uint16(head)
		pos2, wrap2 := advance(pos, wrap, 1, q.size)
		q.pdesc[pos2&q.mask] = packedDesc{Addr: inAddr, Len: 1, ID: uint16(head), Flags: descFWrite | availFlags(wrap2)}
		first.Flags = descFNext | availFlags(wrap)
		st.AvailIdx, st.AvailWrap = advance(pos2, wrap2, 1, q.size)
		st.FreeSlots -= 2
		atomic.AddUint32(&st.Busy, 0)
	}
	q.kick()

	deadline := time.Now().Add(timeout)
	for q.ids[head].NDesc != 0 {
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("virtqueue: control queue %q: no answer to command class %d cmd %d within %v", q.zone.Name, cmd[0], cmd[1], timeout)
		}
		time.Sleep(10 * time.Microsecond)
		q.reclaim()
	}
	return byte(atomic.LoadUint32((*uint32)(unsafe.Add(q.hdrs, ctrlStatusOff)))), nil
}
