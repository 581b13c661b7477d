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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gopmd/gopmd/bench/internal/compare"
	"github.com/gopmd/gopmd/bench/internal/dpdk"
	"github.com/gopmd/gopmd/bench/internal/machine"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mempool"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/virtio" // registers virtio_user
	"github.com/gopmd/gopmd/timer"
)

// The virtio comparison: one dpdk-testpmd with a net_vhost port is the
// back-end; DPDK's virtio_user (in a second dpdk-testpmd) and gopmd's (in
// this process) take turns as its front-end, with the same cores, burst
// and ring. Both are measured by the back-end's own counters.

// virtioRow is one traffic pattern.
type virtioRow struct {
	name    string
	front   string // front-end forwarding mode
	back    string // back-end forwarding mode
	measure string // "Rx" or "Tx": which of the back-end's pps counts
	txFirst bool   // the front-end sends a burst before forwarding
}

var virtioRows = []virtioRow{
	{name: "txonly 64B (front-end txonly -> back-end rxonly)", front: "txonly", back: "rxonly", measure: "Rx"},
	{name: "rxonly 64B (back-end txonly -> front-end rxonly)", front: "rxonly", back: "txonly", measure: "Tx"},
	{name: "io 64B (front-end io <-> back-end macswap)", front: "io", back: "macswap", measure: "Rx", txFirst: true},
}

const (
	virtioBurst    = 32
	virtioPktLen   = 64
	virtioQueueLen = 256  // descriptors per ring, both front-ends (DPDK virtio_user's default)
	virtioMbufs    = 8191 // front-end mbufs
	virtioCache    = 256
	virtioRounds   = 3 // turns each front-end takes per row
)

// PPS is testpmd's Rx-pps/Tx-pps.
var PPS = compare.Unit{Name: "packets per second, as the back-end counts them (higher is better)", Decimals: 0}

func runVirtio(ctx context.Context, o options, stdout io.Writer) error {
	if len(o.cpus) < 2 {
		return fmt.Errorf("-cpus %v: the virtio test needs two CPUs, one per side", o.cpus)
	}
	names := make([]string, len(virtioRows))
	for i, r := range virtioRows {
		names[i] = r.name
	}
	keep, err := selectRows(o, names)
	if err != nil {
		return err
	}
	testpmd, err := dpdk.LookPath("dpdk-testpmd")
	if err != nil {
		return err
	}
	cpus := [2]int{o.cpus[0], o.cpus[1]}
	samples := max(3, int(o.duration/time.Second))
	busy := busyWarning(cpus[:])
	dir, err := os.MkdirTemp("", "vsdpdk-virtio")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	table := compare.Table{Unit: PPS}
	var version string
	for i, r := range virtioRows {
		if !keep[i] {
			continue
		}
		sock := filepath.Join(dir, fmt.Sprintf("vhost%d.sock", i))
		progress(o, "%s: back-end testpmd %s on cpu %d", r.name, r.back, cpus[0])
		b, err := startBackend(ctx, o, testpmd, sock, r, cpus)
		if err != nil {
			return err
		}
		// The two front-ends take turns, virtioRounds times, and each side's
		// best run counts: this machine's speed drifts (other tenants, host
		// scheduling) by up to 3x within a minute, and interference only
		// ever slows a run down, so the best run is the one least disturbed.
		var dpdkRuns, gopmdRuns []float64
		for round := range virtioRounds {
			progress(o, "%s: round %d of %d: DPDK's virtio_user (testpmd %s) on cpu %d, %d samples of 1 s", r.name, round+1, virtioRounds, r.front, cpus[1], samples)
			v, err := b.measure(ctx, samples, func() (func() error, error) { return startDPDKFront(ctx, o, testpmd, sock, r, cpus) })
			if err != nil {
				b.stop()
				return err
			}
			dpdkRuns = append(dpdkRuns, v)
			progress(o, "%s: round %d of %d: gopmd's virtio_user on cpu %d, %d samples of 1 s", r.name, round+1, virtioRounds, cpus[1], samples)
			if v, err = b.measure(ctx, samples, func() (func() error, error) { return startGopmdFront(sock, r, cpus) }); err != nil {
				b.stop()
				return err
			}
			gopmdRuns = append(gopmdRuns, v)
		}
		progress(o, "%s: dpdk runs %.0f, gopmd runs %.0f", r.name, dpdkRuns, gopmdRuns)
		table.Add(r.name, slices.Max(dpdkRuns), slices.Max(gopmdRuns))
		version = b.version()
		if err := b.stop(); err != nil {
			return err
		}
	}

	rel, _ := machine.Relate(cpus[0], cpus[1])
	fmt.Fprintf(stdout, "# vsdpdk virtio: cpu %q, tsc_hz=%d (%s), cpus %d,%d (%s)\n",
		machine.CPUModel(), timer.Hz(), timer.Source(), cpus[0], cpus[1], relationName[rel])
	fmt.Fprintf(stdout, "# back-end: %s dpdk-testpmd, net_vhost0 (1 queue pair), forwarding lcore on cpu %d; front-ends on cpu %d: dpdk = DPDK's virtio_user in dpdk-testpmd, gopmd = pmd/virtio's virtio_user in this process\n",
		version, cpus[0], cpus[1])
	fmt.Fprintf(stdout, "# both front-ends: split ring of %d, mrg_rxbuf=1, burst %d, %d-byte frames, hugepages (--single-file-segments); io rows start with one burst (--tx-first)\n",
		virtioQueueLen, virtioBurst, virtioPktLen)
	fmt.Fprintf(stdout, "# unit: packets per second counted by the back-end (Rx-pps, or Tx-pps for rxonly): per run the mean of %d one-second samples after one of warm-up, per side the best of %d runs taken in turns; higher is better, speedup = gopmd/dpdk\n", samples, virtioRounds)
	fmt.Fprint(stdout, busy)
	return table.Write(stdout)
}

// backend is the dpdk-testpmd net_vhost process, printing its port's
// throughput every second.
type backend struct {
	cmd     *exec.Cmd
	prefix  string
	row     virtioRow
	samples chan float64
	done    chan struct{}
	mu      sync.Mutex
	out     []string
}

var ppsLine = regexp.MustCompile(`^\s*(Rx|Tx)-pps:\s+(\d+)`)

func testpmdArgs(lcores string, prefix, vdev, mode string, extra ...string) []string {
	args := []string{"--lcores=" + lcores, "--no-pci", "--file-prefix=" + prefix, "--single-file-segments", "-m", "256",
		"--vdev", vdev, "--", "--forward-mode=" + mode, "--nb-cores=1", "--burst=" + strconv.Itoa(virtioBurst),
		"--txpkts=" + strconv.Itoa(virtioPktLen), "--stats-period=1", "--total-num-mbufs=16384",
		"--rxd=" + strconv.Itoa(virtioQueueLen), "--txd=" + strconv.Itoa(virtioQueueLen)}
	return append(args, extra...)
}

func startBackend(ctx context.Context, o options, testpmd, sock string, r virtioRow, cpus [2]int) (*backend, error) {
	b := &backend{prefix: dpdk.NewPrefix("vhost"), row: r, samples: make(chan float64, 1000), done: make(chan struct{})}
	// Main lcore 0 on the front-end's CPU (it sleeps), forwarding lcore 1 on cpus[0].
	args := testpmdArgs(fmt.Sprintf("0@%d,1@%d", cpus[1], cpus[0]), b.prefix,
		"net_vhost0,iface="+sock+",queues=1", r.back)
	stdbuf, err := dpdk.LookPath("stdbuf")
	if err != nil {
		return nil, err
	}
	b.cmd = exec.CommandContext(ctx, stdbuf, append([]string{"-oL", testpmd}, args...)...)
	out, err := b.cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	b.cmd.Stderr = b.cmd.Stdout
	if err := b.cmd.Start(); err != nil {
		return nil, err
	}
	go func() {
		defer close(b.done)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			l := sc.Text()
			b.mu.Lock()
			b.out = append(b.out, l)
			b.mu.Unlock()
			if o.verbose {
				fmt.Fprintln(o.stderr, "back-end| "+l)
			}
			if m := ppsLine.FindStringSubmatch(l); m != nil && m[1] == r.measure {
				v, _ := strconv.ParseFloat(m[2], 64)
				select {
				case b.samples <- v:
				default:
				}
			}
		}
	}()
	for start := time.Now(); ; time.Sleep(20 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return b, nil
		}
		select {
		case <-b.done:
			b.stop()
			return nil, fmt.Errorf("back-end testpmd exited before making %s:\n%s", sock, b.tail())
		default:
		}
		if time.Since(start) > 20*time.Second {
			b.stop()
			return nil, fmt.Errorf("back-end testpmd made no socket %s in 20 s:\n%s", sock, b.tail())
		}
	}
}

var rteVersionLine = regexp.MustCompile(`RTE Version: '([^']+)'`)

func (b *backend) version() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, l := range b.out {
		if m := rteVersionLine.FindStringSubmatch(l); m != nil {
			return m[1]
		}
	}
	return "DPDK 22.11 (Debian)"
}

func (b *backend) tail() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	lines := b.out
	if len(lines) > 15 {
		lines = lines[len(lines)-15:]
	}
	return "\t" + strings.Join(lines, "\n\t")
}

// measure starts a front-end, waits for traffic, skips a sample of
// warm-up, averages n samples, and stops the front-end.
func (b *backend) measure(ctx context.Context, n int, start func() (stop func() error, err error)) (float64, error) {
	for len(b.samples) > 0 {
		<-b.samples
	}
	stop, err := start()
	if err != nil {
		return 0, err
	}
	var sum float64
	got, warm := 0, false
	timeout := time.After(time.Duration(n+30) * time.Second)
	for got < n {
		select {
		case v := <-b.samples:
			switch {
			case !warm && v > 0:
				warm = true // the first second with traffic is partly start-up
			case warm:
				sum += v
				got++
			}
		case <-b.done:
			stop()
			return 0, fmt.Errorf("back-end testpmd exited:\n%s", b.tail())
		case <-timeout:
			stop()
			return 0, fmt.Errorf("no traffic through the back-end within %d s (got %d samples):\n%s", n+30, got, b.tail())
		case <-ctx.Done():
			stop()
			return 0, ctx.Err()
		}
	}
	if err := stop(); err != nil {
		return 0, err
	}
	return sum / float64(n), nil
}

func (b *backend) stop() error {
	b.cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-b.done:
	case <-time.After(10 * time.Second):
		b.cmd.Process.Kill()
	}
	b.cmd.Wait()
	return dpdk.Cleanup(b.prefix)
}

// startDPDKFront runs DPDK's virtio_user in dpdk-testpmd.
func startDPDKFront(ctx context.Context, o options, testpmd, sock string, r virtioRow, cpus [2]int) (func() error, error) {
	prefix := dpdk.NewPrefix("virtio")
	var extra []string
	if r.txFirst {
		extra = append(extra, "--tx-first")
	}
	args := testpmdArgs(fmt.Sprintf("0@%d,1@%d", cpus[0], cpus[1]), prefix,
		fmt.Sprintf("virtio_user0,path=%s,queues=1,queue_size=%d,mrg_rxbuf=1", sock, virtioQueueLen), r.front, extra...)
	cmd := exec.CommandContext(ctx, testpmd, args...)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	return func() error {
		cmd.Process.Signal(syscall.SIGINT)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		var err error
		select {
		case err = <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			err = <-done
		}
		showRaw(o, "front-end testpmd", []byte(out.String()), nil)
		if cerr := dpdk.Cleanup(prefix); cerr != nil {
			return cerr
		}
		if err != nil && !strings.Contains(out.String(), "Bye") {
			return fmt.Errorf("front-end testpmd: %v\n%s", err, out.String())
		}
		return nil
	}, nil
}

// startGopmdFront runs gopmd's virtio_user in this process, its forwarding
// loop on an lcore pinned to cpus[1].
func startGopmdFront(sock string, r virtioRow, cpus [2]int) (func() error, error) {
	prefix := fmt.Sprintf("vsgopmd-virtio-%d", os.Getpid())
	proc, err := mp.Start(mp.Config{Type: mp.Primary,
		Memory: hugemem.Options{Prefix: prefix, Limit: 256 << 20, SegmentSize: 128 << 20},
		Lcores: []mp.Lcore{{ID: cpus[0], CPUs: []int{cpus[0]}}, {ID: cpus[1], CPUs: []int{cpus[1]}}}})
	if err != nil {
		return nil, fmt.Errorf("gopmd group: %w", err)
	}
	fail := func(err error) (func() error, error) {
		proc.Close()
		return nil, err
	}
	if !proc.Mem.HugePages() {
		return fail(errors.New("gopmd's memory is not on hugepages; reserve some (scripts/setup.sh)"))
	}
	pool, err := mbuf.CreatePool(proc.Mem, "vs_pkts", mbuf.PoolConfig{N: virtioMbufs, CacheSize: virtioCache})
	if err != nil {
		return fail(err)
	}
	port, err := ethdev.Create(proc, fmt.Sprintf("virtio_user0,path=%s,queues=1,queue_size=%d,mrg_rxbuf=1", sock, virtioQueueLen))
	if err != nil {
		pool.Close()
		return fail(err)
	}
	closeAll := func() { port.Close(); pool.Close(); proc.Close() }
	err = errors.Join(port.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1}),
		port.SetupRxQueue(0, virtioQueueLen, pool), port.SetupTxQueue(0, virtioQueueLen), port.Start())
	var rx ethdev.RxQueue
	var tx ethdev.TxQueue
	if err == nil {
		rx, err = port.RxQueue(0)
	}
	if err == nil {
		tx, err = port.TxQueue(0)
	}
	if err != nil {
		closeAll()
		return nil, err
	}
	cache := pool.Cache(cpus[1])
	ethdev.BindLcore(rx, cpus[1])
	ethdev.BindLcore(tx, cpus[1])

	l, err := newLauncher(cpus[:])
	if err != nil {
		closeAll()
		return nil, err
	}
	var stopFlag atomic.Bool
	fwd := frontLoop(r, rx, tx, pool, cache, port.MAC())
	if err := l.RemoteLaunch(cpus[1], func(int) error {
		for !stopFlag.Load() {
			fwd()
		}
		return nil
	}); err != nil {
		l.Close()
		closeAll()
		return nil, err
	}
	return func() error {
		stopFlag.Store(true)
		err := l.Wait(cpus[1])
		l.Close()
		closeAll()
		return err
	}, nil
}

// frontLoop returns one iteration of gopmd's forwarding loop, as
// cmd/testpmd's engines do it: txonly sends bursts of fresh 64-byte
// frames, rxonly frees what arrives, io sends back what arrives (after one
// first burst).
func frontLoop(r virtioRow, rx ethdev.RxQueue, tx ethdev.TxQueue, pool *mbuf.Pool, cache *mempool.Cache, src []byte) func() {
	pkts := make([]*mbuf.Mbuf, virtioBurst)
	var tmpl [virtioPktLen]byte
	copy(tmpl[0:6], []byte{0x02, 0, 0, 0, 0, 1})
	copy(tmpl[6:12], src)
	tmpl[12], tmpl[13] = 0x08, 0x00
	send := func(n int) {
		k := tx.TxBurst(pkts[:n])
		if k < n {
			mbuf.FreeBulk(cache, pkts[k:n])
		}
	}
	fresh := func() bool {
		if pool.AllocBulk(cache, pkts) != nil {
			return false
		}
		for _, m := range pkts {
			b, _ := m.Append(virtioPktLen)
			copy(b, tmpl[:])
		}
		return true
	}
	switch r.front {
	case "txonly":
		return func() {
			if fresh() {
				send(len(pkts))
			}
		}
	case "rxonly":
		return func() {
			if n := rx.RxBurst(pkts); n > 0 {
				mbuf.FreeBulk(cache, pkts[:n])
			}
		}
	}
	first := r.txFirst
	return func() {
		if first && fresh() {
			send(len(pkts))
			first = false
		}
		if n := rx.RxBurst(pkts); n > 0 {
			send(n)
		}
	}
}
