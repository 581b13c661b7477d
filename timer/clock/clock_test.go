package clock

import (
	"math"
	"os"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/timer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseModeReadsEachMode(t *testing.T) {
	for _, m := range []Mode{ModeAuto, ModeTSC, ModeHPET} {
		got, err := ParseMode(m.String())
		require.NoError(t, err)
		assert.Equal(t, m, got)
	}
	_, err := ParseMode("HPET")
	assert.EqualError(t, err, `clock: timer mode "HPET": want auto, tsc or hpet`)
}

func TestStateLayout(t *testing.T) {
	assert.Equal(t, uintptr(24), unsafe.Sizeof(claim{}), "claim size")
	assert.Equal(t, uintptr(88+maxClaims*24), unsafe.Sizeof(sharedState{}), "state size")
}

// requireNoHPET skips tests of the host's lack of an HPET where it has one.
func requireNoHPET(t *testing.T) {
	if _, err := os.Stat(timer.HPETPath); err == nil {
		t.Skipf("this machine has %s; TestComparatorRuleInVM covers it", timer.HPETPath)
	}
}

func TestAutoWithoutHPETFallsBackToTheTSCAndSaysWhy(t *testing.T) {
	requireNoHPET(t)
	mem, _ := createGroup(t)
	c, release, err := Select(mem, ModeAuto)
	require.NoError(t, err)
	defer release()
	assert.Equal(t, TSC, c.Source())
	assert.Equal(t, timer.Hz(), c.Hz())
	_, ok := c.Comparator()
	assert.False(t, ok, "a TSC clock holds no comparator")
	assert.True(t, strings.HasPrefix(c.Reason(), "--timer=auto fell back to the TSC: open /dev/hpet: file does not exist: the kernel offers no HPET to user space"), "reason %q", c.Reason())
	assert.Contains(t, c.Reason(), "TSC at ")
	if !timer.InvariantTSC() {
		assert.Contains(t, c.Reason(), "the TSC is not invariant")
	}
}

func TestHPETWithoutHPETFails(t *testing.T) {
	requireNoHPET(t)
	mem, _ := createGroup(t)
	_, _, err := Select(mem, ModeHPET)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "clock: --timer=hpet: timer: open /dev/hpet: file does not exist"), "error %q", err)
}

func TestTSCModeLeavesTheHPETAlone(t *testing.T) {
	sys := realSystem
	sys.openHPET = func() (device, error) {
		t.Error("--timer=tsc opened the HPET")
		return nil, os.ErrInvalid
	}
	mem, _ := createGroup(t)
	c, release, err := sys.selectClock(mem, ModeTSC)
	require.NoError(t, err)
	defer release()
	assert.Equal(t, TSC, c.Source())
	assert.True(t, strings.HasPrefix(c.Reason(), "--timer=tsc; TSC at "), "reason %q", c.Reason())
}

func TestSelectRefusesAnUnknownMode(t *testing.T) {
	_, _, err := Select(nil, Mode(7))
	assert.EqualError(t, err, "clock: mode 7 is not ModeTSC, ModeAuto or ModeHPET")
}

func TestSelectWithoutAGroupStillChooses(t *testing.T) {
	dir := t.TempDir()
	sys := standIn{Dir: dir, Keep: 2, Free: 1}.system()
	first, release, err := sys.selectClock(nil, ModeAuto)
	require.NoError(t, err)
	defer release()
	require.Equal(t, HPET, first.Source())
	second, release2, err := sys.selectClock(nil, ModeAuto)
	require.NoError(t, err)
	defer release2()
	assert.Equal(t, TSC, second.Source())
	assert.Contains(t, second.Reason(), "(no group given, so who holds them is not known)")
}

func TestReleaseFreesTheComparatorAndItsClaim(t *testing.T) {
	sys := standIn{Dir: t.TempDir(), Keep: 2, Free: 1}.system()
	mem, _ := createGroup(t)
	c, release, err := sys.selectClock(mem, ModeHPET)
	require.NoError(t, err)
	index, ok := c.Comparator()
	require.True(t, ok)
	assert.Equal(t, 2, index)

	st, err := attachState(mem)
	require.NoError(t, err)
	require.Len(t, st.live(), 1, "claims while held")
	require.NoError(t, release())
	assert.Empty(t, st.live(), "claims after release")
	require.NoError(t, release(), "second release")

	again, release, err := sys.selectClock(mem, ModeHPET)
	require.NoError(t, err, "--timer=hpet after the holder released")
	defer release()
	assert.Equal(t, HPET, again.Source())
}

func TestGroupAgreesOnOneTSCFrequency(t *testing.T) {
	mem, opts := createGroup(t)
	c, release, err := Select(mem, ModeTSC)
	require.NoError(t, err)
	defer release()
	other := startChild(t, "tsc", childSpec{Mem: opts, Mode: ModeTSC})
	sel := parseSelected(t, other.Expect("selected "))
	assert.Equal(t, c.Hz(), sel.hz, "TSC frequency of a later process")
	assert.Contains(t, sel.reason, "recorded for the group", "a later process says whose frequency it adopted")
}

func TestNanosFollowsCLOCK_MONOTONIC(t *testing.T) {
	c, release, err := Select(nil, ModeTSC)
	require.NoError(t, err)
	defer release()
	ppm, offset := agreement(c, 200*time.Millisecond)
	t.Logf("TSC rate off CLOCK_MONOTONIC by %.2f ppm, Nanos off by %d ns", ppm, offset)
	assert.LessOrEqual(t, math.Abs(ppm), float64(maxRateErrorPPM))
	assert.LessOrEqual(t, math.Abs(float64(offset)), float64(maxOffsetNs))
	// Readings from before the anchor convert too.
	assert.Less(t, c.NanosAt(c.baseCycles-c.hz), c.baseNanos-999_000_000, "a second before the anchor")
}

func TestReadingTheClockDoesNotAllocate(t *testing.T) {
	c, release, err := Select(nil, ModeTSC)
	require.NoError(t, err)
	defer release()
	assert.Zero(t, testing.AllocsPerRun(1000, func() { c.Cycles() }), "allocations per Cycles")
	assert.Zero(t, testing.AllocsPerRun(1000, func() { c.Nanos() }), "allocations per Nanos")
}

func BenchmarkTSCClockCycles(b *testing.B) {
	c, release, err := Select(nil, ModeTSC)
	require.NoError(b, err)
	defer release()
	var sink uint64
	for b.Loop() {
		sink += c.Cycles()
	}
	_ = sink
}

func BenchmarkTSCClockNanos(b *testing.B) {
	c, release, err := Select(nil, ModeTSC)
	require.NoError(b, err)
	defer release()
	var sink int64
	for b.Loop() {
		sink += c.Nanos()
	}
	_ = sink
}
