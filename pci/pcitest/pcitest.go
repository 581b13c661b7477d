// Package pcitest builds fake sysfs trees for testing code that uses
// package pci without the devices: the attribute files of the PCI devices
// of a vmtest guest (captured from QEMU, see qemu/README), laid out like
// /sys with the drivers, IOMMU groups and network interfaces a test asks
// for. The tree lives in the test's temporary directory.
//
// Nothing behind the tree reacts to writes: a bind leaves a device where
// it was, so a test can check what pci refuses before touching anything,
// not what the kernel does afterwards (the VM tests do that).
package pcitest

import (
	"embed"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/gopmd/gopmd/pci"
)

//go:embed qemu
var captured embed.FS

// Devices of the guest the attributes come from.
const (
	HostBridge  = "0000:00:00.0" // q35 host bridge
	Modern      = "0000:00:10.0" // virtio-net 1.0 (1af4:1041) with MSI-X
	ModernINTx  = "0000:00:11.0" // virtio-net 1.0 without MSI-X
	Legacy      = "0000:00:12.0" // transitional virtio-net (1af4:1000), I/O BAR0
	Bridge      = "0000:00:1a.0" // PCI bridge; it and the two below share a group
	BehindLeft  = "0000:01:01.0" // transitional virtio-net behind the bridge
	BehindRight = "0000:01:02.0" // virtio-net 1.0 behind the bridge
)

// NoGroup as Device.Group gives a device no IOMMU group.
const NoGroup = -1

// Device is one captured device and the state the test wants around it.
type Device struct {
	Addr     string   // one of the constants above
	Driver   string   // bound driver, "" for none
	Group    int      // IOMMU group, or NoGroup
	Up, Down []string // network interfaces that are up or down
	// Virtio puts the interfaces under a virtio child device
	// (virtio0/net/eth0), as the kernel's virtio driver does.
	Virtio bool
}

// Guest returns the tree of the whole captured guest as the kernel left
// it: the NICs on virtio-pci, eth2 (of Legacy) up and the others down,
// each device in its own IOMMU group except the bridge and the two
// devices behind it (group 4). loaded names more registered drivers.
func Guest(t testing.TB, loaded ...string) pci.Sysfs {
	return Sysfs(t, loaded,
		Device{Addr: HostBridge, Group: 0},
		Device{Addr: Modern, Driver: "virtio-pci", Group: 1, Down: []string{"eth0"}, Virtio: true},
		Device{Addr: ModernINTx, Driver: "virtio-pci", Group: 2, Down: []string{"eth1"}, Virtio: true},
		Device{Addr: Legacy, Driver: "virtio-pci", Group: 3, Up: []string{"eth2"}, Virtio: true},
		Device{Addr: Bridge, Group: 4},
		Device{Addr: BehindLeft, Driver: "virtio-pci", Group: 4, Down: []string{"eth3"}, Virtio: true},
		Device{Addr: BehindRight, Driver: "virtio-pci", Group: 4, Down: []string{"eth4"}, Virtio: true},
	)
}

// Sysfs lays out a tree like /sys holding devs, with the PCI drivers in
// loaded registered, and every driver a device is bound to.
func Sysfs(t testing.TB, loaded []string, devs ...Device) pci.Sysfs {
	t.Helper()
	root := t.TempDir()
	check := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("pcitest: %v", err)
		}
	}
	mkdir := func(p string) { check(os.MkdirAll(p, 0o755)) }
	write := func(p string, b []byte) { check(os.WriteFile(p, b, 0o644)) }
	driver := func(name string) string {
		d := filepath.Join(root, "bus/pci/drivers", name)
		mkdir(d)
		write(filepath.Join(d, "bind"), nil)
		write(filepath.Join(d, "unbind"), nil)
		return d
	}
	for _, name := range loaded {
		driver(name)
	}
	mkdir(filepath.Join(root, "bus/pci/devices"))
	write(filepath.Join(root, "bus/pci/drivers_probe"), nil)
	for _, d := range devs {
		dir := filepath.Join(root, "bus/pci/devices", d.Addr)
		mkdir(dir)
		src := path.Join("qemu", strings.ReplaceAll(d.Addr, ":", "-"))
		files, err := fs.ReadDir(captured, src)
		if err != nil {
			t.Fatalf("pcitest: no captured device %s", d.Addr)
		}
		for _, f := range files {
			b, err := fs.ReadFile(captured, path.Join(src, f.Name()))
			check(err)
			write(filepath.Join(dir, f.Name()), b)
		}
		write(filepath.Join(dir, "driver_override"), []byte("(null)\n"))
		if d.Driver != "" {
			check(os.Symlink(driver(d.Driver), filepath.Join(dir, "driver")))
		}
		if d.Group != NoGroup {
			g := filepath.Join(root, "kernel/iommu_groups", strconv.Itoa(d.Group))
			mkdir(filepath.Join(g, "devices"))
			check(os.Symlink(g, filepath.Join(dir, "iommu_group")))
			check(os.Symlink(dir, filepath.Join(g, "devices", d.Addr)))
		}
		netDir := filepath.Join(dir, "net")
		if d.Virtio {
			netDir = filepath.Join(dir, "virtio0", "net")
		}
		for flags, names := range map[string][]string{"0x1003": d.Up, "0x1002": d.Down} {
			for _, n := range names {
				mkdir(filepath.Join(netDir, n))
				write(filepath.Join(netDir, n, "flags"), []byte(flags+"\n"))
			}
		}
	}
	return pci.Sysfs{Root: root}
}

// Config returns the captured config space of one device.
func Config(t testing.TB, addr string) pci.Config {
	t.Helper()
	b, err := fs.ReadFile(captured, path.Join("qemu", strings.ReplaceAll(addr, ":", "-"), "config"))
	if err != nil {
		t.Fatalf("pcitest: no captured config space of %s", addr)
	}
	return pci.Config(b)
}
