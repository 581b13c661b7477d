package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

// The client with the server is tested in mp_server's package.

func TestClientWithoutServerRefusesToRun(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "mp_client")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	prefix := fmt.Sprintf("csmp-none-%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(hugemem.RuntimeDir(prefix)) })
	out, err = exec.Command(bin, "-l", "0", "--proc-type", "auto", "--no-huge", "-m", "64", "--file-prefix", prefix, "--", "-n", "0").CombinedOutput()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", out)
	require.Equal(t, 1, exit.ExitCode())
	require.Contains(t, string(out), fmt.Sprintf("no mp_server runs in group %q", prefix))
}

func TestBadClientOptionsAreNamed(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{}, "-n -1: want a client id from 0 to 15"},
		{[]string{"-n", "16"}, "-n 16: want a client id from 0 to 15"},
		{[]string{"-n", "1", "extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseApp(c.args, new(strings.Builder))
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
}
