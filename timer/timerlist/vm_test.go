package timerlist

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/vmtest"
	"github.com/gopmd/gopmd/timer/clock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestTimersAcrossProcessesOnDifferentClocksInVM runs, in a guest with an
// HPET, a process on the HPET whose lcore runs timers that a process on the
// TSC armed: both keep times on the shared timeline, so the timers expire
// when the arming process meant. It also logs what Manage costs on each
// clock there.
func TestTimersAcrossProcessesOnDifferentClocksInVM(t *testing.T) {
	if !vmtest.InGuest() {
		vmtest.RunInGuest(t, vmtest.Config{HugePages: vmtest.NoHugePages})
		return
	}
	testenv.RequireRoot(t)
	opts := testGroup(t)
	mem, err := hugemem.Create(opts)
	require.NoError(t, err)
	defer mem.Close()
	clk, release, err := clock.Select(mem, clock.ModeHPET)
	require.NoError(t, err, "this process takes the guest's one free HPET comparator")
	defer release()
	l, err := Open(mem, clk, Config{})
	require.NoError(t, err)
	rc := record(t, l)
	var timers []Timer
	for i := range 6 {
		timers = append(timers, newTimer(t, l, 1, uint64(i)))
	}

	const after = 20 * time.Millisecond
	startedAt := l.Now()
	c := startChild(t, childSpec{Role: "arm", Mem: opts, Timers: timers, Lcores: []int{0}, Millis: int(after / time.Millisecond), Clock: clock.ModeAuto})
	assert.Equal(t, "clock tsc", c.Expect("clock "), "the other process's clock: the HPET comparator is taken")
	resets := resetWindows(t, c.Expect("armed "), len(timers))
	require.NoError(t, c.Wait())
	endedAt := l.Now()
	// The arming process read its TSC, this one the HPET: on the shared
	// timeline its readings fall within the time it lived.
	t.Logf("the arming process read its clock %v after this one started it and %v before it ended",
		time.Duration(resets[0].before-startedAt), time.Duration(endedAt-resets[len(resets)-1].after))
	assert.LessOrEqual(t, startedAt, resets[0].before,
		"the arming process's first reading (TSC) precedes this process's reading (HPET) before it started")
	assert.LessOrEqual(t, resets[len(resets)-1].after, endedAt,
		"the arming process's last reading (TSC) follows this process's reading (HPET) after it ended")

	lc := lcore(t, l, 0)
	for deadline := time.Now().Add(5 * time.Second); len(rc.calls) < 4 && time.Now().Before(deadline); {
		lc.Manage()
	}
	calls := rc.take()
	require.Len(t, calls, 4, "callbacks run: 6 armed, 2 stopped again")
	for _, cl := range calls {
		i := slices.Index(timers, cl.timer)
		require.GreaterOrEqual(t, i, 0, "callback for timer %v, which the test did not create", cl.timer)
		// Reset reads the arming process's clock between the two
		// readings around it; the process may be descheduled anywhere
		// in its loop, so only those bound the expiry.
		w := resets[i]
		t.Logf("timer %d: due %v after the start of its Reset (which took %v) in the arming process, ran %v after that here",
			i, time.Duration(cl.expire-w.before), time.Duration(w.after-w.before), time.Duration(cl.now-cl.expire))
		assert.True(t, cl.expire >= w.before+int64(after) && cl.expire <= w.after+int64(after),
			"timer %d expires at %d; the arming process's clock read %d before its Reset and %d after: want %v after a time in between",
			i, cl.expire, w.before, w.after, after)
		assert.GreaterOrEqual(t, cl.now, cl.expire, "timer %d ran before its expiry on this process's clock", i)
	}

	// What Manage with nothing expired costs on each clock in this guest
	// (for the record; under TCG each HPET read is an emulated MMIO access).
	res := testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			lc.Manage()
		}
	})
	t.Logf("Manage, nothing expired, on the HPET: %v", res)
	tsc, releaseTSC, err := clock.Select(nil, clock.ModeTSC)
	require.NoError(t, err)
	defer releaseTSC()
	l.clk = tsc
	res = testing.Benchmark(func(b *testing.B) {
		for b.Loop() {
			lc.Manage()
		}
	})
	t.Logf("Manage, nothing expired, on the TSC: %v", res)
}

// resetWindow is what the arming process's clock read just before and
// just after it reset one timer.
type resetWindow struct{ before, after int64 }

// resetWindows reads the "armed" line of the arm role: a before:after
// pair per timer.
func resetWindows(t *testing.T, line string, n int) []resetWindow {
	t.Helper()
	f := strings.Fields(strings.TrimPrefix(line, "armed "))
	require.Len(t, f, n, "reset windows in %q", line)
	ws := make([]resetWindow, n)
	for i, pair := range f {
		b, a, ok := strings.Cut(pair, ":")
		require.True(t, ok, "reset window %q: want before:after", pair)
		var err error
		ws[i].before, err = strconv.ParseInt(b, 10, 64)
		require.NoError(t, err, "reset window %q", pair)
		ws[i].after, err = strconv.ParseInt(a, 10, 64)
		require.NoError(t, err, "reset window %q", pair)
		require.LessOrEqual(t, ws[i].before, ws[i].after, "reset window %q: the arming process's clock went back", pair)
	}
	return ws
}
