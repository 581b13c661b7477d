package proclive

import (
	"errors"
	"io/fs"
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestAliveTellsARunningProcessFromAGoneOneOrAReusedPid(t *testing.T) {
	start, err := StartTime(os.Getpid())
	require.NoError(t, err)
	require.True(t, Alive(os.Getpid(), start))
	require.False(t, Alive(os.Getpid(), start+1), "same pid, another start time: a reused pid")

	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	require.False(t, Alive(cmd.Process.Pid, 0), "an exited and reaped process")
}

// TestOnlyAMissingProcessIsGone pins the rule every check here follows:
// only "no such process" makes a process gone; an error that leaves it in
// doubt (no file descriptors left, no permission) keeps it alive, so a
// lock is never taken from a process that may still hold it.
func TestOnlyAMissingProcessIsGone(t *testing.T) {
	for _, err := range []error{fs.ErrNotExist, &fs.PathError{Op: "open", Path: "/proc/7/stat", Err: unix.ENOENT}, unix.ESRCH} {
		assert.True(t, gone(err), "%v", err)
	}
	for _, err := range []error{&fs.PathError{Op: "open", Path: "/proc/7/stat", Err: unix.EMFILE}, unix.EACCES, errors.New("proclive: /proc/7/stat has only 5 fields")} {
		assert.False(t, gone(err), "%v", err)
	}
}
