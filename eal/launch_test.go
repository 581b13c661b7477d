package eal

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/internal/testenv"
	"golang.org/x/sys/unix"
)

// allowedCPUs lists the CPUs this test may run on.
func allowedCPUs(t *testing.T) []int {
	t.Helper()
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	var cpus []int
	for c := range maxCPUs {
		if set.IsSet(c) {
			cpus = append(cpus, c)
		}
	}
	return cpus
}

func needCPUs(t *testing.T, n int) []int {
	t.Helper()
	cpus := allowedCPUs(t)
	if len(cpus) < n {
		testenv.Missing(t, "%d CPUs in the affinity mask (have %v)", n, cpus)
	}
	return cpus[:n]
}

// threadCPUs returns the calling thread's affinity and the CPU it is on.
func threadCPUs() (affinity []int, current int, err error) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err != nil {
		return nil, 0, err
	}
	for c := range maxCPUs {
		if set.IsSet(c) {
			affinity = append(affinity, c)
		}
	}
	var cpu uint32
	if _, _, errno := unix.RawSyscall(unix.SYS_GETCPU, uintptr(unsafe.Pointer(&cpu)), 0, 0); errno != 0 {
		return nil, 0, errno
	}
	return affinity, int(cpu), nil
}

func newLauncher(t *testing.T, lcores []Lcore, main int) *Launcher {
	t.Helper()
	l, err := NewLauncher(lcores, main)
	if err != nil {
		t.Fatalf("NewLauncher(%+v, %d): %v", lcores, main, err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

type placement struct {
	affinity []int
	cpu      int
}

func TestWorkerRunsOnlyOnItsLcoresCPUs(t *testing.T) {
	cpus := needCPUs(t, 2)
	// lcore 5 (main) on the first CPU, workers: lcore 1 on the second,
	// lcore 7 on the first: the lcore ID and the CPU differ on purpose.
	l := newLauncher(t, []Lcore{lc(5, cpus[0]), lc(1, cpus[1]), lc(7, cpus[0])}, 5)
	if got := l.Workers(); !slices.Equal(got, []int{1, 7}) {
		t.Fatalf("Workers() = %v, want [1 7]", got)
	}
	want := map[int]int{1: cpus[1], 7: cpus[0]}
	for round := range 3 { // the pinning holds for every launch, not only the first
		got := map[int]placement{}
		results := make(chan [2]any, 2)
		if err := l.LaunchWorkers(func(id int) error {
			aff, cpu, err := threadCPUs()
			results <- [2]any{id, placement{aff, cpu}}
			return err
		}); err != nil {
			t.Fatalf("LaunchWorkers: %v", err)
		}
		if err := l.WaitAll(); err != nil {
			t.Fatalf("round %d: reading placement: %v", round, err)
		}
		close(results)
		for r := range results {
			got[r[0].(int)] = r[1].(placement)
		}
		for id, cpu := range want {
			p, ok := got[id]
			if !ok {
				t.Fatalf("round %d: lcore %d's function did not run", round, id)
			}
			if !slices.Equal(p.affinity, []int{cpu}) || p.cpu != cpu {
				t.Errorf("round %d: lcore %d ran with affinity %v on CPU %d, want affinity [%d] on CPU %d", round, id, p.affinity, p.cpu, cpu, cpu)
			}
		}
	}
}

func TestWorkerWithACPUSetGetsTheWholeSet(t *testing.T) {
	cpus := needCPUs(t, 2)
	l := newLauncher(t, []Lcore{lc(0, cpus[0]), lc(1, cpus...)}, 0)
	var got placement
	if err := l.RemoteLaunch(1, func(int) error {
		var err error
		got.affinity, got.cpu, err = threadCPUs()
		return err
	}); err != nil {
		t.Fatalf("RemoteLaunch: %v", err)
	}
	if err := l.Wait(1); err != nil {
		t.Fatalf("Wait: %v", err)
	}
	if !slices.Equal(got.affinity, cpus) || !slices.Contains(cpus, got.cpu) {
		t.Fatalf("lcore 1 ran with affinity %v on CPU %d, want affinity %v", got.affinity, got.cpu, cpus)
	}
}

func TestRunMainPinsTheCallerAndThenRestoresItsAffinity(t *testing.T) {
	cpus := allowedCPUs(t)
	main := cpus[len(cpus)-1]
	l := newLauncher(t, []Lcore{lc(3, main)}, 3)

	runtime.LockOSThread() // stay on one thread to compare before and after
	defer runtime.UnlockOSThread()
	before, _, err := threadCPUs()
	if err != nil {
		t.Fatal(err)
	}
	var inside placement
	var ranAs int
	if err := l.RunMain(func(id int) error {
		ranAs = id
		inside.affinity, inside.cpu, err = threadCPUs()
		return err
	}); err != nil {
		t.Fatalf("RunMain: %v", err)
	}
	after, _, err := threadCPUs()
	if err != nil {
		t.Fatal(err)
	}
	if ranAs != 3 {
		t.Errorf("RunMain's function got lcore ID %d, want 3", ranAs)
	}
	if !slices.Equal(inside.affinity, []int{main}) || inside.cpu != main {
		t.Errorf("RunMain's function ran with affinity %v on CPU %d, want [%d]", inside.affinity, inside.cpu, main)
	}
	if !slices.Equal(after, before) {
		t.Errorf("after RunMain the thread's affinity is %v, want it restored to %v", after, before)
	}
}

var errLink = errors.New("link down")

func TestWaitReturnsTheFunctionsError(t *testing.T) {
	cpus := allowedCPUs(t)
	l := newLauncher(t, []Lcore{lc(0, cpus[0]), lc(1, cpus[0]), lc(2, cpus[0])}, 0)
	if err := l.RemoteLaunch(2, func(id int) error { return fmt.Errorf("port %d: %w", id, errLink) }); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoteLaunch(1, func(int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.Wait(2); !errors.Is(err, errLink) || err.Error() != "port 2: link down" {
		t.Errorf("Wait(2) = %v, want the function's error \"port 2: link down\"", err)
	}
	if err := l.Wait(1); err != nil {
		t.Errorf("Wait(1) = %v, want nil", err)
	}
	if err := l.Wait(2); err != nil {
		t.Errorf("a second Wait(2) = %v, want nil: the error was collected", err)
	}
}

func TestWaitAllAndRunReportEachFailingLcore(t *testing.T) {
	cpus := allowedCPUs(t)
	l := newLauncher(t, []Lcore{lc(0, cpus[0]), lc(1, cpus[0]), lc(2, cpus[0]), lc(3, cpus[0])}, 0)
	failOdd := func(id int) error {
		if id%2 == 1 {
			return fmt.Errorf("queue %d: %w", id, errLink)
		}
		return nil
	}
	if err := l.LaunchWorkers(failOdd); err != nil {
		t.Fatal(err)
	}
	err := l.WaitAll()
	if got := failedLcores(err); !slices.Equal(got, []int{1, 3}) {
		t.Fatalf("WaitAll() = %v: failed lcores %v, want [1 3]", err, got)
	}
	if !errors.Is(err, errLink) {
		t.Errorf("errors.Is(WaitAll(), errLink) = false, want true")
	}

	err = l.Run(func(id int) error {
		if id == 0 || id == 2 {
			return errLink
		}
		return nil
	})
	if got := failedLcores(err); !slices.Equal(got, []int{0, 2}) {
		t.Fatalf("Run() = %v: failed lcores %v, want [0 2] (main included)", err, got)
	}
}

// failedLcores lists the lcores of the *LcoreError values joined in err.
func failedLcores(err error) []int {
	var ids []int
	var walk func(error)
	walk = func(err error) {
		var le *LcoreError
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
		} else if errors.As(err, &le) {
			ids = append(ids, le.Lcore)
		}
	}
	if err != nil {
		walk(err)
	}
	return ids
}

func TestLaunchingOnABusyLcoreFailsUntilWaited(t *testing.T) {
	cpus := allowedCPUs(t)
	l := newLauncher(t, []Lcore{lc(0, cpus[0]), lc(1, cpus[0]), lc(2, cpus[0])}, 0)
	release := make(chan struct{})
	if err := l.RemoteLaunch(1, func(int) error { <-release; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoteLaunch(1, func(int) error { return nil }); !errors.Is(err, ErrBusy) {
		t.Errorf("RemoteLaunch on a running lcore = %v, want ErrBusy", err)
	}
	var ran atomic.Int32
	if err := l.LaunchWorkers(func(int) error { ran.Add(1); return nil }); !errors.Is(err, ErrBusy) {
		t.Errorf("LaunchWorkers with lcore 1 running = %v, want ErrBusy", err)
	}
	close(release)
	if err := l.WaitAll(); err != nil {
		t.Fatal(err)
	}
	if n := ran.Load(); n != 0 {
		t.Errorf("LaunchWorkers failed but ran its function on %d lcores, want none", n)
	}
	// Finished but not waited for is still busy.
	if err := l.RemoteLaunch(2, func(int) error { return nil }); err != nil {
		t.Fatal(err)
	}
	time.Sleep(10 * time.Millisecond)
	if err := l.RemoteLaunch(2, func(int) error { return nil }); !errors.Is(err, ErrBusy) {
		t.Errorf("RemoteLaunch on a finished, unwaited lcore = %v, want ErrBusy", err)
	}
	if err := l.Wait(2); err != nil {
		t.Fatal(err)
	}
	if err := l.RemoteLaunch(2, func(int) error { return nil }); err != nil {
		t.Errorf("RemoteLaunch after Wait = %v, want nil", err)
	}
}

func TestRunMainWhileRunMainRunsIsBusy(t *testing.T) {
	cpus := allowedCPUs(t)
	l := newLauncher(t, []Lcore{lc(0, cpus[0])}, 0)
	entered, release := make(chan struct{}), make(chan struct{})
	done := make(chan error)
	go func() { done <- l.RunMain(func(int) error { close(entered); <-release; return nil }) }()
	<-entered
	if err := l.RunMain(func(int) error { return nil }); !errors.Is(err, ErrBusy) {
		t.Errorf("concurrent RunMain = %v, want ErrBusy", err)
	}
	close(release)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestLaunchRejectsTheMainLcoreUnknownLcoresAndNilFunctions(t *testing.T) {
	cpus := allowedCPUs(t)
	l := newLauncher(t, []Lcore{lc(0, cpus[0]), lc(4, cpus[0])}, 0)
	nop := func(int) error { return nil }
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"RemoteLaunch on main", l.RemoteLaunch(0, nop), "lcore 0 is the main lcore"},
		{"RemoteLaunch on unknown", l.RemoteLaunch(9, nop), "no lcore 9"},
		{"RemoteLaunch nil", l.RemoteLaunch(4, nil), "fn is nil"},
		{"Wait on main", l.Wait(0), "use RunMain"},
		{"Wait on unknown", l.Wait(-1), "no lcore -1"},
		{"LaunchWorkers nil", l.LaunchWorkers(nil), "fn is nil"},
		{"RunMain nil", l.RunMain(nil), "fn is nil"},
	} {
		if tc.err == nil || !strings.Contains(tc.err.Error(), tc.want) {
			t.Errorf("%s: error = %v, want one mentioning %q", tc.name, tc.err, tc.want)
		}
	}
	if err := l.Wait(4); err != nil {
		t.Errorf("Wait on an idle lcore = %v, want nil", err)
	}
}

func TestNewLauncherRejectsBadLcoreSets(t *testing.T) {
	cpus := allowedCPUs(t)
	c := cpus[0]
	var unusable int = -1
	for cand := maxCPUs - 1; cand >= 0; cand-- {
		if !slices.Contains(cpus, cand) {
			unusable = cand
			break
		}
	}
	tests := []struct {
		name   string
		lcores []Lcore
		main   int
		want   string
	}{
		{"no lcores", nil, 0, "no lcores"},
		{"main missing", []Lcore{lc(1, c)}, 0, "main lcore 0 is not one of the lcores (1)"},
		{"duplicate", []Lcore{lc(0, c), lc(0, c)}, 0, "lcore 0 is listed twice"},
		{"ID too large", []Lcore{lc(MaxLcores, c)}, MaxLcores, "lcore ID 128: want 0 to 127"},
		{"negative ID", []Lcore{lc(-1, c)}, -1, "lcore ID -1"},
		{"no CPUs", []Lcore{lc(0, c), lc(1)}, 0, "lcore 1 has no CPUs"},
		{"CPU out of range", []Lcore{lc(0, c), lc(1, 5000)}, 0, "CPU 5000: want 0 to 1023"},
	}
	if unusable >= 0 {
		tests = append(tests, struct {
			name   string
			lcores []Lcore
			main   int
			want   string
		}{"CPU outside the affinity mask", []Lcore{lc(0, c), lc(1, c), lc(2, unusable)}, 0, fmt.Sprintf("lcore 2: pinning a thread to CPUs %d", unusable)})
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l, err := NewLauncher(tc.lcores, tc.main)
			if err == nil {
				l.Close()
				t.Fatalf("NewLauncher(%+v, %d) succeeded, want an error mentioning %q", tc.lcores, tc.main, tc.want)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("NewLauncher(%+v, %d) error %q does not mention %q", tc.lcores, tc.main, err, tc.want)
			}
		})
	}
}

func TestCloseLetsRunningFunctionsFinishAndRefusesNewLaunches(t *testing.T) {
	cpus := allowedCPUs(t)
	l, err := NewLauncher([]Lcore{lc(0, cpus[0]), lc(1, cpus[0])}, 0)
	if err != nil {
		t.Fatal(err)
	}
	var finished atomic.Bool
	if err := l.RemoteLaunch(1, func(int) error {
		time.Sleep(20 * time.Millisecond)
		finished.Store(true)
		return errLink
	}); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if !finished.Load() {
		t.Error("Close returned before the running function finished")
	}
	if err := l.Wait(1); !errors.Is(err, errLink) {
		t.Errorf("Wait after Close = %v, want the function's error", err)
	}
	if err := l.RemoteLaunch(1, func(int) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("RemoteLaunch after Close = %v, want ErrClosed", err)
	}
	if err := l.LaunchWorkers(func(int) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("LaunchWorkers after Close = %v, want ErrClosed", err)
	}
	if err := l.Close(); err != nil {
		t.Errorf("second Close = %v, want nil", err)
	}
}

func TestLauncherFromParsedOptions(t *testing.T) {
	cpus := needCPUs(t, 2)
	o, _, err := ParseArgs([]string{"--lcores", fmt.Sprintf("0@%d,1@%d", cpus[1], cpus[0])})
	if err != nil {
		t.Fatal(err)
	}
	l := newLauncher(t, o.Lcores, o.MainLcore)
	seen := make([]int, 2)
	if err := l.Run(func(id int) error {
		_, cpu, err := threadCPUs()
		seen[id] = cpu
		return err
	}); err != nil {
		t.Fatalf("Run: %v", err)
	}
	if seen[0] != cpus[1] || seen[1] != cpus[0] {
		t.Fatalf("lcores 0 and 1 ran on CPUs %v, want [%d %d]", seen, cpus[1], cpus[0])
	}
}
