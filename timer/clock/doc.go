// Package clock chooses the clock a gopmd process measures time with, the
// TSC or the HPET, and enforces the group's rule for sharing the HPET.
//
// # The rule
//
// Each process that uses the HPET holds one of its comparators: the kernel
// hands a comparator to each open of /dev/hpet and refuses more opens once
// none is left (it keeps some for itself, so a 3-comparator HPET may leave
// only one to user space). When more processes want the HPET than there are
// comparators, the rest use the TSC. Select applies that rule under the
// group's lock and keeps a table of claims in shared memory (plain data: the
// holder's mp.Owner and its comparator), so that a refusal can name the
// holders, and a claim left by a dead process is dropped: the kernel closed
// its file, so its comparator is free again.
//
// Modes (--timer): ModeTSC (the default) never touches the HPET. ModeAuto
// claims a free comparator and falls back to the TSC when none is free or
// there is no HPET, saying so in one log line. ModeHPET claims one or fails
// with an error naming the holders.
//
// The TSC frequency is determined once per group: the first process to
// Select records timer.Hz (CPUID, else a 100 ms calibration against
// CLOCK_MONOTONIC_RAW) in the memzone "timer_clock"; every later one adopts
// it with timer.SetHz. Whether the TSC is invariant is reported in the
// reason, and without invariance a TSC clock is logged as a warning.
//
// # Using a Clock
//
// Select returns this process's Clock and a release function; eal.Init calls
// it and keeps the Clock in eal.Env. Cycles and Hz are what code measures
// with; Source, Hz and Reason say which clock it is and why. Cycles does not
// allocate: for the TSC it is RDTSC, for the HPET a load from the mapped
// counter (about a microsecond on real hardware, so per-packet timestamps
// stay with timer.Cycles, the TSC).
//
// Nanos maps Cycles onto a timeline shared by the whole group: nanoseconds of
// CLOCK_MONOTONIC, anchored when the Clock was selected. Processes on
// different clocks agree on it, so shared structures (the timer lists of
// package timerlist) store times in it rather than in any one clock's cycles.
//
// The release function closes the HPET (freeing the comparator) and drops
// the claim; the Clock then reads 0 and must not be used any more.
package clock
