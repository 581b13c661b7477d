package hugemem

import (
	"cmp"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/internal/proclive"
	"golang.org/x/sys/unix"
)

// CacheLine is the smallest alignment Reserve hands out.
const CacheLine = 64

// Memzone is a named reservation in a group's memory, as seen by this process.
type Memzone struct {
	Name string
	Off  uint64 // group offset of the first byte
	Len  uint64

	mem *Memory
}

// Ptr returns the zone's first byte in this process.
func (z *Memzone) Ptr() unsafe.Pointer { return z.mem.Ptr(z.Off) }

// Bytes returns the zone's memory as a slice.
func (z *Memzone) Bytes() []byte { return unsafe.Slice((*byte)(z.Ptr()), z.Len) }

// Memory returns the group memory the zone belongs to.
func (z *Memzone) Memory() *Memory { return z.mem }

// Reserve hands out size bytes aligned to align (a power of two; 0 means
// CacheLine) under a name unique in the group. The memory is zeroed. When no
// segment has room, a new segment is added if the group's limit allows.
func (m *Memory) Reserve(name string, size, align uint64) (*Memzone, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	if align == 0 {
		align = CacheLine
	}
	if align&(align-1) != 0 || align > 1<<30 {
		return nil, fmt.Errorf("hugemem: memzone %q: alignment %d is not a power of two up to 1 GiB", name, align)
	}
	align = max(align, CacheLine)
	if size == 0 || size > uint64(1)<<40 {
		return nil, fmt.Errorf("hugemem: memzone %q: size %d is out of range (1 byte to 1 TiB)", name, size)
	}
	size = alignUp(size, CacheLine)

	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	if i := m.findZone(name); i >= 0 {
		return nil, fmt.Errorf("hugemem: memzone %q: %w", name, ErrExists)
	}
	slot := -1
	for i := range m.cfg.Zones {
		if m.cfg.Zones[i].InUse == 0 {
			slot = i
			break
		}
	}
	if slot < 0 {
		return nil, fmt.Errorf("hugemem: memzone %q: all %d memzone slots are taken: %w", name, maxZones, ErrNoSpace)
	}
	seg, off, ok := m.findGap(size, align)
	if !ok {
		segPage := m.cfg.Segs[0].PageSize
		need := max(uint64(m.opts.SegmentSize), alignUp(size+align, segPage))
		if err := m.addSegment(need, m.cfg.Segs[0].Kind); err != nil {
			return nil, fmt.Errorf("hugemem: memzone %q of %d bytes: %w", name, size, err)
		}
		if seg, off, ok = m.findGap(size, align); !ok {
			return nil, fmt.Errorf("hugemem: memzone %q of %d bytes does not fit a new segment: %w", name, size, ErrNoSpace)
		}
	}
	clear(unsafe.Slice((*byte)(m.Ptr(off)), size))
	z := &m.cfg.Zones[slot]
	z.Name = [NameLen + 1]byte{}
	copy(z.Name[:], name)
	z.Off, z.Len, z.Align, z.Seg = off, size, align, seg
	atomic.StoreUint32(&z.InUse, 1) // last: a crash before this leaves the slot free
	return &Memzone{Name: name, Off: off, Len: size, mem: m}, nil
}

// Lookup finds a memzone that any process of the group reserved.
func (m *Memory) Lookup(name string) (*Memzone, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	unlock, err := m.lock()
	if err != nil {
		return nil, err
	}
	defer unlock()
	i := m.findZone(name)
	if i < 0 {
		return nil, fmt.Errorf("hugemem: memzone %q: %w", name, ErrNotFound)
	}
	z := &m.cfg.Zones[i]
	if !m.Contains(z.Off, z.Len) {
		return nil, fmt.Errorf("hugemem: memzone %q is corrupted: offset %#x length %d lies outside the group's segments", name, z.Off, z.Len)
	}
	return &Memzone{Name: name, Off: z.Off, Len: z.Len, mem: m}, nil
}

// Free returns a memzone's space to the group. Every process must have
// stopped using it.
func (m *Memory) Free(name string) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	i := m.findZone(name)
	if i < 0 {
		return fmt.Errorf("hugemem: free memzone %q: %w", name, ErrNotFound)
	}
	atomic.StoreUint32(&m.cfg.Zones[i].InUse, 0)
	return nil
}

// Walk calls fn for each memzone of the group, in registry order.
func (m *Memory) Walk(fn func(z Memzone)) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	var zones []Memzone
	for i := range m.cfg.Zones {
		z := &m.cfg.Zones[i]
		if z.InUse != 0 {
			zones = append(zones, Memzone{Name: unix.ByteSliceToString(z.Name[:]), Off: z.Off, Len: z.Len, mem: m})
		}
	}
	unlock()
	for _, z := range zones {
		fn(z)
	}
	return nil
}

func checkName(name string) error {
	if name == "" || len(name) > NameLen {
		return fmt.Errorf("hugemem: memzone name %q must be 1 to %d bytes", name, NameLen)
	}
	for i := 0; i < len(name); i++ {
		if name[i] == 0 {
			return fmt.Errorf("hugemem: memzone name %q contains NUL", name)
		}
	}
	return nil
}

func (m *Memory) findZone(name string) int {
	for i := range m.cfg.Zones {
		z := &m.cfg.Zones[i]
		if z.InUse != 0 && unix.ByteSliceToString(z.Name[:]) == name {
			return i
		}
	}
	return -1
}

// findGap returns the lowest aligned place of size bytes that no memzone
// occupies, first fit over the segments in order.
func (m *Memory) findGap(size, align uint64) (seg uint32, off uint64, ok bool) {
	type span struct{ off, end uint64 }
	for s := uint32(0); s < min(m.cfg.NSegs, maxSegments); s++ {
		d := &m.cfg.Segs[s]
		var used []span
		for i := range m.cfg.Zones {
			z := &m.cfg.Zones[i]
			if z.InUse != 0 && z.Seg == s {
				used = append(used, span{z.Off, z.Off + z.Len})
			}
		}
		slices.SortFunc(used, func(a, b span) int { return cmp.Compare(a.off, b.off) })
		cur := alignUp(d.Off, align)
		for _, u := range used {
			if cur+size <= u.off {
				break
			}
			cur = alignUp(max(cur, u.end), align)
		}
		if cur+size <= d.Off+d.Len {
			return s, cur, true
		}
	}
	return 0, 0, false
}

// procLock serialises the shared registry lock among all Memory values of
// this process, so that the pid in the shared word identifies one holder.
var procLock sync.Mutex

// lock takes the group's registry lock: first this Memory's mutex and the
// process's procLock, then the shared word naming the holder (proclive.Word). A
// holder that died is detected, even when its pid was reused since, and its
// lock taken over, so a crash never wedges the group. It also maps
// segments other processes added meanwhile.
func (m *Memory) lock() (unlock func(), err error) {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil, fmt.Errorf("hugemem: group %q memory is closed", m.opts.Prefix)
	}
	procLock.Lock()
	me := proclive.Self()
	for spin := 0; !atomic.CompareAndSwapUint64(&m.cfg.Lock, 0, me); spin++ {
		holder := atomic.LoadUint64(&m.cfg.Lock)
		if holder == me {
			// Ourselves, yet procLock says nobody here holds it: a leaked
			// lock of this very process.
			atomic.CompareAndSwapUint64(&m.cfg.Lock, me, 0)
			continue
		}
		if spin%64 == 63 && holder != 0 && !proclive.WordAlive(holder) {
			atomic.CompareAndSwapUint64(&m.cfg.Lock, holder, 0)
			continue
		}
		time.Sleep(10 * time.Microsecond)
	}
	unlock = func() {
		atomic.StoreUint64(&m.cfg.Lock, 0)
		procLock.Unlock()
		m.mu.Unlock()
	}
	if err := m.syncSegments(true); err != nil {
		unlock()
		return nil, err
	}
	return unlock, nil
}

// WithLock runs fn holding the group's registry lock, for packages that keep
// tables in memzones and need several steps to look atomic to every process
// (the process table, for example). fn must not call Reserve, Lookup, Free or
// WithLock of the same group. A process that dies inside fn does not wedge
// the group, but fn's half-done update stays: write tables so that the
// last store publishes.
func (m *Memory) WithLock(fn func() error) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}
