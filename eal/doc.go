// Package eal is the environment layer every gopmd process starts with: it
// reads the DPDK-style EAL command line and runs functions on lcores.
//
// ParseArgs turns the EAL part of a command line into Options, a plain value
// the program keeps as long as it likes; it checks everything it can without
// side effects, including that each CPU named is online and in the process's
// affinity mask. The application's own arguments come back unparsed.
//
// An lcore is a logical core: an ID below MaxLcores and the set of CPUs its
// thread may run on. A Launcher owns one OS thread per worker lcore, pinned to
// that lcore's CPUs for the Launcher's whole life, and runs functions on them
// the way rte_eal_remote_launch and rte_eal_wait_lcore do. The main lcore
// has no thread of its own: its function runs on the caller's goroutine
// (RunMain). Close ends the worker threads.
//
// Init starts a process: options, group membership, clock and lcores, in
// one Env that Close ends. A program with options of its own after "--"
// can leave start-up and its exit statuses to Main, and poll on its main
// lcore until a signal or the primary's exit with Env.RunMainUntil.
package eal
