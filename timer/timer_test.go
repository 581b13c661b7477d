package timer

import (
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
	"golang.org/x/sys/unix"
)

func monotonicRawNs(t testing.TB) int64 {
	t.Helper()
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts); err != nil {
		t.Fatalf("clock_gettime(CLOCK_MONOTONIC_RAW): %v", err)
	}
	return ts.Nano()
}

func TestHzAgreesWithA200msMeasurementAgainstMonotonicRaw(t *testing.T) {
	hz := Hz()
	t.Logf("Hz = %d (%s)", hz, Source())

	t0, c0 := monotonicRawNs(t), Cycles()
	time.Sleep(200 * time.Millisecond)
	t1, c1 := monotonicRawNs(t), Cycles()

	measured := float64(c1-c0) * 1e9 / float64(t1-t0)
	if dev := math.Abs(float64(hz)-measured) / measured; dev > 0.02 {
		t.Fatalf("Hz() = %d, but %d cycles passed in %d ns (%.0f Hz): off by %.2f%%, want within 2%%",
			hz, c1-c0, t1-t0, measured, dev*100)
	}
}

func TestHzIsDeterminedOnce(t *testing.T) {
	first, src := Hz(), Source()
	for range 3 {
		if got := Hz(); got != first {
			t.Fatalf("Hz() changed from %d to %d", first, got)
		}
	}
	if got := Source(); got != src {
		t.Fatalf("Source() changed from %q to %q", src, got)
	}
	known := map[string]bool{
		"cpuid leaf 0x15":                        true,
		"hypervisor leaf 0x40000010":             true,
		"calibrated against CLOCK_MONOTONIC_RAW": true,
		"nanoseconds of CLOCK_MONOTONIC_RAW":     true,
	}
	if !known[src] {
		t.Fatalf("Source() = %q, want one of %v", src, known)
	}
}

func TestSetHzBeforeFirstUseFixesTheFrequency(t *testing.T) {
	var f freq
	if err := f.set(1_000_000_000); err != nil {
		t.Fatalf("set(1e9) on an undetermined frequency: %v", err)
	}
	if got := f.hz(); got != 1_000_000_000 {
		t.Fatalf("hz() after set(1e9) = %d, want 1000000000", got)
	}
	if got := f.source(); got != "SetHz" {
		t.Fatalf("source() after set = %q, want %q", got, "SetHz")
	}
	if err := f.set(1_000_000_000); err != nil {
		t.Fatalf("setting the value already in use again: %v, want nil", err)
	}
}

func TestSetHzAfterFirstUseRefusesADifferentValue(t *testing.T) {
	var f freq
	hz := f.hz()
	err := f.set(hz + 1_000_000)
	if err == nil {
		t.Fatalf("set(%d) after hz() determined %d: got nil error, want a refusal", hz+1_000_000, hz)
	}
	t.Log(err)
	if got := f.hz(); got != hz {
		t.Fatalf("hz() after a refused set = %d, want unchanged %d", got, hz)
	}
}

func TestSetHzRefusesZero(t *testing.T) {
	var f freq
	if err := f.set(0); err == nil {
		t.Fatal("set(0): got nil error, want a refusal")
	}
}

// handoff passes a token back and forth between two threads pinned to
// different CPUs. Each side reads the counter with read right after seeing the
// other side's reading, so its reading should not be smaller. It returns how
// often it was smaller and by how much at worst.
func handoff(t *testing.T, read func() uint64) (backwards int, worst uint64) {
	t.Helper()
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	var cpus []int
	for cpu := 0; cpu < 1024 && len(cpus) < 2; cpu++ {
		if allowed.IsSet(cpu) {
			cpus = append(cpus, cpu)
		}
	}
	if len(cpus) < 2 {
		testenv.Missing(t, "two CPUs in the affinity mask (have %d)", allowed.Count())
	}

	const handoffs = 20000
	const abandoned = -1
	var (
		turn  atomic.Int32
		last  atomic.Uint64
		mu    sync.Mutex
		wg    sync.WaitGroup
		fails []string
	)
	deadline := time.Now().Add(5 * time.Second)
	for side, cpu := range cpus {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runtime.LockOSThread() // never unlocked: the pinned thread dies with the goroutine
			var set unix.CPUSet
			set.Set(cpu)
			if err := unix.SchedSetaffinity(0, &set); err != nil {
				mu.Lock()
				fails = append(fails, fmt.Sprintf("pinning to CPU %d: %v", cpu, err))
				mu.Unlock()
				turn.Store(abandoned)
				return
			}
			for range handoffs / 2 {
				for spins := 0; turn.Load() != int32(side); spins++ {
					if turn.Load() == abandoned {
						return
					}
					if spins%64 == 63 { // the CPUs are shared: let the other side run
						if time.Now().After(deadline) {
							mu.Lock()
							fails = append(fails, "handoffs did not finish within 5 s")
							mu.Unlock()
							turn.Store(abandoned)
							return
						}
						runtime.Gosched()
					}
				}
				now, prev := read(), last.Load()
				if now < prev {
					mu.Lock()
					backwards++
					worst = max(worst, prev-now)
					mu.Unlock()
				}
				last.Store(now)
				turn.Store(int32(1 - side))
			}
		}()
	}
	wg.Wait()
	if len(fails) > 0 {
		t.Fatalf("handoff between CPUs %v: %s", cpus, fails[0])
	}
	return backwards, worst
}

func TestCyclesOrderedIsMonotonicAcrossCPUs(t *testing.T) {
	if n, worst := handoff(t, CyclesOrdered); n > 0 {
		t.Fatalf("CyclesOrdered went backwards %d times between two CPUs, by up to %d cycles; want never", n, worst)
	}
}

// Cycles is not ordered after earlier loads, so it may come out a few dozen
// cycles early; anything near a microsecond would mean the CPUs' TSCs differ.
func TestCyclesIsMonotonicAcrossCPUsUpToEarlyExecution(t *testing.T) {
	slack := Hz() / 1_000_000
	n, worst := handoff(t, Cycles)
	t.Logf("Cycles went backwards %d times, by up to %d cycles", n, worst)
	if worst >= slack {
		t.Fatalf("Cycles went backwards between two CPUs by %d cycles; want less than %d (1 us)", worst, slack)
	}
}

func BenchmarkCycles(b *testing.B) {
	var sink uint64
	for b.Loop() {
		sink += Cycles()
	}
	_ = sink
}

func BenchmarkHz(b *testing.B) {
	Hz()
	var sink uint64
	for b.Loop() {
		sink += Hz()
	}
	_ = sink
}

func BenchmarkCyclesOrdered(b *testing.B) {
	var sink uint64
	for b.Loop() {
		sink += CyclesOrdered()
	}
	_ = sink
}
