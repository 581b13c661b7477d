package vfio

import (
	"errors"
	"fmt"
	"slices"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/pci"
)

// Group is an IOMMU group added to a Container: the unit the IOMMU
// isolates, and through which its devices are opened. It belongs to its
// Container.
type Group struct {
	n       int
	fd      int
	c       *Container
	members []pci.Addr // from sysfs when the group was added
	devices []*Device  // opened through this group and not closed
	closed  bool
}

func (g *Group) name() string { return fmt.Sprintf("group %d", g.n) }

// Number returns the group's number (/dev/vfio/<n>).
func (g *Group) Number() int { return g.n }

// FD returns the group's file descriptor, owned by the Group.
func (g *Group) FD() int { return g.fd }

// Container returns the container the group is in.
func (g *Group) Container() *Container { return g.c }

// Members returns the devices of the group, as sysfs listed them when the
// group was added.
func (g *Group) Members() []pci.Addr { return slices.Clone(g.members) }

func (g *Group) status() (uint32, error) {
	st := groupStatus{Argsz: uint32(unsafe.Sizeof(groupStatus{}))}
	if _, errno := ioctlPtr(g.fd, ioctlGroupGetStatus, unsafe.Pointer(&st)); errno != 0 {
		return 0, &Error{g.name(), "VFIO_GROUP_GET_STATUS", errno}
	}
	return st.Flags, nil
}

// Device opens the group's device at addr. The container must have its
// IOMMU set (SetIOMMU).
func (g *Group) Device(addr pci.Addr) (*Device, error) {
	c := g.c
	c.mu.Lock()
	defer c.mu.Unlock()
	if g.closed {
		return nil, fmt.Errorf("vfio: %s: Device(%s) after Close", g.name(), addr)
	}
	if d, ok := c.devices[addr]; ok {
		return d, nil
	}
	if len(g.members) > 0 && !slices.Contains(g.members, addr) {
		return nil, fmt.Errorf("vfio: device %s is not in IOMMU group %d, whose members are %v", addr, g.n, g.members)
	}
	if c.iommu == 0 {
		return nil, fmt.Errorf("vfio: %s: opening %s before the container's IOMMU is set (SetIOMMU)", g.name(), addr)
	}
	name := append([]byte(addr.String()), 0)
	fd, errno := ioctlPtr(g.fd, ioctlGroupGetDeviceFD, unsafe.Pointer(&name[0]))
	if errno != 0 {
		return nil, &Error{addr.String(), fmt.Sprintf("VFIO_GROUP_GET_DEVICE_FD in group %d", g.n), errno}
	}
	d, err := newDevice(addr, int(fd), g)
	if err != nil {
		unix.Close(int(fd))
		return nil, err
	}
	c.devices[addr] = d
	g.devices = append(g.devices, d)
	return d, nil
}

// Close closes the group's devices and the group, which leaves the
// container.
func (g *Group) Close() error {
	c := g.c
	c.mu.Lock()
	if g.closed {
		c.mu.Unlock()
		return nil
	}
	g.closed = true
	devs := slices.Clone(g.devices)
	c.mu.Unlock()
	var errs []error
	for _, d := range devs {
		errs = append(errs, d.Close())
	}
	c.mu.Lock()
	delete(c.groups, g.n)
	c.mu.Unlock()
	errs = append(errs, closeFD(g.name(), g.fd))
	return errors.Join(errs...)
}
