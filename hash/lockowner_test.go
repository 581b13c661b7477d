package hash

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/proclive"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sleeper starts a process that lives until the test ends (or kill is
// called) and returns its pid and lock word.
func sleeper(t *testing.T) (pid int, word uint64, kill func()) {
	pid, kill = testproc.Sleeper(t)
	word, err := proclive.Word(pid)
	require.NoError(t, err)
	return pid, word, kill
}

// addAsync runs tbl.Add in a goroutine and returns its outcome channel.
func addAsync(tbl *Table, i int) <-chan error {
	done := make(chan error, 1)
	go func() { done <- tbl.Add(key16(i), valueOf(i)) }()
	return done
}

// returns reports whether done delivers within 10 seconds.
func returns(t *testing.T, done <-chan error) bool {
	return assert.Eventually(t, func() bool { return len(done) > 0 }, 10*time.Second, time.Millisecond)
}

// A writer that died holding the lock, whose pid another process has since
// been given, is dead: the lock word's start time is not that process's.
func TestLockOfADeadWriterWhosePidWasReusedIsTakenOver(t *testing.T) {
	tbl := makeTable(t, Config{Name: "reused", KeyLen: 16, Entries: 64})
	pid, live, _ := sleeper(t)
	stale := live ^ 1 // same pid, another start
	atomic.StoreUint64(&tbl.hdr.lock, stale)

	done := addAsync(tbl, 1)
	require.True(t, returns(t, done), "Add waits on lock word %#x of a dead writer, whose pid %d now belongs to a live process", stale, pid)
	require.NoError(t, <-done)
	require.Zero(t, atomic.LoadUint64(&tbl.hdr.lock), "lock released after the Add")
	require.Equal(t, 1, tbl.Count())
	checkConsistent(t, tbl)
}

// A live holder in another process is waited for, and its lock taken over
// once it dies.
func TestLockOfALiveWriterIsWaitedForUntilItDies(t *testing.T) {
	tbl := makeTable(t, Config{Name: "live", KeyLen: 16, Entries: 64})
	pid, live, kill := sleeper(t)
	require.True(t, proclive.WordAlive(live))
	atomic.StoreUint64(&tbl.hdr.lock, live)

	done := addAsync(tbl, 1)
	require.Never(t, func() bool { return len(done) > 0 }, 300*time.Millisecond, 10*time.Millisecond,
		"Add went past the lock of live pid %d", pid)
	kill()
	require.True(t, returns(t, done), "Add waits on lock word %#x after pid %d exited", live, pid)
	require.NoError(t, <-done)
	require.Equal(t, 1, tbl.Count())
}
