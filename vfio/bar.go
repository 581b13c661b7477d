package vfio

import (
	"encoding/binary"
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/pci"
)

// BAR gives access to one base address register's space. Memory BARs the
// kernel lets us mmap are accessed directly (no system call); I/O port
// BARs, such as legacy virtio's BAR0, and anything not mmap'able go
// through pread/pwrite on the device fd. Accesses must be naturally
// aligned. A BAR stays valid until its Device is closed; its accessors
// take no locks and do not allocate.
type BAR struct {
	dev    *Device
	index  int
	size   uint64
	offset int64 // of the region in the device fd
	io     bool
	flags  uint32

	mem   []byte         // the mapping covering the whole BAR, nil if none
	base  unsafe.Pointer // &mem[0]
	areas []Area         // parts of mem that are mapped to the device
}

// BAR returns region i (0..5) as a BAR, mapping it on first use.
func (d *Device) BAR(i int) (*BAR, error) {
	if i < 0 || i > 5 {
		return nil, fmt.Errorf("vfio: %s: BAR %d out of range 0..5", d.name, i)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("vfio: %s: BAR %d after Close", d.name, i)
	}
	if b := d.bars[i]; b != nil {
		return b, nil
	}
	r, err := d.regionLocked(RegionBAR0 + i)
	if err != nil {
		return nil, err
	}
	if r.Size == 0 {
		return nil, fmt.Errorf("vfio: %s: BAR %d is not implemented (size 0, or the upper half of a 64-bit BAR)", d.name, i)
	}
	var reg [4]byte
	if err := d.configReadLocked(pci.ConfigBAR0+4*int64(i), reg[:]); err != nil {
		return nil, err
	}
	b := &BAR{dev: d, index: i, size: r.Size, offset: int64(r.Offset), flags: r.Flags,
		io: binary.LittleEndian.Uint32(reg[:])&1 != 0}
	if !b.io && r.Flags&RegionMmap != 0 {
		if err := b.mmap(r); err != nil {
			return nil, err
		}
	}
	d.bars[i] = b
	return b, nil
}

// configReadLocked is ConfigRead for callers holding d.mu.
func (d *Device) configReadLocked(off int64, p []byte) error {
	r, err := d.regionLocked(RegionConfig)
	if err != nil {
		return err
	}
	if _, err := unix.Pread(d.fd, p, int64(r.Offset)+off); err != nil {
		return &Error{d.name, fmt.Sprintf("pread config space %#x+%d", off, len(p)), errnoOf(err)}
	}
	return nil
}

// mmap maps the BAR, or the areas of it the kernel allows.
func (b *BAR) mmap(r RegionInfo) error {
	prot := unix.PROT_READ | unix.PROT_WRITE
	if r.Sparse == nil || r.MSIXMappable {
		mem, err := unix.Mmap(b.dev.fd, b.offset, int(b.size), prot, unix.MAP_SHARED)
		if err != nil {
			return &Error{b.dev.name, fmt.Sprintf("mmap BAR %d (%d bytes)", b.index, b.size), errnoOf(err)}
		}
		b.mem, b.areas = mem, []Area{{0, b.size}}
		b.base = unsafe.Pointer(&mem[0])
		return nil
	}
	if len(r.Sparse) == 0 {
		return nil // nothing may be mapped: pread/pwrite only
	}
	// One reservation for the whole BAR keeps offsets simple; only the
	// allowed areas are backed by the device, the rest stays PROT_NONE
	// and is reached through pread/pwrite instead.
	mem, err := unix.Mmap(-1, 0, int(b.size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("vfio: %s: reserve %d bytes for BAR %d: %w", b.dev.name, b.size, b.index, err)
	}
	base := unsafe.Pointer(&mem[0])
	for _, a := range r.Sparse {
		if a.Offset+a.Size > b.size || a.Offset+a.Size < a.Offset {
			unix.Munmap(mem)
			return fmt.Errorf("vfio: %s: BAR %d sparse mmap area %#x+%#x outside its %#x bytes", b.dev.name, b.index, a.Offset, a.Size, b.size)
		}
		if _, err := unix.MmapPtr(b.dev.fd, b.offset+int64(a.Offset), unsafe.Add(base, a.Offset), uintptr(a.Size), prot, unix.MAP_SHARED|unix.MAP_FIXED); err != nil {
			unix.Munmap(mem)
			return &Error{b.dev.name, fmt.Sprintf("mmap BAR %d area %#x+%#x", b.index, a.Offset, a.Size), errnoOf(err)}
		}
	}
	b.mem, b.base, b.areas = mem, base, r.Sparse
	return nil
}

func (b *BAR) unmap() error {
	if b.mem == nil {
		return nil
	}
	mem := b.mem
	b.mem, b.base, b.areas = nil, nil, nil
	if err := unix.Munmap(mem); err != nil {
		return fmt.Errorf("vfio: %s: munmap BAR %d: %w", b.dev.name, b.index, err)
	}
	return nil
}

// Index returns the BAR's number, 0..5.
func (b *BAR) Index() int { return b.index }

// Size returns the BAR's size in bytes.
func (b *BAR) Size() uint64 { return b.size }

// IO reports whether this is an I/O port BAR.
func (b *BAR) IO() bool { return b.io }

// Mapped reports whether the BAR's bytes [off, off+n) are mmap'd, so that
// Slice works on them and accesses there make no system call.
func (b *BAR) Mapped(off, n uint64) bool { return b.ptr(off, n) != nil }

// Slice returns the mmap'd bytes [off, off+n) of the BAR, for drivers that
// keep register pointers. Access them with volatile semantics in mind: the
// Go compiler may merge or drop plain loads and stores it can see through.
func (b *BAR) Slice(off, n uint64) ([]byte, error) {
	p := b.ptr(off, n)
	if p == nil {
		return nil, fmt.Errorf("vfio: %s: BAR %d bytes %#x+%d are not mmap'd", b.dev.name, b.index, off, n)
	}
	return unsafe.Slice((*byte)(p), n), nil
}

// ptr returns the address of [off, off+n) when it lies in a mapped area.
func (b *BAR) ptr(off, n uint64) unsafe.Pointer {
	for _, a := range b.areas {
		if off >= a.Offset && off-a.Offset <= a.Size && n <= a.Size-(off-a.Offset) {
			return unsafe.Add(b.base, off)
		}
	}
	return nil
}

// Read8 reads the byte at off.
func (b *BAR) Read8(off uint64) (uint8, error) {
	if p := b.ptr(off, 1); p != nil {
		return mmioRead8(p), nil
	}
	v, err := b.pread(off, 1)
	return uint8(v), err
}

// Read16 reads the little-endian 16-bit register at off.
func (b *BAR) Read16(off uint64) (uint16, error) {
	if off%2 == 0 {
		if p := b.ptr(off, 2); p != nil {
			return mmioRead16(p), nil
		}
	}
	v, err := b.pread(off, 2)
	return uint16(v), err
}

// Read32 reads the little-endian 32-bit register at off.
func (b *BAR) Read32(off uint64) (uint32, error) {
	if off%4 == 0 {
		if p := b.ptr(off, 4); p != nil {
			return mmioRead32(p), nil
		}
	}
	v, err := b.pread(off, 4)
	return uint32(v), err
}

// Read64 reads the little-endian 64-bit register at off (memory BARs only).
func (b *BAR) Read64(off uint64) (uint64, error) {
	if off%8 == 0 {
		if p := b.ptr(off, 8); p != nil {
			return mmioRead64(p), nil
		}
	}
	return b.pread(off, 8)
}

// Write8 writes the byte at off.
func (b *BAR) Write8(off uint64, v uint8) error {
	if p := b.ptr(off, 1); p != nil {
		mmioWrite8(p, v)
		return nil
	}
	return b.pwrite(off, 1, uint64(v))
}

// Write16 writes the little-endian 16-bit register at off.
func (b *BAR) Write16(off uint64, v uint16) error {
	if off%2 == 0 {
		if p := b.ptr(off, 2); p != nil {
			mmioWrite16(p, v)
			return nil
		}
	}
	return b.pwrite(off, 2, uint64(v))
}

// Write32 writes the little-endian 32-bit register at off.
func (b *BAR) Write32(off uint64, v uint32) error {
	if off%4 == 0 {
		if p := b.ptr(off, 4); p != nil {
			mmioWrite32(p, v)
			return nil
		}
	}
	return b.pwrite(off, 4, uint64(v))
}

// Write64 writes the little-endian 64-bit register at off (memory BARs only).
func (b *BAR) Write64(off uint64, v uint64) error {
	if off%8 == 0 {
		if p := b.ptr(off, 8); p != nil {
			mmioWrite64(p, v)
			return nil
		}
	}
	return b.pwrite(off, 8, v)
}

// checkRW validates an access that goes through the device fd.
func (b *BAR) checkRW(op string, off, n uint64) error {
	switch {
	case off%n != 0:
		return fmt.Errorf("vfio: %s: BAR %d: %d-byte %s at %#x is not aligned", b.dev.name, b.index, n, op, off)
	case off >= b.size || n > b.size-off:
		return fmt.Errorf("vfio: %s: BAR %d: %d-byte %s at %#x outside its %d bytes", b.dev.name, b.index, n, op, off, b.size)
	case b.io && n == 8:
		return fmt.Errorf("vfio: %s: BAR %d is an I/O BAR: 8-byte %s at %#x; I/O ports take 1, 2 or 4 bytes", b.dev.name, b.index, op, off)
	}
	return nil
}

func (b *BAR) pread(off, n uint64) (uint64, error) {
	if err := b.checkRW("read", off, n); err != nil {
		return 0, err
	}
	var buf [8]byte
	r, _, errno := unix.Syscall6(unix.SYS_PREAD64, uintptr(b.dev.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(n), uintptr(b.offset+int64(off)), 0, 0)
	if errno != 0 {
		return 0, &Error{b.dev.name, fmt.Sprintf("pread BAR %d %#x+%d", b.index, off, n), errno}
	}
	if r != uintptr(n) {
		return 0, fmt.Errorf("vfio: %s: pread BAR %d %#x+%d returned %d bytes", b.dev.name, b.index, off, n, r)
	}
	return binary.LittleEndian.Uint64(buf[:]), nil
}

func (b *BAR) pwrite(off, n, v uint64) error {
	if err := b.checkRW("write", off, n); err != nil {
		return err
	}
	var buf [8]byte
	binary.LittleEndian.PutUint64(buf[:], v)
	r, _, errno := unix.Syscall6(unix.SYS_PWRITE64, uintptr(b.dev.fd), uintptr(unsafe.Pointer(&buf[0])), uintptr(n), uintptr(b.offset+int64(off)), 0, 0)
	if errno != 0 {
		return &Error{b.dev.name, fmt.Sprintf("pwrite BAR %d %#x+%d", b.index, off, n), errno}
	}
	if r != uintptr(n) {
		return fmt.Errorf("vfio: %s: pwrite BAR %d %#x+%d took %d bytes", b.dev.name, b.index, off, n, r)
	}
	return nil
}
