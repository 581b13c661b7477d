package timerlist

import (
	"cmp"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/timer/clock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLayout(t *testing.T) {
	assert.Equal(t, uintptr(64), unsafe.Sizeof(header{}), "header")
	assert.Equal(t, uintptr(64), unsafe.Sizeof(list{}), "list per lcore")
	assert.Equal(t, uintptr(128), unsafe.Sizeof(rec{}), "timer record")
	assert.Equal(t, uintptr(64), unsafe.Offsetof(rec{}.Period), "hot fields in the first cache line")
	assert.Equal(t, eal.MaxLcores, MaxLcores, "one list per EAL lcore")
}

// call is one callback run, as a test callback records it.
type call struct {
	lcore  int
	timer  Timer
	arg    uint64
	expire int64 // the expiry it ran for
	now    int64
}

// recorder registers callback id 1 and records its calls.
type recorder struct {
	mu    sync.Mutex
	calls []call
}

func record(t testing.TB, l *Lists) *recorder {
	rc := &recorder{}
	require.NoError(t, l.Register(1, func(lc *Lcore, tm Timer, arg uint64) {
		in, err := l.Status(tm)
		require.NoError(t, err)
		rc.mu.Lock()
		rc.calls = append(rc.calls, call{lc.ID(), tm, arg, in.Expire, l.Now()})
		rc.mu.Unlock()
	}))
	return rc
}

func (rc *recorder) take() []call {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	c := rc.calls
	rc.calls = nil
	return c
}

func TestOneShotTimerRunsOnceOnItsLcore(t *testing.T) {
	l, _ := open(t, 16)
	now := fakeTime(l, 1_000_000)
	rc := record(t, l)
	two, three := lcore(t, l, 2), lcore(t, l, 3)
	tm := newTimer(t, l, 1, 42)

	require.NoError(t, two.Reset(tm, 10*time.Millisecond, 0, 3))
	in, err := l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Info{State: Pending, Lcore: 3, Expire: 11_000_000, Callback: 1, Arg: 42}, in)

	now.Add(int64(10*time.Millisecond) - 1)
	assert.Zero(t, three.Manage(), "callbacks run 1 ns before expiry")
	now.Add(1)
	assert.Zero(t, two.Manage(), "callbacks run on another lcore")
	assert.Equal(t, 1, three.Manage(), "callbacks run at expiry")
	assert.Equal(t, []call{{3, tm, 42, 11_000_000, 11_000_000}}, rc.take())
	now.Add(int64(time.Hour))
	assert.Zero(t, three.Manage(), "callbacks run an hour later")
	in, err = l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Stopped, in.State)
	assert.Equal(t, uint64(1), in.Runs)
	checkLists(t, l)
}

func TestTimersRunInExpiryOrderAndTiesFirstInFirstOut(t *testing.T) {
	const n = 2000
	l, _ := open(t, n)
	now := fakeTime(l, 0)
	rc := record(t, l)
	c := lcore(t, l, 0)
	type armed struct {
		after time.Duration
		order int
		tm    Timer
	}
	var all []armed
	for i := range n {
		tm := newTimer(t, l, 1, uint64(i))
		after := time.Duration(rand.IntN(300)) * time.Microsecond // many ties
		require.NoError(t, c.Reset(tm, after, 0, 0))
		all = append(all, armed{after, i, tm})
	}
	assert.Equal(t, n, checkLists(t, l), "pending timers")
	now.Store(int64(time.Second))
	require.Equal(t, n, c.Manage(), "callbacks run")
	slices.SortStableFunc(all, func(a, b armed) int { return cmp.Compare(a.after, b.after) })
	calls := rc.take()
	for i, a := range all {
		require.Equal(t, a.tm, calls[i].timer, "timer run %d: want expiry %v, armed %d-th", i, a.after, a.order)
	}
	assert.Zero(t, checkLists(t, l), "pending timers after Manage")
}

func TestPeriodicTimerIsRearmedAtExactMultiplesOfItsPeriod(t *testing.T) {
	l, _ := open(t, 4)
	now := fakeTime(l, 5_000)
	rc := record(t, l)
	c := lcore(t, l, 1)
	tm := newTimer(t, l, 1, 0)
	const period = time.Millisecond
	require.NoError(t, c.Reset(tm, period, period, 1))

	// Manage runs late by varying amounts, sometimes by several periods:
	// each call runs the timer at most once, for the oldest period due.
	var expires []int64
	for range 500 {
		now.Add(int64(time.Duration(rand.IntN(2500)) * time.Microsecond))
		for _, cl := range append(rc.take(), callsOf(c, rc)...) {
			require.LessOrEqual(t, cl.expire, cl.now, "ran before its expiry")
			expires = append(expires, cl.expire)
		}
	}
	for k, e := range expires {
		require.Equal(t, int64(5_000)+int64(k+1)*int64(period), e, "expiry of run %d", k+1)
	}
	t.Logf("%d runs; %d periods behind at the end", len(expires), (now.Load()-5_000)/int64(period)-int64(len(expires)))
}

func callsOf(c *Lcore, rc *recorder) []call {
	c.Manage()
	return rc.take()
}

// On the real clock a 1 ms periodic timer, managed in a busy loop, runs at
// exact multiples of its period, never early, and misses none.
func TestPeriodicTimerDoesNotDriftOnTheRealClock(t *testing.T) {
	l, _ := open(t, 4)
	rc := record(t, l)
	c := lcore(t, l, 0)
	tm := newTimer(t, l, 1, 0)
	const period = time.Millisecond
	start := l.Now()
	require.NoError(t, c.Reset(tm, period, period, 0))
	in, err := l.Status(tm)
	require.NoError(t, err)
	first := in.Expire
	for l.Now()-start < int64(150*time.Millisecond) {
		c.Manage()
	}
	// Let Manage catch up on periods missed while this thread was off
	// the CPU, up to a fixed end.
	end := l.Now()
	for {
		in, err := l.Status(tm)
		require.NoError(t, err)
		if in.Expire > end {
			break
		}
		c.Manage()
	}
	calls := rc.take()
	var worst int64
	for k, cl := range calls {
		require.Equal(t, first+int64(k)*int64(period), cl.expire, "expiry of run %d", k)
		require.GreaterOrEqual(t, cl.now, cl.expire, "run %d started before its expiry", k)
		worst = max(worst, cl.now-cl.expire)
	}
	due := (end-first)/int64(period) + 1
	t.Logf("%d runs for %d periods due in %v; latest run %v after its expiry", len(calls), due, time.Duration(end-first), time.Duration(worst))
	assert.EqualValues(t, due, len(calls), "runs vs periods due")
	require.NoError(t, c.StopSync(tm))
}

func TestResetMovesAPendingTimerToAnotherLcore(t *testing.T) {
	l, _ := open(t, 4)
	now := fakeTime(l, 0)
	rc := record(t, l)
	anyc, one, two := lcore(t, l, AnyLcore), lcore(t, l, 1), lcore(t, l, 2)
	tm := newTimer(t, l, 1, 7)
	require.NoError(t, anyc.Reset(tm, time.Millisecond, 0, 1))
	require.NoError(t, anyc.Reset(tm, 2*time.Millisecond, 0, 2))
	checkLists(t, l)
	now.Store(int64(time.Second))
	assert.Zero(t, one.Manage(), "runs on the lcore it was moved from")
	assert.Equal(t, 1, two.Manage(), "runs on the lcore it was moved to")
	assert.Equal(t, []call{{2, tm, 7, int64(2 * time.Millisecond), int64(time.Second)}}, rc.take())
}

func TestStopKeepsAPendingTimerFromRunning(t *testing.T) {
	l, _ := open(t, 4)
	now := fakeTime(l, 0)
	rc := record(t, l)
	c := lcore(t, l, 0)
	tm := newTimer(t, l, 1, 0)
	require.NoError(t, c.Reset(tm, time.Millisecond, time.Millisecond, 0))
	require.NoError(t, c.Stop(tm))
	require.NoError(t, c.Stop(tm), "stopping a stopped timer")
	now.Store(int64(time.Second))
	assert.Zero(t, c.Manage())
	assert.Empty(t, rc.take())
	assert.Zero(t, checkLists(t, l))
}

// A running timer can be changed from its own callback only: other lcores
// get ErrBusy, and StopSync waits until the callback has returned.
func TestRunningTimerCanBeChangedOnlyByItsOwnCallback(t *testing.T) {
	l, _ := open(t, 4)
	now := fakeTime(l, 0)
	entered, leave := make(chan struct{}), make(chan struct{})
	var finished atomic.Bool
	require.NoError(t, l.Register(1, func(lc *Lcore, tm Timer, _ uint64) {
		close(entered)
		<-leave
		finished.Store(true)
	}))
	one, two, anyc := lcore(t, l, 1), lcore(t, l, 2), lcore(t, l, AnyLcore)
	tm := newTimer(t, l, 1, 0)
	require.NoError(t, one.Reset(tm, time.Millisecond, 0, 1))
	now.Store(int64(time.Second))
	go one.Manage()
	<-entered

	in, err := l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Running, in.State)
	assert.Equal(t, 1, in.Lcore)
	assert.Equal(t, ErrBusy, two.Stop(tm), "Stop from lcore 2")
	assert.Equal(t, ErrBusy, anyc.Reset(tm, 0, 0, 2), "Reset from a non-lcore thread")
	assert.Equal(t, ErrBusy, l.Free(tm), "Free")

	stopped := make(chan error)
	go func() { stopped <- two.StopSync(tm) }()
	select {
	case err := <-stopped:
		t.Fatalf("StopSync returned %v while the callback still ran", err)
	case <-time.After(50 * time.Millisecond):
	}
	close(leave)
	require.NoError(t, <-stopped)
	assert.True(t, finished.Load(), "callback had finished when StopSync returned")
	in, err = l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Stopped, in.State)
}

func TestCallbackMayResetStopOrFreeItsOwnTimer(t *testing.T) {
	l, _ := open(t, 4)
	now := fakeTime(l, 0)
	var action atomic.Value
	require.NoError(t, l.Register(1, func(lc *Lcore, tm Timer, _ uint64) {
		var err error
		switch action.Load().(string) {
		case "reset":
			err = lc.Reset(tm, time.Millisecond, 0, 3)
		case "stop":
			err = lc.Stop(tm)
		case "free":
			err = lc.Stop(tm)
			if err == nil {
				err = l.Free(tm)
			}
		}
		if err != nil {
			t.Errorf("%s from the timer's own callback: %v", action.Load(), err)
		}
	}))
	one, three := lcore(t, l, 1), lcore(t, l, 3)

	tm := newTimer(t, l, 1, 0)
	action.Store("reset")
	require.NoError(t, one.Reset(tm, 0, time.Millisecond, 1))
	require.Equal(t, 1, one.Manage())
	in, err := l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Pending, in.State, "after resetting itself")
	assert.Equal(t, 3, in.Lcore, "after resetting itself onto lcore 3")
	assert.Equal(t, time.Duration(0), in.Period, "the reset made it one-shot")
	now.Add(int64(time.Millisecond))
	action.Store("stop")
	require.Equal(t, 1, three.Manage())
	in, err = l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Stopped, in.State, "after stopping itself")

	action.Store("free")
	require.NoError(t, one.Reset(tm, 0, time.Millisecond, 1))
	require.Equal(t, 1, one.Manage())
	_, err = l.Status(tm)
	assert.Equal(t, ErrStale, err, "after freeing itself")
	assert.Zero(t, l.InUse())
	assert.Zero(t, checkLists(t, l))
}

func TestStaleHandlesAreRefused(t *testing.T) {
	l, _ := open(t, 1)
	c := lcore(t, l, 0)
	tm := newTimer(t, l, 1, 0)
	require.NoError(t, l.Free(tm))
	assert.Equal(t, ErrStale, c.Reset(tm, 0, 0, 0))
	assert.Equal(t, ErrStale, c.Stop(tm))
	assert.Equal(t, ErrStale, l.Free(tm))
	again := newTimer(t, l, 1, 0)
	assert.NotEqual(t, tm, again, "the record's next handle")
	assert.Equal(t, ErrStale, c.StopSync(tm), "old handle after the record was reused")
	assert.NoError(t, c.Stop(again))
	assert.EqualError(t, c.Stop(0), fmt.Sprintf("timerlist: 0x0 is not a timer of %q (1 timers)", DefaultName))
}

func TestPoolExhaustionSaysSo(t *testing.T) {
	l, _ := open(t, 2)
	newTimer(t, l, 1, 0)
	newTimer(t, l, 1, 0)
	_, err := l.New(1, 0)
	assert.EqualError(t, err, `timerlist: "timerlist": all 2 timers are in use`)
}

func TestBadArgumentsAreRefused(t *testing.T) {
	l, _ := open(t, 2)
	c := lcore(t, l, 0)
	tm := newTimer(t, l, 1, 0)
	assert.EqualError(t, c.Reset(tm, 0, 0, 128), "timerlist: Reset on lcore 128: want an lcore from 0 to 127")
	assert.EqualError(t, c.ResetSync(tm, 0, 0, -1), "timerlist: Reset on lcore -1: want an lcore from 0 to 127")
	assert.EqualError(t, c.Reset(tm, -time.Second, 0, 0), "timerlist: Reset after -1s every 0s: durations cannot be negative")
	_, err := l.Lcore(128)
	assert.EqualError(t, err, "timerlist: lcore 128: want 0 to 127, or AnyLcore")
	assert.EqualError(t, l.Register(2, nil), "timerlist: Register callback 2: the function is nil")
	require.NoError(t, l.Register(2, func(*Lcore, Timer, uint64) {}))
	assert.EqualError(t, l.Register(2, func(*Lcore, Timer, uint64) {}), "timerlist: Register callback 2: this process registered it already")
	_, err = Open(l.mem, l.clk, Config{Timers: MaxTimers + 1})
	assert.EqualError(t, err, fmt.Sprintf(`timerlist: "timerlist": %d timers: want 1 to %d (0 for 4096)`, MaxTimers+1, MaxTimers))
	_, err = Open(l.mem, l.clk, Config{Timers: 3})
	assert.EqualError(t, err, `timerlist: "timerlist" holds 2 timers, asked for 3`)
	_, err = l.mem.Reserve("not_timers", 4096, 0)
	require.NoError(t, err)
	_, err = Open(l.mem, l.clk, Config{Name: "not_timers"})
	assert.ErrorContains(t, err, fmt.Sprintf(`timerlist: memzone "not_timers" has magic 0x0 version 0, this build needs 0x67706d645f746d72 version %d: not timer lists`, zoneVersion))
}

func TestUnregisteredCallbackStopsTheTimer(t *testing.T) {
	l, _ := open(t, 2)
	now := fakeTime(l, 0)
	c := lcore(t, l, 0)
	tm := newTimer(t, l, 9, 0)
	require.NoError(t, c.Reset(tm, 0, time.Millisecond, 0))
	now.Add(1)
	assert.Zero(t, c.Manage(), "callbacks run")
	in, err := l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Stopped, in.State)
}

func TestManageDoesNotAllocate(t *testing.T) {
	l, _ := open(t, 64)
	require.NoError(t, l.Register(1, func(*Lcore, Timer, uint64) {}))
	c := lcore(t, l, 0)
	for range 32 {
		require.NoError(t, c.Reset(newTimer(t, l, 1, 0), time.Hour, 0, 0))
	}
	assert.Zero(t, testing.AllocsPerRun(1000, func() { c.Manage() }), "allocations per Manage, nothing expired")
	now := fakeTime(l, l.Now())
	for range 16 {
		require.NoError(t, c.Reset(newTimer(t, l, 1, 0), 0, time.Microsecond, 0))
	}
	c.Manage()
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		now.Add(int64(time.Microsecond))
		if c.Manage() != 16 {
			panic("expected 16 callbacks")
		}
	}), "allocations per Manage running 16 periodic timers")
	tm := newTimer(t, l, 1, 0)
	assert.Zero(t, testing.AllocsPerRun(1000, func() {
		c.Reset(tm, time.Hour, 0, 1)
		c.Stop(tm)
	}), "allocations per Reset and Stop")
}

// stress runs Manage on lcores 0 and 1 while mutate changes timers, then
// stops every timer and checks that no callback ran concurrently with
// itself or after its timer was stopped for good, and that the lists are
// sound.
func stress(t *testing.T, l *Lists, timers []Timer, mutate func(stop <-chan struct{})) {
	var running [4096]atomic.Int32
	var closed atomic.Bool
	var runs, lateRuns, overlaps atomic.Int64
	require.NoError(t, l.Register(1, func(lc *Lcore, tm Timer, arg uint64) {
		if running[arg].Add(1) != 1 {
			overlaps.Add(1)
		}
		if closed.Load() {
			lateRuns.Add(1)
		}
		runs.Add(1)
		// Stay running a little, so that changes from elsewhere find the
		// timer running.
		for end := time.Now().Add(time.Duration(rand.IntN(3)) * time.Microsecond); time.Now().Before(end); {
		}
		running[arg].Add(-1)
		// Now and then the callback changes its own timer: once reset,
		// the timer may run again before this callback returns.
		switch rand.IntN(8) {
		case 0:
			lc.Stop(tm)
		case 1:
			lc.Reset(tm, time.Duration(rand.IntN(5))*time.Microsecond, 0, rand.IntN(2))
		}
	}))

	stop := make(chan struct{})
	var managers, mutators sync.WaitGroup
	// Lcore 0 itself changes timers between its Manage calls, on the same
	// goroutine: an Lcore handle is one thread's, as a DPDK lcore is, and a
	// change made through it counts as made from that lcore's callbacks.
	mutators.Add(1)
	for id := range 2 {
		c := lcore(t, l, id)
		managers.Add(1)
		go func() {
			defer managers.Done()
			end := time.Now().Add(300 * time.Millisecond)
			mutating := id == 0
			for {
				select {
				case <-stop:
					return
				default:
					c.Manage()
				}
				if !mutating {
					continue
				}
				if time.Now().After(end) {
					mutating = false
					mutators.Done()
					continue
				}
				tm := timers[rand.IntN(len(timers))]
				if rand.IntN(2) == 0 {
					c.Reset(tm, time.Duration(rand.IntN(100))*time.Microsecond, 0, rand.IntN(2))
				} else {
					c.Stop(tm)
				}
			}
		}()
	}
	mutators.Add(1)
	go func() {
		defer mutators.Done()
		mutate(stop)
	}()
	mutators.Wait()

	anyc := lcore(t, l, AnyLcore)
	for _, tm := range timers {
		require.NoError(t, anyc.StopSync(tm))
	}
	closed.Store(true)
	time.Sleep(20 * time.Millisecond)
	close(stop)
	managers.Wait()

	t.Logf("%d callbacks ran", runs.Load())
	assert.Zero(t, overlaps.Load(), "callbacks that ran while the same timer's callback ran")
	assert.Zero(t, lateRuns.Load(), "callbacks that ran after StopSync of every timer returned")
	assert.Positive(t, runs.Load(), "callbacks run")
	assert.Zero(t, checkLists(t, l), "pending timers after stopping all")
	for _, tm := range timers {
		in, err := l.Status(tm)
		require.NoError(t, err)
		require.Equal(t, Stopped, in.State, "timer %#x", uint64(tm))
	}
}

func TestStopAndResetRaceAcrossLcores(t *testing.T) {
	l, _ := open(t, 64)
	var timers []Timer
	for i := range 64 {
		timers = append(timers, newTimer(t, l, 1, uint64(i)))
	}
	var ok, busy atomic.Int64
	stress(t, l, timers, func(<-chan struct{}) {
		var wg sync.WaitGroup
		for g := range 2 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				c := lcore(t, l, []int{AnyLcore, 3}[g]) // lcore 3 has no manager: its timers wait
				for end := time.Now().Add(300 * time.Millisecond); time.Now().Before(end); {
					tm := timers[rand.IntN(len(timers))]
					var err error
					switch rand.IntN(4) {
					case 0:
						err = c.Stop(tm)
					case 1:
						err = c.StopSync(tm)
					case 2:
						err = c.ResetSync(tm, time.Duration(rand.IntN(5))*time.Microsecond, 0, rand.IntN(2))
					default:
						err = c.Reset(tm, time.Duration(rand.IntN(5))*time.Microsecond, time.Duration(rand.IntN(2))*5*time.Microsecond, rand.IntN(2))
					}
					switch err {
					case nil:
						ok.Add(1)
					case ErrBusy:
						busy.Add(1)
					default:
						t.Errorf("changing timer %#x: %v", uint64(tm), err)
						return
					}
				}
			}()
		}
		wg.Wait()
	})
	t.Logf("%d changes went through, %d found the timer busy", ok.Load(), busy.Load())
}

func TestStopAndResetRaceAcrossProcesses(t *testing.T) {
	l, opts := open(t, 0)
	var timers []Timer
	for i := range 64 {
		timers = append(timers, newTimer(t, l, 1, uint64(i)))
	}
	stress(t, l, timers, func(<-chan struct{}) {
		c := startChild(t, childSpec{Role: "race", Mem: opts, Timers: timers, Lcores: []int{0, 1}, Millis: 300})
		f := strings.Fields(strings.TrimPrefix(c.Expect("done "), "done "))
		require.Len(t, f, 2)
		require.NoError(t, c.Wait())
		t.Logf("the other process: %s changes went through, %s found the timer busy", f[0], f[1])
	})
}

func TestTimersArmedByAnotherProcessRunOnTheOwnersLcore(t *testing.T) {
	l, opts := open(t, 0)
	rc := record(t, l)
	var timers []Timer
	for i := range 30 {
		timers = append(timers, newTimer(t, l, 1, uint64(i)))
	}
	c := startChild(t, childSpec{Role: "arm", Mem: opts, Timers: timers, Lcores: []int{4, 5}, Millis: 1})
	c.Expect("armed")
	require.NoError(t, c.Wait())
	assert.Equal(t, 20, checkLists(t, l), "pending timers: 30 armed, every third stopped again")

	four, five := lcore(t, l, 4), lcore(t, l, 5)
	time.Sleep(2 * time.Millisecond)
	ran := four.Manage() + five.Manage()
	assert.Equal(t, 20, ran, "callbacks run here for timers the other process armed")
	byLcore := map[int][]uint64{}
	for _, cl := range rc.take() {
		byLcore[cl.lcore] = append(byLcore[cl.lcore], cl.arg)
	}
	assert.Equal(t, []uint64{0, 4, 6, 10, 12, 16, 18, 22, 24, 28}, byLcore[4], "args run on lcore 4")
	assert.Equal(t, []uint64{1, 3, 7, 9, 13, 15, 19, 21, 25, 27}, byLcore[5], "args run on lcore 5")
}

func TestTimersOfADeadProcessAreReaped(t *testing.T) {
	l, opts := open(t, 0)
	c := startChild(t, childSpec{Role: "own", Mem: opts, Lcores: []int{6, 7}, Millis: 10})
	c.Expect("own 10")
	assert.Equal(t, 10, l.InUse(), "timers in use while their creator lives")
	assert.Equal(t, 5, checkLists(t, l), "pending timers while their creator lives")
	assert.Zero(t, l.Reap(), "timers reaped while their creator lives")
	c.Kill()
	assert.Equal(t, 10, l.Reap(), "timers reaped after their creator died")
	assert.Zero(t, l.InUse())
	assert.Zero(t, checkLists(t, l))
}

// A process that dies while it changes a timer leaves it in Configuring:
// StopSync takes it over rather than wait forever.
func TestATimerLeftConfiguringByADeadProcessIsTakenOver(t *testing.T) {
	l, opts := open(t, 0)
	c := startChild(t, childSpec{Role: "own", Mem: opts, Lcores: []int{1}, Millis: 1})
	c.Expect("own 1")
	deadPID := uint32(c.Pid())
	c.Kill()

	tm := newTimer(t, l, 1, 0)
	anyc := lcore(t, l, AnyLcore)
	require.NoError(t, anyc.Reset(tm, time.Hour, 0, 2))
	r, _, err := l.record(tm)
	require.NoError(t, err)
	r.Status = status(stateConfig, 2, tm.gen(), deadPID)
	assert.Equal(t, ErrBusy, anyc.Stop(tm), "Stop without waiting")
	require.NoError(t, anyc.StopSync(tm), "StopSync")
	in, err := l.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Stopped, in.State)
	assert.Equal(t, 1, checkLists(t, l), "pending timers: only the one the dead process armed, not reaped yet")
}

func TestOpenAttachesToTheSameLists(t *testing.T) {
	l, opts := open(t, 8)
	mem, err := hugemem.Attach(opts)
	require.NoError(t, err)
	defer mem.Close()
	clk, release, err := clock.Select(mem, clock.ModeTSC)
	require.NoError(t, err)
	defer release()
	again, err := Open(mem, clk, Config{})
	require.NoError(t, err)
	tm := newTimer(t, l, 3, 99)
	in, err := again.Status(tm)
	require.NoError(t, err)
	assert.Equal(t, Info{State: Stopped, Lcore: AnyLcore, Callback: 3, Arg: 99}, in)
	assert.Len(t, again.recs, 8, "timers of the attached lists")
}
