package main

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

func buildTestpmd(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "testpmd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// runFor runs testpmd, lets it forward for d, interrupts it and returns
// its output and exit status.
func runFor(t *testing.T, bin string, d time.Duration, args ...string) (string, int) {
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	var lines []string
	done := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Log(sc.Text())
			lines = append(lines, sc.Text())
		}
		close(done)
	}()
	time.Sleep(d)
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		cmd.Process.Kill()
		t.Fatal("testpmd did not stop within 15 s of SIGINT")
	}
	cmd.Wait()
	return strings.Join(lines, "\n"), cmd.ProcessState.ExitCode()
}

var summaryRx = regexp.MustCompile(`all ports\s+RX-packets: (\d+)\s+TX-packets: (\d+)`)
var generatorRx = regexp.MustCompile(`built-in generator\s+sent: (\d+) received back: (\d+)`)

func TestDefaultRunForwardsOnTheBuiltInMemifPair(t *testing.T) {
	bin := buildTestpmd(t)
	out, code := runFor(t, bin, 2*time.Second, "--file-prefix", fmt.Sprintf("tpmd%d", os.Getpid()), "-m", "256", "--", "--stats-period", "0.5")
	require.Equal(t, 0, code, "exit status after SIGINT")
	require.Contains(t, out, "io forwarding")
	m := summaryRx.FindStringSubmatch(out)
	require.NotNil(t, m, "final summary missing")
	rx, _ := strconv.ParseUint(m[1], 10, 64)
	tx, _ := strconv.ParseUint(m[2], 10, 64)
	require.Greater(t, rx, uint64(1000), "packets forwarded")
	require.LessOrEqual(t, tx, rx, "io forwarding sends no more than it received")
	g := generatorRx.FindStringSubmatch(out)
	require.NotNil(t, g)
	back, _ := strconv.ParseUint(g[2], 10, 64)
	require.LessOrEqual(t, back, tx, "the generator gets back at most what was forwarded")
	require.Greater(t, back, uint64(0))
	require.Contains(t, out, "Rx-pps", "periodic statistics")
}

func TestBadApplicationOptionsAreNamed(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--forward-mode=flood"}, "--forward-mode=flood: want io, mac, macswap, txonly or rxonly"},
		{[]string{"--burst=0"}, "--burst=0: want 1 to 512"},
		{[]string{"--txpkts=20"}, "--txpkts=20: want 60 to 9000"},
		{[]string{"--rxq=17"}, "--rxq=17 --txq=1: want 1 to 16 each"},
		{[]string{"--stats-period=-1"}, "--stats-period=-1: want 0 or more seconds"},
		{[]string{"extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseApp(c.args, new(strings.Builder))
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
}

// TestForwardingLoopAllocatesNothing runs each engine's burst on a
// loopback port: no heap allocation per burst.
func TestForwardingLoopAllocatesNothing(t *testing.T) {
	env, _, err := eal.Init([]string{"--no-huge", "-l", "0", "--file-prefix", fmt.Sprintf("tpmda%d", os.Getpid()), "-m", "128"})
	require.NoError(t, err)
	defer env.Close()
	pool, err := mbuf.CreatePool(env.Mem, "p", mbuf.PoolConfig{N: 4095, CacheSize: 64})
	require.NoError(t, err)
	port, err := ethdev.Create(env.Proc, "net_ring0")
	require.NoError(t, err)
	defer port.Close()
	require.NoError(t, port.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}))
	require.NoError(t, port.SetupRxQueue(0, 512, pool))
	require.NoError(t, port.SetupTxQueue(0, 512))
	require.NoError(t, port.Start())
	rx, _ := port.RxQueue(0)
	tx, _ := port.TxQueue(0)
	s := &stream{rxPort: port, txPort: port, rx: rx, tx: tx}
	cache := pool.Cache(0)
	pkts := make([]*mbuf.Mbuf, 32)
	tmpl := newTemplate(64)
	for _, mode := range []string{"txonly", "io", "mac", "macswap", "rxonly"} {
		fwd, err := engine(mode)
		require.NoError(t, err)
		allocs := testing.AllocsPerRun(200, func() {
			fwdTxOnly(s, pkts, cache, pool, &tmpl) // keep packets flowing through the loopback
			fwd(s, pkts, cache, pool, &tmpl)
			fwdRxOnly(s, pkts, cache, pool, &tmpl)
		})
		require.Zero(t, allocs, "mode %s", mode)
	}
}

func TestTxonlyPacketIsAValidUDPFrame(t *testing.T) {
	tmpl := newTemplate(64)
	f := tmpl.frame
	require.Len(t, f, 64)
	require.Equal(t, []byte{0x08, 0x00}, f[12:14], "IPv4 ethertype")
	require.Zero(t, ipChecksum(f[14:34]), "the IPv4 header checksum verifies")
	require.Equal(t, byte(17), f[23], "UDP")
	require.Equal(t, uint16(64-34), uint16(f[38])<<8|uint16(f[39]), "UDP length")
}
