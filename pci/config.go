package pci

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Offsets and bits of the standard configuration header (type 0).
const (
	ConfigVendorID  = 0x00
	ConfigDeviceID  = 0x02
	ConfigCommand   = 0x04
	ConfigStatus    = 0x06
	ConfigRevision  = 0x08
	ConfigClass     = 0x09 // 3 bytes: prog-if, subclass, base class
	ConfigHeader    = 0x0e
	ConfigBAR0      = 0x10
	ConfigSubVendor = 0x2c
	ConfigSubDevice = 0x2e
	ConfigCapList   = 0x34
	ConfigIRQPin    = 0x3d

	CommandIO          = 1 << 0  // respond to I/O space accesses
	CommandMemory      = 1 << 1  // respond to memory space accesses
	CommandBusMaster   = 1 << 2  // may issue DMA
	CommandINTxDisable = 1 << 10 // INTx assertion disabled

	StatusCapList = 1 << 4 // the capability list at ConfigCapList is valid
	StatusINTx    = 1 << 3 // INTx is asserted
)

// Capability IDs (PCI Code and ID Assignment Specification).
const (
	CapPowerManagement = 0x01
	CapMSI             = 0x05
	CapVendor          = 0x09
	CapPCIe            = 0x10
	CapMSIX            = 0x11
)

// ErrNoCapability is wrapped when config space lacks the capability asked
// for.
var ErrNoCapability = errors.New("no such capability")

// Config is a copy of a device's configuration space, at least the 64-byte
// standard header; the capability list needs the first 256 bytes (sysfs
// shows non-root users only the header).
type Config []byte

func (c Config) u8(off int) uint8   { return c[off] }
func (c Config) u16(off int) uint16 { return binary.LittleEndian.Uint16(c[off:]) }
func (c Config) u32(off int) uint32 { return binary.LittleEndian.Uint32(c[off:]) }

// VendorID returns the vendor ID, or 0xffff when c is shorter than the header.
func (c Config) VendorID() uint16 {
	if len(c) < 64 {
		return 0xffff
	}
	return c.u16(ConfigVendorID)
}

// DeviceID returns the device ID, or 0xffff when c is shorter than the header.
func (c Config) DeviceID() uint16 {
	if len(c) < 64 {
		return 0xffff
	}
	return c.u16(ConfigDeviceID)
}

// Capability is one entry of the capability list.
type Capability struct {
	ID     uint8 // CapMSIX, CapVendor, ...
	Offset int   // of the capability's first byte in config space
}

// maxCaps bounds the walk: 256 bytes of config space hold at most 48
// capabilities of 4 bytes past the header, so more means a loop.
const maxCaps = 48

// Capabilities walks the capability list. A device without one (status
// bit 4 clear) has none; a pointer out of range or a loop is an error.
func (c Config) Capabilities() ([]Capability, error) {
	if len(c) < 64 {
		return nil, fmt.Errorf("pci: config space of %d bytes is shorter than the 64-byte header", len(c))
	}
	if c.u16(ConfigStatus)&StatusCapList == 0 {
		return nil, nil
	}
	if len(c) < 256 {
		return nil, fmt.Errorf("pci: capability list needs 256 bytes of config space, have %d (sysfs shows non-root users only 64)", len(c))
	}
	var caps []Capability
	for p := int(c.u8(ConfigCapList)) &^ 3; p != 0; p = int(c.u8(p+1)) &^ 3 {
		if p < 64 || p > 256-4 {
			return nil, fmt.Errorf("pci: capability pointer %#x outside 0x40..0xfc", p)
		}
		if len(caps) == maxCaps {
			return nil, fmt.Errorf("pci: capability list has more than %d entries (a loop at %#x?)", maxCaps, p)
		}
		caps = append(caps, Capability{ID: c.u8(p), Offset: p})
	}
	return caps, nil
}

// Find returns the first capability with the given ID.
func (c Config) Find(id uint8) (Capability, error) {
	caps, err := c.Capabilities()
	if err != nil {
		return Capability{}, err
	}
	for _, cp := range caps {
		if cp.ID == id {
			return cp, nil
		}
	}
	return Capability{}, fmt.Errorf("pci: capability %#02x: %w", id, ErrNoCapability)
}

// MSIX describes a device's MSI-X capability.
type MSIX struct {
	Offset      int    // of the capability in config space
	TableSize   int    // vectors
	TableBAR    int    // BAR holding the vector table
	TableOffset uint32 // of the table in that BAR
	PBABAR      int    // BAR holding the pending-bit array
	PBAOffset   uint32
	Enabled     bool // MSI-X enable bit of the message control word
	Masked      bool // function mask bit
}

// MSIX decodes the MSI-X capability.
func (c Config) MSIX() (MSIX, error) {
	cp, err := c.Find(CapMSIX)
	if err != nil {
		return MSIX{}, err
	}
	ctl := c.u16(cp.Offset + 2)
	table, pba := c.u32(cp.Offset+4), c.u32(cp.Offset+8)
	m := MSIX{
		Offset:      cp.Offset,
		TableSize:   int(ctl&0x7ff) + 1,
		TableBAR:    int(table & 7),
		TableOffset: table &^ 7,
		PBABAR:      int(pba & 7),
		PBAOffset:   pba &^ 7,
		Enabled:     ctl&(1<<15) != 0,
		Masked:      ctl&(1<<14) != 0,
	}
	if m.TableBAR > 5 || m.PBABAR > 5 {
		return MSIX{}, fmt.Errorf("pci: MSI-X capability at %#x names BAR %d (table) and %d (PBA); BARs are 0..5", cp.Offset, m.TableBAR, m.PBABAR)
	}
	return m, nil
}

// Virtio PCI capability types (virtio 1.x, 4.1.4): where the device keeps
// each of its register structures.
const (
	VirtioCommonCfg = 1 // common configuration: features, status, queues
	VirtioNotifyCfg = 2 // queue notification (doorbell) area
	VirtioISRCfg    = 3 // ISR status byte
	VirtioDeviceCfg = 4 // device-specific configuration
	VirtioPCICfg    = 5 // alternative access through config space
)

// VirtioCap is one virtio vendor capability (struct virtio_pci_cap).
type VirtioCap struct {
	CapOffset int    // of the capability in config space
	Type      uint8  // VirtioCommonCfg, ...
	BAR       int    // BAR holding the structure
	Offset    uint32 // of the structure in the BAR
	Length    uint32 // of the structure
	// NotifyOffMultiplier is set for VirtioNotifyCfg: queue q's doorbell
	// is at Offset + queue_notify_off(q) * NotifyOffMultiplier.
	NotifyOffMultiplier uint32
}

// VirtioCaps returns the virtio vendor capabilities in list order. A device
// may offer several of one type; the first usable one is preferred.
// Vendor capabilities of other layouts (too short, unknown BAR) are skipped.
func (c Config) VirtioCaps() ([]VirtioCap, error) {
	caps, err := c.Capabilities()
	if err != nil {
		return nil, err
	}
	var out []VirtioCap
	for _, cp := range caps {
		p := cp.Offset
		if cp.ID != CapVendor || p+16 > len(c) {
			continue
		}
		capLen := int(c.u8(p + 2))
		bar := int(c.u8(p + 4))
		if capLen < 16 || bar > 5 {
			continue
		}
		vc := VirtioCap{CapOffset: p, Type: c.u8(p + 3), BAR: bar, Offset: c.u32(p + 8), Length: c.u32(p + 12)}
		if vc.Type == VirtioNotifyCfg {
			if capLen < 20 || p+20 > len(c) {
				return nil, fmt.Errorf("pci: virtio notify capability at %#x is %d bytes, needs 20", p, capLen)
			}
			vc.NotifyOffMultiplier = c.u32(p + 16)
		}
		out = append(out, vc)
	}
	return out, nil
}

// VirtioCap returns the first virtio capability of type typ.
func (c Config) VirtioCap(typ uint8) (VirtioCap, error) {
	caps, err := c.VirtioCaps()
	if err != nil {
		return VirtioCap{}, err
	}
	for _, vc := range caps {
		if vc.Type == typ {
			return vc, nil
		}
	}
	return VirtioCap{}, fmt.Errorf("pci: virtio capability type %d: %w", typ, ErrNoCapability)
}
