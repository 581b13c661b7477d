package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/gopmd/gopmd/bench/internal/compare"
	"github.com/gopmd/gopmd/bench/internal/dpdk"
	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/internal/dpdktest"
	"github.com/gopmd/gopmd/timer"
)

// The memif comparison runs two testpmds connected by a memif link: one
// generates 64-byte frames (txonly), the other counts them (rxonly). A row
// puts DPDK's or gopmd's testpmd at one end and dpdk-testpmd at the other,
// and measures the frames per second the receiver counts.
const (
	memifBurst = 32
	memifFrame = 64
	// memifWarmup is how long the frames flow before the window opens,
	// at most; a shorter -duration shortens it too.
	memifWarmup = time.Second
	// memifConnect bounds the wait for the first frame to arrive.
	memifConnect = 15 * time.Second
	// memifRuns is how many times each side of a row runs, alternating
	// with the other, when -duration is at least 1 s. Between runs of the
	// very same setup memif's rate changes up to threefold on a VM (where
	// the hypervisor places the two vCPUs matters more than any code), so
	// a row reports each side's best run. The rate is bimodal (about 6
	// or about 20 Mpps here, for DPDK and gopmd alike), so when after
	// memifRuns runs one side's best is still more than memifModeGap
	// times the other's, one side has likely only seen the slow mode and
	// both run again, up to memifMaxRuns times.
	memifRuns    = 3
	memifMaxRuns = 8
	memifModeGap = 1.5
)

// memifRow is one test: which end gopmd's testpmd takes, and which end is
// the memif server. The other end is always dpdk-testpmd.
type memifRow struct {
	name           string
	gopmdReceives  bool // gopmd's testpmd is the rxonly end (else the txonly end)
	receiverServer bool // the rxonly end is the memif server (else the client)
}

var memifRows = []memifRow{
	{"memif rx, server: dpdk txonly -> rxonly", true, true},
	{"memif rx, client: dpdk txonly -> rxonly", true, false},
	{"memif tx, client: txonly -> dpdk rxonly", false, true},
	{"memif tx, server: txonly -> dpdk rxonly", false, false},
}

func runMemif(ctx context.Context, o options, stdout io.Writer) error {
	if len(o.cpus) < 2 {
		return fmt.Errorf("-cpus %v: the memif test needs two CPUs, one per testpmd", o.cpus)
	}
	names := make([]string, len(memifRows))
	for i, r := range memifRows {
		names[i] = r.name
	}
	keep, err := selectRows(o, names)
	if err != nil {
		return err
	}
	if _, err := dpdk.LookPath("dpdk-testpmd"); err != nil {
		return err
	}
	if _, err := dpdk.LookPath("stdbuf"); err != nil {
		return err
	}
	busy := busyWarning(o.cpus[:2])

	tmp, err := os.MkdirTemp("", "vsdpdk-memif-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	progress(o, "building gopmd's cmd/testpmd")
	ours, err := buildTestpmd(tmp)
	if err != nil {
		return err
	}

	b := &memifBench{o: o, ours: ours, txCPU: o.cpus[0], rxCPU: o.cpus[1], warmup: min(memifWarmup, o.duration), runs: memifRuns}
	if o.duration < time.Second {
		b.runs = 1 // a smoke run
	}
	table := compare.Table{Unit: compare.Unit{Name: "packets per second (higher is better)", Decimals: 0}}
	for i, r := range memifRows {
		if !keep[i] {
			continue
		}
		var best [2]float64
		runs := 0
		for run := 0; run < b.runs || b.runs > 1 && run < memifMaxRuns && modeGap(best) > memifModeGap; run++ {
			runs = run + 1
			for side, gopmd := range []bool{false, true} {
				who := "dpdk-testpmd"
				if gopmd {
					who = "gopmd's testpmd"
				}
				progress(o, "%s: %s, run %d: %v after a %v warm-up", r.name, who, run+1, o.duration, b.warmup)
				pps, err := b.measure(ctx, r, gopmd)
				if err != nil {
					return fmt.Errorf("%s, %s: %w", r.name, who, err)
				}
				progress(o, "%s: %s: %.0f packets/s", r.name, who, pps)
				best[side] = max(best[side], pps)
			}
		}
		if runs > b.runs {
			progress(o, "%s: %d runs per side, the best ones %.1f times apart after %d", r.name, runs, modeGap(best), b.runs)
		}
		table.Add(r.name, best[0], best[1])
	}

	fmt.Fprintf(stdout, "# vsdpdk memif: cpu %q, tsc_hz=%d (%s); txonly forwards on cpu %d, rxonly on cpu %d, each main lcore on the other cpu\n",
		machine.CPUModel(), timer.Hz(), timer.Source(), b.txCPU, b.rxCPU)
	fmt.Fprintf(stdout, "# dpdk: %s dpdk-testpmd; gopmd: cmd/testpmd of this tree with net_memif; the other end of every row is dpdk-testpmd\n",
		orUnknown(b.version))
	fmt.Fprintf(stdout, "# memif copy mode, rsize 10 (1024 slots), 2048-byte buffers; %d-byte frames, burst %d; \"server\"/\"client\" is the role of the side under test\n",
		memifFrame, memifBurst)
	more := ""
	if b.runs > 1 {
		more = fmt.Sprintf(", more (up to %d) while the two bests are over %gx apart", memifMaxRuns, memifModeGap)
	}
	fmt.Fprintf(stdout, "# unit: frames per second counted by the rxonly end over %v after a %v warm-up, best of %d alternating run(s) per side%s; higher is better, speedup = gopmd/dpdk\n",
		o.duration, b.warmup, b.runs, more)
	fmt.Fprint(stdout, busy)
	return table.Write(stdout)
}

// buildTestpmd builds gopmd's cmd/testpmd from the module this command
// belongs to; vsdpdk runs from within the source tree.
func buildTestpmd(dir string) (string, error) {
	goBin, err := exec.LookPath("go")
	if err != nil {
		goBin = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	bin := filepath.Join(dir, "testpmd")
	cmd := exec.Command(goBin, "build", "-o", bin, "github.com/gopmd/gopmd/cmd/testpmd")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build github.com/gopmd/gopmd/cmd/testpmd (run vsdpdk from within the gopmd tree): %w\n%s", err, out)
	}
	return bin, nil
}

type memifBench struct {
	o            options
	ours         string
	txCPU, rxCPU int
	warmup       time.Duration
	runs         int // per side and row
	version      string
	seq          int // measurements so far, for unique socket names
}

// counter is the rxonly end's packet counter.
type counter interface {
	// sample returns the receive count and the time it was read.
	sample() (uint64, time.Time, error)
}

// measure runs one row with gopmd's testpmd at its end (gopmd) or
// dpdk-testpmd (!gopmd), and returns the receiver's rate.
func (b *memifBench) measure(ctx context.Context, r memifRow, gopmd bool) (float64, error) {
	b.seq++
	sock := fmt.Sprintf("/run/vsdpdk-memif-%d-%d.sock", os.Getpid(), b.seq) // abstract: no file is made
	role := map[bool]string{true: "server", false: "client"}
	rxVdev := fmt.Sprintf("net_memif0,role=%s,id=0,socket=%s", role[r.receiverServer], sock)
	txVdev := fmt.Sprintf("net_memif0,role=%s,id=0,socket=%s", role[!r.receiverServer], sock)

	var rx counter
	var stops []func()
	defer func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}()
	startRx := func() error {
		if gopmd && r.gopmdReceives {
			p, err := b.startOurs("rxonly", rxVdev, b.txCPU, b.rxCPU)
			if err != nil {
				return err
			}
			stops = append(stops, p.stop)
			rx = p
			return nil
		}
		p, err := b.startDPDK("rxonly", rxVdev, b.txCPU, b.rxCPU)
		if err != nil {
			return err
		}
		stops = append(stops, p.Close)
		rx = dpdkCounter{p}
		return nil
	}
	startTx := func() error {
		if gopmd && !r.gopmdReceives {
			p, err := b.startOurs("txonly", txVdev, b.rxCPU, b.txCPU)
			if err != nil {
				return err
			}
			stops = append(stops, p.stop)
			return nil
		}
		p, err := b.startDPDK("txonly", txVdev, b.rxCPU, b.txCPU)
		if err != nil {
			return err
		}
		stops = append(stops, p.Close)
		return nil
	}
	// A DPDK memif client gives up when no server listens, so the server
	// starts first.
	first, second := startRx, startTx
	if !r.receiverServer {
		first, second = startTx, startRx
	}
	if err := first(); err != nil {
		return 0, err
	}
	if err := second(); err != nil {
		return 0, err
	}

	deadline := time.Now().Add(memifConnect)
	for {
		n, _, err := rx.sample()
		if err != nil {
			return 0, err
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("no frame arrived within %v of starting both ends", memifConnect)
		}
		if err := sleep(ctx, 50*time.Millisecond); err != nil {
			return 0, err
		}
	}
	if err := sleep(ctx, b.warmup); err != nil {
		return 0, err
	}
	n0, t0, err := rx.sample()
	if err != nil {
		return 0, err
	}
	if err := sleep(ctx, b.o.duration); err != nil {
		return 0, err
	}
	n1, t1, err := rx.sample()
	// On a CPU shared with other work both ends may be starved for a whole
	// short window: the window then stretches until frames arrive.
	for err == nil && n1 == n0 && t1.Sub(t0) < memifConnect {
		if err = sleep(ctx, 50*time.Millisecond); err == nil {
			n1, t1, err = rx.sample()
		}
	}
	if err != nil {
		return 0, err
	}
	secs := t1.Sub(t0).Seconds()
	if n1 <= n0 || !(secs > 0) {
		return 0, fmt.Errorf("the receiver's counter went from %d to %d in %.3f s", n0, n1, secs)
	}
	return float64(n1-n0) / secs, nil
}

func sleep(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// startDPDK runs dpdk-testpmd with one port, forwarding in mode on an lcore
// pinned to fwdCPU, its prompt on mainCPU.
func (b *memifBench) startDPDK(mode, vdev string, mainCPU, fwdCPU int) (*dpdktest.Testpmd, error) {
	cfg := dpdktest.Config{
		Lcores: fmt.Sprintf("0@%d,1@%d", mainCPU, fwdCPU),
		VDevs:  []string{vdev},
		EAL:    []string{"-v", "--log-level=lib.eal:warning"},
		Args: []string{"--nb-cores=1", "--rxq=1", "--txq=1", "--total-num-mbufs=16384",
			fmt.Sprintf("--burst=%d", memifBurst), fmt.Sprintf("--txpkts=%d", memifFrame), "--no-flush-rx"},
	}
	if b.o.verbose {
		cfg.Log = func(l string) { fmt.Fprintf(b.o.stderr, "[dpdk-testpmd %s] %s\n", mode, l) }
	}
	p, err := dpdktest.Start(cfg)
	if err != nil {
		return nil, err
	}
	if b.version == "" {
		b.version = dpdkVersion([]byte(p.Output()))
		if b.version == "DPDK (version unknown)" {
			b.version = ""
		}
	}
	if err := p.SetForwardMode(mode); err != nil {
		p.Close()
		return nil, err
	}
	if err := p.StartForwarding(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

type dpdkCounter struct{ p *dpdktest.Testpmd }

func (c dpdkCounter) sample() (uint64, time.Time, error) {
	before := time.Now()
	rx, _, err := c.p.PortStats(0)
	after := time.Now()
	return rx, before.Add(after.Sub(before) / 2), err
}

// ourTestpmd is gopmd's cmd/testpmd running one port.
type ourTestpmd struct {
	cmd  *exec.Cmd
	done chan struct{}

	mu      sync.Mutex
	rx      uint64
	at      time.Time
	lines   int
	updated chan struct{}
	tail    []string
}

// ourStatsPeriod is how often gopmd's testpmd prints its counters; the
// receiver's count is read from those lines.
const ourStatsPeriod = 100 * time.Millisecond

var ourRxLine = regexp.MustCompile(`^\s+port 0 \(.*RX-packets: (\d+)`)

func (b *memifBench) startOurs(mode, vdev string, mainCPU, fwdCPU int) (*ourTestpmd, error) {
	args := []string{"--lcores", fmt.Sprintf("0@%d,1@%d", mainCPU, fwdCPU), "--main-lcore", "0",
		"--file-prefix", fmt.Sprintf("vsgopmd-memif-%d", os.Getpid()), "-m", "256", "--vdev", vdev, "--",
		"--forward-mode=" + mode, fmt.Sprintf("--burst=%d", memifBurst), fmt.Sprintf("--txpkts=%d", memifFrame),
		fmt.Sprintf("--stats-period=%g", ourStatsPeriod.Seconds())}
	if b.o.verbose {
		fmt.Fprintf(b.o.stderr, "vsdpdk: %s %s\n", b.ours, strings.Join(args, " "))
	}
	cmd := exec.Command(b.ours, args...)
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start gopmd's testpmd: %w", err)
	}
	p := &ourTestpmd{cmd: cmd, done: make(chan struct{}), updated: make(chan struct{}, 1)}
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		sc := bufio.NewScanner(out)
		once := sync.Once{}
		for sc.Scan() {
			l := sc.Text()
			now := time.Now()
			if b.o.verbose {
				fmt.Fprintf(b.o.stderr, "[gopmd testpmd %s] %s\n", mode, l)
			}
			if strings.Contains(l, mode+" forwarding on") {
				once.Do(func() { close(ready) })
			}
			p.mu.Lock()
			p.tail = append(p.tail[max(0, len(p.tail)-19):], l)
			if m := ourRxLine.FindStringSubmatch(l); m != nil {
				p.rx, _ = strconv.ParseUint(m[1], 10, 64)
				p.at = now
				p.lines++
				select {
				case p.updated <- struct{}{}:
				default:
				}
			}
			p.mu.Unlock()
		}
	}()
	select {
	case <-ready:
		return p, nil
	case <-p.done:
		cmd.Wait()
		return nil, fmt.Errorf("gopmd's testpmd exited: %s\n%s", cmd.ProcessState, p.output())
	case <-time.After(15 * time.Second):
		p.stop()
		return nil, fmt.Errorf("gopmd's testpmd did not start forwarding within 15 s:\n%s", p.output())
	}
}

func (p *ourTestpmd) output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.tail, "\n")
}

// sample waits for the next statistics line and returns its count and
// arrival time.
func (p *ourTestpmd) sample() (uint64, time.Time, error) {
	p.mu.Lock()
	seen := p.lines
	p.mu.Unlock()
	timeout := time.After(10 * ourStatsPeriod)
	for {
		select {
		case <-p.updated:
			p.mu.Lock()
			rx, at, lines := p.rx, p.at, p.lines
			p.mu.Unlock()
			if lines > seen {
				return rx, at, nil
			}
		case <-p.done:
			return 0, time.Time{}, fmt.Errorf("gopmd's testpmd exited:\n%s", p.output())
		case <-timeout:
			return 0, time.Time{}, errors.New("gopmd's testpmd printed no statistics for port 0")
		}
	}
}

// stop interrupts the testpmd and waits for it (killing it after 10 s).
func (p *ourTestpmd) stop() {
	p.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-p.done:
	case <-time.After(10 * time.Second):
		p.cmd.Process.Kill()
	}
	p.cmd.Wait()
}

// modeGap is how many times the better side's best rate is the other's.
func modeGap(best [2]float64) float64 {
	lo, hi := min(best[0], best[1]), max(best[0], best[1])
	if !(lo > 0) {
		return 0
	}
	return hi / lo
}
