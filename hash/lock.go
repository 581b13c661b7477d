package hash

import (
	"runtime"
	"sync/atomic"
	"time"

	"github.com/gopmd/gopmd/internal/proclive"
)

// The writer lock is a word in the shared header naming its holder:
// proclive.Word, the pid and the start time of the process. Any process
// can tell that a holder died (a gone pid, a zombie, or a pid reused by a
// process started later); the start time also tells this process from a
// dead one that had its pid before. Goroutines of one process all use the
// same word, so the lock also excludes them from each other.
var myOwner = proclive.Self()

// livenessEvery is how many failed spins pass between liveness checks of
// the holder (a read of /proc, so not on every spin).
const livenessEvery = 64

func (t *Table) lock() {
	if atomic.CompareAndSwapUint64(&t.hdr.lock, 0, myOwner) {
		return
	}
	t.lockSlow()
}

func (t *Table) lockSlow() {
	w := &t.hdr.lock
	for spin := 1; ; spin++ {
		owner := atomic.LoadUint64(w)
		if owner == 0 {
			if atomic.CompareAndSwapUint64(w, 0, myOwner) {
				return
			}
			continue
		}
		if spin%livenessEvery == 0 && owner != myOwner && !proclive.WordAlive(owner) && atomic.CompareAndSwapUint64(w, owner, myOwner) {
			// The holder died inside a write; finish or undo what it left.
			t.repair()
			return
		}
		if spin < 256 {
			runtime.Gosched()
		} else {
			time.Sleep(20 * time.Microsecond)
		}
	}
}

func (t *Table) unlock() { atomic.StoreUint64(&t.hdr.lock, 0) }

// repair rebuilds what a writer that died holding the lock may have left
// half done, from the bucket entries, which are the truth: every step of a
// write keeps the entries valid, at worst with a moved key present twice.
// A key index referenced twice keeps its first entry; a key slot no entry
// refers to (popped by a dying Add, or pushed back by a dying Delete) goes
// back on the free list; state, count and free list are set from the
// entries. The change counter moves before any slot can be reused.
func (t *Table) repair() {
	inUse := make([]uint64, (uint64(t.entries)+1+63)/64)
	for b := uint64(0); b <= t.mask; b++ {
		bk := t.bucketAt(b)
		for i := range bk {
			e := atomic.LoadUint64(&bk[i])
			k := uint32(e)
			if k == 0 {
				continue
			}
			if k > t.entries || inUse[k/64]&(1<<(k%64)) != 0 {
				atomic.StoreUint64(&bk[i], 0)
				continue
			}
			inUse[k/64] |= 1 << (k % 64)
		}
	}
	atomic.AddUint64(&t.hdr.changes, 1)
	for k := uint32(1); k <= t.entries; k++ {
		state := uint64(slotFree)
		if inUse[k/64]&(1<<(k%64)) != 0 {
			state = slotInUse
		}
		atomic.StoreUint64(t.stateAt(k), state)
	}
	t.rebuildFreeList(inUse)
}
