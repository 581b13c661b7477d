package memif

import (
	"fmt"
	"strconv"
	"sync/atomic"
	"unsafe"

	"golang.org/x/sys/unix"
)

// A mapped region: base address and length in this process.
type mapping struct {
	base unsafe.Pointer
	size uint64
}

func mmapFD(fd int, size uint64) (mapping, error) {
	if size == 0 || size > maxRegionSize {
		return mapping{}, fmt.Errorf("region size %d: want 1 to %d bytes", size, uint64(maxRegionSize))
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return mapping{}, fmt.Errorf("stat region fd: %w", err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return mapping{}, fmt.Errorf("region fd is not a regular file (mode %#o)", st.Mode)
	}
	if uint64(st.Size) < size {
		return mapping{}, fmt.Errorf("region file holds %d bytes, less than the region's %d", st.Size, size)
	}
	p, err := unix.MmapPtr(fd, 0, nil, uintptr(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return mapping{}, fmt.Errorf("map region of %d bytes: %w", size, err)
	}
	return mapping{base: p, size: size}, nil
}

// mmapProc maps a region by the fd the primary holds for it.
func mmapProc(pid, fd int32, size uint64) (mapping, error) {
	path := "/proc/" + strconv.Itoa(int(pid)) + "/fd/" + strconv.Itoa(int(fd))
	f, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return mapping{}, fmt.Errorf("open region %s: %w", path, err)
	}
	defer unix.Close(f)
	return mmapFD(f, size)
}

func (m *mapping) unmap() {
	if m.base != nil {
		unix.MunmapPtr(m.base, uintptr(m.size))
		*m = mapping{}
	}
}

// Region offsets and descriptor offsets are 32-bit.
const maxRegionSize = 1 << 32

// sealShrink makes sure the file behind fd can never shrink: a region that
// shrank under our mapping would turn our next access into SIGBUS.
func sealShrink(fd int) error {
	seals, err := unix.FcntlInt(uintptr(fd), unix.F_GET_SEALS, 0)
	if err != nil {
		return fmt.Errorf("region fd is not a sealable memfd (F_GET_SEALS: %v); without F_SEAL_SHRINK the peer could truncate it under us", err)
	}
	if seals&unix.F_SEAL_SHRINK != 0 {
		return nil
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK); err != nil {
		return fmt.Errorf("region memfd is not sealed against shrinking and cannot be (F_ADD_SEALS: %v)", err)
	}
	return nil
}

// newRegionFD makes the memfd of a region we own (client role): size
// bytes, zeroed, sealed so that nobody can shrink it.
func newRegionFD(size uint64) (int, error) {
	fd, err := unix.MemfdCreate("memif_region_0", unix.MFD_ALLOW_SEALING|unix.MFD_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("memfd_create: %w", err)
	}
	if err := unix.Ftruncate(fd, int64(size)); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("size region memfd to %d bytes: %w", size, err)
	}
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_SEAL); err != nil {
		unix.Close(fd)
		return -1, fmt.Errorf("seal region memfd: %w", err)
	}
	return fd, nil
}

// Ring header access. Go has no 16-bit atomics, so head and tail are read
// and written through the aligned 32-bit words holding them: tail sits
// alone in its word (the rest is padding), head shares one with flags.

func ringWord(r unsafe.Pointer, off uintptr) *uint32 { return (*uint32)(unsafe.Add(r, off)) }

func loadHead(r unsafe.Pointer) uint16 {
	return uint16(atomic.LoadUint32(ringWord(r, ringFlags)) >> 16)
}
func loadFlags(r unsafe.Pointer) uint16 { return uint16(atomic.LoadUint32(ringWord(r, ringFlags))) }
func loadTail(r unsafe.Pointer) uint16  { return uint16(atomic.LoadUint32(ringWord(r, ringTail))) }

func storeTail(r unsafe.Pointer, t uint16) { atomic.StoreUint32(ringWord(r, ringTail), uint32(t)) }

// casRetries bounds the compare-and-swap loop that stores head next to
// flags. A conforming peer never writes that word once connected, so
// failing this often means the peer is hammering it.
const casRetries = 64

// storeHead writes head and keeps flags; false when the peer keeps
// changing the word under us.
func storeHead(r unsafe.Pointer, h uint16) bool {
	w := ringWord(r, ringFlags)
	for range casRetries {
		old := atomic.LoadUint32(w)
		if atomic.CompareAndSwapUint32(w, old, old&0xffff|uint32(h)<<16) {
			return true
		}
	}
	return false
}

// resetRing zeroes head and tail and sets flags, as either side does when
// a connection is made.
func resetRing(r unsafe.Pointer, flags uint16) {
	atomic.StoreUint32(ringWord(r, ringFlags), uint32(flags))
	storeTail(r, 0)
}

func loadCookie(r unsafe.Pointer) uint32 { return atomic.LoadUint32(ringWord(r, ringCookie)) }

func descAt(r unsafe.Pointer, slot uint32) unsafe.Pointer {
	return unsafe.Add(r, ringHeaderSize+uintptr(slot)*descSize)
}

// A descriptor is read once, as two words, and only the copies are used:
// the peer may rewrite it at any moment.
type desc struct {
	flags, region  uint16
	length, offset uint32
}

func readDesc(d unsafe.Pointer) desc {
	w0 := *(*uint64)(d)
	w1 := *(*uint64)(unsafe.Add(d, 8))
	return desc{flags: uint16(w0), region: uint16(w0 >> 16), length: uint32(w0 >> 32), offset: uint32(w1)}
}

func writeDesc(d unsafe.Pointer, x desc) {
	*(*uint64)(d) = uint64(x.flags) | uint64(x.region)<<16 | uint64(x.length)<<32
	*(*uint64)(unsafe.Add(d, 8)) = uint64(x.offset)
}

// setDescLen writes a descriptor's flags and length and leaves its offset
// (the server filling a buffer the client gave).
func setDescLen(d unsafe.Pointer, flags, region uint16, length uint32) {
	*(*uint64)(d) = uint64(flags) | uint64(region)<<16 | uint64(length)<<32
}
