// Package timer reads the CPU's time-stamp counter and knows its frequency.
//
// Cycles returns the raw counter; Hz says how many cycles make a second.
// Packet-path code measures with Cycles because it costs a few nanoseconds and
// never enters the kernel.
//
// OpenHPET gives access to the other hardware clock, the HPET, through
// /dev/hpet; each open holds one of its scarce comparators. Which of the two
// a process measures time with, under the group's rule for sharing the HPET,
// is decided by package timer/clock; package timer/timerlist runs timers on
// lcores.
//
// The frequency is found once per process, at the first call of Hz or Source:
// from CPUID leaf 0x15 when the CPU states its crystal frequency, else from
// the hypervisor leaf 0x40000010 when the hypervisor offers it, else by
// counting cycles against CLOCK_MONOTONIC_RAW for about 100 ms. A process
// joining a group adopts the value the group recorded with SetHz before
// anything calls Hz (clock.Select does this), so that all processes convert
// cycles to time the same way and only the first spends 100 ms calibrating.
//
// On amd64 the counter is the TSC (RDTSC). On other architectures Cycles
// returns CLOCK_MONOTONIC_RAW in nanoseconds and Hz is 1e9, so code written
// against this package runs everywhere, only slower.
package timer

import (
	"fmt"
	"sync"
)

// Cycles returns the current value of the time-stamp counter.
func Cycles() uint64 { return rdtsc() }

// CyclesOrdered is Cycles read only after every earlier instruction, loads
// included, has completed. Cycles is cheaper, but the CPU may execute it ahead
// of earlier loads, so a reading taken right after seeing another CPU's
// reading can be a few dozen cycles smaller than it. Use CyclesOrdered when a
// timestamp is compared with one taken on another CPU, e.g. for the latency
// of a packet handed over a ring.
func CyclesOrdered() uint64 { return rdtscOrdered() }

// Hz returns how many Cycles make one second. The first call determines the
// frequency (see the package doc) and may take about 100 ms; later calls
// return the same value.
func Hz() uint64 { return process.hz() }

// Source says where Hz came from: "cpuid leaf 0x15",
// "hypervisor leaf 0x40000010", "calibrated against CLOCK_MONOTONIC_RAW",
// "SetHz" (given by the program, e.g. the primary process's recorded value),
// or, off amd64, "nanoseconds of CLOCK_MONOTONIC_RAW". Calling it determines
// the frequency if that has not happened yet.
func Source() string { return process.source() }

// SetHz fixes the frequency instead of letting the first Hz call determine it.
// A secondary process uses it to adopt the frequency its primary recorded.
// It must run before anything in the process calls Hz or Source: once the
// frequency is known it never changes, so SetHz then only succeeds if hz is
// the value already in use. hz must lie between 1 MHz and 100 GHz.
func SetHz(hz uint64) error { return process.set(hz) }

const (
	minHz = 1_000_000       // below any TSC ever built
	maxHz = 100_000_000_000 // far above any TSC ever built
)

// process is the frequency used by this process.
var process freq

// freq is a frequency that is determined at most once.
type freq struct {
	once sync.Once
	val  uint64
	from string
}

func (f *freq) hz() uint64 {
	f.once.Do(f.detect)
	return f.val
}

func (f *freq) source() string {
	f.once.Do(f.detect)
	return f.from
}

func (f *freq) detect() { f.val, f.from = detectHz() }

func (f *freq) set(hz uint64) error {
	if err := checkSetHz(hz); err != nil {
		return err
	}
	f.once.Do(func() { f.val, f.from = hz, "SetHz" })
	if f.val != hz {
		return fmt.Errorf("timer: SetHz(%d): the frequency is already %d Hz (%s); SetHz must run before the first Hz call", hz, f.val, f.from)
	}
	return nil
}
