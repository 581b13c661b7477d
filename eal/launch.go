package eal

import (
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrBusy is returned when launching on an lcore whose last function has not
// been waited for.
var ErrBusy = errors.New("lcore busy")

// ErrClosed is returned when launching on a closed Launcher.
var ErrClosed = errors.New("launcher closed")

// LcoreError is a function's error together with the lcore it ran on.
type LcoreError struct {
	Lcore int
	Err   error
}

func (e *LcoreError) Error() string { return fmt.Sprintf("lcore %d: %v", e.Lcore, e.Err) }
func (e *LcoreError) Unwrap() error { return e.Err }

// Launcher runs functions on lcores. Each worker lcore (every lcore but the
// main one) has an OS thread of its own, pinned to the lcore's CPUs from
// NewLauncher to Close. The main lcore's function runs on the calling
// goroutine (RunMain), pinned while it runs.
//
// An lcore runs one function at a time: after RemoteLaunch, Wait for it
// before launching again. A function that panics crashes the program, as on
// any goroutine. All methods may be called from any goroutine.
type Launcher struct {
	main    *lcoreSlot
	workers []*lcoreSlot // sorted by ID
	threads sync.WaitGroup

	mu       sync.Mutex // guards closed and every slot's run
	closed   bool
	mainBusy bool
}

type lcoreSlot struct {
	Lcore
	jobs chan job // worker lcores only; capacity 1
	run  *run     // the last launch not yet waited for, or nil
}

type run struct {
	done chan struct{} // closed when fn has returned
	err  error
}

type job struct {
	fn func(lcoreID int) error
	r  *run
}

// NewLauncher starts a pinned thread for every lcore but main. The lcore IDs
// must be distinct and below MaxLcores, each lcore needs at least one CPU,
// and main must be one of the lcores.
func NewLauncher(lcores []Lcore, main int) (*Launcher, error) {
	if len(lcores) == 0 {
		return nil, errors.New("eal: NewLauncher: no lcores; want at least the main lcore")
	}
	l := &Launcher{}
	for _, lc := range lcores {
		if lc.ID < 0 || lc.ID >= MaxLcores {
			return nil, fmt.Errorf("eal: NewLauncher: lcore ID %d: want 0 to %d", lc.ID, MaxLcores-1)
		}
		if len(lc.CPUs) == 0 {
			return nil, fmt.Errorf("eal: NewLauncher: lcore %d has no CPUs; want at least one", lc.ID)
		}
		for _, c := range lc.CPUs {
			if c < 0 || c >= maxCPUs {
				return nil, fmt.Errorf("eal: NewLauncher: lcore %d: CPU %d: want 0 to %d", lc.ID, c, maxCPUs-1)
			}
		}
		if l.slot(lc.ID) != nil {
			return nil, fmt.Errorf("eal: NewLauncher: lcore %d is listed twice", lc.ID)
		}
		s := &lcoreSlot{Lcore: Lcore{ID: lc.ID, CPUs: slices.Clone(lc.CPUs)}}
		if lc.ID == main {
			l.main = s
		} else {
			s.jobs = make(chan job, 1)
			l.workers = append(l.workers, s)
		}
	}
	if l.main == nil {
		return nil, fmt.Errorf("eal: NewLauncher: main lcore %d is not one of the lcores (%s)", main, lcoreIDs(lcores))
	}
	slices.SortFunc(l.workers, func(a, b *lcoreSlot) int { return a.ID - b.ID })

	for _, w := range l.workers {
		ready := make(chan error)
		l.threads.Add(1)
		go w.serve(ready, &l.threads)
		if err := <-ready; err != nil {
			l.Close()
			return nil, fmt.Errorf("eal: NewLauncher: %w", err)
		}
	}
	return l, nil
}

// serve is a worker lcore's thread: pinned, it runs the jobs it is sent.
func (s *lcoreSlot) serve(ready chan<- error, threads *sync.WaitGroup) {
	defer threads.Done()
	// Never unlocked: when the goroutine ends, the Go runtime ends the thread
	// with it, so its CPU affinity never reaches other goroutines.
	runtime.LockOSThread()
	if err := pin(s.CPUs); err != nil {
		ready <- fmt.Errorf("lcore %d: %w", s.ID, err)
		return
	}
	ready <- nil
	for j := range s.jobs {
		j.r.err = j.fn(s.ID)
		close(j.r.done)
	}
}

// pin sets the calling thread's affinity to cpus.
func pin(cpus []int) error {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	if err := unix.SchedSetaffinity(0, &set); err != nil {
		return fmt.Errorf("pinning a thread to CPUs %s: %w", formatList(cpus), err)
	}
	return nil
}

// Main returns the main lcore's ID.
func (l *Launcher) Main() int { return l.main.ID }

// Workers returns the worker lcores' IDs in ascending order.
func (l *Launcher) Workers() []int {
	ids := make([]int, len(l.workers))
	for i, w := range l.workers {
		ids[i] = w.ID
	}
	return ids
}

func (l *Launcher) slot(id int) *lcoreSlot {
	if l.main != nil && l.main.ID == id {
		return l.main
	}
	for _, w := range l.workers {
		if w.ID == id {
			return w
		}
	}
	return nil
}

// worker finds a worker lcore; l.mu need not be held.
func (l *Launcher) worker(op string, id int) (*lcoreSlot, error) {
	s := l.slot(id)
	switch {
	case s == nil:
		return nil, fmt.Errorf("eal: %s: no lcore %d (lcores: %d and workers %s)", op, id, l.main.ID, formatList(l.Workers()))
	case s == l.main:
		return nil, fmt.Errorf("eal: %s: lcore %d is the main lcore, which has no thread of its own; use RunMain", op, id)
	}
	return s, nil
}

// RemoteLaunch starts fn(lcoreID) on a worker lcore's thread and returns at
// once; Wait collects fn's error. It fails with ErrBusy if the lcore's last
// function has not been waited for, and with ErrClosed after Close.
func (l *Launcher) RemoteLaunch(lcoreID int, fn func(lcoreID int) error) error {
	if fn == nil {
		return fmt.Errorf("eal: RemoteLaunch on lcore %d: fn is nil", lcoreID)
	}
	w, err := l.worker("RemoteLaunch", lcoreID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("eal: RemoteLaunch on lcore %d: %w", lcoreID, ErrClosed)
	}
	if w.run != nil {
		return fmt.Errorf("eal: RemoteLaunch on lcore %d: %w: its last function has not been waited for", lcoreID, ErrBusy)
	}
	l.start(w, fn)
	return nil
}

// start hands fn to an idle worker; l.mu is held, so Close cannot close the
// channel meanwhile, and the send cannot block: the thread has taken every
// earlier job, or w.run would not be nil.
func (l *Launcher) start(w *lcoreSlot, fn func(int) error) {
	w.run = &run{done: make(chan struct{})}
	w.jobs <- job{fn: fn, r: w.run}
}

// LaunchWorkers starts fn on every worker lcore, like
// rte_eal_mp_remote_launch with SKIP_MAIN. It launches on all of them or,
// if one is busy or the Launcher is closed, on none.
func (l *Launcher) LaunchWorkers(fn func(lcoreID int) error) error {
	if fn == nil {
		return errors.New("eal: LaunchWorkers: fn is nil")
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return fmt.Errorf("eal: LaunchWorkers: %w", ErrClosed)
	}
	for _, w := range l.workers {
		if w.run != nil {
			return fmt.Errorf("eal: LaunchWorkers: lcore %d: %w: its last function has not been waited for; launched on none", w.ID, ErrBusy)
		}
	}
	for _, w := range l.workers {
		l.start(w, fn)
	}
	return nil
}

// Wait waits for the function last launched on a worker lcore and returns
// its error; the lcore is then free for the next launch. For an lcore with
// nothing launched since the last Wait it returns nil at once. Every
// concurrent Wait for the same launch returns the same error.
func (l *Launcher) Wait(lcoreID int) error {
	w, err := l.worker("Wait", lcoreID)
	if err != nil {
		return err
	}
	l.mu.Lock()
	r := w.run
	l.mu.Unlock()
	if r == nil {
		return nil
	}
	<-r.done
	l.mu.Lock()
	if w.run == r {
		w.run = nil
	}
	l.mu.Unlock()
	return r.err
}

// WaitAll waits for every worker lcore, like rte_eal_mp_wait_lcore. It
// returns nil if no function failed, else the failures joined as
// *LcoreError values in lcore order (use errors.As, or Wait per lcore).
func (l *Launcher) WaitAll() error {
	var errs []error
	for _, w := range l.workers {
		if err := l.Wait(w.ID); err != nil {
			errs = append(errs, &LcoreError{Lcore: w.ID, Err: err})
		}
	}
	return errors.Join(errs...)
}

// RunMain runs fn(main lcore ID) on the calling goroutine and returns its
// error. While fn runs, the goroutine is locked to its thread and the thread
// is pinned to the main lcore's CPUs; afterwards the thread's affinity is
// put back. If that fails, the goroutine stays locked to the pinned thread
// (so no other goroutine inherits the pinning) and the error says so.
func (l *Launcher) RunMain(fn func(lcoreID int) error) (err error) {
	if fn == nil {
		return errors.New("eal: RunMain: fn is nil")
	}
	l.mu.Lock()
	if l.mainBusy {
		l.mu.Unlock()
		return fmt.Errorf("eal: RunMain: main lcore %d: %w: RunMain is already running", l.main.ID, ErrBusy)
	}
	l.mainBusy = true
	l.mu.Unlock()
	defer func() {
		l.mu.Lock()
		l.mainBusy = false
		l.mu.Unlock()
	}()

	runtime.LockOSThread()
	var saved unix.CPUSet
	if err := unix.SchedGetaffinity(0, &saved); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("eal: RunMain: reading the thread's CPU affinity: %w", err)
	}
	if err := pin(l.main.CPUs); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("eal: RunMain: main lcore %d: %w", l.main.ID, err)
	}
	defer func() {
		if rerr := unix.SchedSetaffinity(0, &saved); rerr != nil {
			err = errors.Join(err, fmt.Errorf("eal: RunMain: restoring the thread's CPU affinity: %w; the calling goroutine stays locked to the pinned thread", rerr))
			return
		}
		runtime.UnlockOSThread()
	}()
	return fn(l.main.ID)
}

// Run runs fn on every lcore: it launches fn on the workers, runs it on the
// main lcore (RunMain), then waits for the workers, like
// rte_eal_mp_remote_launch with CALL_MAIN followed by rte_eal_mp_wait_lcore.
// It returns the failures joined as *LcoreError values.
func (l *Launcher) Run(fn func(lcoreID int) error) error {
	if err := l.LaunchWorkers(fn); err != nil {
		return err
	}
	var errs []error
	if err := l.RunMain(fn); err != nil {
		errs = append(errs, &LcoreError{Lcore: l.main.ID, Err: err})
	}
	if err := l.WaitAll(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Close refuses new launches, lets running functions return and ends the
// worker threads; it returns when they are gone. Functions that loop must
// be told to stop first: Close does not interrupt them. Results not yet
// collected stay available to Wait. Close is idempotent.
func (l *Launcher) Close() error {
	l.mu.Lock()
	if !l.closed {
		l.closed = true
		for _, w := range l.workers {
			close(w.jobs)
		}
	}
	l.mu.Unlock()
	l.threads.Wait()
	return nil
}
