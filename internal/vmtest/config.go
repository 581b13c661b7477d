package vmtest

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// DefaultModules are loaded in every guest, with their dependencies: VFIO,
// its type1 IOMMU backend and the vfio-pci driver.
var DefaultModules = []string{"vfio", "vfio_iommu_type1", "vfio_pci"}

// VirtioNetModules give the guest kernel its own virtio-net driver. Add
// them to Config.Modules when the guest kernel, not the program under
// test, should drive a NIC; NICs with VFIO set are moved to vfio-pci all
// the same.
var VirtioNetModules = []string{"virtio_pci", "virtio_net"}

// Config describes one VM run: the program to run in the guest and the
// virtual machine around it. The zero value of each field is a sane default;
// only Binary is required.
type Config struct {
	// Binary is the host path of a statically linked program to run as
	// the guest's workload, e.g. from BuildTest or BuildMain.
	Binary string
	// Args are the program's arguments; Env adds "KEY=value" entries to
	// its environment (the guest also sets GOPMD_VMTEST=1, see InGuest).
	Args []string
	Env  []string
	// Files packs more host files into the guest: guest path -> host path.
	// The program runs in /vmtest.
	Files map[string]string

	// MemoryMiB is the guest RAM (default 1024) and CPUs its vCPUs
	// (default 2).
	MemoryMiB int
	CPUs      int
	// HugePages is the number of 2 MiB pages the guest reserves, mounted
	// at /dev/hugepages (default 64; NoHugePages for none).
	HugePages int

	// NICs are virtio-net-pci devices on the guest's PCI root bus.
	NICs []NIC
	// BindVFIO lists more guest PCI addresses ("0000:00:05.0") to bind to
	// vfio-pci before the program runs, for devices added with QEMUArgs.
	BindVFIO []string
	// NoIOMMU leaves out the emulated Intel IOMMU; VFIO then has no
	// usable type1 container in the guest.
	NoIOMMU bool

	// Modules are kernel modules loaded after DefaultModules, dependencies
	// resolved from modules.dep. An entry may carry module parameters:
	// "vfio_iommu_type1 allow_unsafe_interrupts=1" (also for a default
	// module).
	Modules []string
	// KernelArgs are appended to the kernel command line.
	KernelArgs []string
	// QEMUArgs are appended to QEMU's command line (escape hatch).
	QEMUArgs []string

	// Kernel is the bzImage to boot; default $GOPMD_VMTEST_KERNEL, else
	// the newest /boot/vmlinuz-* with modules in /lib/modules.
	Kernel string
	// Timeout bounds the whole VM run, boot to power-off (default 2 min,
	// shortened to fit the test's deadline). QEMU is killed when it passes.
	Timeout time.Duration
}

// NoHugePages as Config.HugePages reserves no hugepages in the guest.
const NoHugePages = -1

// NoMSIX as NIC.Vectors gives the device no MSI-X capability (vectors=0).
const NoMSIX = -1

const (
	defaultMemoryMiB = 1024
	defaultCPUs      = 2
	defaultHugePages = 64
	defaultTimeout   = 2 * time.Minute
	firstNICSlot     = 0x10
)

// NIC is one virtio-net-pci device and the host backend of its frames.
type NIC struct {
	// Backend carries the device's frames on the host: UDP, Tap or
	// VhostUser.
	Backend Backend
	// Slot is the device's slot on the guest root bus; 0 picks 0x10 plus
	// the NIC's index. Config.NICAddr gives the guest PCI address.
	Slot int
	// MAC is the device's address; empty lets QEMU pick one.
	MAC string
	// Modern makes the device virtio 1.0 only (disable-legacy=on, PCI
	// device id 0x1041) instead of transitional (0x1000, with the legacy
	// I/O port interface).
	Modern bool
	// IOMMUPlatform routes the device's DMA through the guest's IOMMU
	// (iommu_platform=on, VIRTIO_F_ACCESS_PLATFORM). A guest driver on
	// vfio-pci that hands the device IOVAs other than guest-physical
	// addresses needs it. Requires Modern.
	IOMMUPlatform bool
	// Queues is the number of queue pairs; more than 1 sets mq=on and the
	// backend's queue count (not for UDP).
	Queues int
	// Vectors is the MSI-X vector count. 0 picks a default: 2*Queues+2
	// with several queues, else QEMU's; but NoMSIX for VhostUser
	// backends, because QEMU 7.2 under TCG dereferences a null pointer
	// starting vhost on a device whose MSI-X is enabled (crash seen in
	// msix_set_vector_notifiers from vhost_net_start). NoMSIX leaves the
	// device with INTx only.
	Vectors int
	// VFIO binds the device to vfio-pci in the guest before the program
	// runs.
	VFIO bool
	// Props are more virtio-net-pci properties, "key=value"
	// ("packed=on", "rx_queue_size=1024").
	Props []string
}

// Backend is where a NIC's frames go on the host: UDP, Tap or VhostUser.
type Backend interface {
	// qemuArgs returns the -chardev/-netdev arguments for netdev id.
	qemuArgs(id string, queues int) ([]string, error)
	// sharedMemory reports whether guest RAM must be shareable (vhost-user
	// backends map it).
	sharedMemory() bool
}

// UDP exchanges frames as UDP datagrams, one frame each: QEMU sends to
// Remote and receives on Local (both "127.0.0.1:port"). A host test
// listening on Remote is the NIC's wire peer; FreeUDPAddr picks a Local.
type UDP struct {
	Local, Remote string
}

func (u UDP) qemuArgs(id string, queues int) ([]string, error) {
	if u.Local == "" || u.Remote == "" {
		return nil, fmt.Errorf("UDP backend needs both Local and Remote host:port, have Local %q Remote %q", u.Local, u.Remote)
	}
	if queues > 1 {
		return nil, fmt.Errorf("UDP backend carries one queue pair, NIC asks for %d", queues)
	}
	return []string{"-netdev", fmt.Sprintf("socket,id=%s,udp=%s,localaddr=%s", id, u.Remote, u.Local)}, nil
}

func (UDP) sharedMemory() bool { return false }

// Tap attaches to the host tap interface Name. QEMU creates it if it does
// not exist (root needed) and removes what it created when it exits.
type Tap struct {
	Name string
}

func (tp Tap) qemuArgs(id string, queues int) ([]string, error) {
	if tp.Name == "" {
		return nil, errors.New("Tap backend needs an interface Name")
	}
	s := fmt.Sprintf("tap,id=%s,ifname=%s,script=no,downscript=no", id, tp.Name)
	if queues > 1 {
		s += fmt.Sprintf(",queues=%d", queues)
	}
	return []string{"-netdev", s}, nil
}

func (Tap) sharedMemory() bool { return false }

// VhostUser hands the device's virtqueues to a vhost-user backend (a DPDK
// vhost port, say) over the unix socket Socket. QEMU boots the guest only
// once the backend is connected: without Server the backend must already
// listen on Socket when Start runs; with Server QEMU listens there and the
// backend, started after Start, connects as a client (retrying until the
// socket exists, as DPDK's vhost client mode does). Guest RAM then lives
// in a shared memfd the backend maps, and the NIC defaults to NoMSIX (see
// NIC.Vectors).
type VhostUser struct {
	Socket string
	Server bool
}

func (v VhostUser) qemuArgs(id string, queues int) ([]string, error) {
	if v.Socket == "" {
		return nil, errors.New("VhostUser backend needs a Socket path")
	}
	chr := fmt.Sprintf("socket,id=%s-chr,path=%s", id, v.Socket)
	if v.Server {
		chr += ",server=on"
	}
	nd := fmt.Sprintf("vhost-user,id=%s,chardev=%s-chr", id, id)
	if queues > 1 {
		nd += fmt.Sprintf(",queues=%d", queues)
	}
	return []string{"-chardev", chr, "-netdev", nd}, nil
}

func (VhostUser) sharedMemory() bool { return true }

// vectors returns the vectors= value for the device, or -1 to leave it out.
func (n *NIC) vectors() int {
	switch {
	case n.Vectors == NoMSIX:
		return 0
	case n.Vectors > 0:
		return n.Vectors
	}
	if _, vhost := n.Backend.(VhostUser); vhost {
		return 0
	}
	if n.Queues > 1 {
		return 2*n.Queues + 2 // a vector per queue, config changes, control queue
	}
	return -1
}

// NICAddr returns the guest PCI address of NIC i, e.g. "0000:00:10.0".
func (c *Config) NICAddr(i int) string {
	return fmt.Sprintf("0000:00:%02x.0", c.nicSlot(i))
}

func (c *Config) nicSlot(i int) int {
	if i < 0 || i >= len(c.NICs) || c.NICs[i].Slot == 0 {
		return firstNICSlot + i
	}
	return c.NICs[i].Slot
}

func (c *Config) memoryMiB() int { return orDefault(c.MemoryMiB, defaultMemoryMiB) }
func (c *Config) cpus() int      { return orDefault(c.CPUs, defaultCPUs) }

func (c *Config) hugePages() int {
	if c.HugePages == NoHugePages {
		return 0
	}
	return orDefault(c.HugePages, defaultHugePages)
}

func orDefault(v, d int) int {
	if v == 0 {
		return d
	}
	return v
}

// modules returns the module names to load, defaults first.
func (c *Config) modules() []string {
	var names []string
	for _, m := range append(append([]string(nil), DefaultModules...), c.Modules...) {
		names = append(names, moduleName(strings.Fields(m)[0]))
	}
	return names
}

// moduleParams returns the insmod parameters given in Modules, per module.
func (c *Config) moduleParams() map[string]string {
	p := map[string]string{}
	for _, m := range c.Modules {
		f := strings.Fields(m)
		if len(f) > 1 {
			p[moduleName(f[0])] = strings.Join(f[1:], " ")
		}
	}
	return p
}

// vfioDevices returns the guest PCI addresses to bind to vfio-pci.
func (c *Config) vfioDevices() []string {
	var d []string
	for i, n := range c.NICs {
		if n.VFIO {
			d = append(d, c.NICAddr(i))
		}
	}
	return append(d, c.BindVFIO...)
}

// validate checks the configuration and names the first thing wrong.
func (c *Config) validate() error {
	if c.Binary == "" {
		return errors.New("Config.Binary is empty: build the guest program with BuildTest or BuildMain")
	}
	if c.MemoryMiB < 0 || c.CPUs < 0 || c.HugePages < NoHugePages || c.Timeout < 0 {
		return fmt.Errorf("negative size in Config: MemoryMiB %d, CPUs %d, HugePages %d, Timeout %v", c.MemoryMiB, c.CPUs, c.HugePages, c.Timeout)
	}
	if need := c.hugePages() * 2; need > c.memoryMiB()/2 {
		return fmt.Errorf("Config.HugePages %d (%d MiB) exceeds half of the guest's %d MiB", c.hugePages(), need, c.memoryMiB())
	}
	for _, m := range c.Modules {
		if strings.TrimSpace(m) == "" {
			return errors.New("Config.Modules has an empty entry")
		}
	}
	for _, e := range c.Env {
		if !strings.Contains(e, "=") {
			return fmt.Errorf("Config.Env entry %q is not KEY=value", e)
		}
	}
	slots := map[int]int{}
	for i, n := range c.NICs {
		s := c.nicSlot(i)
		if s < 1 || s > 0x1e {
			return fmt.Errorf("NIC %d: slot %#x outside 0x01..0x1e (0x00 is the host bridge, 0x1f the ICH9 functions)", i, s)
		}
		if j, dup := slots[s]; dup {
			return fmt.Errorf("NIC %d: slot %#x already used by NIC %d", i, s, j)
		}
		slots[s] = i
		if n.Backend == nil {
			return fmt.Errorf("NIC %d: no Backend (UDP, Tap or VhostUser)", i)
		}
		if n.IOMMUPlatform && !n.Modern {
			return fmt.Errorf("NIC %d: IOMMUPlatform needs Modern: QEMU offers VIRTIO_F_ACCESS_PLATFORM only on modern-only devices", i)
		}
		if n.Queues < 0 || n.Vectors < NoMSIX {
			return fmt.Errorf("NIC %d: negative Queues %d or Vectors %d (NoMSIX is %d)", i, n.Queues, n.Vectors, NoMSIX)
		}
		for _, p := range n.Props {
			if !strings.Contains(p, "=") || strings.Contains(p, ",") {
				return fmt.Errorf("NIC %d: property %q is not one key=value", i, p)
			}
		}
	}
	return nil
}
