package hash

import (
	"encoding/binary"
	"sync/atomic"
)

// Lookup returns the value stored under key, hashed with the table's hash
// function. A missing key returns ErrNotFound itself.
func (t *Table) Lookup(key []byte) (uint64, error) {
	if len(key) != t.keyLen {
		return 0, t.keyLenError("lookup", key)
	}
	return t.find(key, t.hashFunc.sum(t.seed, key))
}

// LookupWithHash is Lookup with the hash supplied by the caller: it must be
// the one the key was added with. A missing key returns ErrNotFound itself.
func (t *Table) LookupWithHash(key []byte, hash uint64) (uint64, error) {
	if len(key) != t.keyLen {
		return 0, t.keyLenError("lookup", key)
	}
	return t.find(key, hash)
}

// find is the lock-free read. It searches both buckets between two reads of
// the change counter and retries when a writer moved or removed a key in
// between: a cuckoo move might have carried the key from the bucket not yet
// searched to the one already searched, or the key slot compared might have
// been freed and reused. Adding a key or updating a value is a single
// store, which needs no retry. Readers never wait for writers, even dead
// ones.
func (t *Table) find(key []byte, hash uint64) (uint64, error) {
	prim, sig := t.place(hash)
	sec := t.alt(prim, sig)
	changes := &t.hdr.changes
	for {
		before := atomic.LoadUint64(changes)
		k := t.searchBucket(prim, sig, key)
		if k == 0 {
			k = t.searchBucket(sec, sig, key)
		}
		var v uint64
		if k != 0 && k <= t.entries {
			v = atomic.LoadUint64(t.valueAt(k))
		}
		if atomic.LoadUint64(changes) != before {
			continue
		}
		switch {
		case k == 0:
			return 0, ErrNotFound
		case k > t.entries:
			return 0, ErrCorrupt
		}
		return v, nil
	}
}

// searchBucket returns the key index of key in bucket b, 0 when it is not
// there, or an index above t.entries (never dereferenced) when a matching
// entry is corrupted.
func (t *Table) searchBucket(b, sig uint64, key []byte) uint32 {
	bk := t.bucketAt(b)
	for i := range bk {
		e := atomic.LoadUint64(&bk[i])
		if e>>32 != sig || uint32(e) == 0 {
			continue
		}
		k := uint32(e)
		if k > t.entries || t.keyEqual(k, key) {
			return k
		}
	}
	return 0
}

// keyEqual compares key with the key in slot k, a word at a time with
// atomic loads: a slot being rewritten may be read, and the caller's
// change-counter check then discards the result.
func (t *Table) keyEqual(k uint32, key []byte) bool {
	n := len(key) / 8
	for i := 0; i < n; i++ {
		if atomic.LoadUint64(t.keyWordAt(k, i)) != binary.LittleEndian.Uint64(key[i*8:]) {
			return false
		}
	}
	if len(key)%8 == 0 {
		return true
	}
	return atomic.LoadUint64(t.keyWordAt(k, n)) == tailWord(key[n*8:])
}

// tailWord packs the last, partial word of a key the way a slot stores it:
// little-endian, padded with zeros.
func tailWord(b []byte) uint64 {
	var w uint64
	for i, c := range b {
		w |= uint64(c) << (8 * i)
	}
	return w
}
