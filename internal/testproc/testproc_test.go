package testproc

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// spec is what the children of these tests act out.
type spec struct{ Role string }

func TestMain(m *testing.M) {
	var s spec
	if IsChild(&s) {
		os.Exit(runChild(s))
	}
	os.Exit(m.Run())
}

func runChild(s spec) int {
	_, left := os.LookupEnv(specVar)
	switch s.Role {
	case "echo": // echoes its input; "exit N" exits with N
		fmt.Printf("ready %d\n", os.Getpid())
		fmt.Printf("spec left in the environment: %v\n", left)
		fmt.Fprintln(os.Stderr, "a line on stderr")
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			if code, ok := strings.CutPrefix(sc.Text(), "exit "); ok {
				n, _ := strconv.Atoi(code)
				return n
			}
			fmt.Println("echo", sc.Text())
		}
		fmt.Println("bye")
		return 0
	case "hold": // ignores its input and stays
		fmt.Println("ready")
		time.Sleep(time.Hour)
		return 0
	case "fail":
		fmt.Println("error: broken")
		time.Sleep(time.Hour)
		return 0
	case "quit":
		fmt.Println("leaving")
		return 1
	}
	fmt.Println("error: unknown role", s.Role)
	return 2
}

// TestHelperProcess is the child of TestRunNamesTheTestThatPlaysTheChild.
func TestHelperProcess(t *testing.T) {
	v := os.Getenv("TESTPROC_HELPER")
	if v == "" {
		t.Skip("runs only as a child")
	}
	fmt.Println("helper", v)
}

func exitCode(t *testing.T, err error) int {
	t.Helper()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	return exit.ExitCode()
}

func TestAChildTalksInLinesAndExitsWithItsStatus(t *testing.T) {
	c := Start(t, Config{Name: "echo", Spec: spec{"echo"}})
	require.Equal(t, fmt.Sprintf("ready %d", c.Pid()), c.Expect("ready "), "the child is a process of its own")
	require.NotEqual(t, os.Getpid(), c.Pid())
	require.Equal(t, "spec left in the environment: false", c.Expect("spec left"), "IsChild takes the spec out of the environment")
	c.Send("one")
	c.Send("two")
	require.Equal(t, "echo two", c.Expect("echo t"), "lines before the one awaited are passed over")
	c.Send("exit 3")
	require.Equal(t, 3, exitCode(t, c.Wait()))
}

func TestWaitEndsTheInputAndReturnsACleanExit(t *testing.T) {
	c := Start(t, Config{Spec: spec{"echo"}})
	c.Expect("ready")
	require.NoError(t, c.Wait())
	require.NoError(t, c.Wait(), "waiting again returns the same")
}

func TestKillEndsAChildThatIgnoresItsInputAndReapsIt(t *testing.T) {
	c := Start(t, Config{Spec: spec{"hold"}})
	c.Expect("ready")
	c.CloseStdin()
	require.NoError(t, c.Kill())
	require.ErrorIs(t, syscall.Kill(c.Pid(), 0), syscall.ESRCH, "the child is reaped, not a zombie")
	err := c.Wait()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())
	require.ErrorIs(t, c.Kill(), os.ErrProcessDone)
}

func TestRunNamesTheTestThatPlaysTheChild(t *testing.T) {
	c := Start(t, Config{Run: "^TestHelperProcess$", Env: []string{"TESTPROC_HELPER=hello"}})
	require.Equal(t, "helper hello", c.Expect("helper"))
	require.NoError(t, c.Wait())
}

func TestCommandLeavesTheOutputToTheCaller(t *testing.T) {
	out, err := Command(t, Config{Spec: spec{"quit"}}).Output()
	require.Equal(t, "leaving\n", string(out))
	require.Equal(t, 1, exitCode(t, err))
}

func TestCleanupKillsTheChildOrGivesItGrace(t *testing.T) {
	var killed, graced *Child
	t.Run("killed", func(t *testing.T) {
		killed = Start(t, Config{Spec: spec{"hold"}})
		killed.Expect("ready")
	})
	t.Run("graced", func(t *testing.T) {
		graced = Start(t, Config{Spec: spec{"echo"}, Grace: DefaultTimeout})
		graced.Expect("ready")
	})
	var exit *exec.ExitError
	require.ErrorAs(t, killed.err, &exit, "without grace the cleanup kills a child that does not exit by itself")
	require.Equal(t, syscall.SIGKILL, exit.Sys().(syscall.WaitStatus).Signal())
	require.NoError(t, graced.err, "with grace the child exits by itself at the end of its input")
}

// failure runs f with a testing.TB whose Fatalf ends f, and returns what
// f failed with ("" if it did not).
func failure(t *testing.T, f func(tb testing.TB)) string {
	r := &recorder{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(r)
	}()
	<-done
	return r.msg
}

type recorder struct {
	testing.TB
	msg string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) {
	r.msg = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

func TestExpectFailsOnAnErrorLineAnEarlyExitOrTheTimeout(t *testing.T) {
	msg := failure(t, func(tb testing.TB) { Start(tb, Config{Name: "failing", Spec: spec{"fail"}}).Expect("ready") })
	require.Contains(t, msg, `failing (pid `)
	require.Contains(t, msg, `failed while the test waited for a line starting with "ready": error: broken`)

	var line string
	msg = failure(t, func(tb testing.TB) { line = Start(tb, Config{Spec: spec{"fail"}}).Expect("error:") })
	require.Empty(t, msg)
	require.Equal(t, "error: broken", line, "an error line awaited is returned")

	msg = failure(t, func(tb testing.TB) { Start(tb, Config{Spec: spec{"quit"}}).ExpectContaining("ready", "set") })
	require.Contains(t, msg, `exited (exit status 1) before printing a line containing ["ready" "set"]`)

	msg = failure(t, func(tb testing.TB) {
		Start(tb, Config{Spec: spec{"hold"}, Timeout: 100 * time.Millisecond}).Expect("never")
	})
	require.Contains(t, msg, `did not print a line starting with "never" within 100ms`)

	msg = failure(t, func(tb testing.TB) {
		c := Start(tb, Config{Spec: spec{"hold"}, Timeout: 100 * time.Millisecond})
		c.Expect("ready")
		c.Wait()
	})
	require.Contains(t, msg, "did not exit within 100ms")
}

func TestLineWriterSplitsLinesAcrossWrites(t *testing.T) {
	var got []string
	w := &lineWriter{line: func(l string) { got = append(got, l) }}
	for _, s := range []string{"a", "b\nc", "\n\nd"} {
		n, err := w.Write([]byte(s))
		require.NoError(t, err)
		require.Equal(t, len(s), n)
	}
	require.Equal(t, []string{"ab", "c", ""}, got)
	w.flush()
	require.Equal(t, []string{"ab", "c", "", "d"}, got)
}

func TestSleeperLivesUntilKilled(t *testing.T) {
	pid, kill := Sleeper(t)
	require.NoError(t, syscall.Kill(pid, 0), "the sleeper runs")
	kill()
	require.ErrorIs(t, syscall.Kill(pid, 0), syscall.ESRCH, "the sleeper is gone and reaped")
	kill() // a second kill, and the cleanup's, do no harm
}
