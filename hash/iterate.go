package hash

import (
	"encoding/binary"
	"sync/atomic"
)

// Iterate calls fn for each key in the table with its value, in key slot
// order, until fn returns false. It takes no lock: writers may run
// meanwhile, and fn may call any method of the table. Each call sees a
// key and value that were in the table together; a key present for the
// whole walk is seen exactly once (keys never change slot, even when
// cuckoo moves shift their bucket entries), and one added or deleted
// during the walk may or may not be seen. The key slice is reused: copy
// it to keep it past fn's return.
func (t *Table) Iterate(fn func(key []byte, value uint64) bool) {
	words := (t.keyLen + 7) / 8
	buf := make([]byte, words*8)
	changes := &t.hdr.changes
	for k := uint32(1); k <= t.entries; k++ {
		for {
			before := atomic.LoadUint64(changes)
			if atomic.LoadUint64(t.stateAt(k)) != slotInUse {
				break
			}
			for i := 0; i < words; i++ {
				binary.LittleEndian.PutUint64(buf[i*8:], atomic.LoadUint64(t.keyWordAt(k, i)))
			}
			v := atomic.LoadUint64(t.valueAt(k))
			if atomic.LoadUint64(changes) != before {
				continue // the slot may have been freed and reused while we read it
			}
			if !fn(buf[:t.keyLen], v) {
				return
			}
			break
		}
	}
}
