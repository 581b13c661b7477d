package ixgbe

import (
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mp/ipc"
	"github.com/gopmd/gopmd/pci"
	"github.com/gopmd/gopmd/vfio"
)

// The hardware path: a PCI function bound to vfio-pci, its BAR0 mmap'd,
// the group's memory mapped for its DMA at the VA-mode IOVAs hugemem hands
// out, its MSI-X vector 0 on an eventfd. The primary's net_ixgbe ports
// share one VFIO container, which lives as long as the process (its
// descriptors are what secondaries ask for); a secondary receives the
// device's descriptors from the primary and maps BAR0 itself. The container
// maps one group's memory at a time: when that Memory closes, vfio unmaps
// it (so the NIC cannot write into memory that is gone), and a later group
// of this process maps its own.

var hostVFIO struct {
	sync.Mutex
	c      *vfio.Container
	served map[*ipc.Endpoint]bool
}

// openVFIO checks the function in sysfs first, so a wrong address or a
// device still on its kernel driver fails with a clear message before VFIO
// is involved.
func openVFIO(p *ethdev.Port, addr eal.PCIAddr, primary bool) (*pciDevice, error) {
	info, err := pci.Lookup(addr)
	if err != nil {
		return nil, fmt.Errorf("PCI device %s: %w (is the address right? lspci -D lists them)", addr, err)
	}
	if _, err := checkID(info.VendorID, info.DeviceID); err != nil {
		return nil, fmt.Errorf("%s: %w", addr, err)
	}
	if info.Driver != pci.VFIODriver {
		return nil, fmt.Errorf("PCI device %s is bound to %q, not %s: bind it first (dpdk-devbind.py -b vfio-pci %s)", addr, info.Driver, pci.VFIODriver, addr)
	}
	mem := p.Memory()
	if !mem.HugePages() || mem.IOVAMode() != hugemem.IOVAModeVA {
		return nil, fmt.Errorf("PCI device %s: DMA through VFIO needs hugepage memory in VA IOVA mode (hugepages %t, IOVA mode %s): drop --no-huge and --iova-mode pa",
			addr, mem.HugePages(), mem.IOVAMode())
	}
	pd := &pciDevice{vendor: info.VendorID, device: info.DeviceID}
	var dev *vfio.Device
	if primary {
		dev, err = openPrimary(p, addr, pd)
	} else {
		dev, err = vfio.Attach(p.Process().IPC(), addr)
		if err == nil {
			pd.close = dev.Container().Close // the secondary's own objects around the received descriptors
		}
	}
	if err != nil {
		return nil, err
	}
	bar, err := dev.BAR(0)
	if err != nil {
		pd.close()
		return nil, err
	}
	pd.regs = &barRegs{bar: bar}
	if primary {
		pd.irq = newEventIRQ(dev)
	}
	return pd, nil
}

func openPrimary(p *ethdev.Port, addr eal.PCIAddr, pd *pciDevice) (*vfio.Device, error) {
	hostVFIO.Lock()
	defer hostVFIO.Unlock()
	if hostVFIO.c == nil {
		c, err := vfio.OpenContainer()
		if err != nil {
			return nil, err
		}
		hostVFIO.c, hostVFIO.served = c, map[*ipc.Endpoint]bool{}
	}
	c := hostVFIO.c
	dev, err := c.OpenDevice(addr)
	if err != nil {
		return nil, err
	}
	mem := p.Memory()
	if err := c.MapMemory(mem); err != nil {
		dev.Close()
		return nil, err
	}
	if ep := p.Process().IPC(); !hostVFIO.served[ep] {
		if err := vfio.Serve(ep, c); err != nil {
			slog.Warn("ixgbe: secondaries will not be able to attach: another VFIO container answers them", "err", err)
		}
		hostVFIO.served[ep] = true
		mem.OnClose(func() { // the endpoint dies with its process's memory
			hostVFIO.Lock()
			delete(hostVFIO.served, ep)
			hostVFIO.Unlock()
		})
	}
	// Bus mastering: without it the device can neither DMA nor signal MSI-X.
	if err := dev.SetBusMaster(true); err != nil {
		dev.Close()
		return nil, err
	}
	pd.mapMemory = func() error { return c.MapMemory(mem) }
	pd.close = dev.Close
	return dev, nil
}

// barRegs is BAR0 through VFIO: the 82599 lets the whole register space be
// mmap'd, so an access is one load or store, no system call.
type barRegs struct{ bar *vfio.BAR }

func (r *barRegs) Read32(off uint32) uint32 {
	v, err := r.bar.Read32(uint64(off))
	if err != nil {
		return 0xFFFFFFFF // what an unanswered PCIe read returns
	}
	return v
}

func (r *barRegs) Write32(off uint32, v uint32) { r.bar.Write32(uint64(off), v) }

// eventIRQ turns MSI-X vector 0's eventfd into a channel.
type eventIRQ struct {
	c    chan struct{}
	stop chan struct{}
	done chan struct{}
	once sync.Once
}

// newEventIRQ enables one MSI-X vector; without MSI-X the driver polls the
// link instead (nil).
func newEventIRQ(dev *vfio.Device) interrupt {
	evs, err := dev.EnableMSIX(1)
	if err != nil {
		slog.Warn("ixgbe: no MSI-X interrupt; polling the link instead", "device", dev.Addr(), "err", err)
		return nil
	}
	irq := &eventIRQ{c: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(irq.done)
		for {
			select {
			case <-irq.stop:
				return
			default:
			}
			if n, _ := evs[0].Wait(100 * time.Millisecond); n > 0 {
				select {
				case irq.c <- struct{}{}:
				default:
				}
			}
		}
	}()
	return irq
}

func (i *eventIRQ) C() <-chan struct{} { return i.c }

func (i *eventIRQ) Close() error {
	i.once.Do(func() { close(i.stop) })
	<-i.done
	return nil
}
