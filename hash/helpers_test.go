package hash

import (
	"encoding/binary"
	"testing"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/require"
)

// testOptions gives each test a memfd-backed group of its own.
func testOptions(tb testing.TB) hugemem.Options {
	o := testmem.Options(tb, "ht")
	o.Limit, o.SegmentSize = 256<<20, 64<<20
	return o
}

func newMemory(tb testing.TB) (*hugemem.Memory, hugemem.Options) {
	tb.Helper()
	o := testOptions(tb)
	return testmem.Create(tb, o), o
}

func makeTable(tb testing.TB, cfg Config) *Table {
	tb.Helper()
	m, _ := newMemory(tb)
	tbl, err := Create(m, cfg)
	require.NoError(tb, err)
	return tbl
}

// key16 is the 16-byte key number i: distinct for distinct i.
func key16(i int) []byte {
	k := make([]byte, 16)
	binary.LittleEndian.PutUint64(k, uint64(i))
	binary.LittleEndian.PutUint64(k[8:], ^uint64(i)*0x9e3779b97f4a7c15)
	return k
}

// valueOf is the value the tests store under key number i, so a reader can
// tell a value that belongs to another key.
func valueOf(i int) uint64 { return uint64(i)<<20 | 0xabcde }

// contents returns what Iterate reports, failing on a key seen twice.
func contents(tb testing.TB, tbl *Table) map[string]uint64 {
	tb.Helper()
	got := map[string]uint64{}
	tbl.Iterate(func(key []byte, value uint64) bool {
		_, dup := got[string(key)]
		require.False(tb, dup, "Iterate reported key %x twice", key)
		got[string(key)] = value
		return true
	})
	return got
}

// checkConsistent asserts the table's internal invariants: every bucket
// entry sits in one of its key's two buckets and refers to an in-use key
// slot exactly once, the count and free list add up to the capacity.
func checkConsistent(tb testing.TB, tbl *Table) {
	tb.Helper()
	seen := map[uint32]bool{}
	for b := uint64(0); b <= tbl.mask; b++ {
		for i, e := range tbl.bucketAt(b) {
			k := uint32(e)
			if k == 0 {
				continue
			}
			require.LessOrEqual(tb, k, tbl.entries, "bucket %d entry %d: key index out of range", b, i)
			require.False(tb, seen[k], "key index %d is in two bucket entries", k)
			seen[k] = true
			require.Equal(tb, uint64(slotInUse), *tbl.stateAt(k), "slot %d is referenced but not in use", k)
		}
	}
	require.Equal(tb, len(seen), tbl.Count(), "Count vs referenced key slots")
	top := tbl.hdr.freeTop
	require.Equal(tb, int(tbl.entries), len(seen)+int(top), "referenced slots + free list = capacity")
	for i := uint32(0); i < top; i++ {
		k := *tbl.freeAt(i)
		require.False(tb, seen[k], "key index %d is both free and referenced", k)
		require.Equal(tb, uint64(slotFree), *tbl.stateAt(k), "slot %d is free but marked in use", k)
	}
}
