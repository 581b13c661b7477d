package ring

import (
	"fmt"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

func TestHeaderLayout(t *testing.T) {
	var h header
	for _, c := range []struct {
		field     string
		got, want uintptr
	}{
		{"magic", unsafe.Offsetof(h.magic), 0},
		{"version", unsafe.Offsetof(h.version), 4},
		{"name", unsafe.Offsetof(h.name), 8},
		{"flags", unsafe.Offsetof(h.flags), 40},
		{"size", unsafe.Offsetof(h.size), 44},
		{"mask", unsafe.Offsetof(h.mask), 48},
		{"capacity", unsafe.Offsetof(h.capacity), 52},
		{"prod", unsafe.Offsetof(h.prod), 2 * cacheLine},
		{"prod.head", unsafe.Offsetof(h.prod) + unsafe.Offsetof(h.prod.head), 2 * cacheLine},
		{"prod.tail", unsafe.Offsetof(h.prod) + unsafe.Offsetof(h.prod.tail), 2*cacheLine + 4},
		{"cons", unsafe.Offsetof(h.cons), 4 * cacheLine},
		{"cons.head", unsafe.Offsetof(h.cons) + unsafe.Offsetof(h.cons.head), 4 * cacheLine},
		{"cons.tail", unsafe.Offsetof(h.cons) + unsafe.Offsetof(h.cons.tail), 4*cacheLine + 4},
		{"sizeof(header) = slot 0", unsafe.Sizeof(h), 6 * cacheLine},
		{"sizeof(name)", unsafe.Sizeof(h.name), 32},
		{"sizeof(headTail)", unsafe.Sizeof(h.prod), 8},
		{"alignof(header)", unsafe.Alignof(h), 4},
	} {
		require.Equal(t, c.want, c.got, "%s: want %d, got %d", c.field, c.want, c.got)
	}
	require.Equal(t, uint64(6*cacheLine), headerSize)
}

func TestMemSize(t *testing.T) {
	for _, c := range []struct {
		count uint32
		flags Flags
		want  uint64
	}{
		{2, 0, headerSize + 64},
		{1024, 0, headerSize + 1024*8},
		{1, ExactSize, headerSize + 64},
		{1000, ExactSize, headerSize + 1024*8},
		{1024, ExactSize, headerSize + 2048*8},
		{1<<30 - 1, ExactSize, headerSize + 1<<30*8},
		{1 << 30, SPEnq | SCDeq, headerSize + 1<<30*8},
	} {
		got, err := MemSize(c.count, c.flags)
		require.NoError(t, err, "MemSize(%d, %v)", c.count, c.flags)
		require.Equal(t, c.want, got, "MemSize(%d, %v)", c.count, c.flags)
		require.Zero(t, got%cacheLine, "MemSize(%d, %v) = %d is a whole number of cache lines", c.count, c.flags, got)
	}
}

func TestBadCountsAndFlagsAreErrorsNamingTheRule(t *testing.T) {
	for _, c := range []struct {
		count uint32
		flags Flags
		want  []string
	}{
		{0, 0, []string{"count 0", "power of two >= 2"}},
		{1, 0, []string{"count 1", "power of two >= 2"}},
		{3, 0, []string{"count 3", "power of two >= 2", "ExactSize"}},
		{1000, SPEnq, []string{"count 1000", "power of two"}},
		{1<<31 - 1, 0, []string{"count 2147483647", "power of two"}},
		{1 << 31, 0, []string{"count 2147483648", "at most 2147483647"}},
		{1<<32 - 1, ExactSize, []string{"count 4294967295", "at most 2147483647"}},
		{0, ExactSize, []string{"count 0", "at least 1"}},
		{1 << 30, ExactSize, []string{"count 1073741824", "2147483648 slots", "largest ring"}},
		{1<<31 - 1, ExactSize, []string{"count 2147483647", "largest ring"}},
		{16, 1 << 7, []string{"flags 0x80", "unknown bits 0x80"}},
	} {
		_, err := MemSize(c.count, c.flags)
		require.Error(t, err, "MemSize(%d, %v) must fail", c.count, c.flags)
		for _, w := range c.want {
			require.Contains(t, err.Error(), w, "MemSize(%d, %v)", c.count, c.flags)
		}
		mem := mapAnon(t, 4096)
		_, err = InitAt(unsafe.Pointer(&mem[0]), 4096, "bad", c.count, c.flags)
		require.Error(t, err, "InitAt(count %d, %v) must fail", c.count, c.flags)
		require.Contains(t, err.Error(), c.want[0])
	}
}

func TestCapacityIsCountMinusOne(t *testing.T) {
	r := mapRing(t, "cap", 16, 0)
	require.Equal(t, uint32(15), r.Capacity())
	for i := range 15 {
		require.True(t, r.Enqueue(uint64(i)), "entry %d of 15 fits", i)
	}
	require.False(t, r.Enqueue(99), "a 16th entry does not fit")
	require.Equal(t, uint32(15), r.Count())
	require.Equal(t, uint32(0), r.FreeCount())
	require.True(t, r.Full())
}

func TestExactSizeCapacityIsCount(t *testing.T) {
	for _, count := range []uint32{1, 2, 3, 4, 5, 7, 8, 100, 1000, 1024} {
		r := mapRing(t, "exact", count, ExactSize|SPEnq|SCDeq)
		require.Equal(t, count, r.Capacity(), "ExactSize ring of %d", count)
		require.Greater(t, r.size, count, "storage is larger than the capacity")
		objs := make([]uint64, count)
		for i := range objs {
			objs[i] = uint64(i) * 3
		}
		// Twice, so that the second fill wraps.
		for round := range 2 {
			require.Equal(t, count, r.EnqueueBulk(objs), "round %d: a bulk of exactly the capacity fits", round)
			require.False(t, r.Enqueue(1), "round %d: one more does not", round)
			require.Equal(t, uint32(0), r.EnqueueBurst([]uint64{1}), "round %d", round)
			got := make([]uint64, count+1)
			require.Equal(t, count, r.DequeueBurst(got), "round %d", round)
			require.Equal(t, objs, got[:count], "round %d", round)
			require.Zero(t, r.DequeueBurst(got), "round %d: empty again", round)
		}
	}
}

// modes enumerates every enqueue and dequeue function, explicit and default,
// for tables.
type enqFunc struct {
	name  string
	flags Flags
	bulk  func(*Ring, []uint64) uint32
	burst func(*Ring, []uint64) uint32
	one   func(*Ring, uint64) bool
}

type deqFunc struct {
	name  string
	flags Flags
	bulk  func(*Ring, []uint64) uint32
	burst func(*Ring, []uint64) uint32
	one   func(*Ring) (uint64, bool)
}

var enqFuncs = []enqFunc{
	{"SP", 0, (*Ring).SPEnqueueBulk, (*Ring).SPEnqueueBurst, (*Ring).SPEnqueue},
	{"MP", 0, (*Ring).MPEnqueueBulk, (*Ring).MPEnqueueBurst, (*Ring).MPEnqueue},
	{"default-SP", SPEnq, (*Ring).EnqueueBulk, (*Ring).EnqueueBurst, (*Ring).Enqueue},
	{"default-MP", 0, (*Ring).EnqueueBulk, (*Ring).EnqueueBurst, (*Ring).Enqueue},
}

var deqFuncs = []deqFunc{
	{"SC", 0, (*Ring).SCDequeueBulk, (*Ring).SCDequeueBurst, (*Ring).SCDequeue},
	{"MC", 0, (*Ring).MCDequeueBulk, (*Ring).MCDequeueBurst, (*Ring).MCDequeue},
	{"default-SC", SCDeq, (*Ring).DequeueBulk, (*Ring).DequeueBurst, (*Ring).Dequeue},
	{"default-MC", 0, (*Ring).DequeueBulk, (*Ring).DequeueBurst, (*Ring).Dequeue},
}

func forEachMode(t *testing.T, f func(t *testing.T, e enqFunc, d deqFunc)) {
	for _, e := range enqFuncs {
		for _, d := range deqFuncs {
			t.Run(e.name+"/"+d.name, func(t *testing.T) { f(t, e, d) })
		}
	}
}

func seq(from, n int) []uint64 {
	s := make([]uint64, n)
	for i := range s {
		s[i] = uint64(from + i)
	}
	return s
}

func TestBulkIsAllOrNothing(t *testing.T) {
	forEachMode(t, func(t *testing.T, e enqFunc, d deqFunc) {
		r := mapRing(t, "bulk", 8, e.flags|d.flags) // capacity 7
		require.Equal(t, uint32(5), e.bulk(r, seq(0, 5)))
		require.Equal(t, uint32(0), e.bulk(r, seq(5, 3)), "3 more do not fit in the 2 free slots: none is enqueued")
		require.Equal(t, uint32(5), r.Count(), "the refused bulk left nothing behind")
		require.Equal(t, uint32(2), e.bulk(r, seq(5, 2)))
		require.Equal(t, uint32(0), e.bulk(r, seq(7, 1)), "full")

		got := make([]uint64, 8)
		require.Equal(t, uint32(0), d.bulk(r, got), "8 are not there: none is dequeued")
		require.Equal(t, uint32(7), r.Count())
		require.Equal(t, make([]uint64, 8), got, "a refused bulk writes nothing")
		require.Equal(t, uint32(4), d.bulk(r, got[:4]))
		require.Equal(t, seq(0, 4), got[:4])
		require.Equal(t, uint32(0), d.bulk(r, got[:4]), "only 3 left")
		require.Equal(t, uint32(3), d.bulk(r, got[:3]))
		require.Equal(t, seq(4, 3), got[:3])
		require.Equal(t, uint32(0), r.Count())
	})
}

func TestBurstMovesAsManyAsPossible(t *testing.T) {
	forEachMode(t, func(t *testing.T, e enqFunc, d deqFunc) {
		r := mapRing(t, "burst", 8, e.flags|d.flags) // capacity 7
		require.Equal(t, uint32(5), e.burst(r, seq(0, 5)))
		require.Equal(t, uint32(2), e.burst(r, seq(5, 4)), "only 2 of 4 fit")
		require.Equal(t, uint32(0), e.burst(r, seq(9, 4)), "full")
		require.Equal(t, uint32(7), r.Count())

		got := make([]uint64, 5)
		require.Equal(t, uint32(5), d.burst(r, got))
		require.Equal(t, seq(0, 5), got)
		require.Equal(t, uint32(2), d.burst(r, got), "only 2 left")
		require.Equal(t, seq(5, 2), got[:2])
		require.Equal(t, uint32(0), d.burst(r, got), "empty")
	})
}

func TestSingleEntryOperations(t *testing.T) {
	forEachMode(t, func(t *testing.T, e enqFunc, d deqFunc) {
		r := mapRing(t, "one", 4, e.flags|d.flags) // capacity 3
		_, ok := d.one(r)
		require.False(t, ok, "empty ring")
		for i := range 3 {
			require.True(t, e.one(r, uint64(100+i)))
		}
		require.False(t, e.one(r, 103), "full ring")
		for i := range 3 {
			v, ok := d.one(r)
			require.True(t, ok)
			require.Equal(t, uint64(100+i), v)
		}
		_, ok = d.one(r)
		require.False(t, ok, "empty again")
	})
}

func TestEmptySlicesMoveNothing(t *testing.T) {
	forEachMode(t, func(t *testing.T, e enqFunc, d deqFunc) {
		r := mapRing(t, "empty", 4, e.flags|d.flags)
		for _, s := range [][]uint64{nil, {}} {
			require.Zero(t, e.bulk(r, s))
			require.Zero(t, e.burst(r, s))
			require.Zero(t, d.bulk(r, s))
			require.Zero(t, d.burst(r, s))
		}
		require.Zero(t, r.hdr.prod.head, "no slot was claimed")
		require.True(t, e.one(r, 1))
		for _, s := range [][]uint64{nil, {}} {
			require.Zero(t, d.bulk(r, s))
			require.Zero(t, d.burst(r, s))
		}
		require.Equal(t, uint32(1), r.Count())
	})
}

func TestOversizedSlicesNeverOverrun(t *testing.T) {
	forEachMode(t, func(t *testing.T, e enqFunc, d deqFunc) {
		r := mapRing(t, "big", 8, e.flags|d.flags)
		big := seq(0, 100)
		require.Zero(t, e.bulk(r, big), "a bulk larger than the capacity never fits")
		require.Equal(t, uint32(7), e.burst(r, big))
		got := make([]uint64, 100)
		require.Zero(t, d.bulk(r, got))
		require.Equal(t, uint32(7), d.burst(r, got))
		require.Equal(t, seq(0, 7), got[:7])
	})
}

func TestCountFreeCountCapacity(t *testing.T) {
	r := mapRing(t, "count", 64, 0)
	require.Equal(t, uint32(63), r.Capacity())
	require.True(t, r.Empty())
	total := 0
	for _, n := range []int{10, 20, 33} {
		require.Equal(t, uint32(n), r.EnqueueBulk(seq(total, n)))
		total += n
		require.Equal(t, uint32(total), r.Count())
		require.Equal(t, uint32(63-total), r.FreeCount())
	}
	require.True(t, r.Full())
	got := make([]uint64, 50)
	require.Equal(t, uint32(50), r.DequeueBulk(got))
	require.Equal(t, uint32(13), r.Count())
	require.Equal(t, uint32(50), r.FreeCount())
}

// TestWrapAroundKeepsOrder drives the indices round a small ring many
// times, with every bulk size, so that every split of a copy at the end of
// the slots happens, and checks FIFO order throughout.
func TestWrapAroundKeepsOrder(t *testing.T) {
	forEachMode(t, func(t *testing.T, e enqFunc, d deqFunc) {
		r := mapRing(t, "wrap", 16, e.flags|d.flags)
		next, want := 0, 0
		buf := make([]uint64, 16)
		for iter := range 3000 {
			n := 1 + iter%15
			switch iter % 3 {
			case 0:
				if e.bulk(r, seq(next, n)) == uint32(n) {
					next += n
				}
			case 1:
				next += int(e.burst(r, seq(next, n)))
			default:
				if e.one(r, uint64(next)) {
					next++
				}
			}
			m := 1 + (iter*7)%15
			var got uint32
			if iter%2 == 0 {
				got = d.burst(r, buf[:m])
			} else {
				got = d.bulk(r, buf[:m])
			}
			require.Equal(t, seq(want, int(got)), buf[:got], "iteration %d", iter)
			want += int(got)
			require.Equal(t, uint32(next-want), r.Count(), "iteration %d", iter)
		}
		require.Greater(t, want, 16*100, "the indices went round the ring many times")
	})
}

func TestIndicesWrapAt32Bits(t *testing.T) {
	r := mapRing(t, "u32", 8, 0)
	const start = 1<<32 - 5 // the 32-bit indices overflow a few entries in
	r.hdr.prod.head, r.hdr.prod.tail = start, start
	r.hdr.cons.head, r.hdr.cons.tail = start, start
	got := make([]uint64, 7)
	for i := range 10 {
		require.Equal(t, uint32(7), r.MPEnqueueBulk(seq(i*7, 7)), "round %d", i)
		require.Equal(t, uint32(7), r.Count())
		require.Zero(t, r.SPEnqueueBurst(seq(0, 1)), "full")
		require.Equal(t, uint32(7), r.MCDequeueBulk(got), "round %d", i)
		require.Equal(t, seq(i*7, 7), got, "round %d", i)
	}
}

func TestCorruptIndicesNeverWriteOutsideTheSlots(t *testing.T) {
	mem := mapAnon(t, 2*4096)
	const count = 8
	size, err := MemSize(count, 0)
	require.NoError(t, err)
	guard := mem[size : size+64]
	for i := range guard {
		guard[i] = 0xa5
	}
	r, err := InitAt(unsafe.Pointer(&mem[0]), size, "corrupt", count, 0)
	require.NoError(t, err)
	// A consumer tail far ahead of the producer head makes the free space
	// computed from the indices huge.
	r.hdr.cons.tail = 1 << 31
	r.hdr.prod.tail = 1 << 30
	forEachMode(t, func(t *testing.T, e enqFunc, d deqFunc) {
		big := seq(0, 1000)
		e.bulk(r, big)
		e.burst(r, big)
		e.one(r, 1)
		d.bulk(r, big)
		d.burst(r, big)
		d.one(r)
	})
	for i, b := range guard {
		require.Equal(t, byte(0xa5), b, "byte %d after the slots was overwritten", i)
	}
}

func TestFlagsString(t *testing.T) {
	require.Equal(t, "0", Flags(0).String())
	require.Equal(t, "SPEnq|SCDeq|ExactSize", (SPEnq | SCDeq | ExactSize).String())
	require.Equal(t, "SCDeq|0x40", (SCDeq | 0x40).String())
}

func TestInitAtRefusesBadMemoryAndNames(t *testing.T) {
	mem := mapAnon(t, 4096)
	p := unsafe.Pointer(&mem[0])
	for _, c := range []struct {
		p    unsafe.Pointer
		size uint64
		name string
		want string
	}{
		{nil, 4096, "r", "nil"},
		{unsafe.Add(p, 8), 4000, "r", "not aligned to 64"},
		{p, 4096, "", "name is empty"},
		{p, 4096, strings.Repeat("n", 32), "at most 31"},
		{p, 4096, "a\x00b", "NUL"},
		{p, headerSize + 8*8 - 1, "small", "too small"},
	} {
		_, err := InitAt(c.p, c.size, c.name, 8, 0)
		require.Error(t, err, "InitAt(%p, %d, %q)", c.p, c.size, c.name)
		require.Contains(t, err.Error(), c.want)
	}
	r, err := InitAt(p, headerSize+8*8, strings.Repeat("n", 31), 8, 0)
	require.NoError(t, err, "a 31-byte name and exactly MemSize bytes are fine")
	require.Equal(t, strings.Repeat("n", 31), r.Name())
}

func TestAttachAtSeesTheSameRing(t *testing.T) {
	r := mapRing(t, "twin", 32, SPEnq|ExactSize)
	other, err := AttachAt(unsafe.Pointer(r.hdr), headerSize+32*8)
	require.Error(t, err, "ExactSize 32 needs 64 slots: %d bytes is truncated", headerSize+32*8)
	other, err = AttachAt(unsafe.Pointer(r.hdr), headerSize+64*8)
	require.NoError(t, err)
	require.Equal(t, "twin", other.Name())
	require.Equal(t, uint32(32), other.Capacity())
	require.Equal(t, SPEnq|ExactSize, other.Flags())
	require.Equal(t, uint32(3), r.EnqueueBulk([]uint64{7, 8, 9}))
	got := make([]uint64, 3)
	require.Equal(t, uint32(3), other.DequeueBulk(got))
	require.Equal(t, []uint64{7, 8, 9}, got)
}

func TestAttachAtRejectsCorruptHeaders(t *testing.T) {
	const count = 16
	size, err := MemSize(count, 0)
	require.NoError(t, err)
	for _, c := range []struct {
		name    string
		corrupt func(h *header)
		memLen  uint64
		want    []string
	}{
		{"zero memory", func(h *header) { *h = header{} }, size, []string{"magic is 0x0"}},
		{"magic", func(h *header) { h.magic = 0xdeadbeef }, size, []string{"magic is 0xdeadbeef"}},
		{"version", func(h *header) { h.version = 9 }, size, []string{"layout version is 9"}},
		{"unterminated name", func(h *header) {
			for i := range h.name {
				h.name[i] = 'x'
			}
		}, size, []string{"name", "NUL-terminated"}},
		{"empty name", func(h *header) { h.name = [32]byte{} }, size, []string{"name is empty"}},
		{"flags", func(h *header) { h.flags = 0x100 }, size, []string{"flags 0x100", "unknown bits"}},
		{"size not a power of two", func(h *header) { h.size = 12 }, size, []string{"size 12", "power of two"}},
		{"size zero", func(h *header) { h.size = 0 }, size, []string{"size 0"}},
		{"size one", func(h *header) { h.size = 1 }, size, []string{"size 1 "}},
		{"size huge", func(h *header) { h.size = 1 << 31 }, size, []string{"size 2147483648"}},
		{"mask", func(h *header) { h.mask = 0xff }, size, []string{"mask 0xff", "size 16"}},
		{"capacity", func(h *header) { h.capacity = 16 }, size, []string{"capacity 16", "size 16"}},
		{"capacity of ExactSize", func(h *header) { h.flags = uint32(ExactSize); h.capacity = 3 }, size, []string{"capacity 3", "ExactSize"}},
		{"capacity zero of ExactSize", func(h *header) { h.flags = uint32(ExactSize); h.capacity = 0 }, size, []string{"capacity 0", "ExactSize"}},
		{"truncated slots", func(h *header) {}, size - 8, []string{"size 16", "truncated"}},
		{"size beyond memory", func(h *header) { h.size, h.mask, h.capacity = 1<<20, 1<<20-1, 1<<20-1 }, size, []string{"size 1048576", "truncated"}},
		{"shorter than a header", func(h *header) {}, headerSize - 1, []string{"shorter than a ring header"}},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := mapRing(t, "victim", count, 0)
			c.corrupt(r.hdr)
			_, err := AttachAt(unsafe.Pointer(r.hdr), c.memLen)
			require.Error(t, err)
			for _, w := range c.want {
				require.Contains(t, err.Error(), w)
			}
		})
	}
	mem := mapAnon(t, 4096)
	_, err = AttachAt(nil, 4096)
	require.ErrorContains(t, err, "nil")
	_, err = AttachAt(unsafe.Pointer(&mem[4]), 4000)
	require.ErrorContains(t, err, "not aligned")
}

func TestZeroAllocations(t *testing.T) {
	r := mapRing(t, "alloc", 64, 0)
	objs := seq(0, 8)
	check := func(name string, f func()) {
		t.Helper()
		if n := testing.AllocsPerRun(100, f); n != 0 {
			t.Errorf("%s: want 0 allocations per run, got %v", name, n)
		}
	}
	for _, e := range enqFuncs {
		for _, d := range deqFuncs {
			check(fmt.Sprintf("%s/%s bulk", e.name, d.name), func() { e.bulk(r, objs); d.bulk(r, objs) })
			check(fmt.Sprintf("%s/%s burst", e.name, d.name), func() { e.burst(r, objs); d.burst(r, objs) })
			check(fmt.Sprintf("%s/%s one", e.name, d.name), func() { e.one(r, 1); d.one(r) })
		}
	}
	check("Count/FreeCount/Capacity", func() { _, _, _ = r.Count(), r.FreeCount(), r.Capacity() })
}
