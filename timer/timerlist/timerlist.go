package timerlist

import (
	"errors"
	"fmt"
	"log/slog"
	"math"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/proclive"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/timer/clock"
)

const (
	// MaxLcores is the number of lcore IDs with a timer list, 0 to
	// MaxLcores-1 (eal.MaxLcores).
	MaxLcores = 128
	// AnyLcore is the lcore ID of threads that are not lcores: they may
	// arm and stop timers but have no list to manage.
	AnyLcore = -1
	// MaxCallbacks bounds callback IDs: 0 to MaxCallbacks-1.
	MaxCallbacks = 1 << 16
	// DefaultTimers is the pool size when Config.Timers is 0.
	DefaultTimers = 4096
	// MaxTimers is the largest pool.
	MaxTimers = 1 << 24
	// DefaultName is the memzone name when Config.Name is empty.
	DefaultName = "timerlist"
)

// Errors returned as they are (not wrapped), so that busy-waiting callers
// can test them cheaply with ==.
var (
	// ErrBusy: the timer is running on another lcore, or another lcore is
	// changing it. Retry, or use ResetSync or StopSync.
	ErrBusy = errors.New("timerlist: timer is running on another lcore or being changed")
	// ErrStale: the handle names a timer that was freed.
	ErrStale = errors.New("timerlist: timer handle is stale: the timer was freed")
)

// Timer is a handle on a timer, valid in every process of the group. The
// zero Timer is no timer.
type Timer uint64

func (t Timer) index() (uint32, bool) { return uint32(t) - 1, uint32(t) != 0 }
func (t Timer) gen() uint16           { return uint16(t >> 32) }

// CallbackID names a callback; each process registers its function for it.
type CallbackID uint16

// Callback runs an expired timer on lcore lc, which is where the timer may
// be reset or stopped from within the callback. arg is the timer's
// argument from New.
type Callback func(lc *Lcore, t Timer, arg uint64)

// State is what a timer is doing.
type State int

const (
	Stopped     State = stateStopped
	Pending     State = statePending
	Running     State = stateRunning
	Configuring State = stateConfig
)

func (s State) String() string {
	switch s {
	case Stopped:
		return "stopped"
	case Pending:
		return "pending"
	case Running:
		return "running"
	case Configuring:
		return "configuring"
	}
	return fmt.Sprintf("State(%d)", int(s))
}

// Config says which timer lists to open.
type Config struct {
	Name   string // memzone name; DefaultName when empty
	Timers int    // pool size when creating; DefaultTimers when 0. Attaching checks it if not 0.
}

// Lists is this process's view of a group's timer lists. Its methods may be
// called from any goroutine.
type Lists struct {
	mem   *hugemem.Memory
	clk   *clock.Clock
	name  string
	hdr   *header
	lists *[MaxLcores]list
	recs  []rec
	pid   uint32 // in status words, which have room for a pid only
	word  uint64 // in lock words (proclive.Word)
	self  mp.Owner

	regMu     sync.Mutex
	callbacks atomic.Pointer[[]Callback]
	warned    sync.Map // CallbackIDs found unregistered, logged once

	lcMu    sync.Mutex
	handles [MaxLcores + 1]*Lcore // [0] is AnyLcore

	nowFn func() int64 // tests' clock; nil: clk.Nanos
}

// Open creates the group's timer lists cfg names, or attaches to them if
// another process created them, and frees the timers of dead processes
// (Reap). clk is this process's clock; times are on its Nanos timeline.
func Open(mem *hugemem.Memory, clk *clock.Clock, cfg Config) (*Lists, error) {
	if mem == nil || clk == nil {
		return nil, errors.New("timerlist: Open needs the group's memory and this process's clock")
	}
	if cfg.Name == "" {
		cfg.Name = DefaultName
	}
	want := cfg.Timers
	if cfg.Timers < 0 || cfg.Timers > MaxTimers {
		return nil, fmt.Errorf("timerlist: %q: %d timers: want 1 to %d (0 for %d)", cfg.Name, cfg.Timers, MaxTimers, DefaultTimers)
	}
	if cfg.Timers == 0 {
		cfg.Timers = DefaultTimers
	}
	size := func(n int) uint64 {
		return uint64(unsafe.Sizeof(header{})) + uint64(unsafe.Sizeof([MaxLcores]list{})) + uint64(n)*uint64(unsafe.Sizeof(rec{}))
	}
	z, err := mem.Reserve(cfg.Name, size(cfg.Timers), 0)
	created := err == nil
	if errors.Is(err, hugemem.ErrExists) {
		z, err = mem.Lookup(cfg.Name)
	}
	if err != nil {
		return nil, fmt.Errorf("timerlist: %q: %w", cfg.Name, err)
	}
	base := z.Ptr()
	hdr := (*header)(base)
	if created {
		err = mem.WithLock(func() error {
			initZone(base, cfg.Timers)
			return nil
		})
	} else {
		err = awaitHeader(mem, cfg.Name, hdr)
	}
	if err != nil {
		return nil, err
	}
	n := int(hdr.NTimers)
	if want != 0 && want != n {
		return nil, fmt.Errorf("timerlist: %q holds %d timers, asked for %d", cfg.Name, n, want)
	}
	if z.Len < size(n) {
		return nil, fmt.Errorf("timerlist: memzone %q is %d bytes, %d timers need %d: incompatible build", cfg.Name, z.Len, n, size(n))
	}
	l := &Lists{
		mem:   mem,
		clk:   clk,
		name:  cfg.Name,
		hdr:   hdr,
		lists: (*[MaxLcores]list)(unsafe.Add(base, unsafe.Sizeof(header{}))),
		recs:  unsafe.Slice((*rec)(unsafe.Add(base, size(0))), n),
		pid:   uint32(os.Getpid()),
		word:  proclive.Self(),
		self:  mp.Self(),
	}
	l.callbacks.Store(&[]Callback{})
	l.Reap()
	return l, nil
}

// awaitHeader waits until the creator of memzone name has set up the
// header, and checks it.
func awaitHeader(mem *hugemem.Memory, name string, hdr *header) error {
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		var magic uint64
		var version uint32
		if err := mem.WithLock(func() error {
			magic, version = atomic.LoadUint64(&hdr.Magic), hdr.Version
			return nil
		}); err != nil {
			return err
		}
		switch {
		case magic == zoneMagic && version == zoneVersion:
			return nil
		case magic != 0 || time.Now().After(deadline):
			return fmt.Errorf("timerlist: memzone %q has magic %#x version %d, this build needs %#x version %d: not timer lists, an incompatible build, or a creator that died before setting them up",
				name, magic, version, uint64(zoneMagic), zoneVersion)
		}
	}
}

// initZone lays out a zeroed zone of n timers, all free.
func initZone(base unsafe.Pointer, n int) {
	hdr := (*header)(base)
	lists := (*[MaxLcores]list)(unsafe.Add(base, unsafe.Sizeof(header{})))
	recs := unsafe.Slice((*rec)(unsafe.Add(base, unsafe.Sizeof(header{})+unsafe.Sizeof([MaxLcores]list{}))), n)
	for i := range lists {
		lists[i].NextExpire = math.MaxInt64
	}
	for i := range recs {
		if i+1 < n {
			recs[i].FreeNext = uint32(i + 2)
		}
	}
	hdr.NTimers = uint32(n)
	hdr.FreeHead = 1
	hdr.Version = zoneVersion
	atomic.StoreUint64(&hdr.Magic, zoneMagic)
}

// Now returns the current time on the timeline timers are kept in
// (clock.Clock.Nanos).
func (l *Lists) Now() int64 { return l.now() }

func (l *Lists) now() int64 {
	if l.nowFn != nil {
		return l.nowFn()
	}
	return l.clk.Nanos()
}

// Register makes fn this process's callback for id. Register before timers
// with that ID can expire on this process's lcores.
func (l *Lists) Register(id CallbackID, fn Callback) error {
	if fn == nil {
		return fmt.Errorf("timerlist: Register callback %d: the function is nil", id)
	}
	l.regMu.Lock()
	defer l.regMu.Unlock()
	old := *l.callbacks.Load()
	if int(id) < len(old) && old[id] != nil {
		return fmt.Errorf("timerlist: Register callback %d: this process registered it already", id)
	}
	cbs := make([]Callback, max(len(old), int(id)+1))
	copy(cbs, old)
	cbs[id] = fn
	l.callbacks.Store(&cbs)
	return nil
}

// New takes a stopped timer from the pool, to run callback cb with arg.
func (l *Lists) New(cb CallbackID, arg uint64) (Timer, error) {
	lock(&l.hdr.AllocLock, l.word)
	n := l.hdr.FreeHead
	if n == 0 {
		unlock(&l.hdr.AllocLock)
		return 0, fmt.Errorf("timerlist: %q: all %d timers are in use", l.name, len(l.recs))
	}
	r := &l.recs[n-1]
	l.hdr.FreeHead = r.FreeNext
	l.hdr.InUse++
	unlock(&l.hdr.AllocLock)

	gen := genOf(atomic.LoadUint64(&r.Status))
	r.FreeNext, r.Linked, r.Expire, r.Period, r.Runs = 0, 0, 0, 0, 0
	r.Callback, r.Arg, r.Owner = uint32(cb), arg, l.self
	atomic.StoreUint64(&r.Status, status(stateStopped, noLcore, gen, 0))
	return handle(n-1, gen), nil
}

// Free stops t and returns it to the pool; t and every copy of it become
// stale. It fails with ErrBusy while t runs or is being changed; a callback
// freeing its own timer stops it first (Lcore.Stop).
func (l *Lists) Free(t Timer) error {
	r, idx, err := l.record(t)
	if err != nil {
		return err
	}
	if _, err := l.any().configure(r, t.gen(), false); err != nil {
		return err
	}
	l.unlink(r, idx)
	l.release(r, idx, t.gen())
	return nil
}

// release returns a record held in stateConfig to the free list.
func (l *Lists) release(r *rec, idx uint32, gen uint16) {
	lock(&l.hdr.AllocLock, l.word)
	r.FreeNext = l.hdr.FreeHead
	atomic.StoreUint64(&r.Status, status(stateFree, noLcore, gen+1, 0))
	l.hdr.FreeHead = idx + 1
	l.hdr.InUse--
	unlock(&l.hdr.AllocLock)
}

// InUse returns how many timers of the pool are taken.
func (l *Lists) InUse() int { return int(atomic.LoadUint32(&l.hdr.InUse)) }

// Info describes a timer at one moment.
type Info struct {
	State    State
	Lcore    int   // the lcore it is pending or running on; AnyLcore when stopped
	Expire   int64 // when it is, or was last, due (Lists.Now timeline)
	Period   time.Duration
	Callback CallbackID
	Arg      uint64
	Runs     uint64 // how often its callback has run
}

// Status describes t.
func (l *Lists) Status(t Timer) (Info, error) {
	r, _, err := l.record(t)
	if err != nil {
		return Info{}, err
	}
	s := atomic.LoadUint64(&r.Status)
	in := Info{
		State: State(stateOf(s)), Lcore: AnyLcore,
		Expire: atomic.LoadInt64(&r.Expire), Period: time.Duration(atomic.LoadInt64(&r.Period)),
		Callback: CallbackID(r.Callback), Arg: r.Arg, Runs: atomic.LoadUint64(&r.Runs),
	}
	if in.State == Pending || in.State == Running {
		in.Lcore = lcoreOf(s)
	}
	if genOf(s) != t.gen() || in.State == stateFree {
		return Info{}, ErrStale
	}
	return in, nil
}

// record finds t's record, checking that t is not stale.
func (l *Lists) record(t Timer) (*rec, uint32, error) {
	idx, ok := t.index()
	if !ok || int(idx) >= len(l.recs) {
		return nil, 0, fmt.Errorf("timerlist: %#x is not a timer of %q (%d timers)", uint64(t), l.name, len(l.recs))
	}
	r := &l.recs[idx]
	if s := atomic.LoadUint64(&r.Status); stateOf(s) == stateFree || genOf(s) != t.gen() {
		return nil, 0, ErrStale
	}
	return r, idx, nil
}

// unlink takes a timer this process holds in stateConfig off its list.
func (l *Lists) unlink(r *rec, idx uint32) {
	lk := atomic.LoadUint32(&r.Linked)
	if lk == 0 {
		return
	}
	h := &l.lists[lk-1]
	lock(&h.Lock, l.word)
	h.remove(l.recs, r, idx)
	atomic.StoreUint32(&r.Linked, 0)
	unlock(&h.Lock)
}

// link puts a timer this process holds in stateConfig on lcore on's list
// and makes it pending there.
func (l *Lists) link(r *rec, idx uint32, on int, gen uint16) {
	h := &l.lists[on]
	lock(&h.Lock, l.word)
	atomic.StoreUint32(&r.Linked, uint32(on+1))
	h.Seq++
	r.Seq = h.Seq
	h.insert(l.recs, r, idx)
	atomic.StoreUint64(&r.Status, status(statePending, on, gen, 0))
	unlock(&h.Lock)
}

// Reap stops and frees the timers whose creating process is gone, and
// unblocks timers a dead process was running or changing. Open runs it;
// call it again when a process of the group exits (mp.OnProcessExit). It
// returns how many timers it freed.
func (l *Lists) Reap() int {
	alive := map[mp.Owner]bool{l.self: true}
	freed := 0
	for i := range l.recs {
		r := &l.recs[i]
		s := atomic.LoadUint64(&r.Status)
		if stateOf(s) == stateFree {
			continue
		}
		owner := r.Owner
		ok, known := alive[owner]
		if !known {
			ok = owner.Alive()
			alive[owner] = ok
		}
		stuck := (stateOf(s) == stateConfig || stateOf(s) == stateRunning) && pidOf(s) != l.pid && !pidAlive(pidOf(s))
		if ok && !stuck {
			continue
		}
		gen := genOf(s)
		if _, err := l.any().configure(r, gen, true); err != nil {
			continue // changed meanwhile by a live process
		}
		l.unlink(r, uint32(i))
		if ok {
			atomic.StoreUint64(&r.Status, status(stateStopped, noLcore, gen, 0))
			continue
		}
		l.release(r, uint32(i), gen)
		freed++
	}
	return freed
}

// Lcore returns the handle through which code running on lcore id (or
// AnyLcore) works with timers. The same id gives the same handle.
func (l *Lists) Lcore(id int) (*Lcore, error) {
	if id < AnyLcore || id >= MaxLcores {
		return nil, fmt.Errorf("timerlist: lcore %d: want 0 to %d, or AnyLcore", id, MaxLcores-1)
	}
	l.lcMu.Lock()
	defer l.lcMu.Unlock()
	if l.handles[id+1] == nil {
		c := &Lcore{l: l, id: id}
		if id != AnyLcore {
			c.list = &l.lists[id]
			c.run = make([]uint32, 0, 64)
		}
		l.handles[id+1] = c
	}
	return l.handles[id+1], nil
}

func (l *Lists) any() *Lcore {
	c, _ := l.Lcore(AnyLcore)
	return c
}

// Lcore is the timer API as used from one lcore, or from threads that are
// not lcores (AnyLcore). Manage must be called only by the thread running
// the lcore; Reset and Stop may be called from any goroutine.
type Lcore struct {
	l        *Lists
	id       int
	list     *list // nil for AnyLcore
	managing atomic.Bool
	run      []uint32 // timers Manage collected, by index
}

// ID returns the lcore's ID, or AnyLcore.
func (c *Lcore) ID() int { return c.id }

// Reset arms t to expire after the given time on lcore on, then every
// period if period > 0. A pending timer is moved; one running elsewhere or
// being changed gives ErrBusy.
func (c *Lcore) Reset(t Timer, after, period time.Duration, on int) error {
	if on < 0 || on >= MaxLcores {
		return fmt.Errorf("timerlist: Reset on lcore %d: want an lcore from 0 to %d", on, MaxLcores-1)
	}
	if after < 0 || period < 0 {
		return fmt.Errorf("timerlist: Reset after %v every %v: durations cannot be negative", after, period)
	}
	r, idx, err := c.l.record(t)
	if err != nil {
		return err
	}
	return c.reset(r, idx, t.gen(), after, period, on, false)
}

func (c *Lcore) reset(r *rec, idx uint32, gen uint16, after, period time.Duration, on int, takeover bool) error {
	if _, err := c.configure(r, gen, takeover); err != nil {
		return err
	}
	c.l.unlink(r, idx)
	now := c.l.now()
	expire := now + int64(after)
	if int64(after) > math.MaxInt64-now { // beyond 2262: never, in practice
		expire = math.MaxInt64 - 1
	}
	r.Expire, r.Period = expire, int64(period)
	c.l.link(r, idx, on, gen)
	return nil
}

// ResetSync is Reset that waits while t runs on another lcore or is being
// changed.
func (c *Lcore) ResetSync(t Timer, after, period time.Duration, on int) error {
	if on < 0 || on >= MaxLcores || after < 0 || period < 0 {
		return c.Reset(t, after, period, on) // for the error
	}
	return c.retry(t, func(r *rec, idx uint32, takeover bool) error {
		return c.reset(r, idx, t.gen(), after, period, on, takeover)
	})
}

// Stop disarms t. A timer running elsewhere or being changed gives ErrBusy;
// a stopped timer stays stopped.
func (c *Lcore) Stop(t Timer) error {
	r, idx, err := c.l.record(t)
	if err != nil {
		return err
	}
	return c.stop(r, idx, t.gen(), false)
}

func (c *Lcore) stop(r *rec, idx uint32, gen uint16, takeover bool) error {
	if _, err := c.configure(r, gen, takeover); err != nil {
		return err
	}
	c.l.unlink(r, idx)
	atomic.StoreUint64(&r.Status, status(stateStopped, noLcore, gen, 0))
	return nil
}

// StopSync is Stop that waits while t runs on another lcore or is being
// changed: when it returns, t's callback is not running and will not run.
func (c *Lcore) StopSync(t Timer) error {
	return c.retry(t, func(r *rec, idx uint32, takeover bool) error {
		return c.stop(r, idx, t.gen(), takeover)
	})
}

// retry runs op until t is no longer busy. After a while of retrying it
// lets op take a timer over from a process that died holding it.
func (c *Lcore) retry(t Timer, op func(r *rec, idx uint32, takeover bool) error) error {
	r, idx, err := c.l.record(t)
	if err != nil {
		return err
	}
	for tries := 1; ; tries++ {
		takeover := false
		if tries%1024 == 0 {
			s := atomic.LoadUint64(&r.Status)
			takeover = pidOf(s) != 0 && pidOf(s) != c.l.pid && !pidAlive(pidOf(s))
			runtime.Gosched()
		}
		if err := op(r, idx, takeover); err != ErrBusy {
			return err
		}
	}
}

// configure moves t's state to stateConfig for this process and returns the
// state it had. A running timer may be changed only from its own callback,
// that is from its lcore in the process running it. With takeover, a timer
// held by a dead process is taken from it.
func (c *Lcore) configure(r *rec, gen uint16, takeover bool) (uint64, error) {
	pid := c.l.pid
	for {
		s := atomic.LoadUint64(&r.Status)
		if stateOf(s) == stateFree || genOf(s) != gen {
			return 0, ErrStale
		}
		switch stateOf(s) {
		case stateRunning:
			if (lcoreOf(s) != c.id || pidOf(s) != pid) && !(takeover && pidOf(s) != pid && !pidAlive(pidOf(s))) {
				return 0, ErrBusy
			}
		case stateConfig:
			if !(takeover && pidOf(s) != pid && !pidAlive(pidOf(s))) {
				return 0, ErrBusy
			}
		}
		if atomic.CompareAndSwapUint64(&r.Status, s, status(stateConfig, lcoreOf(s), gen, pid)) {
			return s, nil
		}
	}
}

// Manage runs the callbacks of the timers expired on this lcore, in order of
// expiry, and re-arms the periodic ones. Call it from the lcore's poll
// loop. With nothing expired it reads the clock and one shared word and
// returns. It returns how many callbacks ran. On AnyLcore, and when called
// again from inside a callback, it does nothing.
func (c *Lcore) Manage() int {
	h := c.list
	if h == nil {
		return 0
	}
	now := c.l.now()
	if now < atomic.LoadInt64(&h.NextExpire) {
		return 0
	}
	return c.manage(h, now)
}

func (c *Lcore) manage(h *list, now int64) int {
	if !c.managing.CompareAndSwap(false, true) {
		return 0
	}
	defer c.managing.Store(false)
	l, pid := c.l, c.l.pid

	run := c.run[:0]
	lock(&h.Lock, l.word)
	for n := h.Head[0]; n != 0; {
		r := &l.recs[n-1]
		if r.Expire > now {
			break
		}
		next := r.Next[0]
		// A timer being changed stays: its changer waits for this lock
		// to take it off the list.
		if s := atomic.LoadUint64(&r.Status); stateOf(s) == statePending &&
			atomic.CompareAndSwapUint64(&r.Status, s, status(stateRunning, c.id, genOf(s), pid)) {
			h.remove(l.recs, r, n-1)
			atomic.StoreUint32(&r.Linked, 0)
			run = append(run, n-1)
		}
		n = next
	}
	unlock(&h.Lock)

	cbs := *l.callbacks.Load()
	ran := 0
	for _, idx := range run {
		r := &l.recs[idx]
		s := atomic.LoadUint64(&r.Status)
		if stateOf(s) != stateRunning || lcoreOf(s) != c.id || pidOf(s) != pid {
			continue // an earlier callback of this batch reset, stopped or freed it
		}
		gen := genOf(s)
		var fn Callback
		if int(r.Callback) < len(cbs) {
			fn = cbs[r.Callback]
		}
		if fn == nil {
			l.unregistered(CallbackID(r.Callback), c.id)
			atomic.CompareAndSwapUint64(&r.Status, s, status(stateStopped, noLcore, gen, 0))
			continue
		}
		atomic.AddUint64(&r.Runs, 1)
		ran++
		fn(c, handle(idx, gen), r.Arg)
		if r.Period > 0 {
			if atomic.CompareAndSwapUint64(&r.Status, s, status(stateConfig, c.id, gen, pid)) {
				r.Expire += r.Period
				l.link(r, idx, c.id, gen)
			}
		} else {
			atomic.CompareAndSwapUint64(&r.Status, s, status(stateStopped, noLcore, gen, 0))
		}
	}
	c.run = run[:0]
	return ran
}

// unregistered logs, once per ID, that a timer expired whose callback this
// process has not registered.
func (l *Lists) unregistered(id CallbackID, lcore int) {
	if _, seen := l.warned.LoadOrStore(id, true); !seen {
		slog.Warn("timerlist: a timer expired whose callback this process has not registered; stopped it",
			"lists", l.name, "callback", id, "lcore", lcore)
	}
}
