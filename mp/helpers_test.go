package mp

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The tests run group members as real processes: this test binary started
// again with GOPMD_MP_ROLE naming what the child does (see TestMain).

var groupSeq atomic.Int64

func testGroup(t *testing.T) hugemem.Options {
	return hugemem.Options{
		Prefix:      fmt.Sprintf("mp%d-%d", os.Getpid(), groupSeq.Add(1)),
		NoHuge:      true,
		Limit:       64 << 20,
		SegmentSize: 8 << 20,
		RuntimeDir:  t.TempDir(),
	}
}

// childSpec is what the parent tells a child, as JSON in GOPMD_MP_SPEC.
type childSpec struct {
	Role   string
	Type   ProcType
	Mem    hugemem.Options
	Lcores []Lcore
	Args   []string
	// ShiftMapping makes the child take 64 GiB of address space before it
	// joins, so its group mapping lands far from where the parent's is.
	ShiftMapping bool
}

type child struct {
	t     *testing.T
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	exit  chan error
}

func startChild(t *testing.T, spec childSpec) *child {
	t.Helper()
	js, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMain$")
	cmd.Env = append(os.Environ(), "GOPMD_MP_SPEC="+string(js))
	cmd.Stderr = testWriter{t, spec.Role}
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{t: t, cmd: cmd, stdin: stdin, lines: make(chan string, 100), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Logf("[%s %d] %s", spec.Role, cmd.Process.Pid, sc.Text())
			c.lines <- sc.Text()
		}
		close(c.lines)
		c.exit <- cmd.Wait()
	}()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-c.exit
	})
	return c
}

// expect waits for a line starting with prefix and returns it.
func (c *child) expect(prefix string) string {
	c.t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("child %d exited before printing %q", c.cmd.Process.Pid, prefix)
			}
			if strings.HasPrefix(line, prefix) {
				return line
			}
		case <-timeout:
			c.t.Fatalf("child %d did not print %q within 10 s", c.cmd.Process.Pid, prefix)
		}
	}
}

func (c *child) send(line string) {
	c.t.Helper()
	_, err := fmt.Fprintln(c.stdin, line)
	require.NoError(c.t, err)
}

func (c *child) kill9() {
	c.cmd.Process.Signal(syscall.SIGKILL)
	for range c.lines {
	}
}

// wait returns the child's exit error after its output ends.
func (c *child) wait() error {
	for range c.lines {
	}
	select {
	case err := <-c.exit:
		c.exit <- err
		return err
	case <-time.After(10 * time.Second):
		c.t.Fatalf("child %d did not exit", c.cmd.Process.Pid)
		return nil
	}
}

func (c *child) pid() int { return c.cmd.Process.Pid }

type testWriter struct {
	t    *testing.T
	role string
}

func (w testWriter) Write(b []byte) (int, error) {
	w.t.Logf("[%s stderr] %s", w.role, strings.TrimRight(string(b), "\n"))
	return len(b), nil
}

// runChild is the child side: it acts out spec.Role and exits.
func runChild(spec childSpec) int {
	if spec.ShiftMapping {
		if _, err := unix.Mmap(-1, 0, 64<<30, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE); err != nil {
			fmt.Println("error: shift mapping:", err)
			return 2
		}
	}
	p, err := Start(Config{Type: spec.Type, Memory: spec.Mem, Lcores: spec.Lcores, ReapInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Println("ready", p.Type(), os.Getpid())
	role, ok := childRoles[spec.Role]
	if !ok {
		fmt.Println("error: unknown role", spec.Role)
		return 2
	}
	code := role(p, spec.Args)
	p.Close()
	return code
}

// childRoles maps a role name to what the child does once it has started.
var childRoles = map[string]func(p *Process, args []string) int{
	// hold stays a member until its stdin closes.
	"hold": func(p *Process, _ []string) int {
		io.Copy(io.Discard, os.Stdin)
		return 0
	},
	// watch-primary reports when the primary exits.
	"watch-primary": func(p *Process, _ []string) int {
		select {
		case <-p.PrimaryGone():
			fmt.Println("primary gone")
			return 0
		case <-time.After(20 * time.Second):
			fmt.Println("primary still there")
			return 1
		}
	},
	// die-holding-lock is killed by SIGKILL while it holds the group lock.
	"die-holding-lock": func(p *Process, _ []string) int {
		p.Mem.WithLock(func() error {
			fmt.Println("locked")
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
			return nil
		})
		return 1
	},
}

func TestMain(m *testing.M) {
	if js := os.Getenv("GOPMD_MP_SPEC"); js != "" {
		var spec childSpec
		if err := json.Unmarshal([]byte(js), &spec); err != nil {
			fmt.Println("error: bad spec:", err)
			os.Exit(2)
		}
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}
