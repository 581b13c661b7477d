package ring

import (
	"bytes"
	"fmt"
	"math/bits"
	"strings"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
)

// Name lengths, in bytes.
const (
	// NameLen is the longest ring name InitAt accepts.
	NameLen = 31
	// MaxNameLen is the longest name Create and Lookup accept: the memzone
	// name, "RG_" and the ring name, must fit hugemem's 31 bytes.
	MaxNameLen = hugemem.NameLen - len(zonePrefix)
)

const zonePrefix = "RG_"

// Flags choose a ring's default sync modes and how its count sizes it.
type Flags uint32

const (
	// SPEnq makes the default enqueue single-producer (RING_F_SP_ENQ).
	SPEnq Flags = 1 << iota
	// SCDeq makes the default dequeue single-consumer (RING_F_SC_DEQ).
	SCDeq
	// ExactSize makes the capacity exactly count; the storage rounds up to
	// the next power of two above count (RING_F_EXACT_SZ).
	ExactSize

	knownFlags = SPEnq | SCDeq | ExactSize
)

func (f Flags) String() string {
	if f == 0 {
		return "0"
	}
	var s []byte
	for _, x := range []struct {
		f    Flags
		name string
	}{{SPEnq, "SPEnq"}, {SCDeq, "SCDeq"}, {ExactSize, "ExactSize"}} {
		if f&x.f != 0 {
			if len(s) > 0 {
				s = append(s, '|')
			}
			s = append(s, x.name...)
		}
	}
	if rest := f &^ knownFlags; rest != 0 {
		if len(s) > 0 {
			s = append(s, '|')
		}
		s = fmt.Appendf(s, "%#x", uint32(rest))
	}
	return string(s)
}

// Ring is this process's handle on a ring in shared memory. It holds
// only process-local things: where the ring is mapped here, and copies of
// the header's constant fields so the fast path never reads the shared
// header line. Any number of goroutines may use one handle at once, in the
// sync modes their calls allow; Free must not overlap other calls.
type Ring struct {
	hdr      *header
	slots    []uint64 // all of the ring's slots, mapped in this process
	mask     uint32
	size     uint32
	capacity uint32
	flags    Flags
	multiEnq bool // default enqueue is multi-producer
	multiDeq bool // default dequeue is multi-consumer
	name     string
	zone     *zoneRef // memzone of a Create'd or Lookup'd ring, nil otherwise
}

// geometry returns the slot count and capacity of a ring made with count and
// flags, or an error naming the rule count breaks.
func geometry(count uint32, flags Flags) (size, capacity uint32, err error) {
	if rest := flags &^ knownFlags; rest != 0 {
		return 0, 0, fmt.Errorf("ring flags %#x: unknown bits %#x (known: SPEnq, SCDeq, ExactSize)", uint32(flags), uint32(rest))
	}
	if count > sizeMask {
		return 0, 0, fmt.Errorf("ring count %d: must be at most %d (1<<31 - 1)", count, uint32(sizeMask))
	}
	if flags&ExactSize != 0 {
		if count == 0 {
			return 0, 0, fmt.Errorf("ring count 0: an ExactSize ring needs a count of at least 1")
		}
		size = 1 << bits.Len32(count) // next power of two above count
		if size > maxSize {
			return 0, 0, fmt.Errorf("ring count %d: an ExactSize ring needs %d slots, more than the largest ring (%d slots)", count, uint64(size), maxSize)
		}
		return size, count, nil
	}
	if count < 2 || count&(count-1) != 0 { // a power of two up to sizeMask is at most maxSize
		return 0, 0, fmt.Errorf("ring count %d: must be a power of two >= 2 (or use ExactSize for any count >= 1)", count)
	}
	return count, count - 1, nil
}

// MemSize returns the bytes a ring of count entries with flags needs: the
// header followed by the slots. It is a multiple of the cache line size.
func MemSize(count uint32, flags Flags) (uint64, error) {
	size, _, err := geometry(count, flags)
	if err != nil {
		return 0, err
	}
	return (headerSize + uint64(size)*8 + cacheLine - 1) &^ (cacheLine - 1), nil
}

func checkName(name string, max int) error {
	switch {
	case name == "":
		return fmt.Errorf("ring name is empty")
	case len(name) > max:
		return fmt.Errorf("ring name %q is %d bytes; at most %d are allowed", name, len(name), max)
	case strings.IndexByte(name, 0) >= 0:
		return fmt.Errorf("ring name %q contains a NUL byte", name)
	}
	return nil
}

func checkMemory(p unsafe.Pointer) error {
	if p == nil {
		return fmt.Errorf("ring memory address is nil")
	}
	if uintptr(p)%cacheLine != 0 {
		return fmt.Errorf("ring memory address %#x is not aligned to %d bytes", uintptr(p), cacheLine)
	}
	return nil
}

// InitAt initialises a ring in the memory at p, which is size bytes long and
// aligned to 64 bytes, and returns this process's handle on it. Use it for
// rings embedded in a bigger reservation (a mempool's cache, say); the owner
// of that memory owns the ring. The memory needs MemSize(count, flags) bytes.
// No other process may use the ring before InitAt returns.
func InitAt(p unsafe.Pointer, size uint64, name string, count uint32, flags Flags) (*Ring, error) {
	if err := checkMemory(p); err != nil {
		return nil, err
	}
	if err := checkName(name, NameLen); err != nil {
		return nil, err
	}
	slots, capacity, err := geometry(count, flags)
	if err != nil {
		return nil, err
	}
	if need := headerSize + uint64(slots)*8; size < need {
		return nil, fmt.Errorf("ring %q: memory of %d bytes is too small for count %d: %d bytes needed", name, size, count, need)
	}
	h := (*header)(p)
	atomic.StoreUint32(&h.magic, 0) // a concurrent AttachAt must not see a half-written header
	*h = header{
		version:  layoutVersion,
		flags:    uint32(flags),
		size:     slots,
		mask:     slots - 1,
		capacity: capacity,
	}
	copy(h.name[:], name)
	atomic.StoreUint32(&h.magic, headerMagic)
	return newRing(h), nil
}

// AttachAt returns this process's handle on the ring another process (or
// this one) initialised in the memory at p, size bytes long. It checks that
// the header is sane and fits in size bytes; it never trusts it further.
func AttachAt(p unsafe.Pointer, size uint64) (*Ring, error) {
	if err := checkMemory(p); err != nil {
		return nil, err
	}
	if size < headerSize {
		return nil, fmt.Errorf("ring memory of %d bytes is shorter than a ring header (%d bytes)", size, headerSize)
	}
	h := (*header)(p)
	if err := h.validate(size); err != nil {
		return nil, err
	}
	return newRing(h), nil
}

func newRing(h *header) *Ring {
	return &Ring{
		hdr:      h,
		slots:    unsafe.Slice((*uint64)(unsafe.Add(unsafe.Pointer(h), headerSize)), h.size),
		mask:     h.mask,
		size:     h.size,
		capacity: h.capacity,
		flags:    Flags(h.flags),
		multiEnq: Flags(h.flags)&SPEnq == 0,
		multiDeq: Flags(h.flags)&SCDeq == 0,
		name:     h.nameString(),
	}
}

func (h *header) nameString() string {
	n := bytes.IndexByte(h.name[:], 0)
	if n < 0 {
		n = len(h.name)
	}
	return string(h.name[:n])
}

// validate reports the first header field that cannot belong to a ring
// that fits in memLen bytes.
func (h *header) validate(memLen uint64) error {
	if m := atomic.LoadUint32(&h.magic); m != headerMagic {
		return fmt.Errorf("ring header: magic is %#x, want %#x (not a ring, or not initialised)", m, uint32(headerMagic))
	}
	if h.version != layoutVersion {
		return fmt.Errorf("ring header: layout version is %d, this program knows %d", h.version, layoutVersion)
	}
	n := bytes.IndexByte(h.name[:], 0)
	if n < 0 {
		return fmt.Errorf("ring header: name is not NUL-terminated within %d bytes", len(h.name))
	}
	if n == 0 {
		return fmt.Errorf("ring header: name is empty")
	}
	name := string(h.name[:n])
	if rest := Flags(h.flags) &^ knownFlags; rest != 0 {
		return fmt.Errorf("ring %q header: flags %#x has unknown bits %#x", name, h.flags, uint32(rest))
	}
	if h.size < 2 || h.size > maxSize || h.size&(h.size-1) != 0 {
		return fmt.Errorf("ring %q header: size %d is not a power of two in [2, %d]", name, h.size, maxSize)
	}
	if h.mask != h.size-1 {
		return fmt.Errorf("ring %q header: mask %#x does not match size %d (want %#x)", name, h.mask, h.size, h.size-1)
	}
	if Flags(h.flags)&ExactSize != 0 {
		if h.capacity == 0 || uint32(1)<<bits.Len32(h.capacity) != h.size {
			return fmt.Errorf("ring %q header: capacity %d does not match size %d of an ExactSize ring (want size = next power of two above capacity)", name, h.capacity, h.size)
		}
	} else if h.capacity != h.size-1 {
		return fmt.Errorf("ring %q header: capacity %d does not match size %d (want size-1 = %d)", name, h.capacity, h.size, h.size-1)
	}
	if need := headerSize + uint64(h.size)*8; memLen < need {
		return fmt.Errorf("ring %q header: size %d needs %d bytes, but the memory is only %d bytes (truncated)", name, h.size, need, memLen)
	}
	return nil
}

// Count returns how many entries the ring holds. With producers or
// consumers running it is a snapshot that may be stale on return.
func (r *Ring) Count() uint32 {
	n := (atomic.LoadUint32(&r.hdr.prod.tail) - atomic.LoadUint32(&r.hdr.cons.tail)) & r.mask
	return min(n, r.capacity)
}

// FreeCount returns how many more entries fit, as a snapshot like Count.
func (r *Ring) FreeCount() uint32 { return r.capacity - r.Count() }

// Capacity returns the most entries the ring can hold.
func (r *Ring) Capacity() uint32 { return r.capacity }

// Name returns the ring's name.
func (r *Ring) Name() string { return r.name }

// Flags returns the flags the ring was created with.
func (r *Ring) Flags() Flags { return r.flags }

// Empty reports whether the ring holds no entries (a snapshot).
func (r *Ring) Empty() bool { return r.Count() == 0 }

// Full reports whether no entry fits (a snapshot).
func (r *Ring) Full() bool { return r.Count() == r.capacity }
