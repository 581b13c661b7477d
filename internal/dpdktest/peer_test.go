package dpdktest

import (
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestConfigBecomesTestpmdsArguments(t *testing.T) {
	cfg := Config{
		Lcores: "0@1,1@0",
		VDevs:  []string{"net_memif0,role=server", "net_ring0"},
		NoHuge: true,
		EAL:    []string{"--log-level=pmd.net.memif:info"},
		Args:   []string{"--nb-cores=1", "--rxq=2"},
	}
	want := []string{"--no-pci", "--file-prefix=p1", "--lcores=0@1,1@0", "--no-huge", "-m", "512",
		"--vdev", "net_memif0,role=server", "--vdev", "net_ring0", "--log-level=pmd.net.memif:info",
		"--", "-i", "--nb-cores=1", "--rxq=2"}
	assert.Equal(t, want, cfg.arguments("p1"))
	assert.Equal(t, []string{"--no-pci", "--file-prefix=p2", "--", "-i"}, Config{}.arguments("p2"), "empty Config")
}

// stopOutput is what dpdk-testpmd 22.11 prints for "stop", shortened.
const stopOutput = `Telling cores to stop...
Waiting for lcores to finish...

  ---------------------- Forward statistics for port 0  ----------------------
  RX-packets: 7              RX-dropped: 0             RX-total: 7
  TX-packets: 6              TX-dropped: 1             TX-total: 7
  ----------------------------------------------------------------------------

  +++++++++++++++ Accumulated forward statistics for all ports+++++++++++++++
  RX-packets: 5000           RX-dropped: 0             RX-total: 5000
  TX-packets: 4990           TX-dropped: 10            TX-total: 5000
  ++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++++

Done.`

func TestStopOutputGivesTheAccumulatedCounts(t *testing.T) {
	lines := strings.Split(stopOutput, "\n")
	rx, tx, ok := firstCounts(lines, "Accumulated forward statistics")
	require.True(t, ok)
	assert.Equal(t, uint64(5000), rx, "accumulated RX-packets")
	assert.Equal(t, uint64(4990), tx, "accumulated TX-packets")

	rx, tx, ok = firstCounts(lines, "statistics for port 0")
	require.True(t, ok)
	assert.Equal(t, [2]uint64{7, 6}, [2]uint64{rx, tx}, "port 0's RX-packets and TX-packets")

	_, _, ok = firstCounts(lines[:9], "Accumulated forward statistics")
	assert.False(t, ok, "counts found without the accumulated block")
}

// fakeTestpmd is a shell stand-in for dpdk-testpmd -i: it prints the
// prompt, answers the commands a Peer sends as testpmd would, and exits on
// quit (status 0) or crash (status 3).
const fakeTestpmd = `#!/bin/sh
echo "EAL: fake dpdk-testpmd $*"
printf 'testpmd> '
while IFS= read -r cmd; do
	case "$cmd" in
	"set fwd "*) echo "Set ${cmd#set fwd } packet forwarding mode" ;;
	start) echo "io packet forwarding - ports=1 - cores=1 - streams=1"; echo "  RX queues=1 - RX desc=1024 - RX free threshold=32 packets/burst=32" ;;
	stop) cat <<'EOF'
` + stopOutput + `
EOF
	;;
	crash) exit 3 ;;
	quit) echo "Bye..."; exit 0 ;;
	*) echo "Command not found" ;;
	esac
	printf 'testpmd> '
done
`

// withFakeTestpmd puts fakeTestpmd first on PATH as dpdk-testpmd.
func withFakeTestpmd(t *testing.T) {
	testenv.RequireCommand(t, "stdbuf")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "dpdk-testpmd"), []byte(fakeTestpmd), 0o755))
	t.Setenv("PATH", dir+string(os.PathListSeparator)+os.Getenv("PATH"))
}

func TestPeerDrivesTestpmdThroughItsPrompt(t *testing.T) {
	withFakeTestpmd(t)
	p := startPeer(t, Config{Lcores: "0@0", VDevs: []string{"net_null0"}})
	assert.Contains(t, p.Testpmd().CommandLine(), "--lcores=0@0 --vdev net_null0 -- -i")
	p.SetForwardMode("macswap")
	p.StartForwarding()
	rx, tx := p.StopForwarding()
	assert.Equal(t, [2]uint64{5000, 4990}, [2]uint64{rx, tx}, "accumulated RX-packets and TX-packets")
	answer := p.Run("port stop 0", "not found") // the prompt may lead the line
	require.NotEmpty(t, answer)
	assert.Contains(t, answer[len(answer)-1], "Command not found", "the last line of Run's answer")
	p.Quit()
	out := p.Testpmd().Output()
	assert.Contains(t, out, "EAL: fake dpdk-testpmd --no-pci --file-prefix=dpdktest-")
	assert.Contains(t, out, "Set macswap packet forwarding mode")
	assert.Contains(t, out, "Bye...")
}

// fatalRecorder is a testing.TB whose Fatal ends the calling goroutine
// and hands the message over.
type fatalRecorder struct {
	testing.TB
	fatal chan string
}

func (r *fatalRecorder) Helper() {}

func (r *fatalRecorder) Fatal(args ...any) {
	r.fatal <- fmt.Sprint(args...)
	runtime.Goexit()
}

func TestPeerFailsTheTestWhenTestpmdExitsBeforeItsAnswer(t *testing.T) {
	withFakeTestpmd(t)
	pmd, err := Start(Config{})
	require.NoError(t, err)
	t.Cleanup(pmd.Close)
	rec := &fatalRecorder{TB: t, fatal: make(chan string, 1)}
	p := &Peer{t: rec, pmd: pmd}
	go func() {
		p.Run("crash", "never printed")
		rec.fatal <- "Run returned"
	}()
	assert.Equal(t, `dpdk-testpmd command "crash": dpdk-testpmd exited before printing "never printed"`, <-rec.fatal)
}
