package eal

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var mainSeq atomic.Int64

// privateEAL is EAL options for a primary of a group of its own, on
// ordinary memory.
func privateEAL(t *testing.T) []string {
	prefix := fmt.Sprintf("ealmain%d-%d", os.Getpid(), mainSeq.Add(1))
	t.Cleanup(func() { os.RemoveAll(hugemem.RuntimeDir(prefix)) })
	return []string{"--no-huge", "-m", "64", "-l", "0", "--log-level", "error", "--file-prefix", prefix}
}

type appOptions struct{ count int }

func parseCount(args []string, errOut io.Writer) (appOptions, error) {
	var o appOptions
	fs := flag.NewFlagSet("app", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.IntVar(&o.count, "count", 0, "a number")
	if err := fs.Parse(args); err != nil {
		return o, err
	}
	if o.count < 0 {
		return o, fmt.Errorf("--count %d: want 0 or more", o.count)
	}
	return o, nil
}

func TestMainRunsTheProgramWithItsOptionsAndReturnsItsStatus(t *testing.T) {
	var errOut strings.Builder
	var got appOptions
	var env *Env
	status := mainTo(&errOut, "app", append(privateEAL(t), "--", "--count", "3"), parseCount, func(e *Env, o appOptions) int {
		env, got = e, o
		return 7
	})
	assert.Equal(t, 7, status, "exit status is run's")
	assert.Equal(t, appOptions{count: 3}, got, "options run got")
	require.NotNil(t, env, "run was called")
	assert.Equal(t, 0, env.Launcher.Main(), "main lcore of -l 0")
	assert.Empty(t, errOut.String())
}

func TestMainNamesTheProgramInStartUpErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		args []string
		want string
	}{
		{"bad EAL option", []string{"--no-such-option"}, "app: eal: "},
		{"bad application option", append(privateEAL(t), "--", "--count", "-1"), "app: --count -1: want 0 or more\n"},
	} {
		t.Run(c.name, func(t *testing.T) {
			var errOut strings.Builder
			ran := false
			status := mainTo(&errOut, "app", c.args, parseCount, func(*Env, appOptions) int { ran = true; return 0 })
			assert.Equal(t, 1, status, "exit status")
			assert.False(t, ran, "run was called")
			assert.True(t, strings.HasPrefix(errOut.String(), c.want), "error output %q, want it to start with %q", errOut.String(), c.want)
		})
	}
}

func TestMainExitsZeroAfterTheApplicationsUsage(t *testing.T) {
	var errOut strings.Builder
	ran := false
	status := mainTo(&errOut, "app", append(privateEAL(t), "--", "-h"), parseCount, func(*Env, appOptions) int { ran = true; return 1 })
	assert.Equal(t, 0, status, "exit status after -h")
	assert.False(t, ran, "run was called")
	assert.Contains(t, errOut.String(), "-count int", "usage printed by parse")
}

func startPrivate(t *testing.T) *Env {
	env, rest, err := Init(privateEAL(t))
	require.NoError(t, err)
	require.Empty(t, rest)
	t.Cleanup(func() { env.Close() })
	return env
}

func TestRunMainUntilStopsTheLoopOnASignalAndSaysWhich(t *testing.T) {
	env := startPrivate(t)
	sig := make(chan os.Signal, 1)
	var why []os.Signal
	polls := 0
	err := env.RunMainUntil(sig, func(s os.Signal) { why = append(why, s) }, func(stop *atomic.Bool) {
		for !stop.Load() {
			if polls++; polls == 100 {
				sig <- syscall.SIGTERM
			}
		}
	})
	require.NoError(t, err)
	assert.Equal(t, []os.Signal{syscall.SIGTERM}, why, "signals stopping was called with")
	assert.GreaterOrEqual(t, polls, 100, "polls before the stop")
}

func TestRunMainUntilReturnsWhenTheLoopEndsByItself(t *testing.T) {
	env := startPrivate(t)
	called := false
	err := env.RunMainUntil(make(chan os.Signal), func(os.Signal) { called = true }, func(stop *atomic.Bool) {})
	require.NoError(t, err)
	assert.False(t, called, "stopping was called though nothing asked to stop")
}

func TestRunMainUntilRunsTheLoopOnTheMainLcore(t *testing.T) {
	env := startPrivate(t)
	require.NoError(t, env.RunMainUntil(nil, nil, func(*atomic.Bool) {
		err := env.Launcher.RunMain(func(int) error { return nil })
		assert.ErrorIs(t, err, ErrBusy, "RunMain inside the loop")
	}))
}
