package main

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/gopmd/gopmd/bench/internal/compare"
	"github.com/gopmd/gopmd/bench/internal/dpdk"
	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/bench/mempoolperf"
	"github.com/gopmd/gopmd/timer"
)

func runMempool(ctx context.Context, o options, stdout io.Writer) error {
	all := mempoolperf.Rows()
	names := make([]string, len(all))
	for i, r := range all {
		names[i] = r.Name()
	}
	keep, err := selectRows(o, names)
	if err != nil {
		return err
	}
	var rows []mempoolperf.Row
	for i, r := range all {
		if keep[i] {
			if err := r.Check(len(o.cpus)); err != nil {
				return fmt.Errorf("%w (give more CPUs with -cpus, or leave the row out with -rows)", err)
			}
			rows = append(rows, r)
		}
	}
	seconds := o.duration.Seconds()

	busy := busyWarning(o.cpus)
	progress(o, "building the DPDK mempool harness with cc and libdpdk")
	harness, err := dpdk.Build(mempoolperf.HarnessSource, "mempool_perf")
	if err != nil {
		return err
	}
	prefix := dpdk.NewPrefix("mempool")
	args := append(dpdk.EALArgs(o.cpus, prefix, "--log-level=lib.eal:warning", "--"),
		mempoolperf.HarnessArgs(seconds, rows)...)
	progress(o, "running DPDK's loop: %d rows x %v on lcores %s", len(rows), o.duration, formatCPUs(o.cpus))
	res, err := dpdk.Exec(ctx, prefix, harness, args, "")
	showRaw(o, "mempool_perf harness", res.Stdout, res.Stderr)
	if err != nil {
		return err
	}
	dpdkRates, info, err := mempoolperf.ParseDPDK(res.Stdout)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if _, ok := dpdkRates[r]; !ok {
			return fmt.Errorf("the DPDK harness printed no row for %q", r.Name())
		}
	}

	// Both sides loop for the same number of TSC cycles, the duration times
	// DPDK's rte_get_timer_hz() as the harness computes it, so a difference
	// between DPDK's and gopmd's frequency estimates cannot make one side
	// run longer than the other.
	hz := info.TimerHz
	if hz == 0 {
		hz = timer.Hz()
	}
	cycles := uint64(seconds * float64(hz))

	mem, memKind, err := openMemory("mempool")
	if err != nil {
		return err
	}
	defer mem.Close()
	progress(o, "running gopmd's loop: %d rows x %v on cpus %s", len(rows), o.duration, formatCPUs(o.cpus))
	l, err := newLauncher(o.cpus)
	if err != nil {
		return err
	}
	defer l.Close()
	got, err := mempoolperf.Run(ctx, mem, l, rows, cycles, seconds)
	if err != nil {
		return err
	}

	fmt.Fprintf(stdout, "# vsdpdk mempool: cpu %q, tsc_hz=%d (%s), cpus %s = DPDK lcores %s\n",
		machine.CPUModel(), timer.Hz(), timer.Source(), formatCPUs(o.cpus), formatCPUs(o.cpus))
	fmt.Fprintf(stdout, "# dpdk: %s, mempool_perf_autotest's loop in a C harness (cc %s); gopmd: mempool package, same loop; %s\n",
		orUnknown(info.Version), strings.Join(dpdk.HarnessCFlags, " "), memKind)
	fmt.Fprintf(stdout, "# pools of %d x %d-byte objects (cache 0 or 512); %v per row on each side (%d TSC cycles at DPDK's timer_hz=%d), the autotest uses 5 s\n",
		mempoolperf.PoolSize(len(o.cpus)), mempoolperf.EltSize, o.duration, cycles, hz)
	fmt.Fprintf(stdout, "# unit: objects per second summed over the lcores (rate_persec); higher is better, speedup = gopmd/dpdk\n")
	fmt.Fprint(stdout, busy)
	table := compare.Table{Unit: compare.Rate}
	for i, r := range rows {
		table.Add(r.Name(), dpdkRates[r], got[i])
	}
	return table.Write(stdout)
}

func orUnknown(s string) string {
	if s == "" {
		return "DPDK (version unknown)"
	}
	return s
}
