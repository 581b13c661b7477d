package proclive

import (
	"os"
	"os/exec"
	"testing"

	"github.com/stretchr/testify/require"
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
