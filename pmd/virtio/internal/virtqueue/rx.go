package virtqueue

import (
	"encoding/binary"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/mbuf"
)

// Rx receives up to len(pkts) frames the device wrote, then posts fresh
// buffers for the ones it took. It returns how many frames it put in pkts;
// the caller owns them. With mergeable buffers a frame spanning several
// buffers comes as a chain of mbufs.
func (q *Queue) Rx(pkts []*mbuf.Mbuf) int {
	if !q.enter() {
		return 0
	}
	var n int
	if q.merge {
		n = q.rxMerge(pkts)
	} else {
		n = q.rxSimple(pkts)
	}
	if q.st.FreeTop != 0 {
		q.refill()
	}
	q.leave()
	return n
}

// ready returns how many used entries a split ring holds past our cursor,
// at most a ring's worth.
func (q *Queue) ready() uint32 {
	return min((atomic.LoadUint32(q.usedWord)>>16-q.st.UsedIdx)&0xffff, q.size)
}

// rxEntry returns the id and length of the used entry i places past the
// cursor, and whether the device has written it. For a split ring, ready
// is what q.ready returned. Rx buffers take one descriptor each, so entry
// i of a packed ring is in slot cursor+i.
func (q *Queue) rxEntry(i, ready uint32) (id, l uint32, ok bool) {
	if q.kind == Split {
		if i >= ready {
			return 0, 0, false
		}
		e := &q.usedRing[(q.st.UsedIdx+i)&q.mask]
		return e.ID, e.Len, true
	}
	pos, wrap := advance(q.st.UsedIdx, q.st.UsedWrap, i, q.size)
	w := atomic.LoadUint32(q.descWord(pos))
	if !usedFlags(w>>16, wrap) {
		return 0, 0, false
	}
	return w & 0xffff, q.pdesc[pos&q.mask].Len, true
}

// consume moves the cursor past k used entries of an rx queue.
func (q *Queue) consume(k uint32) {
	st := q.st
	if q.kind == Split {
		st.UsedIdx = (st.UsedIdx + k) & 0xffff
		return
	}
	st.UsedIdx, st.UsedWrap = advance(st.UsedIdx, st.UsedWrap, k, q.size)
	st.FreeSlots = min(st.FreeSlots+k, q.size)
}

// takeRx returns the mbuf of rx buffer id and frees the id, or nil if id
// is not a buffer in flight.
func (q *Queue) takeRx(id uint32) *mbuf.Mbuf {
	if id >= q.size {
		return nil
	}
	e := &q.ids[id]
	if e.NDesc == 0 || e.Mbuf == 0 {
		return nil
	}
	m := mbuf.FromOff(q.mem, e.Mbuf)
	e.Mbuf, e.NDesc = 0, 0
	q.push(id)
	return m
}

// rxSimple receives frames that each fit one buffer.
func (q *Queue) rxSimple(pkts []*mbuf.Mbuf) int {
	st := q.st
	var ready uint32
	if q.kind == Split {
		ready = q.ready()
	}
	n, taken := 0, uint32(0)
	var bytes, bad uint64
	for n < len(pkts) {
		id, l, ok := q.rxEntry(taken, ready)
		if !ok {
			break
		}
		taken++
		m := q.takeRx(id)
		if m == nil {
			add(&st.Counters.BadID, 1)
			bad++
			continue
		}
		if l < q.hdrLen || l > q.posted {
			add(&st.Counters.BadLen, 1)
			bad++
			m.Free(q.cache)
			continue
		}
		l -= q.hdrLen
		m.SetDataLen(uint16(l))
		m.SetPktLen(l)
		m.SetPort(q.port)
		pkts[n] = m
		n++
		bytes += uint64(l)
	}
	q.consume(taken)
	q.account(uint64(taken), uint64(n), bytes, bad)
	return n
}

// account adds a burst's figures to the counters.
func (q *Queue) account(completed, n, bytes, bad uint64) {
	if completed > 0 {
		add(&q.st.Counters.Completed, completed)
	}
	if n > 0 {
		q.counters.Count(n, bytes)
	}
	if bad > 0 {
		q.counters.AddErrors(bad)
	}
}

// numBuffers reads num_buffers from the virtio-net header the device wrote
// in front of the frame in m (section 5.1.6).
func (q *Queue) numBuffers(m *mbuf.Mbuf) uint32 {
	p := unsafe.Add(unsafe.Pointer(unsafe.SliceData(m.Buf())), q.headroom-q.hdrLen+10)
	return uint32(binary.LittleEndian.Uint16(unsafe.Slice((*byte)(p), 2)))
}

// rxMerge receives frames that may span several buffers: the header in
// the first says how many.
func (q *Queue) rxMerge(pkts []*mbuf.Mbuf) int {
	st := q.st
	var ready uint32
	if q.kind == Split {
		ready = q.ready()
	}
	n := 0
	var completed, bytes, bad uint64
	base := q.mem.Ptr(0)
	for n < len(pkts) {
		if q.kind == Split && ready > 0 {
			// The common frame: one good buffer, taken here.
			e := &q.usedRing[st.UsedIdx&q.mask]
			if id, l := e.ID, e.Len; id < q.size && l >= q.hdrLen && l <= q.posted {
				if rec := &q.ids[id]; rec.NDesc != 0 && rec.Mbuf != 0 {
					m := (*mbuf.Mbuf)(unsafe.Add(base, rec.Mbuf))
					if q.numBuffers(m) == 1 {
						rec.Mbuf, rec.NDesc = 0, 0
						q.push(id)
						l -= q.hdrLen
						m.SetDataLen(uint16(l))
						m.SetPktLen(l)
						m.SetPort(q.port)
						pkts[n] = m
						n++
						bytes += uint64(l)
						st.UsedIdx = (st.UsedIdx + 1) & 0xffff
						ready--
						completed++
						continue
					}
				}
			}
		}
		id, l, ok := q.rxEntry(0, ready)
		if !ok {
			break
		}
		if id >= q.size || q.ids[id].NDesc == 0 || q.ids[id].Mbuf == 0 {
			add(&st.Counters.BadID, 1)
			bad++
			q.consume(1)
			ready--
			completed++
			continue
		}
		head := mbuf.FromOff(q.mem, q.ids[id].Mbuf)
		nb := uint32(1)
		if l >= q.hdrLen && l <= q.posted {
			nb = q.numBuffers(head)
		}
		if nb == 0 || nb > q.maxMerge {
			add(&st.Counters.BadMerge, 1)
			bad++
			q.takeRx(id).Free(q.cache)
			q.consume(1)
			ready--
			completed++
			continue
		}
		if !q.allReady(nb, ready) {
			break // the rest of the frame is still being written
		}
		m, l := q.assemble(nb)
		q.consume(nb)
		ready -= min(ready, nb)
		completed += uint64(nb)
		if m == nil {
			bad++
			continue
		}
		pkts[n] = m
		n++
		bytes += uint64(l)
	}
	q.account(completed, uint64(n), bytes, bad)
	return n
}

// allReady reports whether the device has written the first nb entries
// past the cursor.
func (q *Queue) allReady(nb, ready uint32) bool {
	if q.kind == Split {
		return nb <= ready
	}
	for i := nb - 1; i > 0; i-- {
		if _, _, ok := q.rxEntry(i, 0); !ok {
			return false
		}
	}
	return true
}

// assemble takes the nb buffers of one merged frame and chains them. If
// any is bad (an id not in flight, a length out of range) the whole frame
// is dropped, its buffers freed, and it returns nil.
func (q *Queue) assemble(nb uint32) (*mbuf.Mbuf, uint32) {
	st := q.st
	var head *mbuf.Mbuf
	good := true
	for i := range nb {
		id, l, _ := q.rxEntry(i, nb)
		m := q.takeRx(id)
		if m == nil {
			add(&st.Counters.BadID, 1)
			good = false
			continue
		}
		if i == 0 {
			if l < q.hdrLen || l > q.posted {
				add(&st.Counters.BadLen, 1)
				good, l = false, q.hdrLen
			}
			l -= q.hdrLen
		} else {
			if l > q.posted {
				add(&st.Counters.BadLen, 1)
				good, l = false, 0
			}
			m.Prepend(int(q.hdrLen)) // later buffers hold frame bytes from their start
		}
		m.SetDataLen(uint16(l))
		m.SetPktLen(l)
		if head == nil {
			head = m
			continue
		}
		head.Chain(m) // nb is bounded (maxMergeBuffers), so the walks Chain makes stay short
	}
	if head == nil {
		return nil, 0
	}
	if !good {
		head.Free(q.cache)
		return nil, 0
	}
	head.SetPort(q.port)
	return head, head.PktLen()
}
