package vfio

import (
	"errors"
	"fmt"
	"os"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// EventFD is an eventfd the kernel signals when the device raises an
// interrupt: it becomes readable, and reading returns how many interrupts
// arrived since the last read. It belongs to the Device that made it,
// which closes it when interrupts are disabled.
type EventFD struct {
	fd int
}

func newEventFD() (*EventFD, error) {
	fd, err := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("vfio: eventfd: %w", err)
	}
	return &EventFD{fd: fd}, nil
}

// FD returns the eventfd, for epoll.
func (e *EventFD) FD() int { return e.fd }

// Read returns the number of interrupts since the last read, 0 if none,
// without blocking.
func (e *EventFD) Read() (uint64, error) {
	var buf [8]byte
	_, err := unix.Read(e.fd, buf[:])
	if errors.Is(err, unix.EAGAIN) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("vfio: read eventfd: %w", err)
	}
	return *(*uint64)(unsafe.Pointer(&buf[0])), nil
}

// Wait waits up to timeout for an interrupt and returns the count Read
// returns. At the timeout the error wraps os.ErrDeadlineExceeded.
func (e *EventFD) Wait(timeout time.Duration) (uint64, error) {
	deadline := time.Now().Add(timeout)
	for {
		n, err := e.Read()
		if n > 0 || err != nil {
			return n, err
		}
		left := time.Until(deadline)
		if left <= 0 {
			return 0, fmt.Errorf("vfio: no interrupt on eventfd %d within %v: %w", e.fd, timeout, os.ErrDeadlineExceeded)
		}
		fds := []unix.PollFd{{Fd: int32(e.fd), Events: unix.POLLIN}}
		if _, err := unix.Poll(fds, int(left.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
			return 0, fmt.Errorf("vfio: poll eventfd: %w", err)
		}
	}
}

func (e *EventFD) close() error { return unix.Close(e.fd) }

// IRQInfo describes one interrupt index of a device.
type IRQInfo struct {
	Index int
	Flags uint32 // IRQEventFD, IRQMaskable, IRQAutomasked, IRQNoResize
	Count int    // vectors (lines) the index has; 0 when the device lacks it
}

// IRQInfo asks the kernel about interrupt index i (IRQINTx, IRQMSIX, ...).
func (d *Device) IRQInfo(i int) (IRQInfo, error) {
	if i < 0 || i >= d.info.IRQs {
		return IRQInfo{}, fmt.Errorf("vfio: %s: IRQ index %d out of range 0..%d", d.name, i, d.info.IRQs-1)
	}
	info := irqInfo{Argsz: uint32(unsafe.Sizeof(irqInfo{})), Index: uint32(i)}
	if _, errno := ioctlPtr(d.fd, ioctlDeviceGetIRQInfo, unsafe.Pointer(&info)); errno != 0 {
		return IRQInfo{}, &Error{d.name, fmt.Sprintf("VFIO_DEVICE_GET_IRQ_INFO index %d", i), errno}
	}
	return IRQInfo{Index: i, Flags: info.Flags, Count: int(info.Count)}, nil
}

// EnableMSIX enables MSI-X with vectors 0..n-1 each signalling its own
// eventfd, returned in vector order. Interrupts set up before are disabled
// first. The device must also be told which vector to use for what (and
// have bus mastering on, SetBusMaster) before it raises any.
func (d *Device) EnableMSIX(n int) ([]*EventFD, error) {
	return d.enable(IRQMSIX, "MSI-X", n)
}

// EnableINTx enables the legacy INTx interrupt on an eventfd: the fallback
// for devices without MSI-X. VFIO masks the line after each interrupt;
// UnmaskINTx re-arms it once the device has been serviced.
func (d *Device) EnableINTx() (*EventFD, error) {
	evs, err := d.enable(IRQINTx, "INTx", 1)
	if err != nil {
		return nil, err
	}
	return evs[0], nil
}

func (d *Device) enable(index int, kind string, n int) ([]*EventFD, error) {
	info, err := d.IRQInfo(index)
	if err != nil {
		return nil, err
	}
	switch {
	case info.Count == 0:
		return nil, fmt.Errorf("vfio: %s: the device has no %s interrupt", d.name, kind)
	case n < 1 || n > info.Count:
		return nil, fmt.Errorf("vfio: %s: %d %s vectors asked for, the device has 1..%d", d.name, n, kind, info.Count)
	case info.Flags&IRQEventFD == 0:
		return nil, fmt.Errorf("vfio: %s: %s cannot signal an eventfd (VFIO_IRQ_INFO_EVENTFD clear)", d.name, kind)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.closed {
		return nil, fmt.Errorf("vfio: %s: enable %s after Close", d.name, kind)
	}
	if d.irq >= 0 {
		if err := d.disableLocked(); err != nil {
			return nil, err
		}
	}
	evs := make([]*EventFD, n)
	fds := make([]int32, n)
	for i := range evs {
		e, err := newEventFD()
		if err != nil {
			for _, e := range evs[:i] {
				e.close()
			}
			return nil, err
		}
		evs[i], fds[i] = e, int32(e.fd)
	}
	if err := d.setIRQs(index, irqSetDataEventFD|irqSetActionTrigger, fds); err != nil {
		for _, e := range evs {
			e.close()
		}
		return nil, err
	}
	d.irq, d.events = index, evs
	return evs, nil
}

// UnmaskINTx re-arms INTx after VFIO masked it on an interrupt.
func (d *Device) UnmaskINTx() error {
	return d.setIRQsCount(IRQINTx, irqSetDataNone|irqSetActionUnmask, 1)
}

// DisableInterrupts disables the interrupts EnableMSIX or EnableINTx set
// up and closes their eventfds.
func (d *Device) DisableInterrupts() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.irq < 0 {
		return nil
	}
	return d.disableLocked()
}

func (d *Device) disableLocked() error {
	err := d.setIRQsCount(d.irq, irqSetDataNone|irqSetActionTrigger, 0)
	for _, e := range d.events {
		e.close()
	}
	d.irq, d.events = -1, nil
	return err
}

// setIRQs issues VFIO_DEVICE_SET_IRQS for vectors 0..len(fds)-1 of index.
func (d *Device) setIRQs(index int, flags uint32, fds []int32) error {
	hdr := int(unsafe.Sizeof(irqSet{}))
	buf := alignedBuf(hdr + 4*len(fds))
	s := (*irqSet)(unsafe.Pointer(&buf[0]))
	*s = irqSet{Argsz: uint32(len(buf)), Flags: flags, Index: uint32(index), Count: uint32(len(fds))}
	for i, fd := range fds {
		*(*int32)(unsafe.Pointer(&buf[hdr+4*i])) = fd
	}
	if _, errno := ioctlPtr(d.fd, ioctlDeviceSetIRQs, unsafe.Pointer(&buf[0])); errno != 0 {
		return &Error{d.name, fmt.Sprintf("VFIO_DEVICE_SET_IRQS %s %d eventfds", irqName(index), len(fds)), errno}
	}
	return nil
}

// setIRQsCount issues VFIO_DEVICE_SET_IRQS without data.
func (d *Device) setIRQsCount(index int, flags uint32, count int) error {
	s := irqSet{Argsz: uint32(unsafe.Sizeof(irqSet{})), Flags: flags, Index: uint32(index), Count: uint32(count)}
	if _, errno := ioctlPtr(d.fd, ioctlDeviceSetIRQs, unsafe.Pointer(&s)); errno != 0 {
		return &Error{d.name, fmt.Sprintf("VFIO_DEVICE_SET_IRQS %s flags %#x count %d", irqName(index), flags, count), errno}
	}
	return nil
}

func irqName(index int) string {
	switch index {
	case IRQINTx:
		return "INTx"
	case IRQMSI:
		return "MSI"
	case IRQMSIX:
		return "MSI-X"
	case IRQErr:
		return "ERR"
	case IRQReq:
		return "REQ"
	}
	return fmt.Sprintf("index %d", index)
}
