// Package dpdktest runs DPDK's dpdk-testpmd as a peer of gopmd ports, for
// interoperability tests and for benchmarks that put DPDK and gopmd side by
// side.
//
// Start launches dpdk-testpmd in interactive mode with its standard output
// line-buffered (through stdbuf), so each command's answer arrives as it is
// printed; Command sends one command and waits for a line of its answer.
// Every run gets a file prefix of its own ("dpdktest-<pid>-<n>"), and Close
// ends the process and removes what EAL left under that prefix (its runtime
// directory and hugepage files). A Testpmd is used from one goroutine.
//
// In a test, StartPeer starts one for the test's lifetime: a Peer skips the
// test where DPDK is missing, fails it where a command fails, and is closed
// at the test's cleanup.
package dpdktest

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Config describes one dpdk-testpmd run.
type Config struct {
	// Lcores is EAL's --lcores map, e.g. "0@1,1@0": the lowest lcore is the
	// main one (the prompt), the others forward.
	Lcores string
	// VDevs become --vdev options, in order; they are testpmd's ports.
	VDevs []string
	// NoHuge runs EAL on ordinary memory (--no-huge -m 512); otherwise it
	// takes hugepages as it needs them.
	NoHuge bool
	// EAL are further EAL options.
	EAL []string
	// Args are testpmd's options after "--", besides -i.
	Args []string
	// Log, if set, gets every line testpmd prints.
	Log func(line string)
}

// CommandTimeout bounds how long Command waits for an answer.
const CommandTimeout = 10 * time.Second

// Testpmd is a running dpdk-testpmd.
type Testpmd struct {
	cmd    *exec.Cmd
	in     io.WriteCloser
	prefix string
	line   string // the command line, for logs

	mu    sync.Mutex
	out   []string // every line so far
	lines chan string
	done  chan struct{}
	once  sync.Once
}

var seq atomic.Int64

// Start runs dpdk-testpmd -i with cfg and waits for its prompt.
func Start(cfg Config) (*Testpmd, error) {
	bin, err := exec.LookPath("dpdk-testpmd")
	if err != nil {
		return nil, fmt.Errorf("dpdk-testpmd not found on PATH (scripts/setup.sh installs it): %w", err)
	}
	stdbuf, err := exec.LookPath("stdbuf")
	if err != nil {
		return nil, fmt.Errorf("stdbuf not found on PATH (coreutils): %w", err)
	}
	prefix := fmt.Sprintf("dpdktest-%d-%d", os.Getpid(), seq.Add(1))
	args := cfg.arguments(prefix)
	cmd := exec.Command(stdbuf, append([]string{"-oL", bin}, args...)...)
	in, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = cmd.Stdout
	line := strings.Join(append([]string{bin}, args...), " ")
	if cfg.Log != nil {
		cfg.Log("$ " + line)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start dpdk-testpmd: %w", err)
	}
	p := &Testpmd{cmd: cmd, in: in, prefix: prefix, line: line, lines: make(chan string, 4096), done: make(chan struct{})}
	go p.read(out, cfg.Log)
	if _, err := p.wait("testpmd> ", CommandTimeout+20*time.Second); err != nil {
		p.Close()
		return nil, fmt.Errorf("dpdk-testpmd did not start: %w\n%s", err, p.tail(20))
	}
	return p, nil
}

// arguments are dpdk-testpmd's arguments for cfg, in a run with the given
// EAL file prefix.
func (cfg Config) arguments(prefix string) []string {
	args := []string{"--no-pci", "--file-prefix=" + prefix}
	if cfg.Lcores != "" {
		args = append(args, "--lcores="+cfg.Lcores)
	}
	if cfg.NoHuge {
		args = append(args, "--no-huge", "-m", "512")
	}
	for _, v := range cfg.VDevs {
		args = append(args, "--vdev", v)
	}
	args = append(args, cfg.EAL...)
	return append(append(args, "--", "-i"), cfg.Args...)
}

// read collects testpmd's output. The prompt has no newline, so it is
// looked for in the partial line as well.
func (p *Testpmd) read(out io.Reader, log func(string)) {
	defer close(p.done)
	r := bufio.NewReader(out)
	var line []byte
	for {
		b, err := r.ReadByte()
		if err != nil {
			if len(line) > 0 {
				p.add(string(line), log)
			}
			return
		}
		if b == '\n' {
			p.add(string(line), log)
			line = line[:0]
			continue
		}
		line = append(line, b)
		if string(line) == "testpmd> " && r.Buffered() == 0 {
			p.add(string(line), nil)
			line = line[:0]
		}
	}
}

func (p *Testpmd) add(l string, log func(string)) {
	if log != nil {
		log(l)
	}
	p.mu.Lock()
	p.out = append(p.out, l)
	p.mu.Unlock()
	select {
	case p.lines <- l:
	default: // nobody waits for it; it stays in Output
	}
}

// wait returns the lines up to and including the first that contains until.
func (p *Testpmd) wait(until string, timeout time.Duration) ([]string, error) {
	var got []string
	deadline := time.After(timeout)
	for {
		select {
		case l := <-p.lines:
			got = append(got, l)
			if strings.Contains(l, until) {
				return got, nil
			}
		case <-p.done:
			// Lines the reader queued before it ended are taken first.
			if len(p.lines) == 0 {
				return got, fmt.Errorf("dpdk-testpmd exited before printing %q", until)
			}
		case <-deadline:
			return got, fmt.Errorf("dpdk-testpmd printed no %q within %v", until, timeout)
		}
	}
}

// Command sends one command and returns its output up to the first line
// that contains until.
func (p *Testpmd) Command(cmd, until string) ([]string, error) {
	for len(p.lines) > 0 {
		<-p.lines
	}
	if _, err := io.WriteString(p.in, cmd+"\n"); err != nil {
		return nil, fmt.Errorf("dpdk-testpmd command %q: %w", cmd, err)
	}
	got, err := p.wait(until, CommandTimeout)
	if err != nil {
		return got, fmt.Errorf("dpdk-testpmd command %q: %w", cmd, err)
	}
	return got, nil
}

// SetForwardMode sets the forwarding mode (io, rxonly, txonly, macswap,
// flowgen, ...).
func (p *Testpmd) SetForwardMode(mode string) error {
	_, err := p.Command("set fwd "+mode, "Set "+mode+" packet forwarding mode")
	return err
}

// StartForwarding starts the forwarding lcores.
func (p *Testpmd) StartForwarding() error {
	_, err := p.Command("start", "packets/burst=")
	return err
}

var statRE = regexp.MustCompile(`(RX|TX)-packets:\s+(\d+)`)

// StopForwarding stops forwarding and returns testpmd's accumulated forward
// statistics over all ports: packets its streams received and sent.
func (p *Testpmd) StopForwarding() (rx, tx uint64, err error) {
	lines, err := p.Command("stop", "Done.")
	if err != nil {
		return 0, 0, err
	}
	rx, tx, ok := firstCounts(lines, "Accumulated forward statistics")
	if !ok {
		return 0, 0, fmt.Errorf("dpdk-testpmd's stop output has no accumulated RX-packets and TX-packets:\n%s", strings.Join(lines, "\n"))
	}
	return rx, tx, nil
}

// PortStats returns port's RX-packets and TX-packets counters
// ("show port stats").
func (p *Testpmd) PortStats(port int) (rx, tx uint64, err error) {
	lines, err := p.Command(fmt.Sprintf("show port stats %d", port), "Tx-pps")
	if err != nil {
		return 0, 0, err
	}
	rx, tx, ok := firstCounts(lines, fmt.Sprintf("statistics for port %d", port))
	if !ok {
		return 0, 0, fmt.Errorf("dpdk-testpmd's port stats have no RX-packets and TX-packets:\n%s", strings.Join(lines, "\n"))
	}
	return rx, tx, nil
}

// firstCounts finds the first RX-packets and TX-packets after a line
// containing after.
func firstCounts(lines []string, after string) (rx, tx uint64, ok bool) {
	var seenRx, seenTx, started bool
	for _, l := range lines {
		if strings.Contains(l, after) {
			started = true
		}
		if !started {
			continue
		}
		for _, m := range statRE.FindAllStringSubmatch(l, -1) {
			n, _ := strconv.ParseUint(m[2], 10, 64)
			if m[1] == "RX" && !seenRx {
				rx, seenRx = n, true
			}
			if m[1] == "TX" && !seenTx {
				tx, seenTx = n, true
			}
		}
	}
	return rx, tx, seenRx && seenTx
}

// Quit asks testpmd to quit and waits up to 10 s for it to exit.
func (p *Testpmd) Quit() error {
	io.WriteString(p.in, "quit\n")
	select {
	case <-p.done:
		return nil
	case <-time.After(10 * time.Second):
		return errors.New("dpdk-testpmd did not quit within 10 s")
	}
}

// Close ends testpmd (killing it if it has not quit within 5 s of its
// stdin closing) and removes its EAL files. It may be called more than once.
func (p *Testpmd) Close() {
	p.once.Do(func() {
		p.in.Close()
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			p.cmd.Process.Kill()
		}
		p.cmd.Wait()
		<-p.done // no Log call after Close
		removePrefix(p.prefix)
	})
}

// CommandLine is how testpmd was started (without stdbuf), for logs.
func (p *Testpmd) CommandLine() string { return p.line }

// Cmd is the running command (stdbuf, which became dpdk-testpmd), for a
// test that signals it, e.g. kills it as a crash would. Close still reaps
// it and removes its files; do not Wait for it.
func (p *Testpmd) Cmd() *exec.Cmd { return p.cmd }

// Output returns everything testpmd printed so far.
func (p *Testpmd) Output() string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out, "\n")
}

func (p *Testpmd) tail(n int) string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return strings.Join(p.out[max(0, len(p.out)-n):], "\n")
}

// removePrefix removes the runtime directory and hugepage files of an EAL
// prefix this package made.
func removePrefix(prefix string) {
	base := "/var/run/dpdk"
	if os.Geteuid() != 0 {
		base = filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "dpdk")
		if os.Getenv("XDG_RUNTIME_DIR") == "" {
			base = "/tmp/dpdk"
		}
	}
	os.RemoveAll(filepath.Join(base, prefix))
	mounts, err := os.ReadFile("/proc/mounts")
	if err != nil {
		return
	}
	for _, l := range strings.Split(string(mounts), "\n") {
		if f := strings.Fields(l); len(f) >= 3 && f[2] == "hugetlbfs" {
			files, _ := filepath.Glob(filepath.Join(f[1], prefix+"map_*"))
			for _, file := range files {
				os.Remove(file)
			}
		}
	}
}
