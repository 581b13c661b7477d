// Command testpmd forwards packets between gopmd ports, in the spirit of
// dpdk-testpmd's non-interactive mode.
//
//	testpmd [EAL options] -- [--forward-mode=io|mac|macswap|txonly|rxonly]
//	        [--nb-cores=N] [--rxq=N] [--txq=N] [--rxd=N] [--txd=N] [--burst=N]
//	        [--txpkts=LEN] [--stats-period=SECONDS] [--total-num-mbufs=N]
//
// Every --vdev device becomes a port, in the order given. Ports forward in
// pairs, 0 to 1 and 1 to 0 (a lone port forwards to itself); each (port,
// rx queue) is a stream, and the streams are dealt out to the forwarding
// lcores. Counters are printed every stats period and, on SIGINT or
// SIGTERM, a final summary; the exit status is then 0.
//
// With no device at all, testpmd builds its own: a memif pair inside the
// process, whose client end is driven by a built-in generator (txonly, and
// it drains what comes back) while the server end is the forwarding port.
// So `go run ./cmd/testpmd` forwards packets on any Linux machine.
package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
)

// appConfig is the application part of the command line.
type appConfig struct {
	mode        string
	nbCores     int
	rxq, txq    int
	rxd, txd    int
	burst       int
	txpkts      int
	statsPeriod time.Duration
	nbMbufs     int
}

func parseApp(args []string, out io.Writer) (appConfig, error) {
	var c appConfig
	fs := flag.NewFlagSet("testpmd", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.StringVar(&c.mode, "forward-mode", "io", "io, mac, macswap, txonly or rxonly")
	fs.IntVar(&c.nbCores, "nb-cores", 1, "forwarding lcores")
	fs.IntVar(&c.rxq, "rxq", 1, "rx queues per port")
	fs.IntVar(&c.txq, "txq", 1, "tx queues per port")
	fs.IntVar(&c.rxd, "rxd", 1024, "rx descriptors per queue")
	fs.IntVar(&c.txd, "txd", 1024, "tx descriptors per queue")
	fs.IntVar(&c.burst, "burst", 32, "packets per burst (1 to 512)")
	fs.IntVar(&c.txpkts, "txpkts", 64, "length of txonly packets, in bytes (60 to 9000)")
	stats := fs.Float64("stats-period", 1, "seconds between statistics; 0 prints only the summary")
	fs.IntVar(&c.nbMbufs, "total-num-mbufs", 0, "mbufs in the pool (default: enough for every queue)")
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	switch {
	case !validMode(c.mode):
		return c, fmt.Errorf("--forward-mode=%s: want io, mac, macswap, txonly or rxonly", c.mode)
	case c.burst < 1 || c.burst > maxBurst:
		return c, fmt.Errorf("--burst=%d: want 1 to %d", c.burst, maxBurst)
	case c.txpkts < 60 || c.txpkts > 9000:
		return c, fmt.Errorf("--txpkts=%d: want 60 to 9000", c.txpkts)
	case c.rxq < 1 || c.rxq > ethdev.MaxQueues || c.txq < 1 || c.txq > ethdev.MaxQueues:
		return c, fmt.Errorf("--rxq=%d --txq=%d: want 1 to %d each", c.rxq, c.txq, ethdev.MaxQueues)
	case c.nbCores < 1:
		return c, fmt.Errorf("--nb-cores=%d: want at least 1", c.nbCores)
	case *stats < 0:
		return c, fmt.Errorf("--stats-period=%v: want 0 or more seconds", *stats)
	case c.nbMbufs < 0:
		return c, fmt.Errorf("--total-num-mbufs=%d: want a positive number", c.nbMbufs)
	}
	c.statsPeriod = time.Duration(*stats * float64(time.Second))
	return c, nil
}

func main() {
	os.Exit(eal.Main("testpmd", os.Args[1:], parseApp, run))
}

func run(env *eal.Env, cfg appConfig) int {
	out := os.Stdout
	t, err := newTestpmd(env, cfg, out)
	if err != nil {
		fmt.Fprintln(os.Stderr, "testpmd:", err)
		return 1
	}
	defer t.close()

	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM)
	if err := t.start(); err != nil {
		fmt.Fprintln(os.Stderr, "testpmd:", err)
		return 1
	}
	var tick <-chan time.Time
	if cfg.statsPeriod > 0 {
		tk := time.NewTicker(cfg.statsPeriod)
		defer tk.Stop()
		tick = tk.C
	}
	for {
		select {
		case <-tick:
			t.printStats()
		case s := <-sig:
			fmt.Fprintf(out, "\nSignal %v received, stopping forwarding.\n", s)
			t.stop()
			t.printSummary()
			return 0
		case err := <-t.failed:
			fmt.Fprintln(os.Stderr, "testpmd:", err)
			t.stop()
			t.printSummary()
			return 1
		}
	}
}

// portName is how a port is shown in the statistics.
func portName(p *ethdev.Port) string {
	return fmt.Sprintf("port %d (%s)", p.ID, p.Name())
}
