package pci

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	upci "github.com/u-root/u-root/pkg/pci"

	"github.com/gopmd/gopmd/eal"
)

// Addr is a device's location, domain:bus:device.function.
type Addr = eal.PCIAddr

// ParseAddr reads DDDD:BB:DD.F or BB:DD.F, as lspci and sysfs print them.
func ParseAddr(s string) (Addr, error) { return eal.ParsePCIAddr(s) }

// Class codes: base class << 16 | subclass << 8 | programming interface.
const (
	ClassNetwork   = 0x020000 // network controller (base class 2); with ClassMaskSub, Ethernet
	ClassMaskBase  = 0xff0000 // compare the base class only
	ClassMaskSub   = 0xffff00 // compare base class and subclass
	ClassMaskExact = 0xffffff
)

// AnyID as ID.Device matches every device of the vendor.
const AnyID = 0xffff

// ID is a vendor:device pair a driver supports.
type ID struct {
	Vendor, Device uint16
}

func (id ID) matches(d *Device) bool {
	return id.Vendor == d.VendorID && (id.Device == AnyID || id.Device == d.DeviceID)
}

// Filter selects devices. The zero Filter selects every device.
type Filter struct {
	// IDs, when not empty, selects devices matching one of them.
	IDs []ID
	// Class selects devices whose class code equals Class under ClassMask;
	// a zero ClassMask selects every class.
	Class, ClassMask uint32
	// Allow, when not empty, selects only these devices (-a/--allow);
	// Block never selects these (-b/--block).
	Allow, Block []Addr
	// None selects nothing (--no-pci).
	None bool
}

// FromEAL returns a Filter honouring the EAL's -a/--allow, -b/--block and
// --no-pci. Set IDs and Class on the result for a driver's devices.
func FromEAL(o eal.Options) Filter {
	f := Filter{Block: slices.Clone(o.Block), None: o.NoPCI}
	for _, d := range o.Allow {
		f.Allow = append(f.Allow, d.Addr)
	}
	return f
}

// Selects reports whether f selects d.
func (f Filter) Selects(d *Device) bool {
	switch {
	case f.None:
		return false
	case len(f.Allow) > 0 && !slices.Contains(f.Allow, d.Addr):
		return false
	case slices.Contains(f.Block, d.Addr):
		return false
	case d.Class&f.ClassMask != f.Class&f.ClassMask:
		return false
	}
	if len(f.IDs) == 0 {
		return true
	}
	for _, id := range f.IDs {
		if id.matches(d) {
			return true
		}
	}
	return false
}

// BAR is one base address register as the kernel assigned it.
type BAR struct {
	Index int
	Start uint64 // bus address; 0 when unassigned
	Size  uint64
	IO    bool // I/O port space rather than memory
	Mem64 bool // 64-bit memory BAR (takes two registers)
}

// Device is a snapshot of one PCI device's sysfs entry.
type Device struct {
	Addr                     Addr
	VendorID, DeviceID       uint16
	SubVendorID, SubDeviceID uint16
	Class                    uint32 // ClassEthernet, ...
	// Driver is the bound kernel driver, "" when none.
	Driver string
	// DriverOverride is the driver_override setting, "" when none.
	DriverOverride string
	// IOMMUGroup is the device's IOMMU group, -1 when it has none (no
	// IOMMU, or the IOMMU is off).
	IOMMUGroup int
	// NUMANode is the device's NUMA node, -1 when the platform does not
	// say.
	NUMANode int
	// Interfaces are the device's kernel network interfaces, sorted.
	Interfaces []string
	BARs       []BAR // assigned BARs, by index
	// Config is the config space sysfs let this process read: 64 bytes
	// for non-root users, 256 or 4096 for root.
	Config Config

	dir    string
	ifdirs map[string]string // interface name -> its sysfs directory
}

// Path returns the device's sysfs directory.
func (d *Device) Path() string { return d.dir }

// ID returns the device's vendor:device pair.
func (d *Device) ID() ID { return ID{d.VendorID, d.DeviceID} }

// Name returns the vendor and device names from the PCI ID database, as
// lspci prints them, or hexadecimal IDs for unknown devices. It links
// the whole database (about 1 MiB) into the program.
func (d *Device) Name() (vendor, device string) {
	return upci.Lookup(upci.IDs, d.VendorID, d.DeviceID)
}

// Sysfs is a sysfs tree to find devices in and bind them through. The zero
// value is the system's /sys; tests point Root at a tree of their own.
type Sysfs struct {
	Root string
}

func (s Sysfs) root() string {
	if s.Root == "" {
		return "/sys"
	}
	return s.Root
}

func (s Sysfs) devicesDir() string { return filepath.Join(s.root(), "bus/pci/devices") }
func (s Sysfs) driversDir() string { return filepath.Join(s.root(), "bus/pci/drivers") }
func (s Sysfs) deviceDir(a Addr) string {
	return filepath.Join(s.devicesDir(), a.String())
}

// Scan returns the devices f selects, sorted by address, from the
// system's sysfs.
func Scan(f Filter) ([]*Device, error) { return Sysfs{}.Scan(f) }

// Lookup returns one device from the system's sysfs.
func Lookup(a Addr) (*Device, error) { return Sysfs{}.Lookup(a) }

// Scan returns the devices f selects, sorted by address.
func (s Sysfs) Scan(f Filter) ([]*Device, error) {
	if f.None {
		return nil, nil
	}
	entries, err := os.ReadDir(s.devicesDir())
	if err != nil {
		return nil, fmt.Errorf("pci: list devices: %w", err)
	}
	var out []*Device
	for _, e := range entries {
		a, err := ParseAddr(e.Name())
		if err != nil {
			continue // not a device entry
		}
		if len(f.Allow) > 0 && !slices.Contains(f.Allow, a) || slices.Contains(f.Block, a) {
			continue
		}
		d, err := s.Lookup(a)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed while we looked
		}
		if err != nil {
			return nil, err
		}
		if f.Selects(d) {
			out = append(out, d)
		}
	}
	slices.SortFunc(out, func(a, b *Device) int { return strings.Compare(a.Addr.String(), b.Addr.String()) })
	return out, nil
}

// Lookup reads one device. A device that is not there wraps fs.ErrNotExist.
func (s Sysfs) Lookup(a Addr) (*Device, error) {
	dir := s.deviceDir(a)
	if _, err := os.Stat(dir); err != nil {
		return nil, fmt.Errorf("pci: no device %s in %s: %w", a, s.devicesDir(), fs.ErrNotExist)
	}
	u, err := upci.OnePCI(dir)
	if err != nil {
		return nil, fmt.Errorf("pci: %s: %w", a, err)
	}
	d := &Device{
		Addr:       a,
		VendorID:   u.Vendor,
		DeviceID:   u.Device,
		Class:      u.Class,
		IOMMUGroup: -1,
		NUMANode:   -1,
		dir:        dir,
	}
	d.SubVendorID = uint16(readHex(dir, "subsystem_vendor"))
	d.SubDeviceID = uint16(readHex(dir, "subsystem_device"))
	d.Driver = linkBase(filepath.Join(dir, "driver"))
	if o, err := os.ReadFile(filepath.Join(dir, "driver_override")); err == nil {
		if s := strings.TrimSpace(string(o)); s != "(null)" {
			d.DriverOverride = s
		}
	}
	if g := linkBase(filepath.Join(dir, "iommu_group")); g != "" {
		if n, err := strconv.Atoi(g); err == nil {
			d.IOMMUGroup = n
		}
	}
	if b, err := os.ReadFile(filepath.Join(dir, "numa_node")); err == nil {
		if n, err := strconv.Atoi(strings.TrimSpace(string(b))); err == nil && n >= 0 {
			d.NUMANode = n
		}
	}
	// A NIC driver hangs its interfaces under the device (net/eth0), or
	// under a child device of its bus (virtio0/net/eth0 for virtio).
	for _, pattern := range []string{"net/*", "*/net/*"} {
		ifs, _ := filepath.Glob(filepath.Join(dir, pattern))
		for _, p := range ifs {
			if d.ifdirs == nil {
				d.ifdirs = map[string]string{}
			}
			d.ifdirs[filepath.Base(p)] = p
			d.Interfaces = append(d.Interfaces, filepath.Base(p))
		}
	}
	slices.Sort(d.Interfaces)
	for _, b := range u.BARS {
		if b.Index > 5 || b.Lim < b.Base {
			continue // ROM and bridge windows
		}
		d.BARs = append(d.BARs, BAR{
			Index: b.Index,
			Start: b.Base,
			Size:  b.Lim - b.Base + 1,
			IO:    b.Attr&ioresourceIO != 0,
			Mem64: b.Attr&ioresourceMem64 != 0,
		})
	}
	if err := u.ReadConfig(); err == nil {
		d.Config = Config(u.Config)
	}
	return d, nil
}

// Resource flags in the sysfs resource file (include/linux/ioport.h).
const (
	ioresourceIO    = 0x00000100
	ioresourceMem64 = 0x00100000
)

// InterfaceUp reports whether the kernel network interface name of d is
// administratively up.
func (d *Device) InterfaceUp(name string) bool {
	dir, ok := d.ifdirs[name]
	return ok && readHex(dir, "flags")&iffUp != 0
}

const iffUp = 0x1

// ActiveInterfaces returns the device's network interfaces that are up.
func (d *Device) ActiveInterfaces() []string {
	var up []string
	for _, n := range d.Interfaces {
		if d.InterfaceUp(n) {
			up = append(up, n)
		}
	}
	return up
}

// Group returns the addresses of the devices in IOMMU group n, sorted.
func (s Sysfs) Group(n int) ([]Addr, error) {
	dir := filepath.Join(s.root(), "kernel/iommu_groups", strconv.Itoa(n), "devices")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("pci: IOMMU group %d: %w", n, err)
	}
	var out []Addr
	for _, e := range entries {
		if a, err := ParseAddr(e.Name()); err == nil {
			out = append(out, a)
		}
	}
	slices.SortFunc(out, func(a, b Addr) int { return strings.Compare(a.String(), b.String()) })
	return out, nil
}

// DriverLoaded reports whether the PCI driver name is registered (its
// module is loaded or built in).
func (s Sysfs) DriverLoaded(name string) bool {
	st, err := os.Stat(filepath.Join(s.driversDir(), name))
	return err == nil && st.IsDir()
}

func linkBase(p string) string {
	l, err := os.Readlink(p)
	if err != nil {
		return ""
	}
	return filepath.Base(l)
}

// readHex reads a sysfs attribute like "0x1af4\n"; 0 when absent or bad.
func readHex(dir, file string) uint64 {
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil {
		return 0
	}
	v, err := strconv.ParseUint(strings.TrimPrefix(strings.TrimSpace(string(b)), "0x"), 16, 64)
	if err != nil {
		return 0
	}
	return v
}
