package timerlist

import (
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
	c := startChild(t, childSpec{Role: "arm", Mem: opts, Timers: timers, Lcores: []int{0}, Millis: int(after / time.Millisecond), Clock: clock.ModeAuto})
	assert.Equal(t, "clock tsc", c.Expect("clock "), "the other process's clock: the HPET comparator is taken")
	armedAt, err := strconv.ParseInt(strings.TrimPrefix(c.Expect("armed "), "armed "), 10, 64)
	require.NoError(t, err)
	require.NoError(t, c.Wait())

	lc := lcore(t, l, 0)
	for deadline := time.Now().Add(5 * time.Second); len(rc.calls) < 4 && time.Now().Before(deadline); {
		lc.Manage()
	}
	calls := rc.take()
	require.Len(t, calls, 4, "callbacks run: 6 armed, 2 stopped again")
	for _, cl := range calls {
		// The arming process stamped armedAt on its TSC; this process
		// reads the HPET. Resets followed armedAt within a millisecond.
		lag := time.Duration(cl.expire - armedAt)
		t.Logf("timer %d: due %v after the arming process armed it, ran %v after that", cl.arg, lag, time.Duration(cl.now-cl.expire))
		assert.True(t, lag >= after-time.Millisecond && lag <= after+2*time.Millisecond,
			"timer %d expires %v after the arming process's clock said it armed it; want %v", cl.arg, lag, after)
		assert.GreaterOrEqual(t, cl.now, cl.expire, "timer %d ran before its expiry on this process's clock", cl.arg)
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
