package clock

import (
	"bufio"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/timer"
	"golang.org/x/sys/unix"
)

// The multi-process tests run group members as real processes: this test
// binary started again with a childSpec (see TestMain).

func testGroup(t *testing.T) hugemem.Options {
	o := testmem.Options(t, "clk")
	o.Limit, o.SegmentSize = 16<<20, 4<<20
	return o
}

func createGroup(t *testing.T) (*hugemem.Memory, hugemem.Options) {
	t.Helper()
	o := testGroup(t)
	return testmem.Create(t, o), o
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

// childSpec is what the parent tells a child.
type childSpec struct {
	Mem     hugemem.Options
	Mode    Mode
	StandIn *standIn // nil: the real /dev/hpet
}

// startChild starts a group member that selects a clock as spec says.
func startChild(t *testing.T, name string, spec childSpec) *testproc.Child {
	t.Helper()
	return testproc.Start(t, testproc.Config{Name: name, Spec: spec})
}

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
	var spec childSpec
	if testproc.IsChild(&spec) {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}
