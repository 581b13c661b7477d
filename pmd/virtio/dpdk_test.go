package virtio_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/dpdktest"
	"github.com/stretchr/testify/require"
)

// vhostPeer is DPDK's dpdk-testpmd with a net_vhost port: the vhost-user
// back-end our virtio_user ports talk to.
type vhostPeer struct {
	*dpdktest.Peer
	t   testing.TB
	cmd *exec.Cmd // for a test that kills the back-end as a crash would
}

// startVhost runs testpmd with net_vhost0 listening on sock (client=1
// makes it connect to sock instead) with the given queue pairs. Its
// forwarding lcore runs on CPU 0, its main lcore on CPU 1.
func startVhost(t testing.TB, sock string, queues int, extraVdev string) *vhostPeer {
	t.Helper()
	p := dpdktest.StartPeer(t, dpdktest.Config{
		Lcores: "0@1,1@0",
		NoHuge: true,
		VDevs:  []string{fmt.Sprintf("net_vhost0,iface=%s,queues=%d%s", sock, queues, extraVdev)},
		EAL:    []string{"--log-level=pmd.net.vhost:info", "--log-level=lib.vhost.config:info"},
		Args: []string{"--total-num-mbufs=16384", "--nb-cores=1", "--no-flush-rx",
			fmt.Sprintf("--rxq=%d", queues), fmt.Sprintf("--txq=%d", queues)},
	})
	if !strings.Contains(extraVdev, "client=1") {
		require.Eventually(t, func() bool { _, err := os.Stat(sock); return err == nil },
			15*time.Second, 20*time.Millisecond, "testpmd made no vhost-user socket %s", sock)
	}
	return &vhostPeer{Peer: p, t: t, cmd: p.Testpmd().Cmd()}
}

// run sends a command and waits for a line containing until.
func (p *vhostPeer) run(cmd, until string) []string {
	p.t.Helper()
	return p.Run(cmd, until)
}

// stop stops forwarding and returns testpmd's accumulated statistics.
func (p *vhostPeer) stop() (rx, tx uint64) {
	p.t.Helper()
	return p.StopForwarding()
}

// sockPath makes a socket path short enough for sun_path.
func sockPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "gvio")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "vhost.sock")
}
