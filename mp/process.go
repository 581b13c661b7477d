package mp

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mempool"
	"github.com/gopmd/gopmd/mp/ipc"
	"golang.org/x/sys/unix"
)

// ProcType is the role of a process in its group.
type ProcType uint32

const (
	// Primary creates the group's memory and owns device-global state.
	Primary ProcType = 1
	// Secondary attaches to a live primary's memory.
	Secondary ProcType = 2
	// Auto becomes Primary when no live primary holds the group, else Secondary.
	Auto ProcType = 3
)

func (t ProcType) String() string {
	switch t {
	case Primary:
		return "primary"
	case Secondary:
		return "secondary"
	case Auto:
		return "auto"
	}
	return fmt.Sprintf("proc-type(%d)", uint32(t))
}

// ParseProcType reads a --proc-type value.
func ParseProcType(s string) (ProcType, error) {
	switch s {
	case "primary":
		return Primary, nil
	case "secondary":
		return Secondary, nil
	case "auto":
		return Auto, nil
	}
	return 0, fmt.Errorf("mp: --proc-type %q is not primary, secondary or auto", s)
}

// Lcore is one logical core of a process: its id (the index of its mempool
// caches) and the CPUs its thread may run on.
type Lcore struct {
	ID   int
	CPUs []int
}

// Config says how a process joins its group.
type Config struct {
	Type   ProcType
	Memory hugemem.Options
	Lcores []Lcore
	// ReapInterval is how often the primary looks for processes that died;
	// 100 ms when zero.
	ReapInterval time.Duration
}

// Process is this process's membership of a group.
type Process struct {
	Mem *hugemem.Memory

	typ    ProcType
	table  *procTable
	slot   int
	self   procEntry
	lcores []Lcore

	ep *ipc.Endpoint
	ev events

	mu          sync.Mutex
	onExit      []func(ExitedProcess)
	primaryGone chan struct{}
	stop        chan struct{}
	done        sync.WaitGroup
	closed      bool
}

// ExitedProcess describes a group member that died or exited without Close.
type ExitedProcess struct {
	PID    int
	Type   ProcType
	Lcores []int
}

// Start makes this process a member of the group cfg.Memory.Prefix names.
//
// A primary creates the group's memory; a second primary fails with an error
// naming the live one's pid. A secondary attaches to a live primary's memory
// and fails without creating anything when there is none. Either way the
// process's lcores and CPUs are recorded in the group's process table; an
// lcore held by another live process is refused (ErrCoreTaken), and a CPU
// shared with one is allowed with a warning.
func Start(cfg Config) (*Process, error) {
	if err := checkLcores(cfg.Lcores); err != nil {
		return nil, err
	}
	switch cfg.Type {
	case Primary:
		return startPrimary(cfg)
	case Secondary:
		return startSecondary(cfg)
	case Auto:
		p, err := startPrimary(cfg)
		if !errors.Is(err, hugemem.ErrInUse) {
			return p, err
		}
		p, err = startSecondary(cfg)
		if errors.Is(err, hugemem.ErrNoGroup) { // the primary exited in between
			return startPrimary(cfg)
		}
		return p, err
	}
	return nil, fmt.Errorf("mp: process type %d is not primary, secondary or auto", cfg.Type)
}

func checkLcores(lcores []Lcore) error {
	seen := map[int]bool{}
	for _, lc := range lcores {
		if lc.ID < 0 || lc.ID >= maxLcoreID {
			return fmt.Errorf("mp: lcore id %d is out of range 0..%d", lc.ID, maxLcoreID-1)
		}
		if seen[lc.ID] {
			return fmt.Errorf("mp: lcore id %d is given twice", lc.ID)
		}
		seen[lc.ID] = true
		for _, cpu := range lc.CPUs {
			if cpu < 0 || cpu >= maxCPU {
				return fmt.Errorf("mp: cpu %d of lcore %d is out of range 0..%d", cpu, lc.ID, maxCPU-1)
			}
		}
	}
	return nil
}

func startPrimary(cfg Config) (*Process, error) {
	mem, err := hugemem.Create(cfg.Memory)
	if err != nil {
		if errors.Is(err, hugemem.ErrInUse) {
			return nil, fmt.Errorf("mp: cannot start a second primary: %w", err)
		}
		return nil, fmt.Errorf("mp: primary: %w", err)
	}
	p, err := newProcess(cfg, mem, Primary, true)
	if err != nil {
		mem.Close()
		return nil, err
	}
	interval := cfg.ReapInterval
	if interval == 0 {
		interval = 100 * time.Millisecond
	}
	p.done.Add(1)
	go p.reapLoop(interval)
	return p, nil
}

func startSecondary(cfg Config) (*Process, error) {
	mem, err := hugemem.Attach(cfg.Memory)
	if err != nil {
		return nil, fmt.Errorf("mp: secondary: %w", err)
	}
	p, err := newProcess(cfg, mem, Secondary, false)
	if err != nil {
		mem.Close()
		return nil, err
	}
	if err := p.watchPrimary(); err != nil {
		p.Close()
		return nil, err
	}
	return p, nil
}

func newProcess(cfg Config, mem *hugemem.Memory, typ ProcType, create bool) (*Process, error) {
	table, err := openProcTable(mem, create)
	if err != nil {
		return nil, err
	}
	p := &Process{Mem: mem, typ: typ, table: table, lcores: cfg.Lcores,
		primaryGone: make(chan struct{}), stop: make(chan struct{})}
	self := procEntry{Type: uint32(typ), PID: int32(os.Getpid())}
	if self.StartTime, err = procStartTime(os.Getpid()); err != nil {
		return nil, fmt.Errorf("mp: own start time: %w", err)
	}
	for _, lc := range cfg.Lcores {
		self.Lcores[lc.ID/64] |= 1 << (lc.ID % 64)
		for _, cpu := range lc.CPUs {
			self.CPUs[cpu/64] |= 1 << (cpu % 64)
		}
	}
	p.self = self
	pools := p.pools()
	var warnings []string
	err = mem.WithLock(func() error {
		p.slot, warnings, err = table.claim(self, func(dead procEntry) { p.reaped(dead, pools) })
		return err
	})
	if err != nil {
		return nil, err
	}
	for _, w := range warnings {
		slog.Warn("mp: " + w)
	}
	if err := p.startIPC(); err != nil {
		mem.WithLock(func() error { table.release(p.slot, self.PID); return nil })
		return nil, err
	}
	return p, nil
}

// Type returns Primary or Secondary: what this process became.
func (p *Process) Type() ProcType { return p.typ }

// Lcores returns the lcores this process holds.
func (p *Process) Lcores() []Lcore { return p.lcores }

// PrimaryGone is closed when the group's primary process exits; a secondary
// should then stop its work and Close. It never closes in the primary.
func (p *Process) PrimaryGone() <-chan struct{} { return p.primaryGone }

// OnProcessExit registers fn to run (in the primary) for every group member
// that dies without closing, after its lcores were released and its mempool
// caches returned to their pools.
func (p *Process) OnProcessExit(fn func(ExitedProcess)) {
	p.mu.Lock()
	p.onExit = append(p.onExit, fn)
	p.mu.Unlock()
}

// Close leaves the group: releases this process's lcores and unmaps the
// memory. A primary's Close also removes the group's files; secondaries that
// are still attached keep their mappings and see PrimaryGone.
func (p *Process) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.mu.Unlock()
	close(p.stop)
	p.done.Wait()
	p.ep.Close()
	pools := p.pools()
	p.Mem.WithLock(func() error {
		flushCaches(pools, p.self.lcoreIDs())
		p.table.release(p.slot, p.self.PID)
		return nil
	})
	return p.Mem.Close()
}

// reaped runs under the group lock for each dead member found in the
// process table: it returns the member's cached mempool objects before its
// lcores can be claimed again.
func (p *Process) reaped(dead procEntry, pools []*mempool.Pool) {
	lcores := dead.lcoreIDs()
	flushCaches(pools, lcores)
	// Its IPC socket file outlives it; nobody will receive there again.
	stale, _ := filepath.Glob(filepath.Join(p.Mem.RuntimeDir(), fmt.Sprintf("%s_%d_*", ipc.PrimarySocket, dead.PID)))
	for _, f := range stale {
		os.Remove(f)
	}
	slog.Info("mp: group member exited without closing; its lcores and mempool caches are reclaimed",
		"pid", dead.PID, "type", ProcType(dead.Type), "lcores", lcores)
	ev := ExitedProcess{PID: int(dead.PID), Type: ProcType(dead.Type), Lcores: lcores}
	p.mu.Lock()
	fns := slices.Clone(p.onExit)
	p.mu.Unlock()
	// Callbacks run outside the group lock, on their own goroutine.
	go func() {
		for _, fn := range fns {
			fn(ev)
		}
	}()
}

// reapLoop is the primary's watch over its secondaries.
func (p *Process) reapLoop(interval time.Duration) {
	defer p.done.Done()
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		p.reapNow()
	}
}

func (p *Process) reapNow() {
	needs := false
	for i := range p.table.Procs {
		if e := &p.table.Procs[i]; e.Type != 0 && !e.alive() {
			needs = true
		}
	}
	if needs {
		pools := p.pools()
		p.Mem.WithLock(func() error {
			p.table.reapDead(func(dead procEntry) { p.reaped(dead, pools) })
			return nil
		})
	}
}

// watchPrimary closes primaryGone when the primary exits, using a pidfd so
// the news is immediate.
func (p *Process) watchPrimary() error {
	var primary *procEntry
	for _, e := range p.table.live() {
		if ProcType(e.Type) == Primary {
			primary = &e
			break
		}
	}
	if primary == nil {
		return fmt.Errorf("mp: the group has no live primary in its process table: %w", hugemem.ErrNoGroup)
	}
	pidfd, err := unix.PidfdOpen(int(primary.PID), 0)
	if err != nil {
		return fmt.Errorf("mp: watch primary pid %d: %w", primary.PID, err)
	}
	stopfd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(pidfd)
		return fmt.Errorf("mp: eventfd: %w", err)
	}
	p.done.Add(2)
	go func() {
		defer p.done.Done()
		<-p.stop
		unix.Write(stopfd, []byte{1, 0, 0, 0, 0, 0, 0, 0})
	}()
	go func() {
		defer p.done.Done()
		defer unix.Close(pidfd)
		defer unix.Close(stopfd)
		fds := []unix.PollFd{{Fd: int32(pidfd), Events: unix.POLLIN}, {Fd: int32(stopfd), Events: unix.POLLIN}}
		for {
			_, err := unix.Poll(fds, -1)
			if err == unix.EINTR {
				continue
			}
			if fds[0].Revents != 0 {
				close(p.primaryGone)
			}
			return
		}
	}()
	return nil
}

// pools attaches to every mempool of the group. It takes the group lock, so
// call it before WithLock, not inside.
func (p *Process) pools() []*mempool.Pool {
	pools, err := mempool.All(p.Mem)
	if err != nil {
		slog.Warn("mp: cannot list the group's mempools; dead processes' caches stay unflushed", "err", err)
	}
	return pools
}

// flushCaches returns the objects cached for lcores to their pools' rings.
// The lcores' owner must be gone or closing.
func flushCaches(pools []*mempool.Pool, lcores []int) {
	for _, pool := range pools {
		for _, id := range lcores {
			pool.FlushCache(id)
		}
	}
}
