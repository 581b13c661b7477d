// Package testproc runs the test binary again as a child process, for
// tests that need a second process: a secondary of a multi-process group,
// the other end of a socket, a process to kill while it holds something.
//
// A child is told what to do either by a spec, JSON in its environment,
// that the package's TestMain reads with IsChild and acts out; or by Run,
// a -test.run pattern naming a test that plays the child's part when it
// finds the environment Env sets.
//
// A started child talks to the test in lines: the test waits for lines
// on its stdout with Expect and writes to its stdin with Send. Its stdout
// and stderr are logged with its name and pid. A child lives until the
// test ends at the latest: the test's cleanup closes its stdin, kills it
// (after Config.Grace, if set) and reaps it. By convention a child that
// fails prints a line starting with "error:", which ends any Expect that
// is not waiting for that very line.
package testproc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"
)

// specVar carries a child's spec. IsChild removes it from the child's
// environment, so processes the child starts do not take it as theirs.
const specVar = "GOPMD_TESTPROC_SPEC"

// DefaultTimeout is how long Expect and Wait wait when Config.Timeout is
// zero. It guards against a hang only: nothing is timed.
const DefaultTimeout = 30 * time.Second

// Config says how to start a child.
type Config struct {
	// Name names the child in logs and failure messages; "child" if empty.
	Name string
	// Spec, unless nil, is given to the child as JSON, for IsChild.
	Spec any
	// Env is added to the child's environment, as "KEY=value" entries.
	Env []string
	// Run is the child's -test.run pattern. Empty runs no test, for a
	// child that TestMain dispatches.
	Run string
	// Timeout bounds each Expect and Wait; DefaultTimeout if zero.
	Timeout time.Duration
	// Grace is how long the cleanup at the end of the test lets the child
	// exit by itself after closing its stdin before it kills the child.
	// Zero kills it at once.
	Grace time.Duration
}

// Command returns the test binary as a command that runs c.Run with c.Spec
// and c.Env in its environment; the caller connects its input and output.
// Under the race detector a child exits at once rather than a second late.
func Command(tb testing.TB, c Config) *exec.Cmd {
	tb.Helper()
	run := c.Run
	if run == "" {
		run = "^$"
	}
	cmd := exec.Command(os.Args[0], "-test.run="+run)
	cmd.Env = os.Environ()
	if os.Getenv("GORACE") == "" {
		cmd.Env = append(cmd.Env, "GORACE=atexit_sleep_ms=0")
	}
	if c.Spec != nil {
		js, err := json.Marshal(c.Spec)
		if err != nil {
			tb.Fatalf("testproc: spec %#v: %v", c.Spec, err)
		}
		cmd.Env = append(cmd.Env, specVar+"="+string(js))
	}
	cmd.Env = append(cmd.Env, c.Env...)
	return cmd
}

// IsChild reports whether this process is a child started with a spec,
// which it then decodes into spec (a pointer). A spec that does not
// decode ends the process with status 2 after an "error:" line.
//
//	func TestMain(m *testing.M) {
//		var spec childSpec
//		if testproc.IsChild(&spec) {
//			os.Exit(runChild(spec))
//		}
//		os.Exit(m.Run())
//	}
func IsChild(spec any) bool {
	js, ok := os.LookupEnv(specVar)
	if !ok {
		return false
	}
	os.Unsetenv(specVar)
	if err := json.Unmarshal([]byte(js), spec); err != nil {
		fmt.Printf("error: testproc: spec %s: %v\n", js, err)
		os.Exit(2)
	}
	return true
}

// Child is a running child process started by Start.
type Child struct {
	tb      testing.TB
	name    string
	timeout time.Duration
	cmd     *exec.Cmd
	stdin   io.WriteCloser
	lines   chan string   // stdout, closed once the child is reaped
	done    chan struct{} // closed once the child is reaped
	err     error         // how it exited, set before done closes
}

// Start starts a child as c says; the test's cleanup ends it.
func Start(tb testing.TB, c Config) *Child {
	tb.Helper()
	ch := &Child{tb: tb, name: c.Name, timeout: c.Timeout, lines: make(chan string, 1000), done: make(chan struct{})}
	if ch.name == "" {
		ch.name = "child"
	}
	if ch.timeout == 0 {
		ch.timeout = DefaultTimeout
	}
	ch.cmd = Command(tb, c)
	var err error
	if ch.stdin, err = ch.cmd.StdinPipe(); err != nil {
		tb.Fatalf("testproc: %s: %v", ch.name, err)
	}
	stdout := &lineWriter{line: func(l string) {
		tb.Logf("[%s %d] %.300s", ch.name, ch.Pid(), l)
		ch.lines <- l
	}}
	stderr := &lineWriter{line: func(l string) { tb.Logf("[%s %d stderr] %s", ch.name, ch.Pid(), l) }}
	ch.cmd.Stdout, ch.cmd.Stderr = stdout, stderr
	if err := ch.cmd.Start(); err != nil {
		tb.Fatalf("testproc: start %s: %v", ch.name, err)
	}
	go func() {
		err := ch.cmd.Wait() // after the output is copied
		stdout.flush()
		stderr.flush()
		ch.err = err
		close(ch.done)
		close(ch.lines)
	}()
	tb.Cleanup(func() {
		ch.stdin.Close()
		if c.Grace > 0 && ch.drain(c.Grace) {
			return
		}
		ch.cmd.Process.Kill()
		ch.drain(0)
	})
	return ch
}

// Name is the child's name, from Config.Name.
func (c *Child) Name() string { return c.name }

// Pid is the child's process id.
func (c *Child) Pid() int { return c.cmd.Process.Pid }

// Expect waits for a line of the child's stdout that starts with prefix
// and returns the whole line; the lines before it are passed over.
func (c *Child) Expect(prefix string) string {
	c.tb.Helper()
	return c.await(fmt.Sprintf("a line starting with %q", prefix), func(l string) bool { return strings.HasPrefix(l, prefix) })
}

// ExpectContaining waits for a line of the child's stdout that contains
// each of subs and returns it; the lines before it are passed over.
func (c *Child) ExpectContaining(subs ...string) string {
	c.tb.Helper()
	return c.await(fmt.Sprintf("a line containing %q", subs), func(l string) bool {
		for _, s := range subs {
			if !strings.Contains(l, s) {
				return false
			}
		}
		return true
	})
}

func (c *Child) await(what string, match func(string) bool) string {
	c.tb.Helper()
	timeout := time.After(c.timeout)
	for {
		select {
		case l, ok := <-c.lines:
			switch {
			case !ok:
				c.tb.Fatalf("%s (pid %d) exited (%v) before printing %s", c.name, c.Pid(), c.err, what)
			case match(l):
				return l
			case strings.HasPrefix(l, "error:"):
				c.tb.Fatalf("%s (pid %d) failed while the test waited for %s: %s", c.name, c.Pid(), what, l)
			}
		case <-timeout:
			c.tb.Fatalf("%s (pid %d) did not print %s within %v", c.name, c.Pid(), what, c.timeout)
		}
	}
}

// Send writes line and a newline to the child's stdin.
func (c *Child) Send(line string) {
	c.tb.Helper()
	if _, err := fmt.Fprintln(c.stdin, line); err != nil {
		c.tb.Fatalf("testproc: send %q to %s (pid %d): %v", line, c.name, c.Pid(), err)
	}
}

// CloseStdin closes the child's stdin: a child that reads it sees the end.
func (c *Child) CloseStdin() { c.stdin.Close() }

// Wait closes the child's stdin, passes over the rest of its output and
// returns how it exited: nil for status 0, else an *exec.ExitError.
func (c *Child) Wait() error {
	c.tb.Helper()
	c.stdin.Close()
	if !c.drain(c.timeout) {
		c.tb.Fatalf("%s (pid %d) did not exit within %v", c.name, c.Pid(), c.timeout)
	}
	return c.err
}

// Kill sends the child SIGKILL and returns once it is reaped. The error
// is the signal's: os.ErrProcessDone if the child had exited already.
func (c *Child) Kill() error {
	err := c.cmd.Process.Signal(syscall.SIGKILL)
	c.drain(0)
	return err
}

// drain passes over the child's output until it is reaped, or d has gone
// by (0: no limit), and reports whether the child was reaped.
func (c *Child) drain(d time.Duration) bool {
	var timeout <-chan time.Time
	if d > 0 {
		timeout = time.After(d)
	}
	for {
		select {
		case _, ok := <-c.lines:
			if !ok {
				return true
			}
		case <-timeout:
			return false
		}
	}
}

// lineWriter hands what is written to it to line, a line at a time.
type lineWriter struct {
	buf  []byte
	line func(string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			break
		}
		w.line(string(w.buf[:i]))
		w.buf = w.buf[:copy(w.buf, w.buf[i+1:])]
	}
	return len(p), nil
}

// flush hands on a last line that has no newline.
func (w *lineWriter) flush() {
	if len(w.buf) > 0 {
		w.line(string(w.buf))
		w.buf = nil
	}
}

// Sleeper starts a process that does nothing until kill is called or the
// test ends, and returns its pid: a live process other than the test's own,
// for tests of records that name a process (lock words, owners).
func Sleeper(tb testing.TB) (pid int, kill func()) {
	tb.Helper()
	cmd := exec.Command("sleep", "300")
	if err := cmd.Start(); err != nil {
		tb.Fatalf("testproc: starting a sleeper: %v", err)
	}
	kill = func() {
		cmd.Process.Kill()
		cmd.Wait()
	}
	tb.Cleanup(kill)
	return cmd.Process.Pid, kill
}
