//go:build !amd64

// Package spin holds the spin-wait hint the benchmark loops use where DPDK's
// call rte_pause, so both sides back off the same way while they wait for
// each other.
package spin

// Pause stands in for the spin-wait hint where there is no PAUSE instruction.
func Pause() {}
