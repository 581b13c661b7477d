package timerlist

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/proclive"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/timer/clock"
	"github.com/stretchr/testify/require"
)

// openOwn opens timer lists of n timers in a group of the test's own, and
// returns them with their AnyLcore handle.
func openOwn(t *testing.T, n int) (*Lists, *Lcore) {
	t.Helper()
	mem := testmem.New(t, "tlock")
	clk, release, err := clock.Select(mem, clock.ModeTSC)
	require.NoError(t, err)
	t.Cleanup(func() { release() })
	l, err := Open(mem, clk, Config{Timers: n})
	require.NoError(t, err)
	anyc, err := l.Lcore(AnyLcore)
	require.NoError(t, err)
	return l, anyc
}

// liveProcess starts a process that lives until the test ends (or kill
// is called) and returns its lock word.
func liveProcess(t *testing.T) (word uint64, kill func()) {
	t.Helper()
	pid, kill := testproc.Sleeper(t)
	word, err := proclive.Word(pid)
	require.NoError(t, err)
	return word, kill
}

// within runs fn and fails the test if it has not returned after d.
func within(t *testing.T, d time.Duration, what string, fn func() error) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- fn() }()
	select {
	case err := <-done:
		require.NoError(t, err, what)
	case <-time.After(d):
		t.Fatalf("%s: still waiting after %v", what, d)
	}
}

// A process that died holding a lock, whose pid another process has been
// given since, is dead: the lock word's start time is not the newcomer's.
func TestLocksOfADeadProcessWhosePidWasReusedAreTakenOver(t *testing.T) {
	l, anyc := openOwn(t, 16)
	live, _ := liveProcess(t)
	stale := live ^ 1 // that pid, another start time

	atomic.StoreUint64(&l.hdr.AllocLock, stale)
	var tm Timer
	within(t, 10*time.Second, "New with the pool lock left by a dead process", func() (err error) {
		tm, err = l.New(1, 0)
		return err
	})
	atomic.StoreUint64(&l.lists[2].Lock, stale)
	within(t, 10*time.Second, "Reset onto a list whose lock a dead process left", func() error {
		return anyc.Reset(tm, time.Hour, 0, 2)
	})
	require.Zero(t, atomic.LoadUint64(&l.lists[2].Lock), "list lock released")
	require.Zero(t, atomic.LoadUint64(&l.hdr.AllocLock), "pool lock released")
	in, err := l.Status(tm)
	require.NoError(t, err)
	require.Equal(t, Pending, in.State)
	require.Equal(t, 2, in.Lcore)
}

// A lock held by a live process is waited for, and taken over once that
// process dies.
func TestListLockOfALiveProcessIsWaitedForUntilItDies(t *testing.T) {
	l, anyc := openOwn(t, 16)
	live, kill := liveProcess(t)
	tm, err := l.New(1, 0)
	require.NoError(t, err)

	atomic.StoreUint64(&l.lists[3].Lock, live)
	done := make(chan error, 1)
	go func() { done <- anyc.Reset(tm, time.Hour, 0, 3) }()
	time.Sleep(300 * time.Millisecond)
	require.Empty(t, done, "Reset went past the list lock of a live process")
	kill()
	within(t, 10*time.Second, "Reset once the list lock's holder exited", func() error { return <-done })
	in, err := l.Status(tm)
	require.NoError(t, err)
	require.Equal(t, Info{State: Pending, Lcore: 3, Expire: in.Expire, Callback: 1}, in)
}
