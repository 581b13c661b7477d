package hash

import (
	"encoding/binary"
	"fmt"
	"sync/atomic"
)

// Add stores value under key, hashed with the table's hash function. A key
// already in the table gets the new value. A full table returns an error
// wrapping ErrNoSpace and is left unchanged.
func (t *Table) Add(key []byte, value uint64) error {
	if len(key) != t.keyLen {
		return t.keyLenError("add", key)
	}
	return t.AddWithHash(key, t.hashFunc.sum(t.seed, key), value)
}

// AddWithHash is Add with the hash supplied by the caller, for callers
// that compute hashes themselves (in hardware, or once for several
// tables). Any 64-bit value works; the same key must always come with the
// same hash, and only keys added with t.Hash(key) are found by Lookup.
func (t *Table) AddWithHash(key []byte, hash, value uint64) error {
	if len(key) != t.keyLen {
		return t.keyLenError("add", key)
	}
	t.lock()
	defer t.unlock()
	return t.add(key, hash, value)
}

// Delete removes key, hashed with the table's hash function. A missing key
// returns ErrNotFound itself.
func (t *Table) Delete(key []byte) error {
	if len(key) != t.keyLen {
		return t.keyLenError("delete", key)
	}
	return t.DeleteWithHash(key, t.hashFunc.sum(t.seed, key))
}

// DeleteWithHash is Delete with the hash the key was added with.
func (t *Table) DeleteWithHash(key []byte, hash uint64) error {
	if len(key) != t.keyLen {
		return t.keyLenError("delete", key)
	}
	t.lock()
	defer t.unlock()
	return t.del(key, hash)
}

// Reset removes every key.
func (t *Table) Reset() {
	t.lock()
	defer t.unlock()
	for b := uint64(0); b <= t.mask; b++ {
		bk := t.bucketAt(b)
		for i := range bk {
			atomic.StoreUint64(&bk[i], 0)
		}
	}
	atomic.AddUint64(&t.hdr.changes, 1)
	for k := uint32(1); k <= t.entries; k++ {
		atomic.StoreUint64(t.stateAt(k), slotFree)
	}
	t.rebuildFreeList(nil)
}

// The writers below run under the table lock, so they are the only ones
// changing the table. Each step that takes an entry out of a bucket slot,
// or a key slot out of use, bumps the change counter before that slot can
// be reused, which is what lets readers run without the lock (see find).
// Every step also leaves a state that repair can finish if the writer dies.

func (t *Table) add(key []byte, hash, value uint64) error {
	h := t.hdr
	prim, sig := t.place(hash)
	sec := t.alt(prim, sig)
	if _, _, k := t.findLocked(prim, sec, sig, key); k != 0 {
		if k > t.entries {
			return t.corrupt("bucket entry holds key index %d", k)
		}
		atomic.StoreUint64(t.valueAt(k), value)
		return nil
	}
	count := h.count
	if count >= t.entries {
		return fmt.Errorf("hash table %q is full: all %d entries are in use: %w", t.name, t.entries, ErrNoSpace)
	}
	top := h.freeTop
	if top == 0 || top > t.entries {
		return t.corrupt("free list top is %d while %d of %d entries are in use", top, count, t.entries)
	}
	k := *t.freeAt(top - 1)
	if k == 0 || k > t.entries {
		return t.corrupt("free list holds key index %d", k)
	}
	// Slot k is free: no bucket entry refers to it, and any reader still
	// comparing its old key saw the change counter move when it was freed.
	t.writeKey(k, key)
	atomic.StoreUint64(t.valueAt(k), value)

	b, i, ok := t.emptyEntry(prim)
	if !ok {
		b, i, ok = t.emptyEntry(sec)
	}
	if !ok {
		b, i, ok = t.makeRoom(prim, sec)
	}
	if !ok {
		return fmt.Errorf("hash table %q: no room for the key in buckets %d and %d, nor within %d buckets of cuckoo moves (%d of %d entries in use; many keys share these buckets): %w",
			t.name, prim, sec, bfsMax, count, t.entries, ErrNoSpace)
	}
	atomic.StoreUint32(&h.freeTop, top-1)
	atomic.StoreUint64(&t.bucketAt(b)[i], sig<<32|uint64(k)) // publishes the key
	atomic.StoreUint64(t.stateAt(k), slotInUse)
	atomic.StoreUint32(&h.count, count+1)
	return nil
}

func (t *Table) del(key []byte, hash uint64) error {
	h := t.hdr
	prim, sig := t.place(hash)
	sec := t.alt(prim, sig)
	b, i, k := t.findLocked(prim, sec, sig, key)
	if k == 0 {
		return ErrNotFound
	}
	top, count := h.freeTop, h.count
	if k > t.entries || top >= t.entries || count == 0 {
		return t.corrupt("deleting key index %d with free list top %d and count %d of %d entries", k, top, count, t.entries)
	}
	atomic.StoreUint64(t.stateAt(k), slotFree)
	atomic.StoreUint64(&t.bucketAt(b)[i], 0)
	atomic.AddUint64(&h.changes, 1)
	*t.freeAt(top) = k
	atomic.StoreUint32(&h.freeTop, top+1)
	atomic.StoreUint32(&h.count, count-1)
	return nil
}

// findLocked finds key in its two buckets: the bucket, the entry and the key
// index, which is 0 when the key is absent and above t.entries when a
// matching entry is corrupted.
func (t *Table) findLocked(prim, sec, sig uint64, key []byte) (b uint64, i int, k uint32) {
	for _, b := range [2]uint64{prim, sec} {
		bk := t.bucketAt(b)
		for i := range bk {
			e := atomic.LoadUint64(&bk[i])
			if e>>32 != sig || uint32(e) == 0 {
				continue
			}
			if k := uint32(e); k > t.entries || t.keyEqual(k, key) {
				return b, i, k
			}
		}
	}
	return 0, 0, 0
}

func (t *Table) emptyEntry(b uint64) (uint64, int, bool) {
	bk := t.bucketAt(b)
	for i := range bk {
		if uint32(atomic.LoadUint64(&bk[i])) == 0 {
			return b, i, true
		}
	}
	return 0, 0, false
}

func (t *Table) writeKey(k uint32, key []byte) {
	n := len(key) / 8
	for i := 0; i < n; i++ {
		atomic.StoreUint64(t.keyWordAt(k, i), binary.LittleEndian.Uint64(key[i*8:]))
	}
	if len(key)%8 != 0 {
		atomic.StoreUint64(t.keyWordAt(k, n), tailWord(key[n*8:]))
	}
}

// bfsNode is a full bucket the cuckoo search reached: the entry in its
// parent's bucket at slot can move here.
type bfsNode struct {
	bkt    uint32
	parent int32 // index in the queue; -1 for the key's own buckets
	slot   int32
}

// makeRoom frees an entry in bucket prim or sec, both full, by moving keys
// to their alternative buckets along the shortest path a breadth-first
// search finds (as DPDK's rte_hash does), visiting at most bfsMax buckets.
// Each move copies the entry to its new place, bumps the change counter,
// and only then lets the old place be overwritten, so a reader always
// finds a moving key in one of its buckets or retries. It returns the
// freed entry, which still holds a copy of the key moved out of it.
func (t *Table) makeRoom(prim, sec uint64) (uint64, int, bool) {
	var q [bfsMax]bfsNode
	q[0] = bfsNode{bkt: uint32(prim), parent: -1}
	n := 1
	if sec != prim {
		q[1] = bfsNode{bkt: uint32(sec), parent: -1}
		n = 2
	}
	for head := 0; head < n; head++ {
		b := uint64(q[head].bkt)
		bk := t.bucketAt(b)
		for i := range bk {
			e := atomic.LoadUint64(&bk[i])
			alt := t.alt(b, e>>32)
			if alt == b {
				continue
			}
			if _, j, ok := t.emptyEntry(alt); ok {
				return t.moveAlong(q[:n], head, i, alt, j)
			}
			if n < bfsMax {
				q[n] = bfsNode{bkt: uint32(alt), parent: int32(head), slot: int32(i)}
				n++
			}
		}
	}
	return 0, 0, false
}

// moveAlong moves entry i of node q[last] into the empty entry j of bucket
// to, then each parent's entry into the place its child vacated, up to one
// of the key's own buckets.
func (t *Table) moveAlong(q []bfsNode, last, i int, to uint64, j int) (uint64, int, bool) {
	if !t.move(uint64(q[last].bkt), i, to, j) {
		return 0, 0, false
	}
	cur, freed := last, i
	for q[cur].parent >= 0 {
		p := int(q[cur].parent)
		if !t.move(uint64(q[p].bkt), int(q[cur].slot), uint64(q[cur].bkt), freed) {
			// The stale copy left in the vacated entry goes; the key it
			// held lives on in the child bucket, and the counter moved.
			atomic.StoreUint64(&t.bucketAt(uint64(q[cur].bkt))[freed], 0)
			return 0, 0, false
		}
		cur, freed = p, int(q[cur].slot)
	}
	return uint64(q[cur].bkt), freed, true
}

// move copies entry i of bucket from to entry j of bucket to, its
// alternative, and bumps the change counter; entry i keeps a stale copy
// for the next move to overwrite. It refuses an entry whose alternative is
// not to (which the search's path rules out, but shared state is checked,
// not trusted).
func (t *Table) move(from uint64, i int, to uint64, j int) bool {
	e := atomic.LoadUint64(&t.bucketAt(from)[i])
	if uint32(e) == 0 || t.alt(from, e>>32) != to {
		return false
	}
	atomic.StoreUint64(&t.bucketAt(to)[j], e)
	atomic.AddUint64(&t.hdr.changes, 1)
	return true
}

// rebuildFreeList makes every key slot not marked in use free, in order
// of index, and sets the count. inUse, when not nil, says which slots are
// in use (bit k for key index k); nil means none.
func (t *Table) rebuildFreeList(inUse []uint64) {
	var top, count uint32
	for k := t.entries; k >= 1; k-- {
		if inUse != nil && inUse[k/64]&(1<<(k%64)) != 0 {
			count++
			continue
		}
		*t.freeAt(top) = k
		top++
	}
	atomic.StoreUint32(&t.hdr.freeTop, top)
	atomic.StoreUint32(&t.hdr.count, count)
}

func (t *Table) corrupt(format string, args ...any) error {
	return fmt.Errorf("hash table %q: %s: %w", t.name, fmt.Sprintf(format, args...), ErrCorrupt)
}
