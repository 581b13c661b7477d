package hugemem

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/internal/proclive"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

var groupSeq atomic.Int64

// testOptions gives each test a group of its own.
func testOptions(t *testing.T, noHuge bool) Options {
	return Options{
		Prefix:      fmt.Sprintf("t%d-%d", os.Getpid(), groupSeq.Add(1)),
		NoHuge:      noHuge,
		Limit:       64 << 20,
		SegmentSize: 4 << 20,
		RuntimeDir:  t.TempDir(),
	}
}

func newMemory(t *testing.T, o Options) *Memory {
	t.Helper()
	m, err := Create(o)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestSharedLayout(t *testing.T) {
	require.Equal(t, uintptr(48), unsafe.Offsetof(sharedConfig{}.Creator), "livePID reads Creator at this offset")
	require.Equal(t, uintptr(40), unsafe.Sizeof(segDesc{}))
	require.Equal(t, uintptr(64), unsafe.Sizeof(zoneDesc{}))
	require.Zero(t, unsafe.Offsetof(sharedConfig{}.Segs)%8)
	require.Zero(t, unsafe.Offsetof(sharedConfig{}.Zones)%8)
	require.Equal(t, uint64(64+256+maxSegments*40+maxZones*64+maxPages*8), configSize)
}

func TestReserveLookupFree(t *testing.T) {
	m := newMemory(t, testOptions(t, true))
	z, err := m.Reserve("zone-a", 1000, 4096)
	require.NoError(t, err)
	require.Zero(t, z.Off%4096, "alignment")
	require.Equal(t, uint64(1024), z.Len, "size rounds up to a cache line")
	for _, b := range z.Bytes() {
		require.Zero(t, b)
	}
	copy(z.Bytes(), "hello")

	got, err := m.Lookup("zone-a")
	require.NoError(t, err)
	require.Equal(t, z.Off, got.Off)
	require.Equal(t, "hello", string(got.Bytes()[:5]))

	require.NoError(t, m.Free("zone-a"))
	_, err = m.Lookup("zone-a")
	require.ErrorIs(t, err, ErrNotFound)
	require.ErrorIs(t, m.Free("zone-a"), ErrNotFound)
}

func TestReserveRefusesBadRequests(t *testing.T) {
	m := newMemory(t, testOptions(t, true))
	_, err := m.Reserve("dup", 64, 0)
	require.NoError(t, err)
	_, err = m.Reserve("dup", 64, 0)
	require.ErrorIs(t, err, ErrExists)

	for _, c := range []struct {
		name        string
		size, align uint64
		want        string
	}{
		{"", 64, 0, "must be 1 to 31 bytes"},
		{strings.Repeat("x", 32), 64, 0, "must be 1 to 31 bytes"},
		{"nul\x00", 64, 0, "contains NUL"},
		{"align", 64, 96, "alignment 96 is not a power of two"},
		{"zero", 0, 0, "size 0 is out of range"},
	} {
		_, err := m.Reserve(c.name, c.size, c.align)
		require.ErrorContains(t, err, c.want, "Reserve(%q, %d, %d)", c.name, c.size, c.align)
	}
}

func TestReserveReusesFreedSpaceFirstFit(t *testing.T) {
	m := newMemory(t, testOptions(t, true))
	a, _ := m.Reserve("a", 4096, 0)
	_, err := m.Reserve("b", 4096, 0)
	require.NoError(t, err)
	require.NoError(t, m.Free("a"))
	c, err := m.Reserve("c", 2048, 0)
	require.NoError(t, err)
	require.Equal(t, a.Off, c.Off, "the freed gap at the start is used first")
}

func TestReserveGrowsSegmentsUpToTheLimit(t *testing.T) {
	o := testOptions(t, true)
	o.Limit, o.SegmentSize = 16<<20, 4<<20
	m := newMemory(t, o)
	_, err := m.Reserve("big", 6<<20, 0)
	require.NoError(t, err, "a zone larger than a segment gets a segment of its own")
	require.Len(t, m.Segments(), 2)
	_, err = m.Reserve("too-big", 12<<20, 0)
	require.ErrorIs(t, err, ErrNoSpace)
	require.ErrorContains(t, err, "over its limit")
}

func TestFullZoneTableIsAnErrorAndOverwritesNothing(t *testing.T) {
	m := newMemory(t, testOptions(t, true))
	for i := range maxZones {
		z, err := m.Reserve(fmt.Sprintf("z%d", i), 64, 0)
		require.NoError(t, err)
		z.Bytes()[0] = byte(i)
	}
	_, err := m.Reserve("one-more", 64, 0)
	require.ErrorIs(t, err, ErrNoSpace)
	require.ErrorContains(t, err, "memzone slots are taken")
	for i := range maxZones {
		z, err := m.Lookup(fmt.Sprintf("z%d", i))
		require.NoError(t, err)
		require.Equal(t, byte(i), z.Bytes()[0])
	}
}

func TestAttachSeesTheSameBytesAtADifferentAddress(t *testing.T) {
	o := testOptions(t, true)
	m := newMemory(t, o)
	z, err := m.Reserve("shared", 4096, 0)
	require.NoError(t, err)

	other, err := Attach(o)
	require.NoError(t, err)
	defer other.Close()
	oz, err := other.Lookup("shared")
	require.NoError(t, err)
	require.NotEqual(t, z.Ptr(), oz.Ptr(), "the two mappings are at different addresses")
	require.Equal(t, z.Off, oz.Off, "the group offset is the same")

	*(*uint64)(z.Ptr()) = 0xfeedface
	require.Equal(t, uint64(0xfeedface), *(*uint64)(oz.Ptr()))

	// A segment added after attaching becomes visible on the next lookup.
	_, err = m.Reserve("later", 6<<20, 0)
	require.NoError(t, err)
	lz, err := other.Lookup("later")
	require.NoError(t, err)
	*(*uint32)(lz.Ptr()) = 7
	require.Equal(t, uint32(7), *(*uint32)(m.Ptr(lz.Off)))
}

func TestCreateRefusesALiveGroup(t *testing.T) {
	o := testOptions(t, true)
	newMemory(t, o)
	_, err := Create(o)
	require.ErrorIs(t, err, ErrInUse)
	require.ErrorContains(t, err, fmt.Sprintf("pid %d created it and is alive", os.Getpid()))
}

func TestAttachRefusesCorruptOrForeignConfig(t *testing.T) {
	o := testOptions(t, true)
	m := newMemory(t, o)
	cases := []struct {
		name   string
		breakf func()
		want   string
	}{
		{"magic", func() { m.cfg.Magic = 1 }, "magic is 0x1"},
		{"version", func() { m.cfg.Version = 99 }, "layout version is 99"},
		{"segments", func() { m.cfg.NSegs = maxSegments + 1 }, "segment count 65"},
		{"segment descriptor", func() {
			m.cfg.NSegs = 2
			m.cfg.Segs[1] = segDesc{Off: 1 << 50, Len: 1, PageSize: 4096, Kind: kindMemfd}
		}, "segment 1 descriptor is corrupted"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			saved := *m.cfg
			defer func() { *m.cfg = saved }()
			c.breakf()
			_, err := Attach(o)
			require.ErrorContains(t, err, c.want)
		})
	}
	t.Run("truncated", func(t *testing.T) {
		require.NoError(t, os.Truncate(filepath.Join(o.RuntimeDir, "config"), 100))
		_, err := Attach(o)
		require.ErrorContains(t, err, "is 100 bytes")
	})
}

func TestAttachWithoutGroupIsNotFound(t *testing.T) {
	o := testOptions(t, true)
	_, err := Attach(o)
	require.ErrorIs(t, err, ErrNoGroup)
	require.ErrorContains(t, err, "is its primary running?")
	entries, _ := os.ReadDir(o.RuntimeDir)
	require.Empty(t, entries, "an attacher creates nothing")

	m := newMemory(t, o)
	m.Close()
	_, err = Attach(o)
	require.ErrorIs(t, err, ErrNoGroup, "after the creator closed")
}

func TestMemfdMemoryRefusesDMA(t *testing.T) {
	m := newMemory(t, testOptions(t, true))
	z, _ := m.Reserve("dma", 64, 0)
	require.False(t, m.HugePages())
	_, err := m.IOVA(z.Off)
	require.ErrorContains(t, err, "DMA is refused")
}

func TestOptionsOutOfRange(t *testing.T) {
	_, err := Create(Options{Prefix: "a/b"})
	require.ErrorContains(t, err, "must not contain '/'")
	_, err = Create(Options{Prefix: "ok", Limit: -5, RuntimeDir: t.TempDir()})
	require.ErrorContains(t, err, "memory limit -5 bytes is out of range")
}

func requireHugepages(t *testing.T) {
	t.Helper()
	testenv.RequireRoot(t)
	if !isHugetlbfs("/dev/hugepages") && !hasHugetlbfsMount() {
		testenv.Missing(t, "a hugetlbfs mount (scripts/setup.sh mounts one)")
	}
	if freeHugepages() == "0" || freeHugepages() == "unknown" {
		testenv.Missing(t, "free hugepages (HugePages_Free is %s; scripts/setup.sh reserves them)", freeHugepages())
	}
}

func hasHugetlbfsMount() bool {
	b, _ := os.ReadFile("/proc/mounts")
	return strings.Contains(string(b), " hugetlbfs ")
}

func TestHugepageSegmentsAreFilesWithVAModeIOVAs(t *testing.T) {
	requireHugepages(t)
	o := testOptions(t, false)
	m := newMemory(t, o)
	require.True(t, m.HugePages())
	segs := m.Segments()
	require.Len(t, segs, 1)
	require.Equal(t, uint64(2<<20), segs[0].PageSize)
	require.True(t, strings.HasSuffix(segs[0].Path, o.Prefix+"map_0"), segs[0].Path)
	_, err := os.Stat(segs[0].Path)
	require.NoError(t, err)

	z, err := m.Reserve("dma", 4096, 0)
	require.NoError(t, err)
	iova, err := m.IOVA(z.Off)
	require.NoError(t, err)
	require.Equal(t, IOVABase+z.Off, iova)

	path := segs[0].Path
	require.NoError(t, m.Close())
	_, err = os.Stat(path)
	require.ErrorIs(t, err, os.ErrNotExist, "the creator removes its segment files on Close")
}

func TestPAModeReadsPhysicalAddresses(t *testing.T) {
	requireHugepages(t)
	o := testOptions(t, false)
	o.IOVAMode = IOVAModePA
	m := newMemory(t, o)
	z, err := m.Reserve("dma", 4096, 0)
	require.NoError(t, err)
	iova, err := m.IOVA(z.Off + 100)
	require.NoError(t, err)
	require.NotZero(t, iova)
	require.Equal(t, uint64(100), iova%4096-(z.Off%4096), "offset inside the page is kept")
}

func TestCreateRemovesFilesADeadGroupLeft(t *testing.T) {
	requireHugepages(t)
	o := testOptions(t, false)
	m := newMemory(t, o)
	stale := filepath.Join(filepath.Dir(m.Segments()[0].Path), o.Prefix+"map_7")
	f, err := os.Create(stale)
	require.NoError(t, err)
	f.Close()
	require.NoError(t, m.Close())
	require.FileExists(t, stale)
	m2 := newMemory(t, o)
	require.NoFileExists(t, stale)
	_ = m2
}

// TestSecondProcessAttaches runs this test binary again as a separate
// process that attaches to the group, reads what we wrote and answers.
func TestSecondProcessAttaches(t *testing.T) {
	for _, huge := range []bool{false, true} {
		t.Run(fmt.Sprintf("hugepages=%v", huge), func(t *testing.T) {
			if huge {
				requireHugepages(t)
			}
			o := testOptions(t, !huge)
			m := newMemory(t, o)
			z, err := m.Reserve("mailbox", 4096, 0)
			require.NoError(t, err)
			copy(z.Bytes(), "ping")

			cmd := testproc.Command(t, testproc.Config{Run: "^TestHelperProcess$",
				Env: []string{"GOPMD_HELPER=attach", "GOPMD_PREFIX=" + o.Prefix, "GOPMD_RUNDIR=" + o.RuntimeDir}})
			out, err := cmd.CombinedOutput()
			require.NoError(t, err, "child: %s", out)
			require.Equal(t, "pong", string(z.Bytes()[:4]), "child output: %s", out)
		})
	}
}

func TestHelperProcess(t *testing.T) {
	if os.Getenv("GOPMD_HELPER") != "attach" {
		t.Skip("helper process only")
	}
	m, err := Attach(Options{Prefix: os.Getenv("GOPMD_PREFIX"), RuntimeDir: os.Getenv("GOPMD_RUNDIR")})
	if err != nil {
		fmt.Println(err)
		os.Exit(1)
	}
	z, err := m.Lookup("mailbox")
	if err != nil || string(z.Bytes()[:4]) != "ping" {
		fmt.Println("lookup:", err)
		os.Exit(1)
	}
	copy(z.Bytes(), "pong")
	m.Close()
	os.Exit(0)
}

func TestNoHugetlbfsFallsBackToMemfd(t *testing.T) {
	o := testOptions(t, false)
	o.HugeDir = t.TempDir() // a directory, but not hugetlbfs
	m := newMemory(t, o)
	require.False(t, m.HugePages(), "memory falls back to memfd")
	_, err := m.Reserve("works", 64, 0)
	require.NoError(t, err)
}

// attach joins o's group as another Memory of this process, as a secondary would.
func attach(t *testing.T, o Options) *Memory {
	t.Helper()
	m, err := Attach(o)
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	return m
}

func TestSyncMapsSegmentsAnotherProcessAdded(t *testing.T) {
	o := testOptions(t, true)
	first := newMemory(t, o)
	before := len(first.Segments())
	second := attach(t, o)
	_, err := second.Reserve("big", uint64(o.SegmentSize)+4096, 0) // needs a new segment
	require.NoError(t, err)
	require.Len(t, second.Segments(), before+1, "the adding Memory lists its new segment")
	require.Len(t, first.Segments(), before, "before Sync, Segments lists only what this Memory mapped")

	require.NoError(t, first.Sync())
	segs := first.Segments()
	require.Len(t, segs, before+1, "after Sync, the other Memory's segment is listed")
	require.Equal(t, second.Segments()[before].Off, segs[before].Off)
}

func TestMemfdSegmentOutlivesTheSecondaryThatAddedIt(t *testing.T) {
	o := testOptions(t, true)
	creator := newMemory(t, o)
	second, err := Attach(o)
	require.NoError(t, err)
	z, err := second.Reserve("big", uint64(o.SegmentSize)+4096, 0)
	require.NoError(t, err)
	copy(z.Bytes(), "kept")
	require.NoError(t, creator.Sync(), "the creator maps the new segment and becomes its owner")
	require.NoError(t, second.Close())

	third := attach(t, o) // must not reach for the closed Memory's fd
	got, err := third.Lookup("big")
	require.NoError(t, err)
	require.Equal(t, "kept", string(got.Bytes()[:4]))
}

func TestCorruptedSegmentCountOrPageIndexIsAnErrorNotAPanic(t *testing.T) {
	o := testOptions(t, true)
	m := newMemory(t, o)
	z, err := m.Reserve("z", 64, 0)
	require.NoError(t, err)

	t.Run("segment count", func(t *testing.T) {
		saved := m.cfg.NSegs
		defer func() { m.cfg.NSegs = saved }()
		m.cfg.NSegs = 1000
		require.NotPanics(t, func() {
			_, err := m.IOVA(z.Off + 1<<40)
			require.ErrorIs(t, err, ErrNotFound)
			m.Contains(z.Off+1<<40, 1)
		})
		err := m.Sync()
		require.ErrorContains(t, err, "1000 segments")
		_, err = m.Reserve("other", 64, 0)
		require.ErrorContains(t, err, "1000 segments")
	})
	t.Run("physical page index", func(t *testing.T) {
		d := &m.cfg.Segs[0]
		saved, savedKind, savedMode := d.FirstPage, d.Kind, m.cfg.IOVAMode
		defer func() { d.FirstPage, d.Kind, m.cfg.IOVAMode = saved, savedKind, savedMode }()
		d.Kind, m.cfg.IOVAMode, d.FirstPage = kindHugetlbfs, uint32(IOVAModePA), maxPages-1
		require.NotPanics(t, func() {
			_, err := m.IOVA(d.Off + 5*d.PageSize)
			require.ErrorContains(t, err, "corrupted")
		})
	})
}

// TestSegmentFilesResistDPDKsHugepageCleanup: DPDK's EAL unlinks every
// "*map_*" file in hugetlbfs it can lock exclusively; our files are locked
// shared while a process of the group has them open.
func TestSegmentFilesResistDPDKsHugepageCleanup(t *testing.T) {
	requireHugepages(t)
	m := newMemory(t, testOptions(t, false))
	path := m.Segments()[0].Path
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	require.ErrorIs(t, unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK,
		"a cleaner must not be able to lock %s exclusively while the group uses it", path)
}

// TestLockOfADeadHolderWhosePidWasReusedIsTakenOver: the lock word names
// its holder by pid and start time, so a live process that got the dead
// holder's pid does not keep the group wedged.
func TestLockOfADeadHolderWhosePidWasReusedIsTakenOver(t *testing.T) {
	m := newMemory(t, testOptions(t, true))
	other, _ := testproc.Sleeper(t)
	// The record a holder with other's pid but an earlier life would leave.
	w, err := proclive.Word(other)
	require.NoError(t, err)
	m.cfg.Lock = w ^ 1

	done := make(chan error, 1)
	go func() {
		_, err := m.Reserve("after-reuse", 64, 0)
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the lock of a dead holder stayed taken because its pid now belongs to a live process")
	}
}
