package vfio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/pci"
)

// Device is a vfio-pci device opened in this process: its regions (BARs,
// config space), reset and interrupts. It belongs to its Group; Close
// disables its interrupts, unmaps its BARs and closes its descriptor.
// Methods are safe for concurrent use; BAR accessors take no locks.
type Device struct {
	addr  pci.Addr
	name  string
	fd    int
	group *Group
	info  DeviceInfo

	mu      sync.Mutex
	regions map[int]RegionInfo
	bars    [6]*BAR
	irq     int // IRQ index with triggers set, -1 for none
	events  []*EventFD
	closed  bool
}

// DeviceInfo is what VFIO_DEVICE_GET_INFO says about a device.
type DeviceInfo struct {
	Flags   uint32 // DeviceFlagReset, DeviceFlagPCI, ...
	Regions int    // region indexes 0..Regions-1
	IRQs    int    // IRQ indexes 0..IRQs-1
}

func newDevice(addr pci.Addr, fd int, g *Group) (*Device, error) {
	d := &Device{addr: addr, name: addr.String(), fd: fd, group: g, regions: map[int]RegionInfo{}, irq: -1}
	info := deviceInfo{Argsz: uint32(unsafe.Sizeof(deviceInfo{}))}
	if _, errno := ioctlPtr(fd, ioctlDeviceGetInfo, unsafe.Pointer(&info)); errno != 0 {
		return nil, &Error{d.name, "VFIO_DEVICE_GET_INFO", errno}
	}
	d.info = DeviceInfo{Flags: info.Flags, Regions: int(info.NumRegions), IRQs: int(info.NumIRQs)}
	if info.Flags&DeviceFlagPCI == 0 {
		return nil, fmt.Errorf("vfio: %s is not a vfio-pci device (VFIO_DEVICE_GET_INFO flags %#x)", d.name, info.Flags)
	}
	if d.info.Regions <= RegionConfig {
		return nil, fmt.Errorf("vfio: %s has %d regions, a vfio-pci device has at least %d", d.name, d.info.Regions, RegionConfig+1)
	}
	return d, nil
}

// Addr returns the device's PCI address.
func (d *Device) Addr() pci.Addr { return d.addr }

// FD returns the device's file descriptor, owned by the Device.
func (d *Device) FD() int { return d.fd }

// Group returns the device's IOMMU group.
func (d *Device) Group() *Group { return d.group }

// Container returns the container the device's group is in.
func (d *Device) Container() *Container { return d.group.c }

// Info returns what the kernel said about the device when it was opened.
func (d *Device) Info() DeviceInfo { return d.info }

// RegionInfo describes one region of the device fd: a BAR, the ROM or
// config space.
type RegionInfo struct {
	Index  int
	Flags  uint32 // RegionRead, RegionWrite, RegionMmap
	Size   uint64
	Offset uint64 // of the region in the device fd, for pread, pwrite and mmap
	// Sparse lists the parts that may be mmap'd when the region is only
	// partly mappable (typically around an MSI-X table); nil when all of
	// a RegionMmap region may be.
	Sparse []Area
	// MSIXMappable says the MSI-X table inside the region may be mmap'd
	// too (interrupt remapping protects it).
	MSIXMappable bool
}

// Area is a part of a region, relative to the region's start.
type Area struct {
	Offset, Size uint64
}

// Region asks the kernel about region i (RegionBAR0+n, RegionConfig, ...).
func (d *Device) Region(i int) (RegionInfo, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.regionLocked(i)
}

func (d *Device) regionLocked(i int) (RegionInfo, error) {
	if r, ok := d.regions[i]; ok {
		return r, nil
	}
	if i < 0 || i >= d.info.Regions {
		return RegionInfo{}, fmt.Errorf("vfio: %s: region %d out of range 0..%d", d.name, i, d.info.Regions-1)
	}
	buf := alignedBuf(int(unsafe.Sizeof(regionInfo{})))
	for {
		ri := (*regionInfo)(unsafe.Pointer(&buf[0]))
		ri.Argsz, ri.Index = uint32(len(buf)), uint32(i)
		if _, errno := ioctlPtr(d.fd, ioctlDeviceGetRegionInfo, unsafe.Pointer(&buf[0])); errno != 0 {
			return RegionInfo{}, &Error{d.name, fmt.Sprintf("VFIO_DEVICE_GET_REGION_INFO region %d", i), errno}
		}
		if ri.Flags&RegionCaps != 0 && int(ri.Argsz) > len(buf) {
			buf = alignedBuf(int(ri.Argsz))
			continue
		}
		r := RegionInfo{Index: i, Flags: ri.Flags, Size: ri.Size, Offset: ri.Offset}
		if ri.Flags&RegionCaps != 0 {
			walkCaps(buf, ri.CapOffset, func(h infoCapHeader, off int) bool {
				switch h.ID {
				case regionInfoCapSparseMmap:
					s := (*regionSparseMmap)(unsafe.Pointer(&buf[off]))
					first := off + int(unsafe.Sizeof(*s))
					r.Sparse = []Area{} // present, even if empty: nothing may be mmap'd
					for k := range int(s.NrAreas) {
						p := first + k*int(unsafe.Sizeof(sparseMmapArea{}))
						if p+int(unsafe.Sizeof(sparseMmapArea{})) > len(buf) {
							break
						}
						a := (*sparseMmapArea)(unsafe.Pointer(&buf[p]))
						if a.Size > 0 {
							r.Sparse = append(r.Sparse, Area{a.Offset, a.Size})
						}
					}
				case regionInfoCapMSIXMappable:
					r.MSIXMappable = true
				}
				return true
			})
		}
		d.regions[i] = r
		return r, nil
	}
}

// configRegion returns the config space region.
func (d *Device) configRegion() (RegionInfo, error) { return d.Region(RegionConfig) }

// ConfigRead reads len(p) bytes of config space at off.
func (d *Device) ConfigRead(off int64, p []byte) error {
	r, err := d.configRegion()
	if err != nil {
		return err
	}
	if off < 0 || uint64(off)+uint64(len(p)) > r.Size {
		return fmt.Errorf("vfio: %s: config read of %d bytes at %#x outside its %d bytes", d.name, len(p), off, r.Size)
	}
	n, err := unix.Pread(d.fd, p, int64(r.Offset)+off)
	if err != nil {
		return &Error{d.name, fmt.Sprintf("pread config space %#x+%d", off, len(p)), errnoOf(err)}
	}
	if n != len(p) {
		return fmt.Errorf("vfio: %s: config read at %#x returned %d of %d bytes", d.name, off, n, len(p))
	}
	return nil
}

// ConfigWrite writes p to config space at off. vfio-pci virtualizes some
// fields (BARs, MSI/MSI-X); see the kernel's vfio_pci_config.c.
func (d *Device) ConfigWrite(off int64, p []byte) error {
	r, err := d.configRegion()
	if err != nil {
		return err
	}
	if off < 0 || uint64(off)+uint64(len(p)) > r.Size {
		return fmt.Errorf("vfio: %s: config write of %d bytes at %#x outside its %d bytes", d.name, len(p), off, r.Size)
	}
	n, err := unix.Pwrite(d.fd, p, int64(r.Offset)+off)
	if err != nil {
		return &Error{d.name, fmt.Sprintf("pwrite config space %#x+%d", off, len(p)), errnoOf(err)}
	}
	if n != len(p) {
		return fmt.Errorf("vfio: %s: config write at %#x took %d of %d bytes", d.name, off, n, len(p))
	}
	return nil
}

// Config reads the device's whole config space as VFIO presents it (256
// bytes for conventional PCI, 4096 for PCIe), for pci.Config's capability
// accessors.
func (d *Device) Config() (pci.Config, error) {
	r, err := d.configRegion()
	if err != nil {
		return nil, err
	}
	buf := make([]byte, min(r.Size, 4096))
	if err := d.ConfigRead(0, buf); err != nil {
		return nil, err
	}
	return pci.Config(buf), nil
}

// SetBusMaster sets or clears the command register's bus master bit:
// without it the device can do no DMA and send no MSI/MSI-X.
func (d *Device) SetBusMaster(on bool) error {
	var b [2]byte
	if err := d.ConfigRead(pci.ConfigCommand, b[:]); err != nil {
		return err
	}
	cmd := binary.LittleEndian.Uint16(b[:])
	if on {
		cmd |= pci.CommandBusMaster
	} else {
		cmd &^= pci.CommandBusMaster
	}
	binary.LittleEndian.PutUint16(b[:], cmd)
	return d.ConfigWrite(pci.ConfigCommand, b[:])
}

// Reset resets the device (function-level or whatever reset the kernel
// found for it). The kernel saves the config space before and restores it
// after, so BARs, bus mastering and the interrupts set up in VFIO stay as
// they were; the device's own registers start over.
func (d *Device) Reset() error {
	if d.info.Flags&DeviceFlagReset == 0 {
		return fmt.Errorf("vfio: %s: the kernel has no reset for this device (VFIO_DEVICE_FLAGS_RESET clear)", d.name)
	}
	if _, errno := ioctlVal(d.fd, ioctlDeviceReset, 0); errno != 0 {
		return &Error{d.name, "VFIO_DEVICE_RESET", errno}
	}
	return nil
}

// Close disables the device's interrupts, unmaps its BARs and closes its
// descriptor. When the last descriptor of the device (in any process)
// closes, vfio-pci resets it if the device has a reset (Info().Flags has
// DeviceFlagReset).
func (d *Device) Close() error {
	d.mu.Lock()
	if d.closed {
		d.mu.Unlock()
		return nil
	}
	var errs []error
	if d.irq >= 0 {
		errs = append(errs, d.disableLocked())
	}
	for i, b := range d.bars {
		if b != nil {
			errs = append(errs, b.unmap())
			d.bars[i] = nil
		}
	}
	d.closed = true
	d.mu.Unlock()

	c := d.group.c
	c.mu.Lock()
	if c.devices[d.addr] == d {
		delete(c.devices, d.addr)
	}
	d.group.devices = slices.DeleteFunc(d.group.devices, func(x *Device) bool { return x == d })
	c.mu.Unlock()
	errs = append(errs, closeFD(d.name, d.fd))
	return errors.Join(errs...)
}

// errnoOf extracts the errno of a failed system call, EIO if there is none.
func errnoOf(err error) unix.Errno {
	var e unix.Errno
	if errors.As(err, &e) {
		return e
	}
	return unix.EIO
}
