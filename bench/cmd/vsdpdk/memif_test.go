package main

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestMemifComparesDPDKAndGopmdRowByRow(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "dpdk-testpmd")
	testenv.RequireCommand(t, "stdbuf")
	code, stdout, stderr := runVsdpdk("-duration", "200ms", "-rows", "server", "memif")
	require.Equal(t, 0, code, "stderr:\n%s", stderr)
	checkReport(t, stdout, []string{"memif rx, server: dpdk txonly -> rxonly", "memif tx, server: txonly -> dpdk rxonly"})
	assert.Contains(t, stdout, "over 200ms after a 200ms warm-up")
	noFilesLeft(t, "memif")
	for _, pattern := range []string{
		fmt.Sprintf("/var/run/dpdk/dpdktest-%d-*", os.Getpid()),
		fmt.Sprintf("/dev/hugepages/dpdktest-%d-*", os.Getpid()),
	} {
		left, _ := filepath.Glob(pattern)
		assert.Empty(t, left, "dpdk-testpmd's files left behind")
	}
}

func TestMemifNeedsTwoCPUs(t *testing.T) {
	code, stdout, stderr := runVsdpdk("-cpus", "0", "memif")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "the memif test needs two CPUs")
}
