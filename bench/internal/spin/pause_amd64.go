// Package spin holds the spin-wait hint the benchmark loops use where DPDK's
// call rte_pause, so both sides back off the same way while they wait for
// each other.
package spin

// Pause tells the CPU it is in a spin-wait loop (PAUSE), like rte_pause.
func Pause()
