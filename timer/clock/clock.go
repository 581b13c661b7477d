package clock

import (
	"fmt"
	"math/bits"

	"github.com/gopmd/gopmd/timer"
	"golang.org/x/sys/unix"
)

// Mode is what a process asks for (--timer).
type Mode int

const (
	ModeTSC  Mode = iota // the TSC; the HPET is not touched (default)
	ModeAuto             // the HPET if a comparator is free, else the TSC
	ModeHPET             // the HPET, or fail
)

func (m Mode) String() string {
	switch m {
	case ModeTSC:
		return "tsc"
	case ModeAuto:
		return "auto"
	case ModeHPET:
		return "hpet"
	}
	return fmt.Sprintf("Mode(%d)", int(m))
}

// ParseMode reads a --timer value: auto, tsc or hpet.
func ParseMode(s string) (Mode, error) {
	for _, m := range []Mode{ModeAuto, ModeTSC, ModeHPET} {
		if s == m.String() {
			return m, nil
		}
	}
	return 0, fmt.Errorf("clock: timer mode %q: want auto, tsc or hpet", s)
}

// Source is the clock a Clock reads.
type Source int

const (
	TSC  Source = iota + 1 // the CPU's time-stamp counter
	HPET                   // the High Precision Event Timer's main counter
)

func (s Source) String() string {
	switch s {
	case TSC:
		return "tsc"
	case HPET:
		return "hpet"
	}
	return fmt.Sprintf("Source(%d)", int(s))
}

// kinds of counter a Clock reads.
const (
	readTSC    = iota
	readHPET   // *timer.HPET, read directly
	readDevice // another device (tests' stand-in HPET), read through the interface
)

// Clock is the clock one process measures time with. Its methods may be
// called from any goroutine.
type Clock struct {
	kind   int
	hpet   *timer.HPET
	dev    device
	src    Source
	hz     uint64
	reason string
	index  int // HPET comparator held; -1 for the TSC

	// Nanos = baseNanos + (Cycles - baseCycles) * mult >> 32
	baseCycles uint64
	baseNanos  int64
	mult       uint64
}

// Cycles returns the clock's counter: the TSC, or the HPET main counter. It
// does not allocate.
func (c *Clock) Cycles() uint64 {
	if c.kind == readTSC {
		return timer.Cycles()
	}
	return c.deviceCycles()
}

func (c *Clock) deviceCycles() uint64 {
	if c.kind == readHPET {
		return c.hpet.Cycles()
	}
	return c.dev.Cycles()
}

// Hz returns how many Cycles make a second.
func (c *Clock) Hz() uint64 { return c.hz }

// Source says which clock Cycles reads.
func (c *Clock) Source() Source { return c.src }

// Reason says, in one sentence, why this clock was chosen.
func (c *Clock) Reason() string { return c.reason }

// Comparator returns the HPET comparator this process holds, if its clock
// is the HPET.
func (c *Clock) Comparator() (index int, ok bool) { return c.index, c.src == HPET }

// String describes the clock for logs: source, frequency and reason.
func (c *Clock) String() string {
	return fmt.Sprintf("%s at %d Hz: %s", c.src, c.hz, c.reason)
}

// Nanos returns the time in nanoseconds on the group's shared timeline,
// which follows CLOCK_MONOTONIC: it is Cycles converted with Hz, offset so
// that it matched CLOCK_MONOTONIC when the clock was selected. It does not
// allocate.
func (c *Clock) Nanos() int64 { return c.nanosAt(c.Cycles()) }

// NanosAt converts a Cycles reading to the shared timeline.
func (c *Clock) NanosAt(cycles uint64) int64 { return c.nanosAt(cycles) }

func (c *Clock) nanosAt(cycles uint64) int64 {
	d := cycles - c.baseCycles
	if cycles < c.baseCycles { // a reading from before the anchor
		hi, lo := bits.Mul64(c.baseCycles-cycles, c.mult)
		return c.baseNanos - int64(hi<<32|lo>>32)
	}
	hi, lo := bits.Mul64(d, c.mult)
	return c.baseNanos + int64(hi<<32|lo>>32)
}

// anchor fixes the conversion to the shared timeline: it reads
// CLOCK_MONOTONIC bracketed by two Cycles reads, keeps the tightest of a
// few tries and takes the bracket's midpoint.
func (c *Clock) anchor() {
	c.mult = (1_000_000_000<<32 + c.hz/2) / c.hz
	best := ^uint64(0)
	for range 8 {
		var ts unix.Timespec
		before := c.Cycles()
		err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
		after := c.Cycles()
		if err != nil || after < before {
			continue
		}
		if w := after - before; w < best {
			best = w
			c.baseCycles = before + w/2
			c.baseNanos = ts.Nano()
		}
	}
}
