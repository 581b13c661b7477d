package vfio

import (
	"fmt"
	"time"

	"github.com/gopmd/gopmd/mp/ipc"
	"github.com/gopmd/gopmd/pci"
)

// FDs are the descriptors behind an open Device and what another process
// needs to rebuild it from them.
type FDs struct {
	Container, Group, Device int
	GroupNumber              int
	Addr                     pci.Addr
}

// FDs returns the device's descriptors, still owned by this process's
// objects: pass duplicates (ipc.Message.FDs does) to another process.
func (d *Device) FDs() FDs {
	return FDs{Container: d.group.c.fd, Group: d.group.fd, Device: d.fd, GroupNumber: d.group.n, Addr: d.addr}
}

// FromFDs builds a Device, with a Group and Container of its own, from
// descriptors another process opened and set up: the container already
// has its IOMMU and DMA mappings, so this process maps nothing itself.
// The new objects own the descriptors; closing the Device's Container
// closes them all. On error the descriptors are left open.
func FromFDs(f FDs) (*Device, error) {
	c := newContainer(f.Container, -1)
	if err := c.checkAPI(); err != nil {
		return nil, fmt.Errorf("vfio: received container descriptor %d: %w", f.Container, err)
	}
	g := &Group{n: f.GroupNumber, fd: f.Group, c: c, members: []pci.Addr{f.Addr}}
	st, err := g.status()
	if err != nil {
		return nil, fmt.Errorf("vfio: received group descriptor %d: %w", f.Group, err)
	}
	if st&groupFlagsContainerSet == 0 {
		return nil, fmt.Errorf("vfio: received %s has no container set (VFIO_GROUP_GET_STATUS flags %#x)", g.name(), st)
	}
	d, err := newDevice(f.Addr, f.Device, g)
	if err != nil {
		return nil, err
	}
	c.groups[g.n] = g
	c.devices[d.addr] = d
	g.devices = []*Device{d}
	return d, nil
}

// fdsAction is the mp/ipc action by which a secondary asks the primary for
// an open device's descriptors. Request payload: the device address.
// Reply: descriptors container, group, device; payload "group=<n>".
const fdsAction = "vfio_fds"

// Serve answers secondaries' Attach requests on ep (the primary's
// mp.Process.IPC()) with the descriptors of devices open in c. Before
// replying it maps memory segments added since MapMemory, so DMA to them
// works from the secondary too.
func Serve(ep *ipc.Endpoint, c *Container) error {
	return ep.Register(fdsAction, func(call *ipc.Call) error {
		call.CloseFDs()
		if !call.IsRequest() {
			return fmt.Errorf("vfio: %s from %s is not a request", fdsAction, call.From)
		}
		addr, err := pci.ParseAddr(string(call.Payload))
		if err != nil {
			return fmt.Errorf("vfio: %s: %w", fdsAction, err)
		}
		d := c.Device(addr)
		if d == nil {
			return fmt.Errorf("vfio: device %s is not open in the primary", addr)
		}
		if err := c.syncMemory(); err != nil {
			return err
		}
		f := d.FDs()
		return call.Reply(ipc.Message{
			Payload: fmt.Appendf(nil, "group=%d", f.GroupNumber),
			FDs:     []int{f.Container, f.Group, f.Device},
		})
	})
}

// Attach asks the primary (which runs Serve) for the descriptors of its
// open device addr and builds this process's Device from them (FromFDs).
// The Device's BARs map through the received device descriptor, so a
// secondary can ring its queues' doorbells; DMA uses the primary's
// mappings. Interrupt eventfds stay with the primary.
func Attach(ep *ipc.Endpoint, addr pci.Addr) (*Device, error) {
	reply, err := ep.Request(ipc.PrimarySocket, ipc.Message{Action: fdsAction, Payload: []byte(addr.String())}, time.Now().Add(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("vfio: asking the primary for %s: %w", addr, err)
	}
	fail := func(err error) (*Device, error) {
		reply.CloseFDs()
		return nil, err
	}
	if len(reply.FDs) != 3 {
		return fail(fmt.Errorf("vfio: the primary sent %d descriptors for %s, want 3 (container, group, device)", len(reply.FDs), addr))
	}
	var group int
	if _, err := fmt.Sscanf(string(reply.Payload), "group=%d", &group); err != nil || group < 0 {
		return fail(fmt.Errorf("vfio: the primary's reply for %s has payload %q, want group=<n>", addr, reply.Payload))
	}
	d, err := FromFDs(FDs{Container: reply.FDs[0], Group: reply.FDs[1], Device: reply.FDs[2], GroupNumber: group, Addr: addr})
	if err != nil {
		return fail(err)
	}
	return d, nil
}
