package timer

import (
	"fmt"
	"math/bits"
	"runtime"
	"time"

	"golang.org/x/sys/unix"
)

func rdtsc() uint64

func rdtscOrdered() uint64 // LFENCE; RDTSC

func cpuid(leaf, sub uint32) (a, b, c, d uint32)

// InvariantTSC reports whether the CPU says its TSC ticks at a constant rate
// in every P-, C- and T-state (CPUID 0x80000007, EDX bit 8). Without it, Hz is
// only valid while the CPU keeps its clock and Cycles is unfit for timing.
func InvariantTSC() bool {
	if maxExt, _, _, _ := cpuid(0x80000000, 0); maxExt < 0x80000007 {
		return false
	}
	_, _, _, d := cpuid(0x80000007, 0)
	return d&(1<<8) != 0
}

func detectHz() (uint64, string) {
	if maxLeaf, _, _, _ := cpuid(0, 0); maxLeaf >= 0x15 {
		if hz, ok := hzFromLeaf15(cpuid(0x15, 0)); ok {
			return hz, "cpuid leaf 0x15"
		}
	}
	if _, _, c, _ := cpuid(1, 0); c&(1<<31) != 0 { // running under a hypervisor
		maxHyper, _, _, _ := cpuid(0x40000000, 0)
		if maxHyper >= 0x40000010 && maxHyper < 0x40010000 {
			if hz, ok := hzFromHypervisorKHz(cpuid(0x40000010, 0)); ok {
				return hz, "hypervisor leaf 0x40000010"
			}
		}
	}
	return calibrate(100 * time.Millisecond), "calibrated against CLOCK_MONOTONIC_RAW"
}

func checkSetHz(hz uint64) error {
	if hz < minHz || hz > maxHz {
		return fmt.Errorf("timer: SetHz(%d): a TSC frequency must be between %d and %d Hz", hz, uint64(minHz), uint64(maxHz))
	}
	return nil
}

// hzFromLeaf15 computes the TSC frequency from CPUID leaf 0x15: EAX and EBX
// are the TSC/crystal ratio's denominator and numerator, ECX the crystal
// frequency in Hz. Any of them may be 0 ("not enumerated").
func hzFromLeaf15(den, num, crystal, _ uint32) (uint64, bool) {
	if den == 0 || num == 0 || crystal == 0 {
		return 0, false
	}
	hi, lo := bits.Mul64(uint64(crystal), uint64(num))
	if hi >= uint64(den) { // quotient would not fit in 64 bits
		return 0, false
	}
	hz, _ := bits.Div64(hi, lo, uint64(den))
	return hz, hz >= minHz && hz <= maxHz
}

// hzFromHypervisorKHz reads the TSC frequency that VMware-compatible
// hypervisors (and QEMU/KVM with vmware-cpuid-freq) publish in leaf
// 0x40000010: EAX is the TSC frequency in kHz.
func hzFromHypervisorKHz(khz, _, _, _ uint32) (uint64, bool) {
	hz := uint64(khz) * 1000
	return hz, hz >= minHz && hz <= maxHz
}

// calibrate counts TSC cycles over about d of CLOCK_MONOTONIC_RAW (the
// hardware clock without NTP slewing) and rounds to whole kHz: the unit the
// kernel keeps tsc_khz in, and about how far repeated 100 ms calibrations
// differ on a KVM guest (under 1 kHz at 2.6 GHz).
func calibrate(d time.Duration) uint64 {
	runtime.LockOSThread() // fewer migrations between the paired reads
	defer runtime.UnlockOSThread()
	c0, t0 := pairedRead()
	time.Sleep(d)
	c1, t1 := pairedRead()
	if t1 <= t0 || c1 <= c0 {
		// The clock cannot fail or stand still on Linux; if it somehow does,
		// a fixed guess keeps conversions finite rather than dividing by 0.
		return 1_000_000_000
	}
	hz := float64(c1-c0) * 1e9 / float64(t1-t0)
	return roundHz(uint64(hz), 1000)
}

// pairedRead reads CLOCK_MONOTONIC_RAW (ns) and the TSC at the same moment:
// it brackets the clock read between two TSC reads, keeps the tightest of a
// few tries and takes the bracket's midpoint.
func pairedRead() (cycles uint64, ns int64) {
	best := ^uint64(0)
	for range 8 {
		var ts unix.Timespec
		before := rdtsc()
		err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts)
		after := rdtsc()
		if err != nil || after < before {
			continue
		}
		if w := after - before; w < best {
			best = w
			cycles = before + w/2
			ns = ts.Nano()
		}
	}
	return cycles, ns
}

// roundHz rounds hz to the nearest multiple of step.
func roundHz(hz, step uint64) uint64 {
	return (hz + step/2) / step * step
}
