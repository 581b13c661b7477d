package virtqueue

import (
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/mbuf"
)

// Tx frees the packets the device has sent, then hands it as many of pkts
// as there are free descriptors for, and returns how many it took; the
// queue frees those once sent. A packet it can never send (more segments
// than the ring has descriptors, or memory the device cannot reach) is
// taken, freed and counted as an error.
func (q *Queue) Tx(pkts []*mbuf.Mbuf) int {
	if !q.enter() {
		return 0
	}
	// Sent packets are freed lazily, when the ring runs short of room (or
	// when asked, by a burst of nothing): reading the used ring while the
	// device writes it costs more than the packets do.
	if len(pkts) == 0 || q.room() < max(uint32(len(pkts)), q.size/8) {
		switch {
		case len(pkts) == 0:
			q.reclaim()
		case q.backoff > 0:
			q.backoff--
		case q.reclaim() < q.size/8:
			// The device is behind. Polling its used ring at once again
			// would only slow it down further: look again a few bursts
			// later.
			q.backoff = txBackoff
		}
	}
	var n int
	if q.kind == Split {
		n = q.txSplit(pkts)
	} else {
		n = q.txPacked(pkts)
	}
	q.leave()
	return n
}

// room returns how many descriptors are free.
func (q *Queue) room() uint32 {
	if q.kind == Split {
		return q.st.FreeTop
	}
	return min(q.st.FreeTop, q.st.FreeSlots)
}

// txBackoff is how many bursts on a full ring skip looking at the used
// ring after a look found little.
const txBackoff = 8

// reclaim frees the packets of the used entries and returns how many
// entries it took.
func (q *Queue) reclaim() uint32 {
	if q.kind == Split {
		return q.reclaimSplit()
	}
	return q.reclaimPacked()
}

func (q *Queue) reclaimSplit() uint32 {
	st := q.st
	ready := q.ready()
	if ready == 0 {
		return 0
	}
	last := st.UsedIdx
	k := 0
	var bad uint64
	for range ready {
		id := q.usedRing[last&q.mask].ID
		last = (last + 1) & 0xffff
		m, ok := q.takeSplit(id)
		if !ok {
			bad++
			continue
		}
		if m == nil {
			continue // a control command
		}
		q.scratch[k] = m
		k++
		if k == batch {
			mbuf.FreeBulkLcore(q.lcore, q.scratch[:k])
			k = 0
		}
	}
	st.UsedIdx = last
	q.finishReclaim(k, uint64(ready), bad)
	return ready
}

// finishReclaim frees the last k collected packets and counts.
func (q *Queue) finishReclaim(k int, completed, bad uint64) {
	if k > 0 {
		mbuf.FreeBulkLcore(q.lcore, q.scratch[:k])
	}
	add(&q.st.Counters.Completed, completed)
	if bad > 0 {
		add(&q.st.Counters.BadID, bad)
		q.counters.AddErrors(bad)
	}
}

// takeSplit frees the descriptor chain that id heads, following our own
// record of it, and returns its packet (nil for a control command); ok is
// false if id heads no chain in flight.
func (q *Queue) takeSplit(id uint32) (m *mbuf.Mbuf, ok bool) {
	if id >= q.size {
		return nil, false
	}
	e := &q.ids[id]
	nd := uint32(e.NDesc)
	if nd == 0 {
		return nil, false
	}
	off := e.Mbuf
	e.Mbuf, e.NDesc = 0, 0
	d := id
	for range min(nd, q.size) {
		next := uint32(q.ids[d].Next) & q.mask
		q.push(d)
		d = next
	}
	if off == 0 {
		return nil, true
	}
	return mbuf.FromOff(q.mem, off), true
}

func (q *Queue) reclaimPacked() uint32 {
	st := q.st
	pos, wrap := st.UsedIdx, st.UsedWrap
	k := 0
	var completed, bad uint64
	for range q.size {
		w := atomic.LoadUint32(q.descWord(pos))
		if !usedFlags(w>>16, wrap) {
			break
		}
		completed++
		id, n := w&0xffff, uint32(1)
		if id < q.size && q.ids[id].NDesc != 0 {
			e := &q.ids[id]
			n = uint32(e.NDesc)
			off := e.Mbuf
			e.Mbuf, e.NDesc = 0, 0
			q.push(id)
			if off != 0 {
				q.scratch[k] = mbuf.FromOff(q.mem, off)
				k++
				if k == batch {
					mbuf.FreeBulkLcore(q.lcore, q.scratch[:k])
					k = 0
				}
			}
		} else {
			bad++
		}
		pos, wrap = advance(pos, wrap, n, q.size)
		st.FreeSlots = min(st.FreeSlots+n, q.size)
	}
	st.UsedIdx, st.UsedWrap = pos, wrap
	q.finishReclaim(k, completed, bad)
	return uint32(completed)
}

// txShape says how a packet goes on the ring: with its header pushed into
// the headroom of its only segment (one descriptor), or with the header in
// the queue's header slot followed by one descriptor per segment. segs is
// 0 for a packet the device can never get.
func (q *Queue) txShape(m *mbuf.Mbuf) (segs uint32, push bool) {
	if m.Next() == nil {
		if !q.linear && m.BufIOVA() == 0 {
			add(&q.st.Counters.NoDMA, 1)
			return 0, false
		}
		return 1, m.Refcnt() == 1 && uint32(m.Headroom()) >= q.hdrLen
	}
	for s := m; s != nil; s = s.Next() {
		if !q.linear && s.BufIOVA() == 0 {
			add(&q.st.Counters.NoDMA, 1)
			return 0, false
		}
		segs++
		if segs >= q.size {
			add(&q.st.Counters.Oversize, 1)
			return 0, false
		}
	}
	return segs, false
}

// zeroHdr writes an all-zero virtio-net header (no offloads) at p.
func (q *Queue) zeroHdr(p unsafe.Pointer) {
	*(*uint64)(p) = 0
	if q.hdrLen == 12 {
		*(*uint32)(unsafe.Add(p, 8)) = 0
	} else {
		*(*uint16)(unsafe.Add(p, 8)) = 0
	}
}

// pushHdr writes the header in front of m's data and returns the device
// address and length of header and data together.
func (q *Queue) pushHdr(m *mbuf.Mbuf) (uint64, uint32) {
	data := unsafe.Pointer(unsafe.SliceData(m.Buf()))
	q.zeroHdr(unsafe.Add(data, m.Headroom()-int(q.hdrLen)))
	return q.dataAddr(m) - uint64(q.hdrLen), uint32(m.DataLen()) + q.hdrLen
}

func (q *Queue) txSplit(pkts []*mbuf.Mbuf) int {
	st := q.st
	// The common packet, one segment with room for the header in front,
	// takes one descriptor; the loop keeps the cursors in locals.
	desc, ids, ring, free := q.desc, q.ids, q.availRing, q.free
	mask, hdrLen, bias := q.mask, q.hdrLen, q.bias
	avail, top := st.AvailIdx, st.FreeTop
	base := uintptr(q.mem.Ptr(0))
	taken := 0
	var bytes, sent, dropped uint64
	for _, m := range pkts {
		if m.Next() == nil && (q.linear || m.BufIOVA() != 0) {
			headroom := uint32(m.Headroom())
			if headroom >= hdrLen && m.Refcnt() == 1 {
				if top == 0 {
					break
				}
				top--
				head := uint32(free[top&mask]) & mask
				buf := unsafe.Pointer(unsafe.SliceData(m.Buf()))
				at := headroom - hdrLen
				q.zeroHdr(unsafe.Add(buf, at))
				var addr uint64
				if q.linear {
					addr = uint64(uintptr(buf)) + bias + uint64(at)
				} else {
					addr = m.BufIOVA() + uint64(at)
				}
				d := &desc[head]
				d.Addr, d.Len, d.Flags = addr, uint32(m.DataLen())+hdrLen, 0
				e := &ids[head]
				e.Mbuf, e.NDesc = uint64(uintptr(unsafe.Pointer(m))-base), 1
				ring[avail&mask] = uint16(head)
				avail = (avail + 1) & 0xffff
				taken++
				sent++
				bytes += uint64(m.PktLen())
				continue
			}
		}
		st.AvailIdx, st.FreeTop = avail, top
		ok, took := q.txSplitSlow(m)
		avail, top = st.AvailIdx, st.FreeTop
		if !took {
			break
		}
		taken++
		if ok {
			sent++
			bytes += uint64(m.PktLen())
		} else {
			dropped++
		}
	}
	st.AvailIdx, st.FreeTop = avail, top
	if sent > 0 {
		atomic.StoreUint32(q.availWord, avail<<16|availFNoInterrupt)
		q.kick()
	}
	q.txAccount(sent, bytes, dropped)
	return taken
}

// txSplitSlow puts on the ring a packet that needs a header slot (several
// segments, or a headroom it may not write), or drops one the device can
// never get. took is false when the ring has no room for it.
func (q *Queue) txSplitSlow(m *mbuf.Mbuf) (ok, took bool) {
	st := q.st
	segs, push := q.txShape(m)
	if segs == 0 {
		q.drop(m)
		return false, true
	}
	need := segs
	if !push {
		need++
	}
	if need > st.FreeTop {
		return false, false
	}
	head := q.pop()
	e := &q.ids[head]
	if push {
		d := &q.desc[head]
		d.Addr, d.Len = q.pushHdr(m)
		d.Flags = 0
	} else {
		slot := uint64(head) * hdrSlot
		q.zeroHdr(unsafe.Add(q.hdrs, slot))
		d := &q.desc[head]
		d.Addr, d.Len, d.Flags = q.hdrsAddr+slot, q.hdrLen, descFNext
		prev := head
		for s := m; s != nil; s = s.Next() {
			i := q.pop()
			q.desc[prev].Next = uint16(i)
			q.ids[prev].Next = uint16(i)
			d := &q.desc[i]
			d.Addr, d.Len, d.Flags = q.dataAddr(s), uint32(s.DataLen()), descFNext
			q.ids[i].NDesc, q.ids[i].Mbuf = 0, 0
			prev = i
		}
		q.desc[prev].Flags = 0
	}
	e.Mbuf = q.mem.Off(unsafe.Pointer(m))
	e.NDesc = uint16(need)
	q.availRing[st.AvailIdx&q.mask] = uint16(head)
	st.AvailIdx = (st.AvailIdx + 1) & 0xffff
	return true, true
}

// drop frees a packet the device can never get.
func (q *Queue) drop(m *mbuf.Mbuf) {
	one := [1]*mbuf.Mbuf{m}
	mbuf.FreeBulkLcore(q.lcore, one[:])
}

func (q *Queue) txAccount(sent, bytes, dropped uint64) {
	if sent > 0 {
		q.counters.Count(sent, bytes)
	}
	if dropped > 0 {
		q.counters.AddErrors(dropped)
	}
}

func (q *Queue) txPacked(pkts []*mbuf.Mbuf) int {
	st := q.st
	taken := 0
	var bytes, sent, dropped uint64
	for _, m := range pkts {
		segs, push := q.txShape(m)
		if segs == 0 {
			q.drop(m)
			taken++
			dropped++
			continue
		}
		need := segs
		if !push {
			need++
		}
		if need > st.FreeSlots || st.FreeTop == 0 {
			break
		}
		id := q.pop()
		e := &q.ids[id]
		e.Mbuf = q.mem.Off(unsafe.Pointer(m))
		e.NDesc = uint16(need)
		headPos, headWrap := st.AvailIdx, st.AvailWrap
		head := &q.pdesc[headPos&q.mask]
		if push {
			head.Addr, head.Len = q.pushHdr(m)
			head.ID = uint16(id)
			head.Flags = availFlags(headWrap)
			st.AvailIdx, st.AvailWrap = advance(headPos, headWrap, 1, q.size)
		} else {
			slot := uint64(id) * hdrSlot
			q.zeroHdr(unsafe.Add(q.hdrs, slot))
			head.Addr, head.Len, head.ID = q.hdrsAddr+slot, q.hdrLen, uint16(id)
			pos, wrap := advance(headPos, headWrap, 1, q.size)
			for s := m; s != nil; s = s.Next() {
				d := &q.pdesc[pos&q.mask]
				d.Addr, d.Len, d.ID = q.dataAddr(s), uint32(s.DataLen()), uint16(id)
				f := availFlags(wrap)
				if s.Next() != nil {
					f |= descFNext
				}
				d.Flags = f
				pos, wrap = advance(pos, wrap, 1, q.size)
			}
			// The head's flags go last, making the whole chain available at
			// once.
			head.Flags = descFNext | availFlags(headWrap)
			st.AvailIdx, st.AvailWrap = pos, wrap
		}
		st.FreeSlots -= need
		taken++
		sent++
		bytes += uint64(m.PktLen())
	}
	if sent > 0 {
		// A full barrier between our descriptor stores and the load of the
		// device's event flags, which kick makes.
		atomic.AddUint32(&st.Busy, 0)
		q.kick()
	}
	q.txAccount(sent, bytes, dropped)
	return taken
}
