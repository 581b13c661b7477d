package ring

import (
	"runtime"
	"sync"
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/timer"
	"golang.org/x/sys/unix"
)

// The benchmarks mirror DPDK's ring_perf_autotest on a 4096-slot ring, so
// their rows can be compared one to one. Single-core rows time one enqueue
// plus one dequeue (of one entry, or of a burst/bulk of 8 or 32) per op.
// Two-core rows run a producer and a consumer goroutine and report, like
// DPDK, the sum of both sides' time per entry.

const (
	perfRingSize  = 4096
	perfRingBytes = uint64(headerSize + perfRingSize*8)
)

// cycles reports TSC cycles per op next to ns/op.
func cycles(b *testing.B, start uint64) {
	b.ReportMetric(float64(timer.Cycles()-start)/float64(b.N), "cycles/op")
}

func BenchmarkSPSCSingle(b *testing.B) {
	r := mapRing(b, "perf", perfRingSize, 0)
	b.ResetTimer()
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.SPEnqueue(uint64(i))
		r.SCDequeue()
	}
	cycles(b, start)
}

func BenchmarkMPMCSingle(b *testing.B) {
	r := mapRing(b, "perf", perfRingSize, 0)
	b.ResetTimer()
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.MPEnqueue(uint64(i))
		r.MCDequeue()
	}
	cycles(b, start)
}

// The burst and bulk rows call the ring directly rather than through a
// function value, which would cost an indirect call DPDK does not pay.

func BenchmarkSPSCBurst8(b *testing.B)  { benchSPSCBurst(b, 8) }
func BenchmarkSPSCBurst32(b *testing.B) { benchSPSCBurst(b, 32) }
func BenchmarkMPMCBurst8(b *testing.B)  { benchMPMCBurst(b, 8) }
func BenchmarkMPMCBurst32(b *testing.B) { benchMPMCBurst(b, 32) }
func BenchmarkSPSCBulk8(b *testing.B)   { benchSPSCBulk(b, 8) }
func BenchmarkSPSCBulk32(b *testing.B)  { benchSPSCBulk(b, 32) }
func BenchmarkMPMCBulk8(b *testing.B)   { benchMPMCBulk(b, 8) }
func BenchmarkMPMCBulk32(b *testing.B)  { benchMPMCBulk(b, 32) }

func benchSPSCBurst(b *testing.B, n int) {
	r, burst := perfRing(b, n)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.SPEnqueueBurst(burst)
		r.SCDequeueBurst(burst)
	}
	cycles(b, start)
}

func benchMPMCBurst(b *testing.B, n int) {
	r, burst := perfRing(b, n)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.MPEnqueueBurst(burst)
		r.MCDequeueBurst(burst)
	}
	cycles(b, start)
}

func benchSPSCBulk(b *testing.B, n int) {
	r, burst := perfRing(b, n)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.SPEnqueueBulk(burst)
		r.SCDequeueBulk(burst)
	}
	cycles(b, start)
}

func benchMPMCBulk(b *testing.B, n int) {
	r, burst := perfRing(b, n)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.MPEnqueueBulk(burst)
		r.MCDequeueBulk(burst)
	}
	cycles(b, start)
}

func perfRing(b *testing.B, n int) (*Ring, []uint64) {
	r := mapRing(b, "perf", perfRingSize, 0)
	burst := make([]uint64, n)
	b.ResetTimer()
	return r, burst
}

// The empty rows time a bulk dequeue of 8 from an empty ring, DPDK's
// "empty bulk deq" rows.

func BenchmarkSPSCEmptyDequeueBulk8(b *testing.B) {
	r, burst := perfRing(b, 8)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.SCDequeueBulk(burst)
	}
	cycles(b, start)
}

func BenchmarkMPMCEmptyDequeueBulk8(b *testing.B) {
	r, burst := perfRing(b, 8)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		r.MCDequeueBulk(burst)
	}
	cycles(b, start)
}

// The reference rows run the Go implementation that non-amd64 and race
// builds use, for comparison with the assembly.

func BenchmarkReferenceSPSCSingle(b *testing.B) {
	r, _ := perfRing(b, 1)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		goEnqueue1(r, uint64(i), false)
		goDequeue1(r, false)
	}
	cycles(b, start)
}

func BenchmarkReferenceSPSCBulk8(b *testing.B)  { benchReference(b, 8, false) }
func BenchmarkReferenceSPSCBulk32(b *testing.B) { benchReference(b, 32, false) }
func BenchmarkReferenceMPMCBulk8(b *testing.B)  { benchReference(b, 8, true) }
func BenchmarkReferenceMPMCBulk32(b *testing.B) { benchReference(b, 32, true) }

func benchReference(b *testing.B, n int, multi bool) {
	r, burst := perfRing(b, n)
	start := timer.Cycles()
	for i := 0; i < b.N; i++ {
		goEnqueueN(r, burst, false, multi)
		goDequeueN(r, burst, false, multi)
	}
	cycles(b, start)
}

// benchTwoCores moves b.N entries, in bulks of n, from a producer goroutine
// to a consumer goroutine, each pinned to its own CPU. An op is one entry;
// the reported time is the sum over both goroutines, as in DPDK's "two
// physical cores" rows. The retry rates say which side waited for the
// other: a full ring makes the producer retry, an empty one the consumer.
func benchTwoCores(b *testing.B, n int, multi bool) {
	if runtime.GOMAXPROCS(0) < 2 || runtime.NumCPU() < 2 { // NumCPU counts the CPUs this process may use
		b.Skip("needs two CPUs and GOMAXPROCS >= 2")
	}
	shared := mapRing(b, "perf", perfRingSize, 0)
	iters := b.N/n + 1
	var wg, ready sync.WaitGroup
	var cyc, retries [2]uint64
	side := func(cpu int) {
		defer wg.Done()
		defer pinThread(b, cpu)()
		// Each side gets its own handle and a burst on cache lines of its
		// own, like two processes: nothing but the ring itself is shared.
		r, err := AttachAt(unsafe.Pointer(shared.hdr), perfRingBytes)
		if err != nil {
			b.Error(err)
			return
		}
		burst := make([]uint64, n+16)[8 : 8+n]
		ready.Done()
		ready.Wait()
		start := timer.Cycles()
		retries[cpu] = transfer(r, burst, iters, cpu == 0, multi)
		cyc[cpu] = timer.Cycles() - start
	}
	wg.Add(2)
	ready.Add(2)
	b.ResetTimer()
	go side(0)
	go side(1)
	wg.Wait()
	b.StopTimer()
	b.ReportMetric(float64(cyc[0]+cyc[1])/float64(iters*n), "cycles/entry")
	b.ReportMetric(float64(retries[0])/float64(iters), "enq-retries/op")
	b.ReportMetric(float64(retries[1])/float64(iters), "deq-retries/op")
}

// transfer enqueues (produce) or dequeues iters bulks, retrying each until
// it succeeds, and returns how many times it retried.
func transfer(r *Ring, burst []uint64, iters int, produce, multi bool) (retries uint64) {
	for i := 0; i < iters; i++ {
		for {
			var done bool
			switch {
			case len(burst) == 1 && produce:
				done = r.SPEnqueue(burst[0])
			case len(burst) == 1:
				_, done = r.SCDequeue()
			case produce && !multi:
				done = r.SPEnqueueBulk(burst) != 0
			case produce && multi:
				done = r.MPEnqueueBulk(burst) != 0
			case !multi:
				done = r.SCDequeueBulk(burst) != 0
			default:
				done = r.MCDequeueBulk(burst) != 0
			}
			if done {
				break
			}
			retries++
			cpuRelax()
		}
	}
	return retries
}

func BenchmarkTwoCoresSPSCSingle(b *testing.B) { benchTwoCores(b, 1, false) }
func BenchmarkTwoCoresSPSCBulk8(b *testing.B)  { benchTwoCores(b, 8, false) }
func BenchmarkTwoCoresSPSCBulk32(b *testing.B) { benchTwoCores(b, 32, false) }
func BenchmarkTwoCoresMPMCBulk8(b *testing.B)  { benchTwoCores(b, 8, true) }
func BenchmarkTwoCoresMPMCBulk32(b *testing.B) { benchTwoCores(b, 32, true) }

// pinThread locks the calling goroutine to its thread and that thread to
// the n-th CPU this process may run on, like an lcore; the returned func
// undoes both.
func pinThread(b *testing.B, n int) func() {
	runtime.LockOSThread()
	var old, set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &old); err != nil {
		b.Errorf("sched_getaffinity: %v", err)
		return runtime.UnlockOSThread
	}
	for cpu := 0; cpu < 1024; cpu++ {
		if old.IsSet(cpu) {
			if n == 0 {
				set.Set(cpu)
				break
			}
			n--
		}
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		b.Errorf("pin thread to a CPU: %v", err)
	}
	return func() {
		unix.SchedSetaffinity(0, &old)
		runtime.UnlockOSThread()
	}
}
