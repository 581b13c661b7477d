package main

import (
	"context"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	"github.com/gopmd/gopmd/bench/internal/compare"
	"github.com/gopmd/gopmd/bench/internal/dpdk"
	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/bench/ringperf"
	"github.com/gopmd/gopmd/timer"
)

var relationName = map[machine.Relation]string{
	machine.Hyperthreads: "two hyperthreads",
	machine.Cores:        "two physical cores",
	machine.Sockets:      "two NUMA nodes",
}

// ringRuns is how many times each side runs. On a VM the two-core rows
// swing up to twofold between runs of the same binary, on both sides (the
// hypervisor places the vCPUs), so each side reports its best.
const ringRuns = 3

func runRing(ctx context.Context, o options, stdout io.Writer) error {
	if len(o.cpus) < 2 {
		return fmt.Errorf("-cpus %v: the ring test needs two CPUs", o.cpus)
	}
	cpus := [2]int{o.cpus[0], o.cpus[1]}
	rel, err := machine.Relate(cpus[0], cpus[1])
	if err != nil {
		return err
	}
	all := ringperf.Tests(rel)
	names := make([]string, len(all))
	for i, t := range all {
		names[i] = t.Name
	}
	keep, err := selectRows(o, names)
	if err != nil {
		return err
	}
	var tests []ringperf.Test
	for i, t := range all {
		if keep[i] {
			tests = append(tests, t)
		}
	}
	dpdkTest, err := dpdk.LookPath("dpdk-test")
	if err != nil {
		return err
	}

	busy := busyWarning(cpus[:])

	mem, memKind, err := openMemory("ring")
	if err != nil {
		return err
	}
	defer mem.Close()
	l, err := newLauncher(cpus[:])
	if err != nil {
		return err
	}
	defer l.Close()

	// The two sides alternate, DPDK first, ringRuns times; each row keeps
	// each side's best (fewest cycles).
	dpdkBest := map[string]float64{}
	ourBest := make([]float64, len(tests))
	var version string
	for run := range ringRuns {
		// DPDK: the whole autotest (both halves; only the legacy one is
		// compared), under its own file prefix.
		prefix := dpdk.NewPrefix("ring")
		progress(o, "run %d of %d: dpdk-test ring_perf_autotest on lcores %d,%d (about 10 s)", run+1, ringRuns, cpus[0], cpus[1])
		res, err := dpdk.Exec(ctx, prefix, dpdkTest, dpdk.EALArgs(cpus[:], prefix, "-v"), "ring_perf_autotest\n")
		showRaw(o, "dpdk-test", res.Stdout, res.Stderr)
		if err != nil {
			return err
		}
		version = dpdkVersion(res.Stderr)
		dpdkRows, err := ringperf.ParseDPDK(res.Stdout)
		if err != nil {
			return err
		}
		for _, t := range tests {
			v, ok := dpdkRows[t.Name]
			if !ok {
				return fmt.Errorf("dpdk-test printed no row for %q (it printed %d legacy rows)", t.Name, len(dpdkRows))
			}
			if best, seen := dpdkBest[t.Name]; !seen || v < best {
				dpdkBest[t.Name] = v
			}
		}

		progress(o, "run %d of %d: gopmd's port of the loops on cpus %d,%d (%d rows)", run+1, ringRuns, cpus[0], cpus[1], len(tests))
		got, err := ringperf.Run(ctx, mem, l, tests)
		if err != nil {
			return err
		}
		for i, v := range got {
			if run == 0 || v < ourBest[i] {
				ourBest[i] = v
			}
		}
	}

	fmt.Fprintf(stdout, "# vsdpdk ring: cpu %q, tsc_hz=%d (%s), cpus %d,%d (%s) = DPDK lcores %d,%d\n",
		machine.CPUModel(), timer.Hz(), timer.Source(), cpus[0], cpus[1], relationName[rel], cpus[0], cpus[1])
	fmt.Fprintf(stdout, "# dpdk: %s dpdk-test ring_perf_autotest, legacy APIs (8-byte entries); gopmd: ring package, same loops and iteration counts, %s\n",
		version, memKind)
	fmt.Fprintf(stdout, "# unit: TSC cycles per enqueue+dequeue iteration of the size (two-lcore rows: per object, enqueue side + dequeue side), as the autotest prints, best of %d alternating runs per side; lower is better, speedup = dpdk/gopmd\n", ringRuns)
	fmt.Fprint(stdout, busy)
	table := compare.Table{Unit: compare.Cycles}
	for i, t := range tests {
		table.Add(t.Name, dpdkBest[t.Name], ourBest[i])
	}
	return table.Write(stdout)
}

var rteVersion = regexp.MustCompile(`RTE Version: '([^']+)'`)

// dpdkVersion finds the version EAL prints with -v, e.g. "DPDK 22.11.11".
func dpdkVersion(stderr []byte) string {
	if m := rteVersion.FindSubmatch(stderr); m != nil {
		return string(m[1])
	}
	return "DPDK (version unknown)"
}

// formatCPUs is a CPU list as -l takes it.
func formatCPUs(cpus []int) string {
	s := make([]string, len(cpus))
	for i, c := range cpus {
		s[i] = strconv.Itoa(c)
	}
	return strings.Join(s, ",")
}
