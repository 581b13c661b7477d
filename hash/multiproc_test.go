package hash

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

// helpers are the two test programs, built once per test binary run.
type helpers struct{ writer, reader string }

// buildHelpers compiles htwriter and htreader (two different programs)
// into a fresh directory.
func buildHelpers(t *testing.T) helpers {
	t.Helper()
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	dir := t.TempDir()
	h := helpers{writer: filepath.Join(dir, "htwriter"), reader: filepath.Join(dir, "htreader")}
	for bin, pkg := range map[string]string{h.writer: "./internal/xproc/htwriter", h.reader: "./internal/xproc/htreader"} {
		out, err := exec.Command(goTool, "build", "-o", bin, pkg).CombinedOutput()
		require.NoError(t, err, "go build %s: %s", pkg, out)
	}
	return h
}

func (h helpers) runWriter(t *testing.T, o hugemem.Options, args ...string) string {
	t.Helper()
	out, err := h.writerCmd(o, args...).CombinedOutput()
	require.NoError(t, err, "htwriter %v: %s", args, out)
	return string(out)
}

func (h helpers) writerCmd(o hugemem.Options, args ...string) *exec.Cmd {
	return exec.Command(h.writer, append([]string{"-prefix", o.Prefix, "-rundir", o.RuntimeDir, "-table", "xproc"}, args...)...)
}

func (h helpers) readerCmd(o hugemem.Options, env ...string) *exec.Cmd {
	cmd := exec.Command(h.reader)
	cmd.Env = append(os.Environ(), append([]string{"HTR_PREFIX=" + o.Prefix, "HTR_RUNDIR=" + o.RuntimeDir, "HTR_TABLE=xproc"}, env...)...)
	return cmd
}

func (h helpers) runReader(t *testing.T, o hugemem.Options, env ...string) string {
	t.Helper()
	out, err := h.readerCmd(o, env...).CombinedOutput()
	require.NoError(t, err, "htreader %v: %s", env, out)
	return string(out)
}

// xprocKey is the helpers' key format, written a third way.
func xprocKey(tag string, i int) []byte {
	return []byte(tag + strings.Repeat(" ", 6-len(tag)) + fmt.Sprintf("%010d", i))
}

var funcAddr = regexp.MustCompile(`hash func at (0x[0-9a-f]+)`)

// TestTwoBinariesShareATableByKey is the reason for this package: a table
// one program makes is read and written with the by-key API by another
// program whose hash function lives at another address.
func TestTwoBinariesShareATableByKey(t *testing.T) {
	bins := buildHelpers(t)
	for _, fnv := range []bool{false, true} {
		t.Run(fmt.Sprintf("fnv=%v", fnv), func(t *testing.T) {
			m, o := newMemory(t)
			const n = 1000

			// Program A creates the table and adds its keys.
			args := []string{"-op", "create", "-entries", "8192", "-seed", "0x5eed", "-tag", "A", "-n", fmt.Sprint(n)}
			if fnv {
				args = append(args, "-fnv")
			}
			outA := bins.runWriter(t, o, args...)
			require.Contains(t, outA, fmt.Sprintf("added %d", n))

			// Program B finds all of A's keys, then adds its own.
			outB := bins.runReader(t, o, "HTR_CHECK_TAG=A", fmt.Sprintf("HTR_CHECK_N=%d", n),
				"HTR_ADD_TAG=B", "HTR_ADD_FROM=0", fmt.Sprintf("HTR_ADD_N=%d", n))
			require.Contains(t, outB, fmt.Sprintf("found %d", n))
			require.Contains(t, outB, fmt.Sprintf("added %d", n))

			// A finds B's keys.
			require.Contains(t, bins.runWriter(t, o, "-op", "check", "-tag", "B", "-n", fmt.Sprint(n)), fmt.Sprintf("found %d", n))

			a, b := funcAddr.FindStringSubmatch(outA), funcAddr.FindStringSubmatch(outB)
			require.NotNil(t, a, "htwriter output: %s", outA)
			require.NotNil(t, b, "htreader output: %s", outB)
			t.Logf("(*Table).Hash is at %s in htwriter and %s in htreader", a[1], b[1])
			require.NotEqual(t, a[1], b[1], "the test's premise: the two programs have their hash code at different addresses, so a stored function pointer could not work")

			// Both write at once: the lock works across processes.
			w := bins.writerCmd(o, "-op", "add", "-tag", "C", "-n", "2500")
			r := bins.readerCmd(o, "HTR_ADD_TAG=D", "HTR_ADD_FROM=0", "HTR_ADD_N=2500")
			var wOut, rOut strings.Builder
			w.Stdout, w.Stderr, r.Stdout, r.Stderr = &wOut, &wOut, &rOut, &rOut
			require.NoError(t, w.Start())
			require.NoError(t, r.Start())
			require.NoError(t, w.Wait(), "htwriter: %s", &wOut)
			require.NoError(t, r.Wait(), "htreader: %s", &rOut)
			bins.runReader(t, o, "HTR_CHECK_TAG=C", "HTR_CHECK_N=2500")
			bins.runWriter(t, o, "-op", "check", "-tag", "D", "-n", "2500")

			// And this test binary, a third program, sees them all.
			tbl, err := Lookup(m, "xproc")
			require.NoError(t, err)
			f, seed := tbl.HashFunc()
			require.Equal(t, map[bool]HashFunc{false: HashCRC32C, true: HashFNV1a64}[fnv], f)
			require.Equal(t, uint64(0x5eed), seed)
			require.Equal(t, 2*n+5000, tbl.Count())
			for _, tag := range []struct {
				tag string
				n   int
			}{{"A", n}, {"B", n}, {"C", 2500}, {"D", 2500}} {
				for i := 0; i < tag.n; i++ {
					v, err := tbl.Lookup(xprocKey(tag.tag, i))
					require.NoError(t, err, "key %s %d", tag.tag, i)
					require.Equal(t, uint64(i)<<8|uint64(tag.tag[0]), v, "key %s %d", tag.tag, i)
				}
			}
			checkConsistent(t, tbl)
		})
	}
}

// TestWriterKilledInsideAWriteDoesNotWedgeOthers kills a program that adds
// and deletes keys in a loop until it dies holding the table lock, and
// checks that this process then takes the lock over, with the killed
// program still a zombie, and finds the table whole.
func TestWriterKilledInsideAWriteDoesNotWedgeOthers(t *testing.T) {
	bins := buildHelpers(t)
	m, o := newMemory(t)
	tbl, err := Create(m, Config{Name: "xproc", KeyLen: 16, Entries: 2048})
	require.NoError(t, err)
	for i := 0; i < 1000; i++ {
		require.NoError(t, tbl.Add(xprocKey("S", i), uint64(i)))
	}

	const want = 3
	caught, attempts := 0, 0
	for attempt := 0; attempt < 200 && caught < want; attempt++ {
		attempts++
		cmd := bins.writerCmd(o, "-op", "churn", "-tag", "E", "-n", "500")
		stdout, err := cmd.StdoutPipe()
		require.NoError(t, err)
		require.NoError(t, cmd.Start())
		lines := bufio.NewScanner(stdout)
		for lines.Scan() && lines.Text() != "churning" {
		}
		require.NoError(t, lines.Err())
		time.Sleep(time.Duration(1+attempt%7) * time.Millisecond)
		require.NoError(t, cmd.Process.Kill())
		// Not reaped yet: a zombie, whose pid still answers kill(pid, 0).
		for deadline := time.Now().Add(10 * time.Second); !isZombie(cmd.Process.Pid); {
			require.True(t, time.Now().Before(deadline), "pid %d did not become a zombie after SIGKILL", cmd.Process.Pid)
			time.Sleep(100 * time.Microsecond)
		}
		if owner := atomic.LoadUint64(&tbl.hdr.lock); owner>>32 == uint64(cmd.Process.Pid) {
			caught++
			done := make(chan error, 1)
			go func() { done <- tbl.Add(xprocKey("S", 5000+attempt), 1) }()
			select {
			case err := <-done:
				require.NoError(t, err, "Add after the holder died")
			case <-time.After(20 * time.Second):
				t.Fatalf("Add wedged on the lock of killed pid %d (lock word %#x)", cmd.Process.Pid, owner)
			}
			require.NoError(t, tbl.Delete(xprocKey("S", 5000+attempt)))
		}
		cmd.Wait()
		checkConsistent(t, tbl)
		for i := 0; i < 1000; i++ {
			v, err := tbl.Lookup(xprocKey("S", i))
			require.NoError(t, err, "attempt %d: key S %d", attempt, i)
			require.Equal(t, uint64(i), v)
		}
	}
	require.Equal(t, want, caught, "times the writer was killed holding the lock, in %d attempts", attempts)
	t.Logf("caught the writer dead holding the lock %d times in %d attempts", caught, attempts)
}

func isZombie(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && s[i+2] == 'Z'
}
