package timer

import (
	"io/fs"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/vmtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestHPETInfoIoctlNumberMatchesTheKernelHeader(t *testing.T) {
	// _IOR('h', 0x03, struct hpet_info) with a 24-byte struct on 64-bit Linux.
	if unsafe.Sizeof(uintptr(0)) == 8 {
		assert.Equal(t, uint32(0x80186803), uint32(hpetInfoIoctl))
	}
}

func TestOpenHPETWithoutTheDeviceSaysThereIsNone(t *testing.T) {
	_, err := openHPET(filepath.Join(t.TempDir(), "hpet"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), "the kernel offers no HPET to user space")
}

func TestHPETDecodesCapabilities(t *testing.T) {
	tests := []struct {
		name        string
		caps        uint64
		hz          uint64
		comparators int
		wide        bool
	}{
		// QEMU's HPET: 10 ns period, 3 comparators, 64-bit, legacy routing.
		{"QEMU", 0x0098_9680_8086_a201, 100_000_000, 3, true},
		// An Intel PCH HPET: 69.841279 ns period, 8 comparators, 64-bit.
		{"Intel PCH", 0x0429_b17f_8086_a701, 14_318_180, 8, true},
		// A 32-bit HPET with the minimum 3 comparators.
		{"32-bit", 0x0429_b17f_8086_8201, 14_318_180, 3, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var h HPET
			require.NoError(t, h.decode(tc.caps, 1))
			assert.Equal(t, tc.hz, h.Hz(), "Hz")
			assert.Equal(t, tc.comparators, h.Comparators(), "comparators")
			assert.Equal(t, tc.wide, h.Counter64(), "64-bit counter")
		})
	}
}

func TestHPETRefusesBadRegisters(t *testing.T) {
	var h HPET
	err := h.decode(0x0000_0000_8086_a201, 1)
	assert.ErrorContains(t, err, "HPET counter period 0 fs is invalid")
	err = h.decode(0x05f5_e101_8086_a201, 1)
	assert.ErrorContains(t, err, "HPET counter period 100000001 fs is invalid")
	err = h.decode(0x0098_9680_8086_a201, 2)
	assert.ErrorContains(t, err, "main counter is halted")
}

// fake32 is an HPET whose 32-bit counter is the variable counter.
func fake32(counter *uint32) *HPET {
	h := &HPET{counter: unsafe.Pointer(counter), hz: 100_000_000}
	h.last.Store(uint64(*counter))
	return h
}

func TestHPET32BitCounterIsExtendedAcrossWraps(t *testing.T) {
	counter := uint32(0xffff_0000)
	h := fake32(&counter)
	want := uint64(0xffff_0000)
	// Steps of just under half a wrap: the widest that readers may leave
	// between reads, since the extender reads every eighth of a wrap.
	const step = 1<<31 - 1
	for range 20 {
		require.Equal(t, want, h.Cycles(), "extended counter")
		counter += step
		want += step
	}
	assert.Greater(t, want, uint64(8)<<32, "the test crossed several wraps")
}

func TestHPET32BitCounterNeverGoesBackwardsBetweenReaders(t *testing.T) {
	counter := uint32(0)
	h := fake32(&counter)
	prev := h.Cycles()
	for i := range 1 << 16 {
		counter += 1 << 17 // a wrap every 32768 reads
		got := h.Cycles()
		require.Greater(t, got, prev, "read %d", i)
		require.Equal(t, uint64(1<<17), got-prev, "read %d advanced by", i)
		prev = got
	}
}

func TestHPETCyclesDoesNotAllocate(t *testing.T) {
	counter := uint32(5)
	h := fake32(&counter)
	assert.Zero(t, testing.AllocsPerRun(1000, func() { h.Cycles() }), "allocations per 32-bit read")
	wide := uint64(5)
	h = &HPET{counter: unsafe.Pointer(&wide), wide: true}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { h.Cycles() }), "allocations per 64-bit read")
}

func monotonicNs(t testing.TB) int64 {
	t.Helper()
	var ts unix.Timespec
	require.NoError(t, unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts))
	return ts.Nano()
}

// TestHPETInVM opens the guest's HPET (3 comparators at 100 MHz, the
// kernel keeping 0 and 1) and checks what the kernel and the device say.
func TestHPETInVM(t *testing.T) {
	if !vmtest.InGuest() {
		vmtest.RunInGuest(t, vmtest.Config{HugePages: vmtest.NoHugePages})
		return
	}
	testenv.RequireRoot(t)
	h, err := OpenHPET()
	require.NoError(t, err)
	defer h.Close()
	index, block := h.Comparator()
	t.Logf("HPET: %d Hz (period %d fs), %d comparators, 64-bit counter %v; holding comparator %d of block %d",
		h.Hz(), h.PeriodFs(), h.Comparators(), h.Counter64(), index, block)
	assert.Equal(t, uint64(100_000_000), h.Hz(), "QEMU's HPET frequency")
	assert.Equal(t, 3, h.Comparators(), "QEMU's HPET comparators")
	assert.True(t, h.Counter64(), "QEMU's HPET has a 64-bit counter")
	assert.Equal(t, 2, index, "comparator given to user space (the kernel keeps 0 and 1)")

	_, err = OpenHPET()
	assert.ErrorIs(t, err, ErrHPETBusy, "second open with one comparator free")

	// The counter follows CLOCK_MONOTONIC. Each pair of readings is the
	// tightest of a few brackets: the guest's vCPUs may stall for long.
	pair := func() (cycles uint64, mono int64) {
		best := ^uint64(0)
		for range 8 {
			a := h.Cycles()
			m := monotonicNs(t)
			b := h.Cycles()
			if b-a < best {
				best, cycles, mono = b-a, a+(b-a)/2, m
			}
		}
		return
	}
	c0, m0 := pair()
	time.Sleep(200 * time.Millisecond)
	c1, m1 := pair()
	elapsed := float64(c1-c0) * 1e9 / float64(h.Hz())
	t.Logf("HPET counted %.0f ns while CLOCK_MONOTONIC counted %d ns", elapsed, m1-m0)
	assert.InDelta(t, float64(m1-m0), elapsed, 0.001*float64(m1-m0), "HPET time vs CLOCK_MONOTONIC, within 0.1%%")

	// The 32-bit path, extended, tracks the 64-bit counter: it counts from
	// the upper half the counter had when it started.
	narrow := &HPET{counter: h.counter, hz: h.hz}
	var offset uint64
	for {
		before := h.Cycles()
		narrow.last.Store(uint64(atomic.LoadUint32((*uint32)(h.counter))))
		if after := h.Cycles(); after>>32 == before>>32 {
			offset = before &^ 0xffff_ffff
			break
		}
	}
	for range 1000 {
		w, n, w2 := h.Cycles(), narrow.Cycles(), h.Cycles()
		require.True(t, w <= n+offset && n+offset <= w2, "extended 32-bit read %#x (+%#x) not between 64-bit reads %#x and %#x", n, offset, w, w2)
	}

	// The cost of a read, for the record (TCG emulates each MMIO access).
	const reads = 1000
	start := time.Now()
	for range reads {
		h.Cycles()
	}
	t.Logf("HPET read: %v each in this guest", time.Since(start)/reads)

	// Close frees the comparator for the next open, and a late read is 0.
	require.NoError(t, h.Close())
	assert.Zero(t, h.Cycles(), "Cycles after Close")
	h2, err := OpenHPET()
	require.NoError(t, err, "open after Close")
	index2, _ := h2.Comparator()
	assert.Equal(t, index, index2, "comparator after Close and reopen")
	h2.Close()

	// A child process must not inherit the comparator.
	h3, err := OpenHPET()
	require.NoError(t, err)
	defer h3.Close()
	flags, err := unix.FcntlInt(uintptr(h3.fd), unix.F_GETFD, 0)
	require.NoError(t, err)
	assert.NotZero(t, flags&unix.FD_CLOEXEC, "/dev/hpet is opened close-on-exec")
}
