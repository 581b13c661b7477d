package virtqueue

import (
	"fmt"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mempool"
)

// Config describes a queue to Init.
type Config struct {
	Kind Kind
	Role Role
	// Size is the number of descriptors, a power of two up to MaxSize.
	Size int
	// HdrLen is the virtio-net header in front of every frame: 12 bytes
	// with VIRTIO_F_VERSION_1 or VIRTIO_NET_F_MRG_RXBUF, else 10; 0 for
	// the control queue.
	HdrLen int
	// Mergeable says rx frames may span buffers (VIRTIO_NET_F_MRG_RXBUF).
	Mergeable bool
	// Addressing says how the device addresses memory.
	Addressing Addressing
}

// Addressing says how the device addresses the group's memory.
type Addressing struct {
	// Linear: the device address of group offset off is Base + off. True
	// for vhost-user (whose memory table we choose) and for VFIO in VA
	// mode (Base = hugemem.IOVABase). Otherwise the address is the IOVA
	// hugemem gives (physical addresses in PA mode).
	Linear bool
	Base   uint64
}

// Notifier kicks the device for one queue.
type Notifier interface {
	Notify()
}

// Attachment is what a process gives Attach besides the memory.
type Attachment struct {
	Notifier Notifier
	Counters *ethdev.QueueCounters // the queue's ethdev counters; nil for the control queue
	Pool     *mbuf.Pool            // rx: where buffers come from
	Port     uint16                // rx: recorded in every received mbuf
}

// Queue is one process's handle on a virtqueue in shared memory. Only the
// process that claimed the queue calls Rx, Tx or Command; the primary
// calls the rest.
type Queue struct {
	mem      *hugemem.Memory
	zone     *hugemem.Memzone
	st       *state
	kind     Kind
	role     Role
	size     uint32 // descriptors
	mask     uint32 // size - 1
	hdrLen   uint32
	merge    bool
	linear   bool
	bias     uint64 // linear: device address = process address + bias (wrapping)
	headroom uint32 // rx: headroom of a fresh mbuf of the pool
	posted   uint32 // rx: bytes each buffer offers, header included
	maxMerge uint32 // rx: the most buffers a merged frame may claim

	// split ring, in shared memory
	desc      *[MaxSize]splitDesc
	availWord *uint32 // flags | idx<<16
	availRing *[MaxSize]uint16
	usedWord  *uint32 // flags | idx<<16
	usedRing  *[MaxSize]usedElem
	// packed ring
	pdesc     *[MaxSize]packedDesc
	drvEvent  *uint32 // off_wrap | flags<<16, written by us
	devEvent  *uint32 // written by the device
	ids       *[MaxSize]idEntry
	free      *[MaxSize]uint16
	hdrs      unsafe.Pointer // header slots in this process
	hdrsAddr  uint64         // their device address
	descAddr  uint64         // device addresses of the ring's parts
	drvAddr   uint64
	devAddr   uint64
	notify    Notifier
	counters  *ethdev.QueueCounters
	pool      *mbuf.Pool
	cache     *mempool.Cache // the polling lcore's cache of pool, or nil
	lcore     int            // the polling lcore, whose caches frees use; -1: none
	port      uint16
	backoff   uint32            // tx: bursts left before looking at the used ring again
	scratch   [batch]*mbuf.Mbuf // mbufs being allocated or freed
	noCounter ethdev.QueueCounters
}

// maxFrame bounds a merged frame: virtio-net without segmentation offloads
// carries frames of at most 64 KiB.
const maxFrame = 65536

// batch is how many mbufs a refill allocates, or a completion frees, at
// once.
const batch = 64

// Init lays out a new queue in zone, which must be ZoneSize bytes, aligned
// to ZoneAlign, and not in use by any poller. Rx buffers are posted later,
// by Fill.
func Init(mem *hugemem.Memory, zone *hugemem.Memzone, cfg Config) error {
	n := uint64(cfg.Size)
	switch {
	case cfg.Kind != Split && cfg.Kind != Packed:
		return fmt.Errorf("virtqueue: ring kind %d is neither split nor packed", cfg.Kind)
	case cfg.Role < RoleRx || cfg.Role > RoleCtrl:
		return fmt.Errorf("virtqueue: role %d is not rx, tx or ctrl", cfg.Role)
	case n < 2 || n > MaxSize || n&(n-1) != 0:
		return fmt.Errorf("virtqueue: %d descriptors: want a power of two from 2 to %d", cfg.Size, MaxSize)
	case cfg.HdrLen < 0 || cfg.HdrLen > hdrSlot:
		return fmt.Errorf("virtqueue: header of %d bytes: want 0 to %d", cfg.HdrLen, hdrSlot)
	case cfg.Mergeable && cfg.HdrLen < 12:
		return fmt.Errorf("virtqueue: mergeable buffers need the 12-byte header, have %d", cfg.HdrLen)
	}
	g := layout(cfg.Kind, n)
	if zone.Len < g.total || zone.Off%ZoneAlign != 0 {
		return fmt.Errorf("virtqueue: memzone %q is %d bytes at offset %#x; a %s queue of %d needs %d bytes aligned to %d",
			zone.Name, zone.Len, zone.Off, cfg.Kind, n, g.total, ZoneAlign)
	}
	clear(unsafe.Slice((*byte)(zone.Ptr()), g.total))
	st := (*state)(zone.Ptr())
	*st = state{Version: stateVersion, Kind: cfg.Kind, Role: cfg.Role, Size: uint32(n), HdrLen: uint32(cfg.HdrLen),
		AddrBase: cfg.Addressing.Base, RingOff: zone.Off + g.ring, IDsOff: zone.Off + g.ids, HdrsOff: zone.Off + g.hdrs}
	if cfg.Mergeable {
		st.Flags |= flagMergeable
	}
	if cfg.Addressing.Linear {
		st.Flags |= flagLinear
	} else if err := checkContiguous(mem, zone.Off+g.ring, g.total-g.ring); err != nil {
		return fmt.Errorf("virtqueue: memzone %q: %w", zone.Name, err)
	}
	resetRing(mem, st)
	atomic.StoreUint64(&st.Magic, stateMagic)
	return nil
}

// checkContiguous makes sure the device sees [off, off+n) as one stretch of
// IOVAs, as it must see a ring.
func checkContiguous(mem *hugemem.Memory, off, n uint64) error {
	first, err := mem.IOVA(off)
	if err != nil {
		return err
	}
	last, err := mem.IOVA(off + n - 1)
	if err != nil {
		return err
	}
	if last-first != n-1 {
		return fmt.Errorf("the %d bytes at offset %#x are not contiguous in IOVA space (%#x..%#x)", n, off, first, last)
	}
	return nil
}

// resetRing makes the ring empty, every id free, and the cursors zero, as a
// device expects after reset.
func resetRing(mem *hugemem.Memory, st *state) {
	n := uint64(st.Size)
	g := layout(st.Kind, n)
	ring := mem.Ptr(st.RingOff)
	clear(unsafe.Slice((*byte)(ring), g.ringLen))
	clear(unsafe.Slice((*idEntry)(mem.Ptr(st.IDsOff)), n))
	free := unsafe.Slice((*uint16)(unsafe.Pointer(uintptr(unsafe.Pointer(st))+uintptr(g.free))), n)
	for i := range free {
		free[i] = uint16(n - 1 - uint64(i)) // id 0 on top
	}
	st.AvailIdx, st.UsedIdx = 0, 0
	st.AvailWrap, st.UsedWrap = 1, 1 // packed rings start with wrap counters set (section 2.8.1)
	st.FreeSlots, st.FreeTop = uint32(n), uint32(n)
	if st.Kind == Split {
		avail, _, _ := splitLayout(n)
		atomic.StoreUint32((*uint32)(unsafe.Add(ring, avail)), availFNoInterrupt)
	} else {
		drv, _, _ := packedLayout(n)
		atomic.StoreUint32((*uint32)(unsafe.Add(ring, drv)), eventFDisable<<16)
	}
}

// Attach builds this process's handle on the queue in zone.
func Attach(mem *hugemem.Memory, zone *hugemem.Memzone, a Attachment) (*Queue, error) {
	st := (*state)(zone.Ptr())
	if m := atomic.LoadUint64(&st.Magic); m != stateMagic || st.Version != stateVersion {
		return nil, fmt.Errorf("virtqueue: memzone %q holds magic %#x version %d, want %#x version %d: not a queue, or from another build",
			zone.Name, m, st.Version, uint64(stateMagic), stateVersion)
	}
	n := uint64(st.Size)
	if n < 2 || n > MaxSize || n&(n-1) != 0 || (st.Kind != Split && st.Kind != Packed) || st.HdrLen > hdrSlot ||
		st.Role < RoleRx || st.Role > RoleCtrl {
		return nil, fmt.Errorf("virtqueue: memzone %q: corrupted header (kind %d, role %d, size %d, header %d)", zone.Name, st.Kind, st.Role, n, st.HdrLen)
	}
	g := layout(st.Kind, n)
	if zone.Len < g.total || st.RingOff != zone.Off+g.ring || st.IDsOff != zone.Off+g.ids || st.HdrsOff != zone.Off+g.hdrs {
		return nil, fmt.Errorf("virtqueue: memzone %q: its parts are not where a %s queue of %d puts them: corrupted", zone.Name, st.Kind, n)
	}
	q := &Queue{mem: mem, zone: zone, st: st, kind: st.Kind, role: st.Role, size: uint32(n), mask: uint32(n - 1),
		hdrLen: st.HdrLen, merge: st.Flags&flagMergeable != 0, linear: st.Flags&flagLinear != 0,
		notify: a.Notifier, counters: a.Counters, pool: a.Pool, lcore: -1, port: a.Port}
	if q.counters == nil {
		q.counters = &q.noCounter
	}
	if q.notify == nil {
		q.notify = noNotify{}
	}
	if q.linear {
		q.bias = st.AddrBase - uint64(uintptr(mem.Ptr(0)))
	}
	ring := mem.Ptr(st.RingOff)
	var err error
	if q.descAddr, err = q.offAddr(st.RingOff); err != nil {
		return nil, err
	}
	if q.kind == Split {
		avail, used, _ := splitLayout(n)
		q.desc = (*[MaxSize]splitDesc)(ring)
		q.availWord = (*uint32)(unsafe.Add(ring, avail))
		q.availRing = (*[MaxSize]uint16)(unsafe.Add(ring, avail+4))
		q.usedWord = (*uint32)(unsafe.Add(ring, used))
		q.usedRing = (*[MaxSize]usedElem)(unsafe.Add(ring, used+4))
		q.drvAddr, q.devAddr = q.descAddr+avail, q.descAddr+used
	} else {
		drv, dev, _ := packedLayout(n)
		q.pdesc = (*[MaxSize]packedDesc)(ring)
		q.drvEvent = (*uint32)(unsafe.Add(ring, drv))
		q.devEvent = (*uint32)(unsafe.Add(ring, dev))
		q.drvAddr, q.devAddr = q.descAddr+drv, q.descAddr+dev
	}
	q.ids = (*[MaxSize]idEntry)(mem.Ptr(st.IDsOff))
	q.free = (*[MaxSize]uint16)(unsafe.Add(unsafe.Pointer(st), g.free))
	q.hdrs = mem.Ptr(st.HdrsOff)
	if q.hdrsAddr, err = q.offAddr(st.HdrsOff); err != nil {
		return nil, err
	}
	if q.role == RoleRx {
		if q.pool == nil {
			return nil, fmt.Errorf("virtqueue: rx queue %q needs a packet pool", zone.Name)
		}
		room := uint32(q.pool.DataRoom())
		q.headroom = min(mbuf.DefaultHeadroom, room)
		if room-q.headroom < 64 || q.headroom < q.hdrLen {
			return nil, fmt.Errorf("virtqueue: pool %q has %d-byte buffers: want at least %d of headroom (the %d-byte net header goes there) and 64 of data",
				q.pool.Name(), room, mbuf.DefaultHeadroom, q.hdrLen)
		}
		q.posted = room - q.headroom + q.hdrLen
		q.maxMerge = min(q.size, (maxFrame+q.hdrLen+q.posted-1)/q.posted)
		st.Posted = q.posted
	}
	return q, nil
}

// offAddr returns the device address of a group offset.
func (q *Queue) offAddr(off uint64) (uint64, error) {
	if q.linear {
		return q.st.AddrBase + off, nil
	}
	a, err := q.mem.IOVA(off)
	if err != nil {
		return 0, fmt.Errorf("virtqueue: device address of queue memory: %w", err)
	}
	return a, nil
}

type noNotify struct{}

func (noNotify) Notify() {}

// Kind returns the ring format.
func (q *Queue) Kind() Kind { return q.kind }

// Size returns the number of descriptors.
func (q *Queue) Size() int { return int(q.size) }

// Addrs returns the device addresses of the ring's three parts: the
// descriptors, the driver area (split: avail ring; packed: driver event
// suppression) and the device area (used ring; device event suppression).
func (q *Queue) Addrs() (desc, driver, device uint64) { return q.descAddr, q.drvAddr, q.devAddr }

// BindLcore makes the queue allocate and free mbufs through lcore's
// caches: an rx queue allocates from its pool's, and every queue frees
// through the cache of each mbuf's own pool (mbuf.FreeBulkLcore). A
// negative lcore, the default, uses none.
func (q *Queue) BindLcore(lcore int) {
	q.lcore, q.cache = max(lcore, -1), nil
	if q.pool != nil {
		q.cache = q.pool.Cache(lcore)
	}
}

// Stats returns the queue's drop reasons so far.
func (q *Queue) Stats() Counters {
	c := &q.st.Counters
	return Counters{
		BadID: atomic.LoadUint64(&c.BadID), BadLen: atomic.LoadUint64(&c.BadLen), BadMerge: atomic.LoadUint64(&c.BadMerge),
		NoMbuf: atomic.LoadUint64(&c.NoMbuf), Kicks: atomic.LoadUint64(&c.Kicks), Oversize: atomic.LoadUint64(&c.Oversize),
		NoDMA: atomic.LoadUint64(&c.NoDMA), Completed: atomic.LoadUint64(&c.Completed),
	}
}

// ReadStats returns the drop reasons of the queue in zone, for any process.
func ReadStats(zone *hugemem.Memzone) (Counters, error) {
	st := (*state)(zone.Ptr())
	if zone.Len < uint64(unsafe.Sizeof(state{})) || atomic.LoadUint64(&st.Magic) != stateMagic {
		return Counters{}, fmt.Errorf("virtqueue: memzone %q holds no queue", zone.Name)
	}
	q := Queue{st: st}
	return q.Stats(), nil
}

// add bumps a counter the poller alone writes.
func add(c *uint64, n uint64) { atomic.StoreUint64(c, *c+n) }

// Enable lets bursts run.
func (q *Queue) Enable() { atomic.StoreUint32(&q.st.Enabled, 1) }

// Enabled reports whether bursts run.
func (q *Queue) Enabled() bool { return atomic.LoadUint32(&q.st.Enabled) == 1 }

// Disable stops bursts and waits, up to timeout, for one in progress (in
// any process) to finish. A poller that died in a burst makes it time out.
func (q *Queue) Disable(timeout time.Duration) error {
	atomic.StoreUint32(&q.st.Enabled, 0)
	deadline := time.Now().Add(timeout)
	for atomic.LoadUint32(&q.st.Busy) != 0 {
		if time.Now().After(deadline) {
			return fmt.Errorf("virtqueue: queue %q: a burst did not finish within %v (its poller may have died in it)", q.zone.Name, timeout)
		}
		time.Sleep(20 * time.Microsecond)
	}
	return nil
}

// enter starts a burst: false if the queue is disabled. The store and load
// are both sequentially consistent, so Disable and enter cannot both miss
// each other.
func (q *Queue) enter() bool {
	atomic.StoreUint32(&q.st.Busy, 1)
	if atomic.LoadUint32(&q.st.Enabled) == 0 {
		atomic.StoreUint32(&q.st.Busy, 0)
		return false
	}
	return true
}

func (q *Queue) leave() { atomic.StoreUint32(&q.st.Busy, 0) }

// Reset frees every mbuf in flight and empties the ring, as after a device
// reset; the queue must be disabled (or never enabled).
func (q *Queue) Reset() {
	q.releaseAll()
	resetRing(q.mem, q.st)
}

// releaseAll frees the mbufs of every id in flight.
func (q *Queue) releaseAll() {
	k := 0
	for id := range q.size {
		e := &q.ids[id]
		if e.NDesc != 0 && e.Mbuf != 0 {
			q.scratch[k] = mbuf.FromOff(q.mem, e.Mbuf)
			k++
			if k == batch {
				mbuf.FreeBulkLcore(q.lcore, q.scratch[:k])
				k = 0
			}
		}
		e.Mbuf, e.NDesc = 0, 0
	}
	mbuf.FreeBulkLcore(q.lcore, q.scratch[:k])
	clear(q.scratch[:])
}

// InFlight returns the number of buffers the device holds.
func (q *Queue) InFlight() int {
	n := 0
	for id := range q.size {
		if q.ids[id].NDesc != 0 {
			n++
		}
	}
	return n
}

// DeviceBase returns where the device is to resume after its backend
// restarted, for VHOST_USER_SET_VRING_BASE: split, the used index the
// device last published; packed, the slot after the last used one the
// device wrote, with its wrap counter in bit 15. The queue must be
// disabled.
func (q *Queue) DeviceBase() uint32 {
	if q.kind == Split {
		return atomic.LoadUint32(q.usedWord) >> 16
	}
	pos, wrap := q.st.UsedIdx, q.st.UsedWrap
	for range q.size {
		w := atomic.LoadUint32(q.descWord(pos))
		if !usedFlags(w>>16, wrap) {
			break
		}
		n := uint32(1)
		if id := w & 0xffff; id < q.size && q.ids[id].NDesc != 0 {
			n = uint32(q.ids[id].NDesc)
		}
		pos, wrap = advance(pos, wrap, n, q.size)
	}
	return pos | wrap<<15
}

// pop takes a free id; the caller has checked FreeTop.
func (q *Queue) pop() uint32 {
	q.st.FreeTop--
	return uint32(q.free[q.st.FreeTop&q.mask]) & q.mask
}

// push returns id to the free stack, unless the stack is full (which only
// a corrupted record could cause).
func (q *Queue) push(id uint32) {
	if q.st.FreeTop < q.size {
		q.free[q.st.FreeTop] = uint16(id)
		q.st.FreeTop++
	}
}

// bufAddr returns the device address of m's buffer.
func (q *Queue) bufAddr(m *mbuf.Mbuf) uint64 {
	if q.linear {
		return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m.Buf())))) + q.bias
	}
	return m.BufIOVA()
}

// dataAddr returns the device address of m's data, 0 if the device cannot
// reach it.
func (q *Queue) dataAddr(m *mbuf.Mbuf) uint64 {
	if q.linear {
		return uint64(uintptr(unsafe.Pointer(unsafe.SliceData(m.Buf())))) + q.bias + uint64(m.Headroom())
	}
	return m.DataIOVA()
}

// kick notifies the device if it asked to be.
func (q *Queue) kick() {
	var want bool
	if q.kind == Split {
		want = atomic.LoadUint32(q.usedWord)&usedFNoNotify == 0
	} else {
		want = atomic.LoadUint32(q.devEvent)>>16 != eventFDisable
	}
	if want {
		q.notify.Notify()
		add(&q.st.Counters.Kicks, 1)
	}
}

// Fill posts rx buffers in every free descriptor.
func (q *Queue) Fill() error {
	if q.role != RoleRx {
		return fmt.Errorf("virtqueue: %q is not an rx queue", q.zone.Name)
	}
	before := q.st.Counters.NoMbuf
	q.refill()
	if q.st.FreeTop != 0 && q.st.Counters.NoMbuf != before {
		return fmt.Errorf("virtqueue: %q: pool %q ran out of mbufs with %d of %d descriptors still empty",
			q.zone.Name, q.pool.Name(), q.st.FreeTop, q.size)
	}
	return nil
}

// refill posts fresh mbufs into the free descriptors, as many as the pool
// gives.
func (q *Queue) refill() {
	st := q.st
	posted := false
	for st.FreeTop > 0 {
		k := min(st.FreeTop, batch)
		if q.kind == Packed {
			k = min(k, st.FreeSlots)
		}
		if k == 0 {
			break
		}
		ms := q.scratch[:k]
		if err := q.pool.AllocBulk(q.cache, ms); err != nil {
			add(&st.Counters.NoMbuf, 1)
			break
		}
		if q.kind == Split {
			q.postSplit(ms)
		} else {
			q.postPacked(ms)
		}
		posted = true
	}
	if posted {
		if q.kind == Split {
			atomic.StoreUint32(q.availWord, st.AvailIdx<<16|availFNoInterrupt)
		} else {
			atomic.AddUint32(&st.Busy, 0) // full barrier before kick reads the device's flags
		}
		q.kick()
	}
}

// postSplit puts fresh rx mbufs in the descriptor table and avail ring;
// the caller publishes the avail index.
func (q *Queue) postSplit(ms []*mbuf.Mbuf) {
	st := q.st
	off := uint64(q.headroom - q.hdrLen)
	for _, m := range ms {
		id := q.pop()
		e := &q.ids[id]
		e.Mbuf = q.mem.Off(unsafe.Pointer(m))
		e.NDesc = 1
		d := &q.desc[id]
		d.Addr = q.bufAddr(m) + off
		d.Len = q.posted
		d.Flags = descFWrite
		q.availRing[st.AvailIdx&q.mask] = uint16(id)
		st.AvailIdx = (st.AvailIdx + 1) & 0xffff
	}
}

// postPacked makes fresh rx mbufs available in the packed ring.
func (q *Queue) postPacked(ms []*mbuf.Mbuf) {
	st := q.st
	off := uint64(q.headroom - q.hdrLen)
	for _, m := range ms {
		id := q.pop()
		e := &q.ids[id]
		e.Mbuf = q.mem.Off(unsafe.Pointer(m))
		e.NDesc = 1
		d := &q.pdesc[st.AvailIdx&q.mask]
		d.Addr = q.bufAddr(m) + off
		d.Len = q.posted
		d.ID = uint16(id)
		// The flags go last: they hand the descriptor to the device. Stores
		// are not reordered on amd64, nor by the Go compiler.
		d.Flags = descFWrite | availFlags(st.AvailWrap)
		st.AvailIdx, st.AvailWrap = advance(st.AvailIdx, st.AvailWrap, 1, q.size)
		st.FreeSlots--
	}
}

// availFlags are the AVAIL and USED bits that make a packed descriptor
// available in a round of wrap counter w.
func availFlags(w uint32) uint16 {
	if w != 0 {
		return descFAvail
	}
	return descFUsed
}

// usedFlags reports whether packed descriptor flags f mark it used in a
// round of wrap counter w.
func usedFlags(f, w uint32) bool {
	return (f>>7)&1 == w && (f>>15)&1 == w
}

// advance moves a packed ring position n slots on.
func advance(pos, wrap, n, size uint32) (uint32, uint32) {
	pos += n
	for pos >= size {
		pos -= size
		wrap ^= 1
	}
	return pos, wrap
}

// descWord returns the id and flags word of packed descriptor pos.
func (q *Queue) descWord(pos uint32) *uint32 {
	return (*uint32)(unsafe.Pointer(&q.pdesc[pos&q.mask].ID))
}
