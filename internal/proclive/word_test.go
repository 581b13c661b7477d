package proclive

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestWordNamesAProcessByPidAndStartTime(t *testing.T) {
	start, err := StartTime(os.Getpid())
	require.NoError(t, err)
	w, err := Word(os.Getpid())
	require.NoError(t, err)
	require.Equal(t, uint64(os.Getpid())<<32|uint64(uint32(start)), w)
	require.Equal(t, w, Self())
	require.True(t, WordAlive(Self()))
	require.False(t, WordAlive(Self()^1), "same pid, another start time: a reused pid")
	require.False(t, WordAlive(0), "word 0 names nobody")
	require.False(t, WordAlive(0xffffffff_00000000), "a pid no process can have")

	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	require.False(t, WordAlive(uint64(cmd.Process.Pid)<<32|uint64(uint32(start))), "an exited and reaped process")
	_, err = Word(cmd.Process.Pid)
	require.Error(t, err, "Word of a process that is gone")
}

func TestRunningLooksAtThePidOnly(t *testing.T) {
	require.True(t, Running(os.Getpid()))
	require.True(t, Running(1), "init")
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	require.False(t, Running(cmd.Process.Pid), "an exited and reaped process")
	require.False(t, Running(0), "pid 0 is no process")
}
