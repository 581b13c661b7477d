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
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/dpdktest"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/require"
)

// proc is one symmetric_mp process and the lines it printed.
type proc struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	mu    sync.Mutex
	out   []string
	lines chan string
	done  chan struct{}
}

func start(t *testing.T, name, bin string, args ...string) *proc {
	t.Logf("%s: %s %s", name, bin, strings.Join(args, " "))
	cmd := exec.Command(bin, args...)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	p := &proc{t: t, name: name, cmd: cmd, lines: make(chan string, 1000), done: make(chan struct{})}
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Logf("[%s] %s", name, sc.Text())
			p.mu.Lock()
			p.out = append(p.out, sc.Text())
			p.mu.Unlock()
			select {
			case p.lines <- sc.Text():
			default:
			}
		}
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

func (p *proc) expect(want string) {
	p.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case l := <-p.lines:
			if strings.Contains(l, want) {
				return
			}
		case <-p.done:
			p.t.Fatalf("%s exited before printing %q", p.name, want)
		case <-timeout:
			p.t.Fatalf("%s printed no %q within 15 s", p.name, want)
		}
	}
}

// interrupt sends SIGINT and returns the exit status and everything the
// process printed.
func (p *proc) interrupt() (int, string) {
	p.t.Helper()
	require.NoError(p.t, p.cmd.Process.Signal(syscall.SIGINT))
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.t.Fatalf("%s did not exit within 10 s of SIGINT", p.name)
	}
	p.cmd.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode(), strings.Join(p.out, "\n")
}

var portLine = regexp.MustCompile(`(?m)^Port (\d+): RX - (\d+), TX - (\d+), Drop - (\d+)$`)

// portRx reads a process's final "Port P: RX - n" count for port.
func portRx(t *testing.T, out string, port int) uint64 {
	t.Helper()
	for _, m := range portLine.FindAllStringSubmatch(out, -1) {
		if m[1] == strconv.Itoa(port) {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			return n
		}
	}
	t.Fatalf("no final count for port %d in:\n%s", port, out)
	return 0
}

func buildBinary(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "symmetric_mp")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	return bin
}

// dpdk-testpmd generates on both queues of a memif port; the two
// symmetric_mp processes each poll one queue of our end. Every frame
// testpmd sent is received by exactly one of them.
func TestTwoProcessesShareTheQueuesAndCountEveryFrameOnce(t *testing.T) {
	testenv.RequireRoot(t)
	testenv.RequireCommand(t, "dpdk-testpmd")
	testenv.RequireCommand(t, "stdbuf")
	bin := buildBinary(t)
	sock := filepath.Join(t.TempDir(), "memif.sock") // an abstract name, both sides' default

	// testpmd's forwarding lcore on CPU 0, its prompt on CPU 1; our
	// primary polls on CPU 0 and the secondary on CPU 1.
	pmd, err := dpdktest.Start(dpdktest.Config{
		Lcores: "0@1,1@0",
		NoHuge: true,
		VDevs:  []string{"net_memif0,role=server,id=0,socket=" + sock},
		Args:   []string{"--rxq=2", "--txq=2", "--nb-cores=1", "--total-num-mbufs=8192", "--no-flush-rx"},
		Log:    func(l string) { t.Log("[testpmd] " + l) },
	})
	require.NoError(t, err)
	t.Cleanup(pmd.Close)
	require.NoError(t, pmd.SetForwardMode("txonly"))

	prefix := fmt.Sprintf("symmp-%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(hugemem.RuntimeDir(prefix)) }) // what outlives the primary's Close
	group := []string{"--file-prefix", prefix, "-m", "64"}
	app := []string{"--", "--num-procs", "2"}
	pri := start(t, "primary", bin, append(append([]string{"-l", "0", "--proc-type", "primary",
		"--vdev", "net_memif0,role=client,id=0,socket=" + sock}, group...), append(app, "--proc-id", "0")...)...)
	pri.expect("forwarding queue 0 of 1 port(s)")
	sec := start(t, "secondary", bin, append(append([]string{"-l", "1", "--proc-type", "secondary"}, group...),
		append(app, "--proc-id", "1")...)...)
	sec.expect("forwarding queue 1 of 1 port(s)")

	require.NoError(t, pmd.StartForwarding())
	time.Sleep(1500 * time.Millisecond)
	_, sent, err := pmd.StopForwarding()
	require.NoError(t, err)
	require.NotZero(t, sent, "frames testpmd sent")
	time.Sleep(500 * time.Millisecond) // the processes drain the rings

	code, secOut := sec.interrupt()
	require.Equal(t, 0, code, "secondary's exit status after SIGINT")
	code, priOut := pri.interrupt()
	require.Equal(t, 0, code, "primary's exit status after SIGINT")
	got0, got1 := portRx(t, priOut, 0), portRx(t, secOut, 0)
	t.Logf("testpmd sent %d frames; the primary received %d, the secondary %d", sent, got0, got1)
	require.NotZero(t, got0, "frames the primary (queue 0) received")
	require.NotZero(t, got1, "frames the secondary (queue 1) received")
	require.Equal(t, sent, got0+got1, "frames received by the two processes together = frames testpmd sent")
}

// exit waits for a process that ends by itself and returns its status and
// output.
func (p *proc) exit() (int, string) {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(15 * time.Second):
		p.t.Fatalf("%s did not exit within 15 s", p.name)
	}
	p.cmd.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cmd.ProcessState.ExitCode(), strings.Join(p.out, "\n")
}

// The process roles on a net_ring port (no peer needed): a secondary must
// agree on --num-procs and take a queue nobody polls, and it stops when
// the primary exits.
func TestSecondariesAttachByNameAndCheckTheirQueue(t *testing.T) {
	bin := buildBinary(t)
	prefix := fmt.Sprintf("symmp-ring-%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(hugemem.RuntimeDir(prefix)) }) // what outlives the primary's Close
	group := []string{"--file-prefix", prefix, "-m", "64", "--no-huge"}
	args := func(lcore string, typ string, procs, id int, extra ...string) []string {
		a := append([]string{"-l", lcore, "--proc-type", typ}, group...)
		a = append(a, extra...)
		return append(a, "--", "--num-procs", strconv.Itoa(procs), "--proc-id", strconv.Itoa(id))
	}

	code, out := start(t, "portless", bin, args("0", "primary", 1, 0)...).exit()
	require.Equal(t, 1, code)
	require.Contains(t, out, "the primary needs at least one port: give --vdev")

	pri := start(t, "primary", bin, args("0", "primary", 2, 0, "--vdev", "net_ring0")...)
	pri.expect("forwarding queue 0 of 1 port(s)")

	code, out = start(t, "wrong count", bin, args("1", "secondary", 3, 1)...).exit()
	require.Equal(t, 1, code)
	require.Contains(t, out, "--num-procs 3, but the primary set the ports up for 2 processes")

	code, out = start(t, "same queue", bin, args("1", "secondary", 2, 0)...).exit()
	require.Equal(t, 1, code)
	require.Contains(t, out, fmt.Sprintf("rx queue 0 is polled by pid %d", pri.cmd.Process.Pid))

	sec := start(t, "secondary", bin, args("1", "secondary", 2, 1)...)
	sec.expect("forwarding queue 1 of 1 port(s)")
	code, _ = pri.interrupt()
	require.Equal(t, 0, code, "primary's exit status after SIGINT")
	code, out = sec.exit()
	require.Equal(t, 0, code, "secondary's exit status after the primary left")
	require.Contains(t, out, "the primary has exited")
	require.Contains(t, out, "Port 0: RX - 0, TX - 0, Drop - 0")
}

func TestBadApplicationOptionsAreNamed(t *testing.T) {
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"--proc-id", "0"}, "--num-procs 0: want 1 to 16"},
		{[]string{"--num-procs", "2"}, "--proc-id -1: want 0 to 1 (--num-procs 2)"},
		{[]string{"--num-procs", "2", "--proc-id", "2"}, "--proc-id 2: want 0 to 1"},
		{[]string{"--num-procs", "17", "--proc-id", "0"}, "--num-procs 17: want 1 to 16"},
		{[]string{"--num-procs", "1", "--proc-id", "0", "extra"}, `unexpected argument "extra"`},
	} {
		_, err := parseApp(c.args, new(strings.Builder))
		require.ErrorContains(t, err, c.want, "%v", c.args)
	}
}
