package clock

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/timer"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The multi-process tests run group members as real processes: this test
// binary started again with GOPMD_CLOCK_CHILD holding a childSpec (see
// TestMain).

var groupSeq atomic.Int64

func testGroup(t *testing.T) hugemem.Options {
	return hugemem.Options{
		Prefix:      fmt.Sprintf("clk%d-%d", os.Getpid(), groupSeq.Add(1)),
		NoHuge:      true,
		Limit:       16 << 20,
		SegmentSize: 4 << 20,
		RuntimeDir:  t.TempDir(),
	}
}

func createGroup(t *testing.T) (*hugemem.Memory, hugemem.Options) {
	t.Helper()
	o := testGroup(t)
	mem, err := hugemem.Create(o)
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	return mem, o
}

// standIn replaces /dev/hpet in tests and behaves like the kernel driver
// across processes: comparators Keep to Keep+Free-1 are files in Dir, and
// opening one takes an exclusive flock on it, which the kernel drops when
// the file is closed or its process dies. Comparators below Keep count as
// kept by the kernel. The counter runs at 100 MHz off CLOCK_MONOTONIC.
type standIn struct {
	Dir        string
	Keep, Free int
}

func (s standIn) system() system {
	sys := realSystem
	sys.openHPET = s.open
	sys.invariantTSC = func() bool { return false }
	return sys
}

func (s standIn) open() (device, error) {
	for k := s.Keep; k < s.Keep+s.Free; k++ {
		f, err := os.OpenFile(filepath.Join(s.Dir, strconv.Itoa(k)), os.O_RDONLY|os.O_CREATE, 0o600)
		if err != nil {
			return nil, err
		}
		if unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) == nil {
			return &standInHPET{f: f, index: k, comparators: s.Keep + s.Free}, nil
		}
		f.Close()
	}
	return nil, fmt.Errorf("timer: open stand-in HPET: %w: every comparator the kernel lets user space open is open already (EBUSY)", timer.ErrHPETBusy)
}

type standInHPET struct {
	f                  *os.File
	index, comparators int
}

func (h *standInHPET) Cycles() uint64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return uint64(ts.Nano()) / 10
}
func (h *standInHPET) Hz() uint64             { return 100_000_000 }
func (h *standInHPET) Comparators() int       { return h.comparators }
func (h *standInHPET) Comparator() (int, int) { return h.index, 0 }
func (h *standInHPET) Close() error           { return h.f.Close() }

// childSpec is what the parent tells a child, as JSON in GOPMD_CLOCK_CHILD.
type childSpec struct {
	Mem     hugemem.Options
	Mode    Mode
	StandIn *standIn // nil: the real /dev/hpet
}

type child struct {
	t     *testing.T
	name  string
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
	exit  chan error
}

// startChild starts a group member that selects a clock as spec says.
func startChild(t *testing.T, name string, spec childSpec) *child {
	t.Helper()
	js, err := json.Marshal(spec)
	require.NoError(t, err)
	cmd := exec.Command(os.Args[0], "-test.run=^TestMain$")
	cmd.Env = append(os.Environ(), "GOPMD_CLOCK_CHILD="+string(js))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	require.NoError(t, err)
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	c := &child{t: t, name: name, cmd: cmd, stdin: stdin, lines: make(chan string, 100), exit: make(chan error, 1)}
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			t.Logf("[%s pid %d] %s", name, cmd.Process.Pid, sc.Text())
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

// expect waits for a line starting with prefix and returns the rest of it.
func (c *child) expect(prefix string) string {
	c.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("%s (pid %d) exited before printing %q", c.name, c.pid(), prefix)
			}
			if rest, ok := strings.CutPrefix(line, prefix); ok {
				return rest
			}
		case <-timeout:
			c.t.Fatalf("%s (pid %d) did not print %q within 30 s", c.name, c.pid(), prefix)
		}
	}
}

// expectContaining waits for a line containing each of subs and returns it.
func (c *child) expectContaining(subs ...string) string {
	c.t.Helper()
	timeout := time.After(30 * time.Second)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				c.t.Fatalf("%s (pid %d) exited before printing a line with %q", c.name, c.pid(), subs)
			}
			all := true
			for _, s := range subs {
				all = all && strings.Contains(line, s)
			}
			if all {
				return line
			}
		case <-timeout:
			c.t.Fatalf("%s (pid %d) did not print a line with %q within 30 s", c.name, c.pid(), subs)
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
	<-c.exit
	c.exit <- nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// runChild is the child side. It prints, one per line:
//
//	selected <source> <comparator or -1> <hz> <reason>
//	failed <error>
//	agree <rate error in ppm> <Nanos minus CLOCK_MONOTONIC in ns>
//
// then obeys stdin: "release" calls the release function and prints
// "released"; end of input exits without releasing.
func runChild(spec childSpec) int {
	slog.SetDefault(slog.New(slog.NewTextHandler(os.Stdout, nil)))
	mem, err := hugemem.Attach(spec.Mem)
	if err != nil {
		fmt.Println("error: attach:", err)
		return 2
	}
	sys := realSystem
	if spec.StandIn != nil {
		sys = spec.StandIn.system()
	}
	c, release, err := sys.selectClock(mem, spec.Mode)
	if err != nil {
		fmt.Println("failed", err)
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
	index, _ := c.Comparator()
	if c.Source() == TSC {
		index = -1
	}
	fmt.Println("selected", c.Source(), index, c.Hz(), c.Reason())
	ratePPM, offset := agreement(c, 300*time.Millisecond)
	fmt.Printf("agree %.1f %d\n", ratePPM, offset)
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		if sc.Text() == "release" {
			if err := release(); err != nil {
				fmt.Println("error: release:", err)
				return 2
			}
			fmt.Println("released")
		}
	}
	return 0
}

func monotonicNs() int64 {
	var ts unix.Timespec
	unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	return ts.Nano()
}

// agreement measures c against CLOCK_MONOTONIC over d: how far the rate of
// Cycles/Hz is from it (ppm), and how far Nanos is from it at the end (ns).
func agreement(c *Clock, d time.Duration) (ratePPM float64, offsetNs int64) {
	pair := func() (cycles uint64, mono int64) {
		best := ^uint64(0)
		for range 8 {
			a := c.Cycles()
			m := monotonicNs()
			b := c.Cycles()
			if b >= a && b-a < best {
				best, cycles, mono = b-a, a+(b-a)/2, m
			}
		}
		return
	}
	c0, m0 := pair()
	time.Sleep(d)
	c1, m1 := pair()
	elapsed := float64(c1-c0) / float64(c.Hz()) * 1e9
	return (elapsed/float64(m1-m0) - 1) * 1e6, c.NanosAt(c1) - m1
}

func TestMain(m *testing.M) {
	if js := os.Getenv("GOPMD_CLOCK_CHILD"); js != "" {
		var spec childSpec
		if err := json.Unmarshal([]byte(js), &spec); err != nil {
			fmt.Println("error: bad spec:", err)
			os.Exit(2)
		}
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}
