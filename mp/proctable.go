package mp

import (
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/proclive"
)

// The process table lives in the memzone procTableZone. Every process of the
// group records itself there, with the lcores and CPUs it runs on, so that a
// newcomer can refuse cores that a live process holds and anyone can tell a
// dead process's entry from a live one. Plain data only; TestProcTableLayout
// checks the sizes.
const (
	procTableZone  = "mp_procs"
	procTableMagic = 0x67706d645f707263 // "gpmd_prc"
	procTableVer   = 1

	// MaxProcs is how many processes a group can hold at once.
	MaxProcs = 64
	// maxLcoreID and maxCPU bound the bitmaps below.
	maxLcoreID = 128
	maxCPU     = 256
)

type procTable struct {
	Magic   uint64
	Version uint32
	_       uint32
	Procs   [MaxProcs]procEntry
}

type procEntry struct {
	Type      uint32 // 0 when the slot is free; written last when claiming
	PID       int32
	StartTime uint64 // /proc/<pid>/stat start time: tells a reused pid from the original
	Lcores    [maxLcoreID / 64]uint64
	CPUs      [maxCPU / 64]uint64
}

func (e *procEntry) holdsLcore(id int) bool { return e.Lcores[id/64]&(1<<(id%64)) != 0 }
func (e *procEntry) holdsCPU(cpu int) bool  { return e.CPUs[cpu/64]&(1<<(cpu%64)) != 0 }

func (e *procEntry) lcoreIDs() []int {
	var ids []int
	for id := range maxLcoreID {
		if e.holdsLcore(id) {
			ids = append(ids, id)
		}
	}
	return ids
}

// alive reports whether the process the entry names still runs.
func (e *procEntry) alive() bool {
	st, err := procStartTime(int(e.PID))
	return err == nil && st == e.StartTime
}

// procStartTime is the start time that tells a reused pid from the original.
func procStartTime(pid int) (uint64, error) { return proclive.StartTime(pid) }

// openProcTable creates (primary) or finds (secondary) the process table.
func openProcTable(mem *hugemem.Memory, create bool) (*procTable, error) {
	var z *hugemem.Memzone
	var err error
	if create {
		z, err = mem.Reserve(procTableZone, uint64(unsafe.Sizeof(procTable{})), 0)
	} else {
		z, err = mem.Lookup(procTableZone)
	}
	if err != nil {
		return nil, fmt.Errorf("mp: process table: %w", err)
	}
	if z.Len < uint64(unsafe.Sizeof(procTable{})) {
		return nil, fmt.Errorf("mp: process table memzone is %d bytes, this build needs %d: incompatible build", z.Len, unsafe.Sizeof(procTable{}))
	}
	t := (*procTable)(z.Ptr())
	if create {
		t.Version = procTableVer
		atomic.StoreUint64(&t.Magic, procTableMagic)
		return t, nil
	}
	if atomic.LoadUint64(&t.Magic) != procTableMagic || t.Version != procTableVer {
		return nil, fmt.Errorf("mp: process table has magic %#x version %d, this build needs %#x version %d: incompatible build",
			t.Magic, t.Version, uint64(procTableMagic), procTableVer)
	}
	return t, nil
}

// ErrCoreTaken is wrapped by Start when a requested lcore is held by
// another live process of the group.
var ErrCoreTaken = errors.New("core held by another process")

// claim records this process in the table with its lcores and CPUs. It
// first reaps entries of processes that died (calling reap for each), then
// refuses any lcore id that a live process holds: two processes on one
// lcore id would share its mempool caches and corrupt them. Sharing a CPU
// is only slow (two pollers take turns), so it is allowed, and each CPU
// shared is reported in warnings. The caller holds the group lock.
func (t *procTable) claim(self procEntry, reap func(dead procEntry)) (slot int, warnings []string, err error) {
	slot = -1
	for i := range t.Procs {
		e := &t.Procs[i]
		if e.Type == 0 {
			if slot < 0 {
				slot = i
			}
			continue
		}
		if !e.alive() {
			dead := *e
			reap(dead)
			atomic.StoreUint32(&e.Type, 0)
			if slot < 0 {
				slot = i
			}
			continue
		}
		for id := range maxLcoreID {
			if self.holdsLcore(id) && e.holdsLcore(id) {
				return -1, nil, fmt.Errorf("mp: lcore %d is held by pid %d (%s): %w", id, e.PID, ProcType(e.Type), ErrCoreTaken)
			}
		}
		for cpu := range maxCPU {
			if self.holdsCPU(cpu) && e.holdsCPU(cpu) {
				warnings = append(warnings, fmt.Sprintf("cpu %d is also used by pid %d (%s): pollers sharing a CPU take turns and lose throughput", cpu, e.PID, ProcType(e.Type)))
			}
		}
	}
	if slot < 0 {
		return -1, nil, fmt.Errorf("mp: the group already has %d live processes, the most it can hold", MaxProcs)
	}
	e := &t.Procs[slot]
	typ := self.Type
	self.Type = 0
	*e = self
	atomic.StoreUint32(&e.Type, typ) // last: the entry counts once Type is set
	return slot, warnings, nil
}

// release frees a slot this process claimed. The caller holds the group lock.
func (t *procTable) release(slot int, pid int32) {
	if e := &t.Procs[slot]; e.PID == pid {
		atomic.StoreUint32(&e.Type, 0)
	}
}

// reapDead frees every entry whose process has died, calling reap for each.
// The caller holds the group lock.
func (t *procTable) reapDead(reap func(dead procEntry)) {
	for i := range t.Procs {
		e := &t.Procs[i]
		if e.Type != 0 && !e.alive() {
			reap(*e)
			atomic.StoreUint32(&e.Type, 0)
		}
	}
}

// live returns a copy of the entries of live processes.
func (t *procTable) live() []procEntry {
	var out []procEntry
	for i := range t.Procs {
		e := t.Procs[i]
		if e.Type != 0 && e.alive() {
			out = append(out, e)
		}
	}
	return out
}

// Owner names a process in a shared table in a way that survives pid reuse:
// plain data, 16 bytes. The zero Owner is nobody.
type Owner struct {
	PID   int32
	_     uint32
	Start uint64 // start time from /proc/<pid>/stat
}

var self = sync.OnceValue(func() Owner {
	start, _ := procStartTime(os.Getpid())
	return Owner{PID: int32(os.Getpid()), Start: start}
})

// Self returns this process as an Owner.
func Self() Owner { return self() }

// Alive reports whether the process o names still runs.
func (o Owner) Alive() bool {
	if o.PID == 0 {
		return false
	}
	st, err := procStartTime(int(o.PID))
	return err == nil && st == o.Start
}
