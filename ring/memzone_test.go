package ring

import (
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/require"
)

// testGroup gives each test a memfd-backed group of its own.
func testGroup(t *testing.T) (*hugemem.Memory, hugemem.Options) {
	t.Helper()
	o := testmem.Options(t, "ring")
	o.Limit, o.SegmentSize = 64<<20, 4<<20
	return testmem.Create(t, o), o
}

func TestCreateThenLookupFromASecondMapping(t *testing.T) {
	m, o := testGroup(t)
	r, err := Create(m, "to-worker", 1024, SPEnq)
	require.NoError(t, err)
	require.Equal(t, "to-worker", r.Name())
	require.Equal(t, uint32(1023), r.Capacity())

	// A second Attach maps the group again, at other addresses: the ring
	// must work through both mappings at once.
	other, err := hugemem.Attach(o)
	require.NoError(t, err)
	defer other.Close()
	l, err := Lookup(other, "to-worker")
	require.NoError(t, err)
	require.NotEqual(t, unsafe.Pointer(r.hdr), unsafe.Pointer(l.hdr), "the two handles map the ring at different addresses")
	require.Equal(t, m.Off(unsafe.Pointer(r.hdr)), other.Off(unsafe.Pointer(l.hdr)), "at the same group offset")
	require.Equal(t, SPEnq, l.Flags())
	require.Equal(t, uint32(1023), l.Capacity())

	got := make([]uint64, 100)
	for round := range 50 { // 5000 entries: the indices wrap several times
		require.Equal(t, uint32(100), r.EnqueueBulk(seq(round*100, 100)))
		require.Equal(t, uint32(100), l.Count(), "the other mapping sees the entries")
		require.Equal(t, uint32(100), l.DequeueBulk(got))
		require.Equal(t, seq(round*100, 100), got)
		require.Zero(t, r.Count(), "and this one sees them go")
	}
	require.True(t, l.MPEnqueue(42))
	v, ok := r.SCDequeue()
	require.True(t, ok)
	require.Equal(t, uint64(42), v)
}

func TestCreateTwiceIsErrExists(t *testing.T) {
	m, _ := testGroup(t)
	_, err := Create(m, "dup", 64, 0)
	require.NoError(t, err)
	_, err = Create(m, "dup", 64, 0)
	require.ErrorIs(t, err, hugemem.ErrExists)
	require.ErrorContains(t, err, `"dup"`)
}

func TestLookupOfAMissingRingIsErrNotFound(t *testing.T) {
	m, _ := testGroup(t)
	_, err := Lookup(m, "nobody")
	require.ErrorIs(t, err, hugemem.ErrNotFound)
	require.ErrorContains(t, err, `"nobody"`)
}

func TestCreateRefusesBadArguments(t *testing.T) {
	m, _ := testGroup(t)
	for _, c := range []struct {
		name  string
		count uint32
		flags Flags
		want  string
	}{
		{"", 64, 0, "name is empty"},
		{"0123456789012345678901234567x", 64, 0, "at most 28"},
		{"zero", 0, 0, "count 0"},
		{"one", 1, 0, "count 1"},
		{"odd", 100, 0, "count 100: must be a power of two"},
		{"huge", 1 << 31, 0, "at most 2147483647"},
		{"flags", 64, 0x10, "unknown bits"},
	} {
		_, err := Create(m, c.name, c.count, c.flags)
		require.Error(t, err, "Create(%q, %d, %v)", c.name, c.count, c.flags)
		require.ErrorContains(t, err, c.want)
	}
	_, err := Create(nil, "x", 64, 0)
	require.ErrorContains(t, err, "memory is nil")
	_, err = Create(m, "0123456789012345678901234567", 64, 0)
	require.NoError(t, err, "a 28-byte name fits the memzone name")
}

func TestLookupRejectsACorruptRing(t *testing.T) {
	m, _ := testGroup(t)
	r, err := Create(m, "bad", 64, 0)
	require.NoError(t, err)
	r.hdr.mask = 7
	_, err = Lookup(m, "bad")
	require.ErrorContains(t, err, "mask 0x7")

	// A memzone of the right name that holds another ring's header.
	z, err := m.Reserve("RG_alias", 4096, 0)
	require.NoError(t, err)
	_, err = InitAt(z.Ptr(), z.Len, "other", 64, 0)
	require.NoError(t, err)
	_, err = Lookup(m, "alias")
	require.ErrorContains(t, err, `holds ring "other"`)

	// A memzone too short for the ring its header describes.
	z, err = m.Reserve("RG_short", 512, 0)
	require.NoError(t, err)
	h := (*header)(z.Ptr())
	*h = header{magic: headerMagic, version: layoutVersion, size: 64, mask: 63, capacity: 63}
	copy(h.name[:], "short")
	_, err = Lookup(m, "short")
	require.ErrorContains(t, err, "truncated")
}

func TestFreeReleasesTheMemzone(t *testing.T) {
	m, _ := testGroup(t)
	r, err := Create(m, "gone", 64, 0)
	require.NoError(t, err)
	require.True(t, r.Enqueue(1))
	require.NoError(t, r.Free())
	_, err = Lookup(m, "gone")
	require.ErrorIs(t, err, hugemem.ErrNotFound)
	require.ErrorContains(t, r.Free(), "already freed")

	// The freed handle refuses everything rather than touch freed memory.
	require.False(t, r.Enqueue(1))
	require.Zero(t, r.EnqueueBurst([]uint64{1, 2}))
	_, ok := r.Dequeue()
	require.False(t, ok)
	require.Zero(t, r.DequeueBurst(make([]uint64, 4)))
	require.Zero(t, r.Count())
	require.Zero(t, r.Capacity())

	_, err = Create(m, "gone", 64, 0)
	require.NoError(t, err, "the name can be used again")

	e := mapRing(t, "embedded", 64, 0)
	require.ErrorContains(t, e.Free(), "InitAt")
}
