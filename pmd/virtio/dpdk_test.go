package virtio_test

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/require"
)

// vhostPeer is DPDK's dpdk-testpmd with a net_vhost port, driven in
// interactive mode through a pipe: the vhost-user back-end our virtio_user
// ports talk to.
type vhostPeer struct {
	t      testing.TB
	sock   string
	prefix string
	cmd    *exec.Cmd
	in     io.WriteCloser
	mu     sync.Mutex
	out    []string
	lines  chan string
	done   chan struct{}
}

// startVhost runs testpmd with net_vhost0 listening on sock (client=1
// makes it connect to sock instead) with the given queue pairs. Its
// forwarding lcore runs on CPU 0, its main lcore on CPU 1.
func startVhost(t testing.TB, sock string, queues int, extraVdev string) *vhostPeer {
	bin := testenv.RequireCommand(t, "dpdk-testpmd")
	stdbuf := testenv.RequireCommand(t, "stdbuf") // testpmd's stdout to a pipe is block-buffered
	testenv.RequireRoot(t)
	prefix := fmt.Sprintf("gvio%d_%d", os.Getpid(), peerSeq.Add(1))
	vdev := fmt.Sprintf("net_vhost0,iface=%s,queues=%d%s", sock, queues, extraVdev)
	args := []string{"--no-pci", "--no-huge", "-m", "512", "--file-prefix=" + prefix, "--lcores=0@1,1@0",
		"--vdev", vdev, "--log-level=pmd.net.vhost:info", "--log-level=lib.vhost.config:info",
		"--", "-i", "--total-num-mbufs=16384", "--nb-cores=1", "--no-flush-rx",
		fmt.Sprintf("--rxq=%d", queues), fmt.Sprintf("--txq=%d", queues)}
	t.Logf("%s %s", bin, strings.Join(args, " "))
	cmd := exec.Command(stdbuf, append([]string{"-oL", bin}, args...)...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	p := &vhostPeer{t: t, sock: sock, prefix: prefix, cmd: cmd, in: in, lines: make(chan string, 4096), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			p.mu.Lock()
			p.out = append(p.out, l)
			p.mu.Unlock()
			select {
			case p.lines <- l:
			default:
			}
		}
	}()
	t.Cleanup(func() {
		p.kill()
		if t.Failed() {
			p.mu.Lock()
			t.Logf("testpmd output:\n%s", strings.Join(p.out, "\n"))
			p.mu.Unlock()
		}
	})
	if !strings.Contains(extraVdev, "client=1") {
		p.waitSocket()
	}
	p.waitLine("Checking link statuses", 15*time.Second)
	p.waitLine("Done", 5*time.Second)
	return p
}

// kill ends testpmd now (as a crash would) and removes its files.
func (p *vhostPeer) kill() {
	if p.cmd.ProcessState == nil {
		p.in.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
		}
		p.cmd.Wait()
	}
	os.RemoveAll("/var/run/dpdk/" + p.prefix)
}

func (p *vhostPeer) waitSocket() {
	for start := time.Now(); time.Since(start) < 15*time.Second; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(p.sock); err == nil {
			return
		}
		select {
		case <-p.done:
			p.t.Fatalf("testpmd exited before making its vhost-user socket")
		default:
		}
	}
	p.t.Fatalf("testpmd made no vhost-user socket %s in 15 s", p.sock)
}

func (p *vhostPeer) waitLine(sub string, timeout time.Duration) []string {
	p.t.Helper()
	var got []string
	deadline := time.After(timeout)
	for {
		select {
		case l, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("testpmd exited while we waited for %q", sub)
			}
			got = append(got, l)
			if strings.Contains(l, sub) {
				return got
			}
		case <-p.done:
			p.t.Fatalf("testpmd exited while we waited for %q", sub)
		case <-deadline:
			p.t.Fatalf("testpmd printed no %q within %v", sub, timeout)
		}
	}
}

// run sends a command and waits for a line containing until.
func (p *vhostPeer) run(cmd, until string) []string {
	p.t.Helper()
	for len(p.lines) > 0 {
		<-p.lines
	}
	_, err := io.WriteString(p.in, cmd+"\n")
	require.NoError(p.t, err)
	return p.waitLine(until, 10*time.Second)
}

var statRE = regexp.MustCompile(`(RX|TX)-packets:\s+(\d+)`)

// stop stops forwarding and returns testpmd's accumulated statistics.
func (p *vhostPeer) stop() (rx, tx uint64) {
	p.t.Helper()
	rx, tx = ^uint64(0), ^uint64(0)
	accumulated := false
	for _, l := range p.run("stop", "Done.") {
		if strings.Contains(l, "Accumulated forward statistics") {
			accumulated = true
		}
		if !accumulated {
			continue
		}
		for _, m := range statRE.FindAllStringSubmatch(l, -1) {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			if m[1] == "RX" && rx == ^uint64(0) {
				rx = n
			}
			if m[1] == "TX" && tx == ^uint64(0) {
				tx = n
			}
		}
	}
	require.NotEqual(p.t, ^uint64(0), rx, "no accumulated RX-packets in testpmd's stop output")
	require.NotEqual(p.t, ^uint64(0), tx, "no accumulated TX-packets in testpmd's stop output")
	return rx, tx
}

// sockPath makes a socket path short enough for sun_path.
func sockPath(t testing.TB) string {
	dir, err := os.MkdirTemp("", "gvio")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	return filepath.Join(dir, "vhost.sock")
}
