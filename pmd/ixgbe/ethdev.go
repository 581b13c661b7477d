package ixgbe

import (
	"fmt"
	"sort"
	"strings"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/pci"
)

func init() {
	ethdev.Register("net_ixgbe", driver{})
	ethdev.RegisterPCI("net_ixgbe", IDs())
}

// intelVendorID is the PCI vendor of every supported device.
const intelVendorID = 0x8086

// model is a supported PCI device id.
type model struct {
	name string
	mac  macType
}

// models are the device ids the driver probes: the 82599 family, whose
// datasheet it follows, and the X540 and X550 copper parts, whose
// registers for everything the driver does are the 82599's. The X550EM
// (SoC) parts are not among them: their link needs PHY programming the
// driver does not do, and the X550EM_a moves EEC.
var models = map[uint16]model{
	0x10F7: {"82599 KX4", mac82599},
	0x1514: {"82599 KX4 Mezzanine", mac82599},
	0x1517: {"82599 KR", mac82599},
	0x10F8: {"82599 Combined Backplane", mac82599},
	0x10F9: {"82599 CX4", mac82599},
	0x10FB: {"82599 SFP+", mac82599},
	0x1507: {"82599 SFP+ (EM)", mac82599},
	0x1529: {"82599 SFP+ FCoE", mac82599},
	0x152A: {"82599 Backplane FCoE", mac82599},
	0x154A: {"82599 SFP+ SF QP", mac82599},
	0x154D: {"82599 SFP+ SF2", mac82599},
	0x1557: {"82599EN SFP+", mac82599},
	0x1558: {"82599 QSFP+ SF QP", mac82599},
	0x10FC: {"82599 XAUI LOM", mac82599},
	0x151C: {"82599 T3 LOM", mac82599},
	0x1528: {"X540-T2", macX540},
	0x1560: {"X540-T1", macX540},
	0x1563: {"X550-T2", macX540},
	0x15D1: {"X550-T1", macX540},
}

// IDs lists the vendor:device pairs net_ixgbe drives, sorted, for a PCI
// scan (pci.Filter.IDs) that turns -a addresses into net_ixgbe ports.
func IDs() []pci.ID {
	ids := make([]pci.ID, 0, len(models))
	for id := range models {
		ids = append(ids, pci.ID{Vendor: intelVendorID, Device: id})
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i].Device < ids[j].Device })
	return ids
}

// checkID finds the model of a PCI function, or says which ids are known.
func checkID(vendor, device uint16) (model, error) {
	if m, ok := models[device]; ok && vendor == intelVendorID {
		return m, nil
	}
	ids := make([]string, 0, len(models))
	for id := range models {
		ids = append(ids, fmt.Sprintf("%04x", id))
	}
	sort.Strings(ids)
	return model{}, fmt.Errorf("PCI device %04x:%04x is not one net_ixgbe drives (vendor %04x, devices %s)",
		vendor, device, intelVendorID, strings.Join(ids, " "))
}

// pciDevice is an opened PCI function: its ids, BAR0, and in the primary
// the MSI-X vector for link changes.
type pciDevice struct {
	vendor, device uint16
	regs           registers
	irq            interrupt                    // nil in a secondary, or when interrupts are unavailable
	iova           func(uint64) (uint64, error) // nil: the group memory's own IOVA
	mapMemory      func() error                 // makes memory the group gained since reachable by the device; nil: nothing to do
	close          func() error
}

// openPCI opens the PCI function at addr for the primary (which resets
// it) or a secondary (which only writes its queues' tails). The hardware
// path is openVFIO (pci.go); tests put a register model behind it.
var openPCI = openVFIO

// parseArgs reads the device string's arguments: pci=<address> is the only
// one, and it is required.
func parseArgs(dev eal.VDev) (eal.PCIAddr, error) {
	var addr eal.PCIAddr
	found := false
	for _, kv := range dev.Args {
		switch kv.Key {
		case "pci":
			a, err := eal.ParsePCIAddr(kv.Value)
			if err != nil {
				return addr, err
			}
			addr, found = a, true
		default:
			return addr, fmt.Errorf("unknown argument %q (net_ixgbe takes pci=<address>)", kv.Key)
		}
	}
	if !found {
		return addr, fmt.Errorf("%s needs the device's address: %s,pci=0000:03:00.0", dev.Name, dev.Name)
	}
	return addr, nil
}

type driver struct{}

// Probe opens the PCI function, resets and initializes it, and records its
// MAC and link for the group.
func (driver) Probe(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	d, err := open(p, dev, true)
	if err != nil {
		return nil, err
	}
	p.SetMAC(d.MAC())
	p.SetLink(d.Link())
	return d, nil
}

// Attach opens the PCI function again in a secondary, for its queues'
// tail registers, and finds the primary's shared state.
func (driver) Attach(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	return open(p, dev, false)
}

func open(p *ethdev.Port, dev eal.VDev, primary bool) (*Device, error) {
	addr, err := parseArgs(dev)
	if err != nil {
		return nil, err
	}
	pd, err := openPCI(p, addr, primary)
	if err != nil {
		return nil, err
	}
	release := func() {
		if pd.irq != nil {
			pd.irq.Close()
		}
		pd.close()
	}
	m, err := checkID(pd.vendor, pd.device)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	iova := pd.iova
	if iova == nil {
		iova = p.Memory().IOVA
	}
	cfg := config{name: p.Name(), primary: primary, deviceID: pd.device, mac: m.mac, portID: p.ID,
		irq: pd.irq, onLink: p.SetLink, mapMemory: pd.mapMemory, close: pd.close}
	d, err := newDevice(p, pd.regs, iova, cfg)
	if err != nil {
		release()
		return nil, fmt.Errorf("%s (%s): %w", addr, m.name, err)
	}
	return d, nil
}
