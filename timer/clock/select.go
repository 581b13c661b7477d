package clock

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/timer"
)

// The group's clock state lives in the memzone stateZone: the TSC frequency
// every process uses, and one claim per HPET comparator held by a process
// of the group. Plain data; changed only under the group lock
// (hugemem.Memory.WithLock). TestStateLayout checks the sizes.
const (
	stateZone    = "timer_clock"
	stateMagic   = 0x6770_6d64_5f63_6c6b // "gpmd_clk"
	stateVersion = 1

	// maxClaims bounds the claim table: 32 comparators per HPET block
	// (a 5-bit count), two blocks.
	maxClaims = 64
)

type sharedState struct {
	Magic   uint64
	Version uint32
	_       uint32

	TSCHz   uint64   // 0 until the first process records it
	TSCFrom [48]byte // timer.Source() of the recording process, NUL-padded
	TSCBy   mp.Owner

	Claims [maxClaims]claim
}

// claim is one comparator held by a process of the group. The zero claim is
// a free slot.
type claim struct {
	Owner       mp.Owner
	Block       uint16
	Comparator  uint16
	Comparators uint16 // the HPET's comparator count, for messages
	_           uint16
}

// device is an open HPET: *timer.HPET, or a stand-in in tests.
type device interface {
	Cycles() uint64
	Hz() uint64
	Comparators() int
	Comparator() (index, block int)
	Close() error
}

// system is what Select needs from the machine; tests replace it.
type system struct {
	openHPET     func() (device, error)
	invariantTSC func() bool
	self         func() mp.Owner
}

var realSystem = system{
	openHPET: func() (device, error) {
		h, err := timer.OpenHPET()
		if err != nil {
			return nil, err
		}
		return h, nil
	},
	invariantTSC: timer.InvariantTSC,
	self:         mp.Self,
}

// Select chooses this process's clock as mode asks, applying the group's
// rule for HPET comparators (see the package doc), and logs the choice in
// one line. mem is the group's memory; nil means no group: the TSC
// frequency is this process's own and holders of comparators are not known.
//
// release frees what the Clock holds: the HPET comparator and its claim.
// It must run before mem is closed; the Clock must not be used after it.
func Select(mem *hugemem.Memory, mode Mode) (c *Clock, release func() error, err error) {
	return realSystem.selectClock(mem, mode)
}

func (sys system) selectClock(mem *hugemem.Memory, mode Mode) (*Clock, func() error, error) {
	if mode != ModeTSC && mode != ModeAuto && mode != ModeHPET {
		return nil, nil, fmt.Errorf("clock: mode %d is not ModeTSC, ModeAuto or ModeHPET", int(mode))
	}
	var st *sharedState
	if mem != nil {
		var err error
		if st, err = attachState(mem); err != nil {
			return nil, nil, err
		}
	}
	var (
		tscHz   uint64
		tscFrom string
		dev     device
		slot    = -1
		held    []claim // live claims of others when no comparator was free
		openErr error
		dropped []claim // claims of dead processes released now
	)
	pick := func() error {
		var err error
		if tscHz, tscFrom, err = sys.agreeTSCHz(st); err != nil {
			return err
		}
		if st != nil {
			dropped = st.dropDead()
		}
		if mode == ModeTSC {
			return nil
		}
		if dev, openErr = sys.openHPET(); openErr != nil {
			if st != nil {
				held = st.live()
			}
			return nil
		}
		if st != nil {
			slot = st.record(sys.self(), dev)
		}
		return nil
	}
	var err error
	if mem != nil {
		err = mem.WithLock(pick)
	} else {
		err = pick()
	}
	if err != nil {
		if dev != nil {
			dev.Close()
		}
		return nil, nil, err
	}
	for _, d := range dropped {
		slog.Info("clock: released the HPET claim of a process that is gone",
			"pid", d.Owner.PID, "comparator", d.Comparator)
	}

	c := &Clock{index: -1}
	invariant := sys.invariantTSC()
	tscFacts := fmt.Sprintf("TSC at %d Hz (%s)", tscHz, tscFrom)
	if !invariant {
		tscFacts += "; the TSC is not invariant: its rate may change with CPU power states"
	}
	switch {
	case dev != nil:
		index, _ := dev.Comparator()
		c.src, c.hz, c.dev, c.index = HPET, dev.Hz(), dev, index
		c.kind = readDevice
		if h, ok := dev.(*timer.HPET); ok {
			c.hpet, c.kind = h, readHPET
		}
		c.reason = fmt.Sprintf("--timer=%s: claimed HPET comparator %d of %d", mode, index, dev.Comparators())
		switch {
		case mode == ModeAuto && invariant:
			c.reason += " (auto prefers the HPET; the invariant TSC would also do)"
		case !invariant:
			c.reason += " (the TSC is not invariant)"
		}
		if st != nil && slot < 0 {
			c.reason += "; the group's claim table is full, so this claim is not recorded"
		}
	case mode == ModeHPET:
		return nil, nil, fmt.Errorf("clock: --timer=hpet: %w%s", openErr, holders(mem, openErr, held))
	case mode == ModeAuto:
		c.src, c.hz = TSC, tscHz
		c.reason = fmt.Sprintf("--timer=auto fell back to the TSC: %v%s; %s", shortOpenErr(openErr), holders(mem, openErr, held), tscFacts)
	default:
		c.src, c.hz = TSC, tscHz
		c.reason = fmt.Sprintf("--timer=tsc; %s", tscFacts)
	}
	c.anchor()

	switch {
	case c.src == TSC && (mode == ModeAuto || !invariant):
		slog.Warn("clock: using the TSC", "hz", c.hz, "why", c.reason)
	default:
		slog.Info("clock: using the "+strings.ToUpper(c.src.String()), "hz", c.hz, "why", c.reason)
	}
	return c, sys.releaser(mem, st, dev, slot), nil
}

// releaser returns the function that closes dev and drops its claim.
func (sys system) releaser(mem *hugemem.Memory, st *sharedState, dev device, slot int) func() error {
	var once sync.Once
	var err error
	return func() error {
		once.Do(func() {
			if dev == nil {
				return
			}
			// Close first: until the kernel has the comparator back, the
			// claim must keep naming this process.
			index, block := dev.Comparator()
			err = dev.Close()
			if st == nil || slot < 0 {
				return
			}
			self := sys.self()
			err = errors.Join(err, mem.WithLock(func() error {
				cl := &st.Claims[slot]
				if cl.Owner == self && int(cl.Comparator) == index && int(cl.Block) == block {
					*cl = claim{}
				}
				return nil
			}))
		})
		return err
	}
}

// attachState finds the group's clock state, creating it if this is the
// first process to select a clock.
func attachState(mem *hugemem.Memory) (*sharedState, error) {
	size := uint64(unsafe.Sizeof(sharedState{}))
	z, err := mem.Reserve(stateZone, size, 0)
	created := err == nil
	if errors.Is(err, hugemem.ErrExists) {
		z, err = mem.Lookup(stateZone)
	}
	if err != nil {
		return nil, fmt.Errorf("clock: the group's clock state (memzone %q): %w", stateZone, err)
	}
	if z.Len < size {
		return nil, fmt.Errorf("clock: memzone %q is %d bytes, this build needs %d: incompatible build", stateZone, z.Len, size)
	}
	st := (*sharedState)(z.Ptr())
	if created {
		return st, mem.WithLock(func() error {
			st.Version = stateVersion
			atomic.StoreUint64(&st.Magic, stateMagic)
			return nil
		})
	}
	// Another process created it: wait until it has set it up.
	for deadline := time.Now().Add(time.Second); ; time.Sleep(time.Millisecond) {
		var magic uint64
		var version uint32
		if err := mem.WithLock(func() error {
			magic, version = atomic.LoadUint64(&st.Magic), st.Version
			return nil
		}); err != nil {
			return nil, err
		}
		switch {
		case magic == stateMagic && version == stateVersion:
			return st, nil
		case magic != 0 || time.Now().After(deadline):
			return nil, fmt.Errorf("clock: memzone %q has magic %#x version %d, this build needs %#x version %d: not clock state, an incompatible build, or a creator that died before setting it up",
				stateZone, magic, version, uint64(stateMagic), stateVersion)
		}
	}
}

// agreeTSCHz returns the TSC frequency the group uses: the one recorded by
// the first process, which this process adopts, or, for the first process,
// its own, which it records. It runs under the group lock.
func (sys system) agreeTSCHz(st *sharedState) (uint64, string, error) {
	if st == nil {
		return timer.Hz(), timer.Source(), nil
	}
	if st.TSCHz == 0 {
		hz, from := timer.Hz(), timer.Source()
		st.TSCFrom = [len(st.TSCFrom)]byte{}
		copy(st.TSCFrom[:], from)
		st.TSCBy = sys.self()
		atomic.StoreUint64(&st.TSCHz, hz)
		return hz, from, nil
	}
	hz := st.TSCHz
	from := string(bytes.TrimRight(st.TSCFrom[:], "\x00"))
	if st.TSCBy != sys.self() {
		from = fmt.Sprintf("%s by pid %d, recorded for the group", from, st.TSCBy.PID)
	}
	if err := timer.SetHz(hz); err != nil && timer.Hz() != hz {
		return 0, "", fmt.Errorf("clock: adopt the group's TSC frequency %d Hz (%s): %w", hz, from, err)
	}
	return hz, from, nil
}

// dropDead frees the claims of processes that are gone and returns them.
func (st *sharedState) dropDead() []claim {
	var dead []claim
	for i := range st.Claims {
		cl := &st.Claims[i]
		if cl.Owner != (mp.Owner{}) && !cl.Owner.Alive() {
			dead = append(dead, *cl)
			*cl = claim{}
		}
	}
	return dead
}

// live returns the claims held.
func (st *sharedState) live() []claim {
	var out []claim
	for _, cl := range st.Claims {
		if cl.Owner != (mp.Owner{}) {
			out = append(out, cl)
		}
	}
	return out
}

// record notes that self now holds dev's comparator and returns the slot,
// or -1 if the table is full. The kernel just gave the comparator to self,
// so a claim naming it for anyone else is stale and replaced.
func (st *sharedState) record(self mp.Owner, dev device) int {
	index, block := dev.Comparator()
	slot := -1
	for i := range st.Claims {
		cl := &st.Claims[i]
		if cl.Owner != (mp.Owner{}) && int(cl.Comparator) == index && int(cl.Block) == block {
			*cl = claim{}
		}
		if cl.Owner == (mp.Owner{}) && slot < 0 {
			slot = i
		}
	}
	if slot >= 0 {
		st.Claims[slot] = claim{Owner: self, Block: uint16(block), Comparator: uint16(index), Comparators: uint16(dev.Comparators())}
	}
	return slot
}

// shortOpenErr drops the "timer: " prefix for use inside a sentence.
func shortOpenErr(err error) string {
	return strings.TrimPrefix(err.Error(), "timer: ")
}

// holders explains who holds the comparators when opening the HPET failed
// because none was free.
func holders(mem *hugemem.Memory, openErr error, held []claim) string {
	switch {
	case errors.Is(openErr, fs.ErrNotExist):
		return ""
	case !errors.Is(openErr, timer.ErrHPETBusy):
		return ""
	case mem == nil:
		return " (no group given, so who holds them is not known)"
	case len(held) == 0:
		return fmt.Sprintf("; no process of group %q holds one: the kernel keeps them, or processes outside the group have them open", mem.Prefix())
	}
	var b strings.Builder
	fmt.Fprintf(&b, "; in group %q ", mem.Prefix())
	for i, cl := range held {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "pid %d holds comparator %d", cl.Owner.PID, cl.Comparator)
		if cl.Block != 0 {
			fmt.Fprintf(&b, " of HPET block %d", cl.Block)
		}
	}
	n := int(held[0].Comparators)
	fmt.Fprintf(&b, "; the HPET has %d comparators: the kernel keeps any others, or processes outside the group have them open", n)
	return b.String()
}
