package ring

import (
	"fmt"
	"sync/atomic"
	"time"

	"github.com/gopmd/gopmd/hugemem"
)

// zoneRef remembers the memzone a Create'd or Lookup'd ring lives in, so
// Free can release it.
type zoneRef struct {
	mem  *hugemem.Memory
	name string
}

// Create reserves memzone "RG_"+name in mem and initialises a ring of count
// entries there (see the package doc for count and flags). Any process of
// the group can then find it with Lookup. A name already taken gives an
// error wrapping hugemem.ErrExists.
func Create(mem *hugemem.Memory, name string, count uint32, flags Flags) (*Ring, error) {
	if mem == nil {
		return nil, fmt.Errorf("ring %q: memory is nil", name)
	}
	if err := checkName(name, MaxNameLen); err != nil {
		return nil, err
	}
	size, err := MemSize(count, flags)
	if err != nil {
		return nil, fmt.Errorf("ring %q: %w", name, err)
	}
	zone := zonePrefix + name
	z, err := mem.Reserve(zone, size, cacheLine)
	if err != nil {
		return nil, fmt.Errorf("ring %q: %w", name, err)
	}
	r, err := InitAt(z.Ptr(), z.Len, name, count, flags)
	if err != nil { // cannot happen: MemSize accepted count and flags
		mem.Free(zone)
		return nil, err
	}
	r.zone = &zoneRef{mem: mem, name: zone}
	return r, nil
}

// Lookup finds the ring Create made under name in any process of mem's
// group and returns this process's handle on it, after checking its header.
// A missing ring gives an error wrapping hugemem.ErrNotFound.
func Lookup(mem *hugemem.Memory, name string) (*Ring, error) {
	if mem == nil {
		return nil, fmt.Errorf("ring %q: memory is nil", name)
	}
	if err := checkName(name, MaxNameLen); err != nil {
		return nil, err
	}
	zone := zonePrefix + name
	z, err := mem.Lookup(zone)
	if err != nil {
		return nil, fmt.Errorf("ring %q: %w", name, err)
	}
	if z.Len >= headerSize {
		// Reserve publishes the memzone before Create writes the header:
		// give a creator in another process a moment to finish.
		h := (*header)(z.Ptr())
		for i := 0; i < 100 && atomic.LoadUint32(&h.magic) == 0; i++ {
			time.Sleep(time.Millisecond)
		}
	}
	r, err := AttachAt(z.Ptr(), z.Len)
	if err != nil {
		return nil, fmt.Errorf("memzone %q: %w", zone, err)
	}
	if r.name != name {
		return nil, fmt.Errorf("memzone %q: holds ring %q, not %q", zone, r.name, name)
	}
	r.zone = &zoneRef{mem: mem, name: zone}
	return r, nil
}

// Free releases the memzone of a ring made by Create (or found by Lookup).
// Every process must have stopped using the ring: its memory goes back to
// the group. Afterwards this handle acts as an empty ring of capacity 0.
// Rings placed with InitAt live in their caller's memory and cannot be
// freed here.
func (r *Ring) Free() error {
	if r.zone == nil {
		if r.hdr == &freedHeader {
			return fmt.Errorf("ring %q: already freed", r.name)
		}
		return fmt.Errorf("ring %q: not made by Create or Lookup; its memory belongs to whoever called InitAt", r.name)
	}
	if err := r.zone.mem.Free(r.zone.name); err != nil {
		return fmt.Errorf("ring %q: %w", r.name, err)
	}
	*r = Ring{hdr: &freedHeader, name: r.name, flags: r.flags, multiEnq: r.multiEnq, multiDeq: r.multiDeq}
	return nil
}

// freedHeader stands in for a freed ring's memory: capacity 0, so every
// enqueue and dequeue fails without touching memory.
var freedHeader header
