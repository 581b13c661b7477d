package memif

import (
	"log/slog"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mempool"
)

const (
	// maxBurst is how many packets one burst handles; larger slices are
	// served in part.
	maxBurst = 256
	// maxPacket is the longest packet accepted on receive, over all the
	// descriptors of a chain.
	maxPacket = 1<<16 - 1
)

// queue is one process's poller of one ring: an rx queue consumes the
// peer's packets (c2s ring for a server, s2c for a client), a tx queue
// produces into the other. It maps the connection's regions itself, when
// it first sees a new connection generation, and unmaps them when it sees
// the next: the control channel never pulls memory from under a burst.
//
// Cursors are never trusted from shared memory the peer can write; they
// are derived once, when mapping, from the index this side owns (the
// client owns head, the server owns tail), and kept here after.
type queue struct {
	sh       *sharedState
	q        int
	rx       bool
	server   bool
	counters *ethdev.QueueCounters
	pool     *mbuf.Pool
	cache    *mempool.Cache // the polling lcore's cache of pool (BindLcore), or nil
	lcore    int            // the polling lcore (BindLcore), or -1
	port     uint16
	log      *slog.Logger

	gen     uint32 // connection generation mapped (0: none)
	live    bool   // a ring is mapped and usable
	regions [maxRegions]mapping
	nreg    uint32
	ring    unsafe.Pointer
	size    uint32 // slots
	mask    uint32
	cursor  uint16 // next slot to consume (rx) or fill (tx)
	head    uint16 // client rx: the head we gave the server, always cursor+size
	bufSize uint32 // client: size of our buffers
	bufOff  uint32 // client: our first buffer of this ring, in region 0
	maxLen  uint32 // longest descriptor accepted on rx

	scratch [maxBurst]*mbuf.Mbuf
}

// BindLcore makes the queue allocate and free mbufs through lcore's
// caches instead of the pools' rings: an rx queue its pool's cache, a tx
// queue, freeing what it sent, the cache of each packet's pool.
func (q *queue) BindLcore(lcore int) {
	q.lcore = max(lcore, -1)
	if q.pool != nil {
		q.cache = q.pool.Cache(lcore)
	}
}

// RxBurst copies received packets into fresh mbufs of the queue's pool.
// Descriptors that point outside their region, or are longer than a
// buffer, are dropped and counted as errors. Packets wait in the ring
// when the pool is empty.
func (q *queue) RxBurst(pkts []*mbuf.Mbuf) int {
	if !q.ready() || len(pkts) == 0 {
		return 0
	}
	var produced uint16
	if q.server {
		produced = loadHead(q.ring)
	} else {
		produced = loadTail(q.ring)
	}
	avail := uint32(produced - q.cursor)
	if avail > q.size {
		q.corrupt()
		return 0
	}
	n := 0
	if avail > 0 {
		before := q.cursor
		n = q.receive(pkts, avail)
		if q.server && q.cursor != before {
			storeTail(q.ring, q.cursor)
		}
	}
	if !q.server {
		q.refill()
	}
	return n
}

func (q *queue) receive(pkts []*mbuf.Mbuf, avail uint32) int {
	k := min(len(pkts), int(avail), maxBurst)
	for k > 0 && q.pool.AllocBulk(q.cache, q.scratch[:k]) != nil {
		k /= 2
	}
	used, n := 0, 0
	var bytes, bad uint64
	for n < len(pkts) && used < k && avail > 0 {
		m := q.scratch[used]
		slots, ok, complete := q.copyIn(m, avail)
		if !complete {
			break
		}
		used++
		q.cursor += uint16(slots)
		avail -= slots
		if !ok {
			m.Free(q.cache)
			bad++
			continue
		}
		m.SetPort(q.port)
		pkts[n] = m
		n++
		bytes += uint64(m.PktLen())
	}
	if used < k {
		mbuf.FreeBulk(q.cache, q.scratch[used:k])
	}
	if bad > 0 {
		q.counters.AddErrors(bad)
	}
	if n > 0 {
		q.counters.Count(uint64(n), bytes)
	}
	return n
}

// copyIn copies the packet starting at the cursor into m. It returns the
// slots the packet spans, whether it was good, and whether it was there
// whole (a chain that runs past the published slots, or an mbuf shortage
// for a long packet, leaves it in the ring for the next burst).
func (q *queue) copyIn(m *mbuf.Mbuf, avail uint32) (slots uint32, ok, complete bool) {
	ok = true
	total := uint32(0)
	for {
		if slots == avail {
			if avail == q.size { // a chain longer than the ring never completes
				q.corrupt()
			}
			return 0, false, false
		}
		d := readDesc(descAt(q.ring, uint32(q.cursor+uint16(slots))&q.mask))
		slots++
		if ok && q.valid(d) && total+d.length <= maxPacket {
			src := unsafe.Slice((*byte)(unsafe.Add(q.regions[d.region].base, d.offset)), d.length)
			if !q.appendData(m, src) {
				return 0, false, false
			}
			total += d.length
		} else {
			ok = false
		}
		if d.flags&descFlagNext == 0 {
			return slots, ok && total > 0, true
		}
	}
}

func (q *queue) valid(d desc) bool {
	return d.region < uint16(q.nreg) && d.length <= q.maxLen &&
		uint64(d.offset)+uint64(d.length) <= q.regions[d.region].size
}

// appendData appends src to the packet m, chaining mbufs when a segment
// fills up; false when the pool has none left.
func (q *queue) appendData(m *mbuf.Mbuf, src []byte) bool {
	last := m.LastSeg()
	for len(src) > 0 {
		room := last.Tailroom()
		if room == 0 {
			seg, err := q.pool.Alloc(q.cache)
			if err != nil || m.Chain(seg) != nil {
				if seg != nil {
					seg.Free(q.cache)
				}
				return false
			}
			last = seg
			continue
		}
		k := min(room, len(src))
		b, _ := m.Append(k)
		copy(b, src[:k])
		src = src[k:]
	}
	return true
}

// refill gives the server every consumed s2c slot back (client rx),
// rewriting each descriptor to point at our own buffer for that slot.
func (q *queue) refill() {
	target := q.cursor + uint16(q.size)
	if q.head == target {
		return
	}
	for s := q.head; s != target; s++ {
		slot := uint32(s) & q.mask
		writeDesc(descAt(q.ring, slot), desc{length: q.bufSize, offset: q.bufOff + slot*q.bufSize})
	}
	if !storeHead(q.ring, target) {
		q.corrupt()
		return
	}
	q.head = target
}

// TxBurst copies packets into the peer's free slots, splitting one over
// several descriptors when it exceeds a buffer, and frees the mbufs it
// took. A server fills the buffers the client's descriptors point at,
// after checking them against the regions.
func (q *queue) TxBurst(pkts []*mbuf.Mbuf) int {
	if !q.ready() || len(pkts) == 0 {
		return 0
	}
	var free uint32
	if q.server {
		free = uint32(loadHead(q.ring) - q.cursor)
		if free > q.size {
			q.corrupt()
			return 0
		}
	} else {
		inFlight := uint32(q.cursor - loadTail(q.ring))
		if inFlight > q.size {
			q.corrupt()
			return 0
		}
		free = q.size - inFlight
	}
	pkts = pkts[:min(len(pkts), maxBurst)]
	slot := q.cursor
	n := 0
	var bytes uint64
	for n < len(pkts) && free > 0 {
		used := q.copyOut(pkts[n], slot, free)
		if used == 0 {
			break
		}
		slot += uint16(used)
		free -= used
		bytes += uint64(pkts[n].PktLen())
		n++
	}
	if n == 0 {
		return 0
	}
	if q.server {
		storeTail(q.ring, slot)
	} else if !storeHead(q.ring, slot) {
		q.corrupt()
		return 0
	}
	q.cursor = slot
	mbuf.FreeBulkLcore(q.lcore, pkts[:n])
	q.counters.Count(uint64(n), bytes)
	return n
}

// copyOut writes packet m into the slots from slot on and returns how
// many it used, or 0 when it does not fit in free slots (or a server's
// descriptor is bad, which is reported as corruption).
func (q *queue) copyOut(m *mbuf.Mbuf, slot uint16, free uint32) uint32 {
	used := uint32(1)
	dst, capa, region, ok := q.txBuffer(slot)
	if !ok {
		return 0
	}
	off := uint32(0)
	for seg := m; seg != nil; seg = seg.Next() {
		src := seg.Data()
		for len(src) > 0 {
			if off == capa {
				if used == free {
					return 0
				}
				q.finishDesc(slot+uint16(used-1), descFlagNext, region, off)
				if dst, capa, region, ok = q.txBuffer(slot + uint16(used)); !ok {
					return 0
				}
				used++
				off = 0
			}
			k := copy(unsafe.Slice((*byte)(unsafe.Add(dst, off)), capa-off), src)
			off += uint32(k)
			src = src[k:]
		}
	}
	q.finishDesc(slot+uint16(used-1), 0, region, off)
	return used
}

// txBuffer finds the buffer behind a tx slot: our own for a client, the
// one the client's descriptor names (checked) for a server.
func (q *queue) txBuffer(slot uint16) (dst unsafe.Pointer, capa uint32, region uint16, ok bool) {
	s := uint32(slot) & q.mask
	if !q.server {
		return unsafe.Add(q.regions[0].base, q.bufOff+s*q.bufSize), q.bufSize, 0, true
	}
	d := readDesc(descAt(q.ring, s))
	if d.length == 0 || !q.valid(d) {
		q.corrupt()
		return nil, 0, 0, false
	}
	return unsafe.Add(q.regions[d.region].base, d.offset), d.length, d.region, true
}

func (q *queue) finishDesc(slot uint16, flags, region uint16, length uint32) {
	s := uint32(slot) & q.mask
	p := descAt(q.ring, s)
	if q.server {
		setDescLen(p, flags, region, length)
		return
	}
	writeDesc(p, desc{flags: flags, length: length, offset: q.bufOff + s*q.bufSize})
}

// ready follows connection changes and says whether the ring may be used.
func (q *queue) ready() bool {
	if g := atomic.LoadUint32(&q.sh.Gen); g != q.gen {
		q.remap(g)
	}
	return q.live && atomic.LoadUint32(&q.sh.Corrupt) != q.gen
}

// corrupt reports impossible ring state: counted on the queue, and the
// primary disconnects the peer. The queue stays idle until then.
func (q *queue) corrupt() {
	q.counters.AddErrors(1)
	atomic.AddUint64(&q.sh.RingErrors, 1)
	atomic.StoreUint32(&q.sh.Corrupt, q.gen)
}

// remap maps connection generation g (slow path: system calls and
// logging, once per connection change).
func (q *queue) remap(g uint32) {
	q.unmapAll()
	q.gen = g
	if g&1 == 0 {
		return // disconnected
	}
	sh := q.sh
	ref := sh.Tx[q.q]
	if q.rx {
		ref = sh.Rx[q.q]
	}
	n := sh.NumRegions
	pid, bufSize := sh.PrimaryPID, sh.BufSize
	regs := sh.Regions
	if ref.Present == 0 || n > maxRegions {
		return // the peer set up no ring for this queue
	}
	for i := range n {
		m, err := mmapProc(pid, regs[i].FD, regs[i].Size)
		if err != nil {
			q.unmapAll()
			if atomic.LoadUint32(&sh.Gen) == g {
				q.log.Error("memif: cannot map the connection's regions; queue stays idle", "queue", q.q, "rx", q.rx, "err", err)
			}
			return
		}
		q.regions[i] = m
		q.nreg = i + 1
	}
	if atomic.LoadUint32(&sh.Gen) != g { // changed while mapping: what we read may be stale
		q.unmapAll()
		q.gen = 0
		return
	}
	size := uint32(1) << ref.Log2
	if uint32(ref.Region) >= n || ref.Log2 > maxLog2Ring ||
		uint64(ref.Offset)+ringBytes(ref.Log2) > q.regions[ref.Region].size ||
		!q.server && uint64(ref.BufOffset)+uint64(size)*uint64(bufSize) > q.regions[0].size {
		q.log.Error("memif: shared ring description is out of bounds; queue stays idle", "queue", q.q, "rx", q.rx)
		q.unmapAll()
		return
	}
	q.ring = unsafe.Add(q.regions[ref.Region].base, ref.Offset)
	q.size, q.mask = size, size-1
	q.bufSize, q.bufOff = bufSize, ref.BufOffset
	q.maxLen = maxPacket
	switch {
	case q.server:
		q.cursor = loadTail(q.ring)
	case q.rx:
		q.head = loadHead(q.ring)
		q.cursor = q.head - uint16(size)
		q.maxLen = bufSize
	default:
		q.cursor = loadHead(q.ring)
	}
	q.live = true
}

func (q *queue) unmapAll() {
	for i := range q.nreg {
		q.regions[i].unmap()
	}
	q.nreg, q.live, q.ring = 0, false, nil
}
