package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// proc is one simple_mp process driven through its stdin and stdout.
type proc struct {
	t     *testing.T
	cmd   *exec.Cmd
	in    io.WriteCloser
	lines chan string
}

func start(t *testing.T, bin string, args ...string) *proc {
	cmd := exec.Command(bin, args...)
	in, err := cmd.StdinPipe()
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	p := &proc{t: t, cmd: cmd, in: in, lines: make(chan string, 100)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Logf("[%s] %s", args[1], sc.Text())
			p.lines <- sc.Text()
		}
		close(p.lines)
	}()
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return p
}

func (p *proc) expect(want string) string {
	p.t.Helper()
	timeout := time.After(15 * time.Second)
	for {
		select {
		case line, ok := <-p.lines:
			if !ok {
				p.t.Fatalf("process exited before printing %q", want)
			}
			if strings.Contains(line, want) {
				return line
			}
		case <-timeout:
			p.t.Fatalf("no %q within 15 s", want)
		}
	}
}

func (p *proc) say(line string) { fmt.Fprintln(p.in, line) }

func (p *proc) exitCode() int {
	p.t.Helper()
	for range p.lines {
	}
	p.cmd.Wait()
	return p.cmd.ProcessState.ExitCode()
}

func TestPrimaryAndSecondaryExchangeMessages(t *testing.T) {
	bin := filepath.Join(t.TempDir(), "simple_mp")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	require.NoError(t, err, "%s", out)
	prefix := fmt.Sprintf("simple-mp-%d", os.Getpid())
	common := []string{"--file-prefix", prefix, "-m", "64"}

	pri := start(t, bin, append([]string{"-l", "0", "--proc-type=primary"}, common...)...)
	pri.expect("primary process")
	sec := start(t, bin, append([]string{"-l", "1", "--proc-type=secondary"}, common...)...)
	sec.expect("secondary process")

	pri.say("send hello from primary")
	sec.expect("Received 'hello from primary'")
	sec.say("send hello back")
	pri.expect("Received 'hello back'")
	sec.say("send " + strings.Repeat("x", 200))
	sec.expect("longer than 127")

	taken := start(t, bin, append([]string{"-l", "0", "--proc-type=secondary"}, common...)...)
	line := taken.expect("lcore 0 is held by pid")
	require.Contains(t, line, fmt.Sprint(pri.cmd.Process.Pid))
	require.Equal(t, 1, taken.exitCode())

	sec.say("quit")
	require.Equal(t, 0, sec.exitCode())
	pri.say("quit")
	require.Equal(t, 0, pri.exitCode())
}
