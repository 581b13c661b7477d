package hash

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// The writer lock is a word in the shared header holding its owner's
// identity: pid<<32 | a random nonce this process chose at start. The pid
// lets any process see that a holder died (kill(pid, 0) fails with ESRCH,
// or the holder is a zombie); the nonce tells this process's own holders
// from a dead process that had the same pid before (pid reuse, common in
// containers). Goroutines of one process all use the same word, so the
// lock also excludes them from each other.
var (
	myPID   = uint32(os.Getpid())
	myNonce = rand.Uint32() | 1
	myOwner = uint64(myPID)<<32 | uint64(myNonce)
)

// livenessEvery is how many failed spins pass between liveness checks of
// the holder (a syscall, so not on every spin).
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
		if spin%livenessEvery == 0 && !ownerAlive(owner) && atomic.CompareAndSwapUint64(w, owner, myOwner) {
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

// ownerAlive reports whether the process that wrote lock word owner still
// runs. A zombie counts as dead: it will never unlock.
func ownerAlive(owner uint64) bool {
	pid, nonce := uint32(owner>>32), uint32(owner)
	if pid == myPID {
		return nonce == myNonce
	}
	if pid == 0 || pid > 1<<30 {
		return false // not a pid: a corrupted word, which nobody would ever clear
	}
	if err := unix.Kill(int(pid), 0); errors.Is(err, unix.ESRCH) {
		return false
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return !errors.Is(err, os.ErrNotExist)
	}
	// The state follows the command name, which is in parentheses and may
	// itself contain ") ".
	if i := bytes.LastIndexByte(stat, ')'); i >= 0 && i+2 < len(stat) {
		switch stat[i+2] {
		case 'Z', 'X':
			return false
		}
	}
	return true
}

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
