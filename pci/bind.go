package pci

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
)

// VFIODriver is the name of the kernel's VFIO PCI driver.
const VFIODriver = "vfio-pci"

// Errors wrapped by Bind and Unbind when a check refuses a device; test
// with errors.Is.
var (
	ErrNotLoaded = errors.New("driver is not loaded")
	ErrInUse     = errors.New("device is in use")
	ErrNotViable = errors.New("IOMMU group is not viable")
	ErrNoGroup   = errors.New("device has no IOMMU group")
)

// BindOptions adjust Bind and Unbind.
type BindOptions struct {
	// Force moves devices whose network interfaces are up (their traffic
	// stops).
	Force bool
}

// groupDriversOK are the drivers a device may have while another device
// of its IOMMU group is used through VFIO: the kernel lets them share the
// group because they do no DMA of their own (include/linux/device/driver.h
// driver_managed_dma).
var groupDriversOK = []string{"", VFIODriver, "pci-stub", "pcieport"}

// Bind binds devices to driver in the system's sysfs; see Sysfs.Bind.
func Bind(driver string, addrs ...Addr) error { return Sysfs{}.Bind(driver, addrs, BindOptions{}) }

// Unbind detaches devices in the system's sysfs; see Sysfs.Unbind.
func Unbind(addrs ...Addr) error { return Sysfs{}.Unbind(addrs, BindOptions{}) }

// Bind moves each device to driver: it sets driver_override, unbinds the
// device from its current driver, binds it to driver, clears the override
// again and checks the result. Devices already on driver are left alone.
//
// Every device is checked before any is touched; Bind refuses, naming the
// device, when driver is not loaded, a device is in use (see BindOptions),
// or, for vfio-pci, a device has no IOMMU group or another member of its
// group (not itself being bound) is on a driver VFIO does not share a
// group with.
func (s Sysfs) Bind(driver string, addrs []Addr, o BindOptions) error {
	if driver == "" || strings.ContainsAny(driver, "/\n") || driver == "." || driver == ".." {
		return fmt.Errorf("pci: bind: driver name %q is not a driver name", driver)
	}
	if !s.DriverLoaded(driver) {
		return &bindError{fmt.Sprintf("pci: %s is not loaded (modprobe %s)", driver, driver), ErrNotLoaded}
	}
	devs, err := s.checkMove(addrs, o)
	if err != nil {
		return err
	}
	if driver == VFIODriver {
		if err := s.checkGroups(devs); err != nil {
			return err
		}
	}
	for _, d := range devs {
		if d.Driver == driver {
			continue
		}
		if err := s.bindOne(d, driver); err != nil {
			return err
		}
	}
	return nil
}

// Unbind detaches each device from its driver and clears its
// driver_override, so the next probe picks the kernel's default driver.
// Every device is checked first; a device in use is refused (see
// BindOptions). Devices without a driver are left alone.
func (s Sysfs) Unbind(addrs []Addr, o BindOptions) error {
	devs, err := s.checkMove(addrs, o)
	if err != nil {
		return err
	}
	for _, d := range devs {
		if d.Driver != "" {
			if err := s.unbindOne(d); err != nil {
				return err
			}
		}
		if d.DriverOverride != "" {
			if err := writeAttr(filepath.Join(d.dir, "driver_override"), "\n"); err != nil {
				return fmt.Errorf("pci: %s: clear driver_override: %w", d.Addr, err)
			}
		}
	}
	return nil
}

// checkMove reads the devices and refuses those that are in use.
func (s Sysfs) checkMove(addrs []Addr, o BindOptions) ([]*Device, error) {
	if len(addrs) == 0 {
		return nil, errors.New("pci: no device addresses given")
	}
	var devs []*Device
	for _, a := range addrs {
		d, err := s.Lookup(a)
		if err != nil {
			return nil, err
		}
		if up := d.ActiveInterfaces(); len(up) > 0 && !o.Force {
			return nil, &bindError{fmt.Sprintf("pci: device %s is in use (it has an active network interface %s); take it down first, or force",
				a, strings.Join(up, ", ")), ErrInUse}
		}
		devs = append(devs, d)
	}
	return devs, nil
}

// checkGroups refuses to bind devs to vfio-pci when VFIO could not use
// their IOMMU groups afterwards.
func (s Sysfs) checkGroups(devs []*Device) error {
	binding := map[Addr]bool{}
	for _, d := range devs {
		binding[d.Addr] = true
	}
	for _, d := range devs {
		if d.IOMMUGroup < 0 {
			return &bindError{fmt.Sprintf("pci: device %s has no IOMMU group, which vfio-pci needs (boot with intel_iommu=on or amd_iommu=on)", d.Addr), ErrNoGroup}
		}
		members, err := s.Group(d.IOMMUGroup)
		if err != nil {
			return err
		}
		for _, m := range members {
			if binding[m] {
				continue
			}
			md, err := s.Lookup(m)
			if err != nil {
				return err
			}
			if !slices.Contains(groupDriversOK, md.Driver) {
				return &bindError{fmt.Sprintf("pci: IOMMU group %d is not viable: device %s is bound to %s (bind it to vfio-pci too, or unbind it)",
					d.IOMMUGroup, m, md.Driver), ErrNotViable}
			}
		}
	}
	return nil
}

func (s Sysfs) bindOne(d *Device, driver string) error {
	override := filepath.Join(d.dir, "driver_override")
	if err := writeAttr(override, driver); err != nil {
		return fmt.Errorf("pci: %s: set driver_override to %s: %w", d.Addr, driver, err)
	}
	if d.Driver != "" {
		if err := s.unbindOne(d); err != nil {
			return err
		}
	}
	bind := filepath.Join(s.driversDir(), driver, "bind")
	bindErr := writeAttr(bind, d.Addr.String())
	// The override did its job (or failed to); leave the device free for
	// whichever driver is asked for next, as dpdk-devbind does.
	clearErr := writeAttr(override, "\n")
	if bindErr != nil {
		return fmt.Errorf("pci: bind %s to %s: write %s: %w (the kernel log says why)", d.Addr, driver, bind, bindErr)
	}
	if clearErr != nil {
		return fmt.Errorf("pci: %s: clear driver_override: %w", d.Addr, clearErr)
	}
	now, err := s.Lookup(d.Addr)
	if err != nil {
		return err
	}
	if now.Driver != driver {
		return fmt.Errorf("pci: bind %s to %s: the device is on %q afterwards", d.Addr, driver, now.Driver)
	}
	return nil
}

func (s Sysfs) unbindOne(d *Device) error {
	p := filepath.Join(d.dir, "driver", "unbind")
	if err := writeAttr(p, d.Addr.String()); err != nil {
		return fmt.Errorf("pci: unbind %s from %s: write %s: %w", d.Addr, d.Driver, p, err)
	}
	return nil
}

// writeAttr writes a sysfs attribute in one write, as sysfs wants.
func writeAttr(path, value string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(value))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

// bindError is a refusal whose message stands alone and whose kind is
// one of the Err* values.
type bindError struct {
	msg  string
	kind error
}

func (e *bindError) Error() string { return e.msg }
func (e *bindError) Unwrap() error { return e.kind }
