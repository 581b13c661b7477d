package hash

import (
	"bytes"
	"hash/crc32"
	"hash/fnv"
	"math/rand/v2"
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

func TestHeaderLayout(t *testing.T) {
	// Other binaries read these fields at these offsets.
	var h header
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"magic", unsafe.Offsetof(h.magic), 0},
		{"version", unsafe.Offsetof(h.version), 4},
		{"name", unsafe.Offsetof(h.name), 8},
		{"keyLen", unsafe.Offsetof(h.keyLen), 40},
		{"slotSize", unsafe.Offsetof(h.slotSize), 44},
		{"entries", unsafe.Offsetof(h.entries), 48},
		{"nbuckets", unsafe.Offsetof(h.nbuckets), 52},
		{"hashFunc", unsafe.Offsetof(h.hashFunc), 56},
		{"seed", unsafe.Offsetof(h.seed), 64},
		{"size", unsafe.Offsetof(h.size), 72},
		{"lock", unsafe.Offsetof(h.lock), 128},
		{"count", unsafe.Offsetof(h.count), 136},
		{"freeTop", unsafe.Offsetof(h.freeTop), 140},
		{"changes", unsafe.Offsetof(h.changes), 192},
	} {
		require.Equal(t, f.want, f.got, "offset of header.%s", f.name)
	}
	require.Equal(t, uint64(256), headerSize)
	require.Equal(t, uint64(64), bucketSize, "a bucket is one cache line")
}

func TestHashFunctionsAreTheStandardOnes(t *testing.T) {
	// The ids are a shared format: their results must never change.
	msg := []byte("123456789")
	require.Equal(t, uint64(0xe3069283), HashCRC32C.sum(0, msg), "CRC-32C check value")
	require.Equal(t, uint64(0x06d5573923c6cdfc), HashFNV1a64.sum(0, msg), "FNV-1a 64 of 123456789")
	for _, n := range []int{0, 1, 7, 8, 63, 200} {
		b := bytes.Repeat([]byte{byte(n), 0x5a}, n)[:n]
		require.Equal(t, uint64(crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))), HashCRC32C.sum(0, b))
		require.Equal(t, uint64(crc32.Update(0xdeadbeef, crc32.MakeTable(crc32.Castagnoli), b)), HashCRC32C.sum(0xdeadbeef, b))
		f := fnv.New64a()
		f.Write(b)
		require.Equal(t, f.Sum64(), HashFNV1a64.sum(0, b))
	}
	require.NotEqual(t, HashFNV1a64.sum(0, msg), HashFNV1a64.sum(1, msg), "the FNV seed changes the hash")
	// mixHash places keys in buckets: pinned, like the functions.
	require.Equal(t, uint64(0), mixHash(0))
	require.Equal(t, uint64(0xb456bcfc34c2cb2c), mixHash(1))
	require.Equal(t, uint64(0x4fc00c5a8b0f8f6a), mixHash(0xe3069283))
}

func TestCreateRefusesBadConfig(t *testing.T) {
	m, _ := newMemory(t)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Name: "", KeyLen: 4, Entries: 8}, "name is empty"},
		{Config{Name: "a-name-that-is-much-too-long-x", KeyLen: 4, Entries: 8}, "at most 28"},
		{Config{Name: "nul\x00", KeyLen: 4, Entries: 8}, "NUL"},
		{Config{Name: "k", KeyLen: 0, Entries: 8}, "key length 0 is out of range"},
		{Config{Name: "k", KeyLen: MaxKeyLen + 1, Entries: 8}, "key length 1025 is out of range"},
		{Config{Name: "e", KeyLen: 4, Entries: 0}, "entries 0 is out of range"},
		{Config{Name: "e", KeyLen: 4, Entries: MaxEntries + 1}, "entries 1073741825 is out of range"},
		{Config{Name: "h", KeyLen: 4, Entries: 8, Hash: 9}, "hash function id 9"},
		{Config{Name: "s", KeyLen: 4, Entries: 8, Seed: 1 << 32}, "does not fit the 32 bits"},
	} {
		_, err := Create(m, c.cfg)
		require.ErrorContains(t, err, c.want, "Create(%+v)", c.cfg)
	}
	_, err := Create(m, Config{Name: "h", KeyLen: 4, Entries: 8, Hash: 9})
	require.ErrorIs(t, err, ErrUnknownHash)

	_, err = Create(m, Config{Name: "twice", KeyLen: 4, Entries: 8})
	require.NoError(t, err)
	_, err = Create(m, Config{Name: "twice", KeyLen: 4, Entries: 8})
	require.ErrorIs(t, err, hugemem.ErrExists)
}

func TestCreateDefaultsToCRC32C(t *testing.T) {
	tbl := makeTable(t, Config{Name: "dflt", KeyLen: 4, Entries: 8})
	f, seed := tbl.HashFunc()
	require.Equal(t, HashCRC32C, f)
	require.Equal(t, uint64(0), seed)
	require.Equal(t, uint64(crc32.Checksum([]byte("abcd"), crc32.MakeTable(crc32.Castagnoli))), tbl.Hash([]byte("abcd")))
}

func TestAddLookupDelete(t *testing.T) {
	for _, keyLen := range []int{1, 4, 13, 16, 40} {
		tbl := makeTable(t, Config{Name: "sem", KeyLen: keyLen, Entries: 100, Hash: HashFNV1a64, Seed: 7})
		key := func(i int) []byte {
			k := bytes.Repeat([]byte{byte(i), byte(i >> 8)}, keyLen)[:keyLen]
			k[0] = byte(i)
			return k
		}
		const n = 100
		for i := 0; i < n; i++ {
			require.NoError(t, tbl.Add(key(i), valueOf(i)), "keyLen %d: Add(%d)", keyLen, i)
		}
		require.Equal(t, n, tbl.Count())
		for i := 0; i < n; i++ {
			v, err := tbl.Lookup(key(i))
			require.NoError(t, err, "keyLen %d: Lookup(%d)", keyLen, i)
			require.Equal(t, valueOf(i), v, "keyLen %d: value of key %d", keyLen, i)
		}
		if keyLen > 1 {
			_, err := tbl.Lookup(bytes.Repeat([]byte{0xee}, keyLen))
			require.Same(t, ErrNotFound, err, "a missing key is ErrNotFound itself")
		}

		require.NoError(t, tbl.Add(key(3), 42), "Add of a present key")
		v, err := tbl.Lookup(key(3))
		require.NoError(t, err)
		require.Equal(t, uint64(42), v, "Add of a present key replaces its value")
		require.Equal(t, n, tbl.Count(), "replacing a value adds no key")

		require.NoError(t, tbl.Delete(key(3)))
		_, err = tbl.Lookup(key(3))
		require.Same(t, ErrNotFound, err, "deleted key")
		require.Same(t, ErrNotFound, tbl.Delete(key(3)), "deleting twice")
		require.Equal(t, n-1, tbl.Count())
		checkConsistent(t, tbl)
	}
}

func TestWrongKeyLengthIsAnError(t *testing.T) {
	tbl := makeTable(t, Config{Name: "len", KeyLen: 8, Entries: 8})
	short := []byte("short")
	_, err := tbl.Lookup(short)
	require.ErrorContains(t, err, "key is 5 bytes, the table's keys are 8 bytes")
	_, err = tbl.LookupWithHash(short, 1)
	require.ErrorContains(t, err, "key is 5 bytes")
	require.ErrorContains(t, tbl.Add(short, 1), "add: key is 5 bytes")
	require.ErrorContains(t, tbl.AddWithHash(nil, 1, 1), "key is 0 bytes")
	require.ErrorContains(t, tbl.Delete(short), "delete: key is 5 bytes")
	require.ErrorContains(t, tbl.DeleteWithHash(short, 1), "key is 5 bytes")
	require.Equal(t, 0, tbl.Count())
}

func TestWithHashUsesTheCallersHash(t *testing.T) {
	tbl := makeTable(t, Config{Name: "wh", KeyLen: 16, Entries: 64})
	k := key16(1)
	require.NoError(t, tbl.AddWithHash(k, 0x1234, 5))
	v, err := tbl.LookupWithHash(k, 0x1234)
	require.NoError(t, err)
	require.Equal(t, uint64(5), v)

	// With t.Hash(key) the two APIs meet.
	k2 := key16(2)
	require.NoError(t, tbl.AddWithHash(k2, tbl.Hash(k2), 6))
	v, err = tbl.Lookup(k2)
	require.NoError(t, err)
	require.Equal(t, uint64(6), v)
	require.NoError(t, tbl.Add(k, 7), "by-key Add of a key added under another hash")
	v, err = tbl.LookupWithHash(k2, tbl.Hash(k2))
	require.NoError(t, err)
	require.Equal(t, uint64(6), v)

	// 32-bit hashes, zero-extended, spread over the buckets like any other.
	for i := 10; i < 60; i++ {
		require.NoError(t, tbl.AddWithHash(key16(i), uint64(uint32(i)), valueOf(i)))
	}
	for i := 10; i < 60; i++ {
		v, err := tbl.LookupWithHash(key16(i), uint64(uint32(i)))
		require.NoError(t, err)
		require.Equal(t, valueOf(i), v)
	}
	require.NoError(t, tbl.DeleteWithHash(k, 0x1234))
	_, err = tbl.LookupWithHash(k, 0x1234)
	require.Same(t, ErrNotFound, err)
	checkConsistent(t, tbl)
}

func TestFullTableIsErrNoSpaceAndChangesNothing(t *testing.T) {
	for _, entries := range []int{1, 7, 8, 64, 1000, 4096} {
		tbl := makeTable(t, Config{Name: "full", KeyLen: 16, Entries: entries})
		for i := 0; i < entries; i++ {
			require.NoError(t, tbl.Add(key16(i), valueOf(i)), "capacity %d: Add(%d)", entries, i)
		}
		err := tbl.Add(key16(entries), 1)
		require.ErrorIs(t, err, ErrNoSpace, "capacity %d: one key more", entries)
		require.ErrorContains(t, err, "is full")
		require.Equal(t, entries, tbl.Count())
		_, err = tbl.Lookup(key16(entries))
		require.Same(t, ErrNotFound, err)
		for i := 0; i < entries; i++ {
			v, err := tbl.Lookup(key16(i))
			require.NoError(t, err, "capacity %d: key %d after the failed Add", entries, i)
			require.Equal(t, valueOf(i), v)
		}
		require.NoError(t, tbl.Add(key16(0), 99), "updating a key of a full table")
		checkConsistent(t, tbl)

		require.NoError(t, tbl.Delete(key16(entries/2)))
		require.NoError(t, tbl.Add(key16(entries), valueOf(entries)), "a delete makes room")
		checkConsistent(t, tbl)
	}
}

func TestKeysPiledOnTwoBucketsAreErrNoSpace(t *testing.T) {
	// A caller's hash that is the same for every key leaves two buckets
	// of 8 entries for all of them.
	tbl := makeTable(t, Config{Name: "pile", KeyLen: 16, Entries: 1000})
	for i := 0; i < 2*BucketEntries; i++ {
		require.NoError(t, tbl.AddWithHash(key16(i), 77, valueOf(i)), "key %d", i)
	}
	err := tbl.AddWithHash(key16(100), 77, 1)
	require.ErrorIs(t, err, ErrNoSpace)
	require.ErrorContains(t, err, "no room for the key in buckets")
	require.Equal(t, 2*BucketEntries, tbl.Count())
	for i := 0; i < 2*BucketEntries; i++ {
		v, err := tbl.LookupWithHash(key16(i), 77)
		require.NoError(t, err)
		require.Equal(t, valueOf(i), v)
	}
	checkConsistent(t, tbl)
}

// TestRandomOperationsMatchAMap drives a small table near full, where
// cuckoo moves are frequent, against a Go map. With 816 entries the 128
// buckets are 80% full when the table is.
func TestRandomOperationsMatchAMap(t *testing.T) {
	const entries = 816
	tbl := makeTable(t, Config{Name: "model", KeyLen: 16, Entries: entries, Hash: HashCRC32C, Seed: 99})
	model := map[int]uint64{}
	rng := rand.New(rand.NewPCG(1, 2))
	deletes := uint64(0)
	ops := 20000
	if testing.Short() {
		ops = 5000
	}
	for op := 0; op < ops; op++ {
		i := rng.IntN(2 * entries) // half the key space fits
		switch r := rng.IntN(10); {
		case r < 6:
			v := rng.Uint64()
			err := tbl.Add(key16(i), v)
			if _, ok := model[i]; !ok && len(model) == entries {
				require.ErrorIs(t, err, ErrNoSpace, "op %d: Add to a full table", op)
				continue
			}
			require.NoError(t, err, "op %d: Add(%d) with %d keys", op, i, len(model))
			model[i] = v
		case r < 9:
			err := tbl.Delete(key16(i))
			if _, ok := model[i]; ok {
				require.NoError(t, err, "op %d: Delete(%d)", op, i)
				delete(model, i)
				deletes++
			} else {
				require.Same(t, ErrNotFound, err, "op %d: Delete(%d) of a missing key", op, i)
			}
		default:
			v, err := tbl.Lookup(key16(i))
			if want, ok := model[i]; ok {
				require.NoError(t, err, "op %d: Lookup(%d)", op, i)
				require.Equal(t, want, v, "op %d: Lookup(%d)", op, i)
			} else {
				require.Same(t, ErrNotFound, err, "op %d: Lookup(%d)", op, i)
			}
		}
		require.Equal(t, len(model), tbl.Count(), "op %d", op)
	}
	checkConsistent(t, tbl)
	got := contents(t, tbl)
	require.Equal(t, len(model), len(got))
	for i, v := range model {
		require.Equal(t, v, got[string(key16(i))], "Iterate's value of key %d", i)
	}
	moves := tbl.hdr.changes - deletes
	t.Logf("%d ops, %d deletes, %d cuckoo moves", ops, deletes, moves)
	require.NotZero(t, moves, "the walk near full made cuckoo moves")
}

func TestDeleteAndReinsertReusesSlots(t *testing.T) {
	const entries = 256
	tbl := makeTable(t, Config{Name: "reuse", KeyLen: 16, Entries: entries})
	for round := 0; round < 20; round++ {
		for i := 0; i < entries; i++ {
			require.NoError(t, tbl.Add(key16(round*entries+i), valueOf(i)), "round %d key %d", round, i)
		}
		require.Equal(t, entries, tbl.Count())
		for i := 0; i < entries; i++ {
			require.NoError(t, tbl.Delete(key16(round*entries+i)), "round %d key %d", round, i)
		}
		require.Equal(t, 0, tbl.Count())
		checkConsistent(t, tbl)
	}
}

func TestIterateVisitsEveryKeyOnceAndStops(t *testing.T) {
	tbl := makeTable(t, Config{Name: "iter", KeyLen: 16, Entries: 300})
	for i := 0; i < 250; i++ {
		require.NoError(t, tbl.Add(key16(i), valueOf(i)))
	}
	for i := 0; i < 250; i += 5 {
		require.NoError(t, tbl.Delete(key16(i)))
	}
	got := contents(t, tbl)
	require.Len(t, got, 200)
	for i := 0; i < 250; i++ {
		v, ok := got[string(key16(i))]
		require.Equal(t, i%5 != 0, ok, "key %d reported", i)
		if ok {
			require.Equal(t, valueOf(i), v)
		}
	}
	calls := 0
	tbl.Iterate(func([]byte, uint64) bool { calls++; return calls < 3 })
	require.Equal(t, 3, calls, "Iterate stops when fn returns false")
}

func TestResetEmptiesTheTable(t *testing.T) {
	tbl := makeTable(t, Config{Name: "reset", KeyLen: 16, Entries: 100})
	for i := 0; i < 100; i++ {
		require.NoError(t, tbl.Add(key16(i), valueOf(i)))
	}
	tbl.Reset()
	require.Equal(t, 0, tbl.Count())
	require.Empty(t, contents(t, tbl))
	for i := 0; i < 100; i++ {
		_, err := tbl.Lookup(key16(i))
		require.Same(t, ErrNotFound, err)
	}
	checkConsistent(t, tbl)
	for i := 100; i < 200; i++ {
		require.NoError(t, tbl.Add(key16(i), valueOf(i)), "refilling after Reset")
	}
	checkConsistent(t, tbl)
}

func TestLookupAttachesToTheSameTable(t *testing.T) {
	m, o := newMemory(t)
	a, err := Create(m, Config{Name: "shared", KeyLen: 16, Entries: 64, Hash: HashFNV1a64, Seed: 3})
	require.NoError(t, err)
	require.NoError(t, a.Add(key16(1), 11))

	// A second Memory of the group maps it at another address.
	m2, err := hugemem.Attach(hugemem.Options{Prefix: o.Prefix, RuntimeDir: o.RuntimeDir})
	require.NoError(t, err)
	defer m2.Close()
	b, err := Lookup(m2, "shared")
	require.NoError(t, err)
	require.NotEqual(t, uintptr(unsafe.Pointer(a.hdr)), uintptr(unsafe.Pointer(b.hdr)), "mapped at different addresses")
	require.Equal(t, "shared", b.Name())
	require.Equal(t, 16, b.KeyLen())
	require.Equal(t, 64, b.Capacity())
	f, seed := b.HashFunc()
	require.Equal(t, HashFNV1a64, f)
	require.Equal(t, uint64(3), seed)

	v, err := b.Lookup(key16(1))
	require.NoError(t, err)
	require.Equal(t, uint64(11), v)
	require.NoError(t, b.Add(key16(2), 22))
	v, err = a.Lookup(key16(2))
	require.NoError(t, err)
	require.Equal(t, uint64(22), v)

	_, err = Lookup(m, "absent")
	require.ErrorIs(t, err, hugemem.ErrNotFound)
	_, err = Lookup(m, "")
	require.ErrorContains(t, err, "name is empty")
}

func TestFreeRemovesTheTable(t *testing.T) {
	m, _ := newMemory(t)
	tbl, err := Create(m, Config{Name: "gone", KeyLen: 4, Entries: 8})
	require.NoError(t, err)
	require.NoError(t, tbl.Free())
	_, err = Lookup(m, "gone")
	require.ErrorIs(t, err, hugemem.ErrNotFound)
	_, err = Create(m, Config{Name: "gone", KeyLen: 4, Entries: 8})
	require.NoError(t, err, "the name is free again")
}

func TestLookupRefusesACorruptedHeader(t *testing.T) {
	for _, c := range []struct {
		name    string
		corrupt func(h *header)
		want    string
		is      error
	}{
		{"magic", func(h *header) { h.magic = 0xdead }, "magic is 0xdead", ErrCorrupt},
		{"version", func(h *header) { h.version = 99 }, "layout version is 99", ErrCorrupt},
		{"name", func(h *header) { copy(h.name[:], "other") }, "does not match the memzone's table name", ErrCorrupt},
		{"unterminated name", func(h *header) { copy(h.name[:], bytes.Repeat([]byte{'x'}, 32)) }, "does not match", ErrCorrupt},
		{"key length 0", func(h *header) { h.keyLen = 0 }, "key length 0 is out of range", ErrCorrupt},
		{"key length huge", func(h *header) { h.keyLen = 1 << 31 }, "key length 2147483648 is out of range", ErrCorrupt},
		{"key length changed", func(h *header) { h.keyLen = 64 }, "key slot size 32 does not match key length 64", ErrCorrupt},
		{"entries 0", func(h *header) { h.entries = 0 }, "entries 0 is out of range", ErrCorrupt},
		{"entries grown", func(h *header) { h.entries = 100000 }, "bucket count", ErrCorrupt},
		{"buckets", func(h *header) { h.nbuckets = 3 }, "bucket count 3 does not match", ErrCorrupt},
		{"size", func(h *header) { h.size += 64 }, "size", ErrCorrupt},
		{"beyond zone", func(h *header) {
			h.entries = 1 << 20
			g := layoutFor(h.keyLen, h.entries)
			h.nbuckets, h.size = g.nbuckets, g.size
		}, "larger than its memzone", ErrCorrupt},
		{"count", func(h *header) { h.count = 1000 }, "count 1000", ErrCorrupt},
		{"free top", func(h *header) { h.freeTop = 1000 }, "free list top 1000", ErrCorrupt},
		{"hash id from a newer binary", func(h *header) { h.hashFunc = 3 }, "uses hash function id 3", ErrUnknownHash},
		{"hash id 0", func(h *header) { h.hashFunc = 0 }, "hash function id 0", ErrUnknownHash},
		{"crc seed", func(h *header) { h.seed = 1 << 40 }, "does not fit the 32 bits", ErrCorrupt},
	} {
		t.Run(c.name, func(t *testing.T) {
			m, _ := newMemory(t)
			tbl, err := Create(m, Config{Name: "victim", KeyLen: 16, Entries: 100})
			require.NoError(t, err)
			c.corrupt(tbl.hdr)
			var got *Table
			require.NotPanics(t, func() { got, err = Lookup(m, "victim") })
			require.Nil(t, got)
			require.ErrorIs(t, err, c.is)
			require.ErrorContains(t, err, c.want)
			require.ErrorContains(t, err, `"victim"`, "the error names the table")
		})
	}
}

func TestLookupRefusesAZoneTooSmallForAHeader(t *testing.T) {
	m, _ := newMemory(t)
	_, err := m.Reserve("HT_tiny", 64, 0)
	require.NoError(t, err)
	_, err = Lookup(m, "tiny")
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorContains(t, err, "shorter than a table header")
}

func TestCorruptedEntriesAreErrorsNotCrashes(t *testing.T) {
	tbl := makeTable(t, Config{Name: "bad", KeyLen: 16, Entries: 64})
	k := key16(1)
	require.NoError(t, tbl.Add(k, 1))
	prim, sig := tbl.place(tbl.Hash(k))
	bk := tbl.bucketAt(prim)
	require.Equal(t, sig, bk[0]>>32)
	bk[0] = sig<<32 | 0xffffff // a key index far outside the table
	_, err := tbl.Lookup(k)
	require.ErrorIs(t, err, ErrCorrupt)
	require.ErrorIs(t, tbl.Add(k, 2), ErrCorrupt)

	bk[0] = 0
	*tbl.freeAt(tbl.hdr.freeTop - 1) = 0xfffffff
	require.ErrorIs(t, tbl.Add(key16(2), 2), ErrCorrupt, "a free list entry out of range")
	require.Equal(t, uint64(0), tbl.hdr.lock, "the lock is released after an error")
}

func TestMemSize(t *testing.T) {
	size, err := MemSize(Config{Name: "x", KeyLen: 16, Entries: 1024})
	require.NoError(t, err)
	// 160 buckets needed for 1280 entries -> 256 buckets of 64 bytes, 1025 slots
	// of 32 bytes, a free list of 1024 uint32.
	require.Equal(t, uint64(256+256*64+1025*32+32+4096), size)
	_, err = MemSize(Config{Name: "x", KeyLen: 0, Entries: 1})
	require.ErrorContains(t, err, "key length 0 is out of range")
}

// TestOnlyRemovalsBumpTheChangeCounter pins the rule lock-free readers rely
// on: taking a key out of a place (delete, cuckoo move, reset) moves the
// counter before that place or key slot can be reused; adding a key into
// an empty entry or updating a value, single stores, do not.
func TestOnlyRemovalsBumpTheChangeCounter(t *testing.T) {
	tbl := makeTable(t, Config{Name: "chg", KeyLen: 16, Entries: 256})
	changes := func() uint64 { return tbl.hdr.changes }
	require.NoError(t, tbl.Add(key16(1), 1))
	require.NoError(t, tbl.Add(key16(1), 2))
	require.Equal(t, uint64(0), changes(), "an add into an empty entry and an update")
	require.NoError(t, tbl.Delete(key16(1)))
	require.Equal(t, uint64(1), changes(), "a delete")
	// Fill bucket x with keys whose other bucket is not hx's, then add 16
	// keys of hash hx: once x and hx's other bucket are full, the first
	// keys must move out of x.
	const x = 4
	hx := hashFor(t, tbl, 1, x, func(uint64) bool { return true })
	_, sigX := tbl.place(hx)
	hOther := hashFor(t, tbl, hx+1, x, func(sec uint64) bool { return sec != tbl.alt(x, sigX) })
	for i := 0; i < BucketEntries; i++ {
		require.NoError(t, tbl.AddWithHash(key16(100+i), hOther, 1))
	}
	require.Equal(t, uint64(1), changes(), "adds into bucket x and its partner")
	for i := 0; i < 2*BucketEntries; i++ {
		require.NoError(t, tbl.AddWithHash(key16(200+i), hx, 1))
	}
	require.Greater(t, changes(), uint64(1), "adds that needed cuckoo moves")
	before := changes()
	tbl.Reset()
	require.Greater(t, changes(), before, "a reset")
}
