package dpdktest

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/require"
)

func TestCommandsReachTestpmdAndItsFilesAreRemoved(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "dpdk-testpmd")
	testenv.RequireCommand(t, "stdbuf")
	p, err := Start(Config{Lcores: "0@0,1@1", NoHuge: true, VDevs: []string{"net_ring0"},
		Args: []string{"--total-num-mbufs=2048"}, Log: func(l string) { t.Log(l) }})
	require.NoError(t, err)
	defer p.Close()
	runDir := filepath.Join("/var/run/dpdk", p.prefix)
	require.DirExists(t, runDir)

	require.NoError(t, p.SetForwardMode("txonly"))
	require.NoError(t, p.StartForwarding())
	time.Sleep(100 * time.Millisecond)
	_, sent, err := p.PortStats(0)
	require.NoError(t, err)
	require.NotZero(t, sent, "TX-packets of port 0 while txonly runs")
	rx, tx, err := p.StopForwarding()
	require.NoError(t, err)
	require.Zero(t, rx, "txonly receives nothing")
	require.GreaterOrEqual(t, tx, sent, "accumulated TX-packets")

	_, err = p.Command("no such command", "Command not found")
	require.NoError(t, err, "testpmd answers a bad command")
	require.NoError(t, p.Quit())
	p.Close()
	require.NoDirExists(t, runDir)
	left, _ := filepath.Glob(fmt.Sprintf("/dev/hugepages/dpdktest-%d-*", os.Getpid()))
	require.Empty(t, left)
}

func TestFailingStartSaysWhy(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "dpdk-testpmd")
	testenv.RequireCommand(t, "stdbuf")
	_, err := Start(Config{Lcores: "0@0,1@1", NoHuge: true, VDevs: []string{"net_nosuchdriver0"}})
	require.ErrorContains(t, err, "dpdk-testpmd did not start")
}
