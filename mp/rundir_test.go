package mp

import (
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/require"
)

// A secondary that outlives the primary keeps its socket in the runtime
// directory; when it leaves in turn, nothing of the group is left there.
func TestTheLastMemberToLeaveRemovesTheRuntimeDirectory(t *testing.T) {
	for _, primaryFirst := range []bool{true, false} {
		g := testmem.Options(t, "mprd")
		g.RuntimeDir = filepath.Join(t.TempDir(), "run")
		pri, err := Start(Config{Type: Primary, Memory: g, Lcores: []Lcore{{ID: 0, CPUs: []int{0}}}})
		require.NoError(t, err)
		sec, err := Start(Config{Type: Secondary, Memory: g, Lcores: []Lcore{{ID: 1, CPUs: []int{1}}}})
		require.NoError(t, err)

		first, last := pri, sec
		if !primaryFirst {
			first, last = sec, pri
		}
		require.NoError(t, first.Close())
		entries, err := os.ReadDir(g.RuntimeDir)
		require.NoError(t, err, "primary first %t: the runtime directory while a member remains", primaryFirst)
		require.NotEmpty(t, entries, "primary first %t: the remaining member's files", primaryFirst)
		require.NoError(t, last.Close())
		_, err = os.Stat(g.RuntimeDir)
		require.ErrorIs(t, err, fs.ErrNotExist, "primary first %t: the runtime directory after the last member left", primaryFirst)
	}
}
