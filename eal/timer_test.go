package eal

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/gopmd/gopmd/timer"
	"github.com/gopmd/gopmd/timer/clock"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseArgsReadsTimer(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want clock.Mode
	}{
		{nil, clock.ModeTSC},
		{[]string{"--timer=auto"}, clock.ModeAuto},
		{[]string{"--timer", "tsc"}, clock.ModeTSC},
		{[]string{"--timer=hpet"}, clock.ModeHPET},
	} {
		o, _, err := parseArgs(tc.args, testEnv())
		require.NoError(t, err, "args %q", tc.args)
		assert.Equal(t, tc.want, o.Timer, "Timer for args %q", tc.args)
	}
}

func TestParseArgsRefusesAnUnknownTimer(t *testing.T) {
	_, _, err := parseArgs([]string{"--timer=hept"}, testEnv())
	require.Error(t, err)
	assert.Equal(t, `eal: --timer "hept": want auto, tsc or hpet`, err.Error())

	_, _, err = parseArgs([]string{"--timer=tsc", "--timer=hpet"}, testEnv())
	require.ErrorContains(t, err, "--timer given twice")
}

// startWithTimer runs Start as a primary of a private group with --timer=mode.
func startWithTimer(t *testing.T, mode string) (*Env, error) {
	t.Helper()
	if _, err := os.Stat(timer.HPETPath); err == nil {
		t.Skipf("this machine has %s; clock's VM test covers processes that get an HPET comparator", timer.HPETPath)
	}
	o, _, err := ParseArgs([]string{"--no-huge", "-m", "64", "-l", "0", "--log-level", "error",
		"--file-prefix", fmt.Sprintf("ealtimer%d", os.Getpid()), "--timer=" + mode})
	require.NoError(t, err)
	return Start(o)
}

func TestStartWithTimerAutoAndNoHPETUsesTheTSCAndSaysWhy(t *testing.T) {
	env, err := startWithTimer(t, "auto")
	require.NoError(t, err)
	defer env.Close()
	assert.Equal(t, clock.TSC, env.Clock.Source())
	assert.Equal(t, timer.Hz(), env.Clock.Hz(), "TSC clock frequency")
	reason := env.Clock.Reason()
	assert.True(t, strings.HasPrefix(reason, "--timer=auto fell back to the TSC: open /dev/hpet: file does not exist"), "reason %q", reason)
}

func TestStartWithTimerHPETAndNoHPETFails(t *testing.T) {
	env, err := startWithTimer(t, "hpet")
	if err == nil {
		env.Close()
		t.Fatal("Start with --timer=hpet on a machine without /dev/hpet: got nil error")
	}
	assert.Contains(t, err.Error(), "--timer=hpet: timer: open /dev/hpet: file does not exist")
}
