package timerlist

import (
	"math"
	"math/rand/v2"
	"runtime"
	"sync/atomic"

	"github.com/gopmd/gopmd/internal/proclive"
	"github.com/gopmd/gopmd/mp"
)

// The memzone holds a header, one list per lcore, then the timer records.
// Plain data only; TestLayout checks the sizes. Version 2: the locks are
// 64-bit words naming the holder by pid and start time (proclive.Word), and
// the skiplist has 9 levels, which leaves a list one cache line with its
// wider lock.
const (
	zoneMagic   = 0x6770_6d64_5f74_6d72 // "gpmd_tmr"
	zoneVersion = 2

	// levels is the skiplist height. A node has 1 level, and each further
	// one with probability 1/4 (rte_timer has 10 levels of the same), so
	// 9 levels keep a list of a quarter million timers logarithmic, and
	// one of a million a few steps longer than that.
	levels = 9
)

type header struct {
	Magic     uint64
	Version   uint32
	NTimers   uint32
	AllocLock uint64 // proclive.Word of the process changing the free list; 0: free
	FreeHead  uint32 // index+1 of the first free record; 0: none
	InUse     uint32
	_         [32]byte
}

// list is one lcore's pending timers, a skiplist ordered by (Expire, Seq).
type list struct {
	Lock       uint64 // proclive.Word of the holder; 0: unlocked
	NextExpire int64  // Expire of the first timer; math.MaxInt64 when empty. Read without the lock.
	Seq        uint64 // insertions so far: orders timers with equal Expire first-in first-out
	Count      uint32
	Head       [levels]uint32
}

// rec is one timer. Status is changed by compare-and-swap only; the rest
// belongs to whoever holds the timer in stateConfig or stateRunning, except
// the links (Next, Linked, Seq), which change only under the lock of the
// list the timer is on.
type rec struct {
	Status uint64
	Expire int64
	Seq    uint64
	Next   [levels]uint32 // successors (index+1) at each level; 0: none

	Period   int64
	Arg      uint64
	Callback uint32
	Linked   uint32 // lcore+1 of the list holding the timer; 0: none
	FreeNext uint32 // index+1 of the next free record, while free
	_        uint32
	Owner    mp.Owner // the process that created the timer
	Runs     uint64
	_        [8]byte
}

// States of a timer, in the low byte of its status word.
const (
	stateFree = iota
	stateStopped
	statePending
	stateRunning
	stateConfig
)

// noLcore fills the lcore byte of a status that names no lcore.
const noLcore = 0xff

// A status word: state (bits 0-7), lcore (8-15), generation (16-31), and
// the pid of the process running or configuring the timer (32-63).
func status(state, lcore int, gen uint16, pid uint32) uint64 {
	return uint64(state) | uint64(lcore&0xff)<<8 | uint64(gen)<<16 | uint64(pid)<<32
}

func stateOf(s uint64) int                { return int(s & 0xff) }
func lcoreOf(s uint64) int                { return int(s >> 8 & 0xff) }
func genOf(s uint64) uint16               { return uint16(s >> 16) }
func pidOf(s uint64) uint32               { return uint32(s >> 32) }
func handle(idx uint32, gen uint16) Timer { return Timer(uint64(gen)<<32 | uint64(idx+1)) }

// less orders timers by expiry, then by insertion.
func less(a, b *rec) bool {
	return a.Expire < b.Expire || a.Expire == b.Expire && a.Seq < b.Seq
}

// randomHeight picks a node's number of levels: 1, and each further level
// with probability 1/4.
func randomHeight() int {
	r := rand.Uint32()
	h := 1
	for h < levels && r&3 == 0 {
		h++
		r >>= 2
	}
	return h
}

// insert links r (record idx) into h. Lower levels are linked first, so the
// list is a valid skiplist after every store.
func (h *list) insert(recs []rec, r *rec, idx uint32) {
	var preds [levels]*uint32
	x := &h.Head
	for lv := levels - 1; lv >= 0; lv-- {
		for n := x[lv]; n != 0 && less(&recs[n-1], r); n = x[lv] {
			x = &recs[n-1].Next
		}
		preds[lv] = &x[lv]
	}
	height := randomHeight()
	for lv := range levels {
		if lv < height {
			r.Next[lv] = *preds[lv]
			*preds[lv] = idx + 1
		} else {
			r.Next[lv] = 0
		}
	}
	h.Count++
	h.refresh(recs)
}

// remove unlinks r (record idx) from h wherever it is linked. Upper levels
// are unlinked first, so the list is a valid skiplist after every store.
func (h *list) remove(recs []rec, r *rec, idx uint32) {
	x := &h.Head
	for lv := levels - 1; lv >= 0; lv-- {
		for n := x[lv]; n != 0 && n != idx+1 && less(&recs[n-1], r); n = x[lv] {
			x = &recs[n-1].Next
		}
		if x[lv] == idx+1 {
			x[lv] = r.Next[lv]
			if lv == 0 {
				h.Count--
			}
		}
	}
	h.refresh(recs)
}

// refresh publishes the first expiry for Manage's lock-free check.
func (h *list) refresh(recs []rec) {
	next := int64(math.MaxInt64)
	if n := h.Head[0]; n != 0 {
		next = recs[n-1].Expire
	}
	atomic.StoreInt64(&h.NextExpire, next)
}

// lock takes a spinlock word naming its holder (proclive.Word). A holder
// that died, even one whose pid another process has since, is found after
// a while of spinning and its lock taken over.
func lock(w *uint64, self uint64) {
	for spins := 1; ; spins++ {
		if atomic.LoadUint64(w) == 0 && atomic.CompareAndSwapUint64(w, 0, self) {
			return
		}
		if spins%4096 == 0 {
			if holder := atomic.LoadUint64(w); holder != 0 && holder != self && !proclive.WordAlive(holder) {
				atomic.CompareAndSwapUint64(w, holder, 0)
				continue
			}
			runtime.Gosched()
		}
	}
}

func unlock(w *uint64) { atomic.StoreUint64(w, 0) }

// pidAlive reports whether process pid, recorded in a status word, which
// has no room for a start time, may still run (proclive.Running).
func pidAlive(pid uint32) bool { return proclive.Running(int(pid)) }
