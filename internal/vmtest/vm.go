package vmtest

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
)

// Result is what a finished VM run produced.
type Result struct {
	// ExitStatus is the guest program's exit status.
	ExitStatus int
	// Output is what the guest printed after its init started (program
	// output and kernel warnings), one line each, markers left out.
	Output []string
	// Console is the whole serial console, boot messages included.
	Console []string
	// Boot is the time from starting QEMU to the guest's /init running;
	// Total the time to QEMU's exit (both of the last attempt).
	Boot, Total time.Duration
	// Attempts is how many times QEMU was started: 2 when the first
	// guest never reached /init (see bootStall).
	Attempts int
}

// bootStall is how long a guest may stay silent on its console before
// QEMU is killed and started once more, when Config.Timeout leaves time
// for two such waits. The kernel boots with "quiet", so
// the first line is /init's marker, normally after about 6 s. Rarely,
// with the host loaded, a TCG guest stays silent until Config.Timeout:
// a guest that never booted tells nothing about the test, so it gets a
// second start. A guest that printed anything is never restarted.
var bootStall = time.Minute

// VM is a running QEMU guest started by Start. Wait collects its Result;
// the test's cleanup kills QEMU if it still runs.
type VM struct {
	t       testing.TB
	nonce   string
	timeout time.Duration
	cancel  context.CancelFunc
	ctx     context.Context
	done    chan struct{} // closed once the last QEMU exited and its output is read

	mu       sync.Mutex
	boot     *boot // the last attempt's; launch replaces it
	attempts int
	waited   bool
	result   Result
}

// boot is what one QEMU start produced. Each attempt writes only to its
// own (under VM.mu), so a killed attempt's late console lines or stderr
// cannot end up in the next attempt's Result.
type boot struct {
	start       time.Time
	console     []string
	output      []string
	bootAt      time.Duration
	exitStatus  int
	exited      bool // exit marker seen
	setupFailed string
	qemuErr     error
	stderr      bytes.Buffer
	total       time.Duration
}

// Run boots a VM with cfg, waits for the guest program to finish and
// returns its Result. Set-up problems fail t, and a missing QEMU, kernel
// or busybox skips it (fails it under CI=true).
func Run(t testing.TB, cfg Config) Result {
	t.Helper()
	return Start(t, cfg).Wait()
}

// Start boots a VM with cfg and returns while the guest runs, for tests
// that talk to it from the host (over a NIC backend) meanwhile.
func Start(t testing.TB, cfg Config) *VM {
	t.Helper()
	if err := cfg.validate(); err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	qemu := testenv.RequireCommand(t, qemuBinary)
	k, err := findKernel(cfg.Kernel)
	if errors.Is(err, errNoKernel) {
		testenv.Missing(t, "%v", err)
	}
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}
	busybox, err := findBusybox()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	if err := checkStatic(cfg.Binary); err != nil {
		t.Fatalf("vmtest: guest program %s: %v; build it with BuildTest or BuildMain (CGO_ENABLED=0)", cfg.Binary, err)
	}

	prepared := time.Now()
	dir := t.TempDir()
	initrd := filepath.Join(dir, "initramfs.cpio")
	nonce := newNonce()
	if err := writeInitramfs(initrd, &cfg, k, busybox, nonce); err != nil {
		t.Fatalf("vmtest: initramfs: %v", err)
	}
	kernelArg, extra := k.image, []*os.File(nil)
	if f, err := pvhKernel(k.image); err == nil {
		kernelArg, extra = "/proc/self/fd/3", []*os.File{f}
	} else {
		t.Logf("vmtest: booting the bzImage (about 3 s slower): no PVH boot: %v", err)
	}
	args, err := qemuArgs(&cfg, kernelArg, initrd)
	if err != nil {
		t.Fatalf("vmtest: %v", err)
	}

	timeout := cfg.Timeout
	if timeout == 0 {
		timeout = defaultTimeout
	}
	if dt, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if d, ok := dt.Deadline(); ok {
			// Leave the test binary time to report instead of panicking.
			if left := time.Until(d) - 10*time.Second; left < timeout {
				timeout = max(left, time.Second)
			}
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	vm := &VM{t: t, nonce: nonce, timeout: timeout, cancel: cancel, ctx: ctx, done: make(chan struct{})}
	t.Logf("vmtest: kernel and initramfs ready in %v; %s %s", time.Since(prepared).Round(time.Millisecond), qemu, strings.Join(args, " "))
	first, err := vm.launch(qemu, args, extra)
	if err != nil {
		cancel()
		t.Fatalf("vmtest: %v", err)
	}
	stall := bootStall
	if 2*stall > timeout {
		stall = 0 // no time for a second boot
	}
	go vm.supervise(first, stall, func() (*attempt, error) { return vm.launch(qemu, args, extra) })
	t.Cleanup(func() {
		vm.cancel()
		<-vm.done
	})
	return vm
}

// attempt is one QEMU process of a VM.
type attempt struct {
	cmd     *exec.Cmd
	stop    context.CancelFunc
	boot    *boot
	console chan struct{} // closed once QEMU exited and its output is read
}

// launch starts QEMU and the reading of its console into a new boot,
// which becomes the VM's.
func (vm *VM) launch(qemu string, args []string, extra []*os.File) (*attempt, error) {
	ctx, stop := context.WithCancel(vm.ctx)
	cmd := exec.CommandContext(ctx, qemu, args...)
	cmd.ExtraFiles = extra
	cmd.WaitDelay = 5 * time.Second
	// QEMU must not outlive a test binary killed by go test's -timeout.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		stop()
		return nil, err
	}
	b := &boot{}
	cmd.Stderr = &lockedWriter{mu: &vm.mu, w: &b.stderr}
	vm.mu.Lock()
	b.start = time.Now()
	vm.boot = b
	vm.attempts++
	vm.mu.Unlock()
	if err := cmd.Start(); err != nil {
		stop()
		return nil, fmt.Errorf("starting QEMU: %w", err)
	}
	a := &attempt{cmd: cmd, stop: stop, boot: b, console: make(chan struct{})}
	go func() {
		defer close(a.console)
		vm.readConsole(b, stdout, cmd)
	}()
	return a, nil
}

// supervise waits for the VM's QEMU to exit. When the first one's
// console stays empty for stall (not 0), it kills it and starts another
// (relaunch), once. It closes vm.done at the end.
func (vm *VM) supervise(a *attempt, stall time.Duration, relaunch func() (*attempt, error)) {
	defer close(vm.done)
	if stall == 0 {
		<-a.console
		return
	}
	timer := time.NewTimer(stall)
	defer timer.Stop()
	select {
	case <-a.console:
		return
	case <-timer.C:
	}
	vm.mu.Lock()
	silent := len(a.boot.console) == 0 && vm.ctx.Err() == nil
	vm.mu.Unlock()
	if !silent {
		<-a.console
		return
	}
	vm.t.Logf("vmtest: the guest printed nothing in %v (it never reached /init): killing QEMU and booting once more", stall)
	a.stop()
	<-a.console
	next, err := relaunch()
	if err != nil {
		vm.mu.Lock()
		vm.boot.qemuErr = err
		vm.mu.Unlock()
		return
	}
	<-next.console
}

// writeInitramfs writes the cached base archive (busybox, modules) and the
// per-VM archive (init, program, files) back to back into path.
func writeInitramfs(path string, cfg *Config, k kernel, busybox, nonce string) error {
	mt, err := readModuleTree(k.modDir)
	if err != nil {
		return err
	}
	order, err := mt.loadOrder(cfg.modules())
	if err != nil {
		return err
	}
	base, err := baseArchive(mt, order, busybox)
	if err != nil {
		return err
	}
	own, err := vmArchive(cfg.Binary, initScript(nonce, cfg, order, cfg.vfioDevices()), cfg.Files)
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(base[:len(base):len(base)], own...), 0o644)
}

func newNonce() string {
	b := make([]byte, 8)
	rand.Read(b)
	return "vmtest-" + hex.EncodeToString(b)
}

// readConsole logs the serial console line by line and parses the markers
// into b, the boot of cmd.
func (vm *VM) readConsole(b *boot, stdout io.Reader, cmd *exec.Cmd) {
	sc := bufio.NewScanner(stdout)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := strings.TrimRight(sc.Text(), "\r")
		at := time.Since(b.start)
		vm.t.Logf("vm %6.2fs| %s", at.Seconds(), line)
		vm.mu.Lock()
		b.console = append(b.console, line)
		switch rest, isMarker := strings.CutPrefix(line, vm.nonce+" "); {
		case !isMarker:
			if b.bootAt != 0 {
				b.output = append(b.output, line)
			}
		case rest == "init":
			b.bootAt = at
		case strings.HasPrefix(rest, "setup-failed "):
			b.setupFailed = strings.TrimPrefix(rest, "setup-failed ")
		case strings.HasPrefix(rest, "exit "):
			if n, err := strconv.Atoi(strings.TrimPrefix(rest, "exit ")); err == nil {
				b.exitStatus, b.exited = n, true
			}
		}
		vm.mu.Unlock()
	}
	if err := sc.Err(); err != nil {
		vm.t.Logf("vmtest: console reading stopped: %v; discarding the rest", err)
		io.Copy(io.Discard, stdout) // QEMU must not block on a full pipe
	}
	err := cmd.Wait()
	vm.mu.Lock()
	b.qemuErr = err
	b.total = time.Since(b.start)
	vm.mu.Unlock()
}

// Wait waits for the guest to power off and returns the Result. It fails
// the test when the VM timed out, the guest set-up failed, or QEMU ended
// without the program's exit status; the message carries the console's
// tail. Call it from the test's goroutine.
func (vm *VM) Wait() Result {
	vm.t.Helper()
	<-vm.done
	vm.mu.Lock()
	defer vm.mu.Unlock()
	if vm.waited {
		return vm.result
	}
	vm.waited = true
	timedOut := errors.Is(vm.ctx.Err(), context.DeadlineExceeded)
	vm.cancel()
	b := vm.boot
	switch {
	case b.setupFailed != "":
		vm.t.Fatalf("vmtest: guest set-up failed: %s\n%s", b.setupFailed, b.tail())
	case timedOut:
		vm.t.Fatalf("vmtest: VM still running after %v (Config.Timeout), QEMU killed\n%s", vm.timeout, b.tail())
	case !b.exited:
		vm.t.Fatalf("vmtest: QEMU ended (%v) without the guest program's exit status\n%s", b.qemuErr, b.tail())
	}
	vm.result = Result{
		ExitStatus: b.exitStatus,
		Output:     b.output,
		Console:    b.console,
		Boot:       b.bootAt,
		Total:      b.total,
		Attempts:   vm.attempts,
	}
	if s := strings.TrimSpace(b.stderr.String()); s != "" {
		vm.t.Logf("vmtest: QEMU stderr:\n%s", s)
	}
	vm.t.Logf("vmtest: guest program exited %d; boot %v, total %v", b.exitStatus, b.bootAt.Round(time.Millisecond), b.total.Round(time.Millisecond))
	return vm.result
}

// tail returns the last console lines and QEMU's stderr for a failure.
func (b *boot) tail() string {
	const n = 30
	lines := b.console[max(0, len(b.console)-n):]
	var s strings.Builder
	fmt.Fprintf(&s, "--- last %d of %d console lines:\n%s\n", len(lines), len(b.console), strings.Join(lines, "\n"))
	if e := strings.TrimSpace(b.stderr.String()); e != "" {
		fmt.Fprintf(&s, "--- QEMU stderr:\n%s\n", e)
	}
	return s.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}
