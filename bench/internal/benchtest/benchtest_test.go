package benchtest

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/gopmd/gopmd/eal"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func TestLauncherPinsEachLcoreToTheCPUOfItsNumberAndClosesAtCleanup(t *testing.T) {
	n := min(2, runtime.NumCPU())
	var l *eal.Launcher
	t.Run("launch", func(t *testing.T) {
		l = Launcher(t, n)
		require.Equal(t, 0, l.Main())
		require.Len(t, l.Workers(), n-1)
		for _, id := range l.Workers() {
			require.NoError(t, l.RemoteLaunch(id, func(id int) error {
				var set unix.CPUSet
				if err := unix.SchedGetaffinity(0, &set); err != nil {
					return err
				}
				if set.Count() != 1 || !set.IsSet(id) {
					return fmt.Errorf("lcore %d runs on %d CPUs, CPU %d among them: %v", id, set.Count(), id, set.IsSet(id))
				}
				return nil
			}))
			require.NoError(t, l.Wait(id))
		}
	})
	if n > 1 {
		require.Error(t, l.RemoteLaunch(1, func(int) error { return nil }), "the launcher is closed after the test")
	}
}
