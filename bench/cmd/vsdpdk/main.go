// Command vsdpdk measures DPDK and gopmd side by side on the same tests, in
// one run, and prints one row per test with both values and gopmd's speedup.
//
//	vsdpdk [-rows regexp] [-v] [-cpus 0,1] [-duration 1s] ring|mempool|memif
//
// ring runs dpdk-test's ring_perf_autotest and gopmd's port of its loops
// (TSC cycles per iteration; speedup = dpdk/gopmd). mempool builds a small C
// harness with the loop of mempool_perf_autotest against libdpdk and runs it
// next to the same loop on gopmd's mempool (objects per second; speedup =
// gopmd/dpdk). memif runs dpdk-testpmd txonly into dpdk-testpmd rxonly over
// a memif link, then puts gopmd's cmd/testpmd at one end in its place
// (frames per second the receiver counts; speedup = gopmd/dpdk). Output
// rows are
//
//	<test name>\tdpdk=<value>\tgopmd=<value>\tspeedup=<x>
//
// after "#" header lines, and the last line is the geometric mean speedup.
// DPDK runs under its own --file-prefix, whose files are removed afterwards;
// gopmd's side uses its own hugemem group, closed (and removed) at the end.
// Both need root and hugepages (scripts/setup.sh).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"regexp"
	"runtime/pprof"
	"strings"
	"syscall"
	"time"

	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/eal"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// options are the command line after parsing.
type options struct {
	rows     *regexp.Regexp
	verbose  bool
	cpus     []int
	duration time.Duration
	stderr   io.Writer // progress and raw DPDK output
}

const usage = `usage: vsdpdk [flags] ring|mempool|memif|virtio

Runs DPDK and gopmd on the same tests and prints, per test,
<name>\tdpdk=<value>\tgopmd=<value>\tspeedup=<x> (speedup > 1: gopmd faster),
then the geometric mean speedup. Needs root and hugepages (scripts/setup.sh).

flags (before or after the subcommand):
`

// run is the whole command; it returns the exit status.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vsdpdk", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	rowsExpr := fs.String("rows", "", "run only the rows whose name matches this regular expression")
	verbose := fs.Bool("v", false, "show DPDK's raw output (on stderr)")
	cpuList := fs.String("cpus", "0,1", "CPUs to run on, as DPDK's -l (the lcore ids are the CPU numbers); ring uses the first two")
	duration := fs.Duration("duration", time.Second, "mempool: time per row on each side (the autotest uses 5s); memif: the measuring window")
	cpuProfile := fs.String("cpuprofile", "", "write a CPU profile of this process (the Go side) to this file, e.g. to refresh default.pgo")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() == 0 {
		fs.Usage()
		return 2
	}
	sub := fs.Arg(0)
	if err := fs.Parse(fs.Args()[1:]); err != nil {
		return 2
	}
	if fs.NArg() != 0 {
		fmt.Fprintf(stderr, "vsdpdk: unexpected arguments after %s: %s\n", sub, strings.Join(fs.Args(), " "))
		return 2
	}

	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err != nil {
			fmt.Fprintf(stderr, "vsdpdk: -cpuprofile: %v\n", err)
			return 2
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "vsdpdk: -cpuprofile: %v\n", err)
			return 2
		}
		defer pprof.StopCPUProfile()
	}

	o := options{verbose: *verbose, duration: *duration, stderr: stderr}
	var err error
	if o.rows, err = regexp.Compile(*rowsExpr); err != nil {
		fmt.Fprintf(stderr, "vsdpdk: -rows %q: %v\n", *rowsExpr, err)
		return 2
	}
	if o.cpus, err = parseCPUs(*cpuList); err != nil {
		fmt.Fprintf(stderr, "vsdpdk: -cpus %s: %v\n", *cpuList, err)
		return 2
	}
	if o.duration <= 0 {
		fmt.Fprintf(stderr, "vsdpdk: -duration %v: must be positive\n", o.duration)
		return 2
	}

	switch sub {
	case "ring":
		err = runRing(ctx, o, stdout)
	case "mempool":
		err = runMempool(ctx, o, stdout)
	case "virtio":
		err = runVirtio(ctx, o, stdout)
	case "memif":
		err = runMemif(ctx, o, stdout)
	default:
		fmt.Fprintf(stderr, "vsdpdk: unknown subcommand %q: want ring, mempool, memif or virtio\n", sub)
		return 2
	}
	if err != nil {
		if errors.Is(err, context.Canceled) {
			err = errors.New("interrupted")
		}
		fmt.Fprintf(stderr, "vsdpdk %s: %v\n", sub, err)
		return 1
	}
	return 0
}

// parseCPUs reads a CPU list the way EAL's -l does (and with its checks:
// online, allowed). The lcore ids are the CPU numbers, on both sides.
func parseCPUs(list string) ([]int, error) {
	opts, _, err := eal.ParseArgs([]string{"-l", list})
	if err != nil {
		return nil, err
	}
	cpus := make([]int, len(opts.Lcores))
	for i, lc := range opts.Lcores {
		if len(lc.CPUs) != 1 || lc.CPUs[0] != lc.ID {
			return nil, fmt.Errorf("lcore %d runs on cpus %v; want one CPU per lcore, numbered as the lcore", lc.ID, lc.CPUs)
		}
		cpus[i] = lc.ID
	}
	return cpus, nil
}

// newLauncher starts gopmd's lcores for the given CPUs, the first as main,
// like EAL with -l.
func newLauncher(cpus []int) (*eal.Launcher, error) {
	lcores := make([]eal.Lcore, len(cpus))
	for i, c := range cpus {
		lcores[i] = eal.Lcore{ID: c, CPUs: []int{c}}
	}
	return eal.NewLauncher(lcores, cpus[0])
}

// selectRows returns the names matching -rows, or an error listing them all.
func selectRows(o options, names []string) ([]bool, error) {
	keep := make([]bool, len(names))
	any := false
	for i, n := range names {
		keep[i] = o.rows.MatchString(n)
		any = any || keep[i]
	}
	if !any {
		return nil, fmt.Errorf("-rows %q matches no row; rows are:\n\t%s", o.rows, strings.Join(names, "\n\t"))
	}
	return keep, nil
}

// showRaw copies a DPDK program's output to stderr under -v.
func showRaw(o options, what string, stdout, stderr []byte) {
	if !o.verbose {
		return
	}
	fmt.Fprintf(o.stderr, "--- %s stdout ---\n%s\n--- %s stderr ---\n%s\n--- end of %s output ---\n",
		what, stdout, what, stderr, what)
}

// busyWarning measures for a moment how busy the CPUs are while vsdpdk
// waits, and returns a header line if other work is running on them: both
// sides would then measure that work too.
func busyWarning(cpus []int) string {
	busy, err := machine.Busy(cpus, 250*time.Millisecond)
	if err != nil || busy < 0.05 {
		return ""
	}
	return fmt.Sprintf("# warning: cpus %s were %.0f%% busy with other work just before the run; both sides' numbers are noisy, compare on an idle machine\n", formatCPUs(cpus), 100*busy)
}

func progress(o options, format string, args ...any) {
	fmt.Fprintf(o.stderr, "vsdpdk: "+format+"\n", args...)
}
