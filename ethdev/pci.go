package ethdev

import (
	"errors"
	"fmt"
	"sync"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/pci"
)

// PCI drivers say which vendor:device ids they drive, so that a device
// given by address (-a 0000:03:00.0) finds its driver the way the kernel
// finds one: by id.
var (
	pciMu      sync.Mutex
	pciDrivers = map[pci.ID]string{}
)

// RegisterPCI makes driver (registered with Register, such as "net_ixgbe")
// the one for devices with these ids. Its Probe receives the device string
// "<driver><n>,pci=<address>[,<the -a arguments>]".
func RegisterPCI(driver string, ids []pci.ID) {
	pciMu.Lock()
	defer pciMu.Unlock()
	for _, id := range ids {
		if other, dup := pciDrivers[id]; dup && other != driver {
			panic(fmt.Sprintf("ethdev: PCI id %04x:%04x claimed by %s and %s", id.Vendor, id.Device, other, driver))
		}
		pciDrivers[id] = driver
	}
}

// CreatePCI makes a port of the PCI device dev (an -a/--allow entry): it
// reads the device's ids from sysfs, picks the driver registered for them
// and creates the port as Create does.
func CreatePCI(proc *mp.Process, dev eal.Device) (*Port, error) {
	d, err := pci.Lookup(dev.Addr)
	if err != nil {
		return nil, fmt.Errorf("ethdev: %s: %w", dev.Addr, err)
	}
	pciMu.Lock()
	drv, ok := pciDrivers[d.ID()]
	if !ok {
		drv, ok = pciDrivers[pci.ID{Vendor: d.VendorID, Device: pci.AnyID}]
	}
	pciMu.Unlock()
	if !ok {
		return nil, fmt.Errorf("ethdev: %s: no driver for PCI id %04x:%04x (import the driver's package; registered drivers: %v)", dev.Addr, d.VendorID, d.DeviceID, Drivers())
	}
	// The port takes the first free instance name of its driver.
	for n := range MaxPorts {
		vdev := eal.VDev{Name: fmt.Sprintf("%s%d", drv, n), Args: append([]eal.KeyValue{{Key: "pci", Value: dev.Addr.String()}}, dev.Args...)}
		p, err := Create(proc, vdev.String())
		if !errors.Is(err, errNameTaken) {
			return p, err
		}
	}
	return nil, fmt.Errorf("ethdev: %s: every %s instance name is taken", dev.Addr, drv)
}
