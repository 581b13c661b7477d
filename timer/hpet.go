package timer

import (
	"errors"
	"fmt"
	"io/fs"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// HPETPath is the kernel's HPET character device.
const HPETPath = "/dev/hpet"

// ErrHPETBusy is wrapped by OpenHPET's error when every HPET comparator the
// kernel lets user space open is already open (EBUSY).
var ErrHPETBusy = errors.New("no free HPET comparator")

// HPET registers, as offsets into the mapped register page (HPET spec 1.0a,
// section 2.3).
const (
	hpetCapabilities = 0x000 // bits 63:32 period in fs, 13 64-bit counter, 12:8 comparators-1
	hpetConfig       = 0x010 // bit 0: the main counter runs
	hpetMainCounter  = 0x0F0
	hpetPageSize     = 4096

	hpetMaxPeriodFs = 100_000_000 // the spec's upper bound: 100 ns, i.e. at least 10 MHz
)

// hpetInfo mirrors struct hpet_info of <linux/hpet.h>.
type hpetInfo struct {
	IReqFreq uint64
	Flags    uint64
	HPET     uint16 // which HPET block
	Timer    uint16 // which comparator of it this open file holds
	_        uint32
}

// hpetInfoIoctl is HPET_INFO, _IOR('h', 0x03, struct hpet_info).
const hpetInfoIoctl = 2<<30 | uint32(unsafe.Sizeof(hpetInfo{}))<<16 | 'h'<<8 | 0x03

// HPET is this process's use of the High Precision Event Timer: /dev/hpet
// open and its register page mapped read-only.
//
// The kernel gives each open of /dev/hpet one comparator of its own and
// refuses further opens with EBUSY once none is left, so an open HPET is a
// claim on a scarce resource: hold it only while using it, and Close it. The
// comparators the kernel drives itself (typically 0 and 1, for the legacy
// timer and RTC interrupts) are never offered, so a machine whose HPET has 3
// comparators may have just one for user space. Close, or the process's
// exit, returns the comparator.
//
// Reading the counter is a load from the mapped page: no system call, no
// allocation, but an uncached device read that costs about a microsecond
// on real hardware, far more than Cycles.
type HPET struct {
	fd          int
	regs        []byte
	counter     unsafe.Pointer // the main counter in regs
	wide        bool           // 64-bit main counter
	hz          uint64
	periodFs    uint64
	comparators int
	block       int
	comparator  int

	// A 32-bit counter is extended to 64 bits: last is the latest extended
	// value published, refreshed at least twice per wrap (see cycles32).
	last      atomic.Uint64
	stop      chan struct{}
	done      sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

// OpenHPET opens /dev/hpet, claiming one comparator, and maps its registers.
// With no HPET device the error wraps fs.ErrNotExist; with every comparator
// open already it wraps ErrHPETBusy.
func OpenHPET() (*HPET, error) { return openHPET(HPETPath) }

func openHPET(path string) (*HPET, error) {
	// The driver refuses opens for writing (EINVAL). O_CLOEXEC: a child
	// that inherited the file would keep the comparator claimed.
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("timer: open %s: %w: the kernel offers no HPET to user space (no HPET in this machine, or a kernel without CONFIG_HPET)", path, fs.ErrNotExist)
	case errors.Is(err, unix.EBUSY):
		return nil, fmt.Errorf("timer: open %s: %w: every comparator the kernel lets user space open is open already (EBUSY)", path, ErrHPETBusy)
	case err != nil:
		return nil, fmt.Errorf("timer: open %s: %w", path, err)
	}
	h := &HPET{fd: fd}
	if err := h.setUp(path); err != nil {
		h.closeFiles()
		return nil, err
	}
	return h, nil
}

func (h *HPET) setUp(path string) error {
	var info hpetInfo
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(h.fd), uintptr(hpetInfoIoctl), uintptr(unsafe.Pointer(&info))); errno != 0 {
		return fmt.Errorf("timer: HPET_INFO on %s: %w", path, errno)
	}
	h.block, h.comparator = int(info.HPET), int(info.Timer)
	regs, err := unix.Mmap(h.fd, 0, hpetPageSize, unix.PROT_READ, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("timer: map the registers of %s: %w (the kernel needs CONFIG_HPET_MMAP, and hpet_mmap=1 on its command line unless CONFIG_HPET_MMAP_DEFAULT)", path, err)
	}
	h.regs = regs
	base := unsafe.Pointer(&regs[0])
	caps := atomic.LoadUint64((*uint64)(unsafe.Add(base, hpetCapabilities)))
	config := atomic.LoadUint64((*uint64)(unsafe.Add(base, hpetConfig)))
	if err := h.decode(caps, config); err != nil {
		return fmt.Errorf("timer: %s: %w", path, err)
	}
	h.counter = unsafe.Add(base, hpetMainCounter)
	h.startExtender()
	return nil
}

// decode reads the capabilities and configuration registers.
func (h *HPET) decode(caps, config uint64) error {
	period := caps >> 32
	if period == 0 || period > hpetMaxPeriodFs {
		return fmt.Errorf("HPET counter period %d fs is invalid: the spec allows 1 to %d fs (capabilities register %#x)", period, hpetMaxPeriodFs, caps)
	}
	if config&1 == 0 {
		return fmt.Errorf("the HPET main counter is halted (ENABLE_CNF clear in configuration register %#x)", config)
	}
	h.periodFs = period
	h.hz = (1_000_000_000_000_000 + period/2) / period
	h.comparators = int(caps>>8&0x1f) + 1
	h.wide = caps&(1<<13) != 0
	return nil
}

// startExtender arranges for a 32-bit counter to be read often enough that
// cycles32 never misses a wrap, even when nobody else reads it.
func (h *HPET) startExtender() {
	if h.wide {
		return
	}
	h.last.Store(uint64(atomic.LoadUint32((*uint32)(h.counter))))
	h.stop = make(chan struct{})
	// A quarter of the half-wrap that cycles32 tolerates between reads.
	every := time.Duration(float64(1<<31) / 4 / float64(h.hz) * float64(time.Second))
	h.done.Add(1)
	go func() {
		defer h.done.Done()
		tick := time.NewTicker(every)
		defer tick.Stop()
		for {
			select {
			case <-h.stop:
				return
			case <-tick.C:
				h.cycles32()
			}
		}
	}()
}

// Cycles returns the HPET main counter, extended to 64 bits if the counter
// has 32. It does not allocate. After Close it returns 0.
func (h *HPET) Cycles() uint64 {
	if h.wide {
		return atomic.LoadUint64((*uint64)(h.counter))
	}
	return h.cycles32()
}

// cycles32 extends the 32-bit counter with the upper half of last, the
// latest published reading. last is loaded before the counter, so the
// counter has moved on from it by less than a wrap as long as last is at
// most one wrap old; publishing every reading that enters a new half-wrap,
// plus the extender's periodic reads, keeps it at most half a wrap old.
// Publishing only then keeps readers on different CPUs from writing the
// shared word on every read.
func (h *HPET) cycles32() uint64 {
	prev := h.last.Load()
	v := prev&^0xffff_ffff | uint64(atomic.LoadUint32((*uint32)(h.counter)))
	if v < prev {
		v += 1 << 32
	}
	for v>>31 != prev>>31 && v > prev && !h.last.CompareAndSwap(prev, v) {
		prev = h.last.Load()
	}
	return v
}

// Hz returns the counter's frequency: 10^15 divided by the period in
// femtoseconds the HPET states, rounded.
func (h *HPET) Hz() uint64 { return h.hz }

// PeriodFs returns the counter period in femtoseconds, as the HPET states it.
func (h *HPET) PeriodFs() uint64 { return h.periodFs }

// Comparators returns how many comparators the HPET has, including those the
// kernel keeps for itself.
func (h *HPET) Comparators() int { return h.comparators }

// Comparator returns the comparator this open file holds: its number within
// its HPET block, and the block's number (0 unless the machine has several).
func (h *HPET) Comparator() (index, block int) { return h.comparator, h.block }

// Counter64 reports whether the main counter has 64 bits. A 32-bit counter
// wraps (every 43 s at 100 MHz); Cycles extends it.
func (h *HPET) Counter64() bool { return h.wide }

// Close unmaps the registers and closes /dev/hpet, which frees the
// comparator. The page stays readable as zeros, so a late Cycles returns 0
// rather than faulting.
func (h *HPET) Close() error {
	h.closeOnce.Do(func() {
		if h.stop != nil {
			close(h.stop)
			h.done.Wait()
		}
		h.closeErr = h.closeFiles()
	})
	return h.closeErr
}

func (h *HPET) closeFiles() error {
	var errs []error
	if h.regs != nil {
		// Replace the device page by a zero page at the same address.
		addr := uintptr(unsafe.Pointer(&h.regs[0]))
		_, _, errno := unix.Syscall6(unix.SYS_MMAP, addr, hpetPageSize, unix.PROT_READ,
			unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED, ^uintptr(0), 0)
		if errno != 0 {
			errs = append(errs, fmt.Errorf("timer: replace the HPET register mapping: %w", errno))
		}
	}
	if err := unix.Close(h.fd); err != nil {
		errs = append(errs, fmt.Errorf("timer: close %s: %w", HPETPath, err))
	}
	return errors.Join(errs...)
}
