//go:build !amd64

package timer

import (
	"fmt"
	"runtime"

	"golang.org/x/sys/unix"
)

// rdtsc stands in for the TSC where there is none: CLOCK_MONOTONIC_RAW in
// nanoseconds. It costs a system call.
func rdtsc() uint64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC_RAW, &ts); err != nil {
		return 0 // CLOCK_MONOTONIC_RAW exists on every Linux since 2.6.28
	}
	return uint64(ts.Nano())
}

// rdtscOrdered needs no fence: the system call completes earlier work.
func rdtscOrdered() uint64 { return rdtsc() }

// InvariantTSC reports whether Cycles advances at a constant rate. Off amd64
// Cycles reads a clock in nanoseconds, which does.
func InvariantTSC() bool { return true }

func detectHz() (uint64, string) { return 1_000_000_000, "nanoseconds of CLOCK_MONOTONIC_RAW" }

func checkSetHz(hz uint64) error {
	if hz != 1_000_000_000 {
		return fmt.Errorf("timer: SetHz(%d): on %s Cycles counts nanoseconds, so the frequency can only be 1000000000", hz, runtime.GOARCH)
	}
	return nil
}
