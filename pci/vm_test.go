package pci_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/internal/vmtest"
	"github.com/gopmd/gopmd/pci"
)

var virtioNet = []pci.ID{{Vendor: 0x1af4, Device: 0x1000}, {Vendor: 0x1af4, Device: 0x1041}}

// TestBindMovesNICsBetweenKernelDriverAndVFIO runs in a guest whose
// virtio-net devices start on the kernel's virtio-pci driver: one on the
// root bus, two behind a PCI bridge that share its IOMMU group.
func TestBindMovesNICsBetweenKernelDriverAndVFIO(t *testing.T) {
	if !vmtest.InGuest() {
		cfg := vmtest.Config{
			NICs: []vmtest.NIC{{Backend: vmtest.UDP{Local: vmtest.FreeUDPAddr(t), Remote: vmtest.FreeUDPAddr(t)}, Modern: true, IOMMUPlatform: true}},
			QEMUArgs: []string{
				"-device", "pci-bridge,id=br0,chassis_nr=1,addr=0x1a",
				"-netdev", "socket,id=bn0,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
				"-device", "virtio-net-pci,netdev=bn0,bus=br0,addr=0x1",
				"-netdev", "socket,id=bn1,udp=127.0.0.1:9,localaddr=127.0.0.1:0",
				"-device", "virtio-net-pci,netdev=bn1,bus=br0,addr=0x2,disable-legacy=on,iommu_platform=on",
			},
			Modules: vmtest.VirtioNetModules,
			// Under TCG on a busy host the kernel's boot-time timer check
			// through the interrupt-remapped IO-APIC can time out and panic.
		}
		cfg.Env = []string{"NIC=" + cfg.NICAddr(0)}
		vmtest.RunInGuest(t, cfg)
		return
	}
	nic := addr(t, os.Getenv("NIC"))
	left, right := addr(t, "0000:01:01.0"), addr(t, "0000:01:02.0")

	t.Run("ScanFindsNICsWithGroupsAndCapabilities", func(t *testing.T) {
		devs, err := pci.Scan(pci.Filter{IDs: virtioNet, Class: pci.ClassNetwork, ClassMask: pci.ClassMaskBase})
		require.NoError(t, err)
		assert.Equal(t, []string{nic.String(), left.String(), right.String()}, addrs(devs))
		for _, d := range devs {
			assert.Equal(t, "virtio-pci", d.Driver, "%s", d.Addr)
			assert.GreaterOrEqual(t, d.IOMMUGroup, 0, "%s has an IOMMU group", d.Addr)
			assert.Len(t, d.Interfaces, 1, "%s has its kernel interface", d.Addr)
			_, err := d.Config.MSIX()
			assert.NoError(t, err, "%s: MSI-X capability (root reads the whole config space)", d.Addr)
			_, err = d.Config.VirtioCap(pci.VirtioCommonCfg)
			assert.NoError(t, err, "%s: virtio common configuration capability", d.Addr)
		}
		vendor, device := devs[0].Name()
		t.Logf("%s: %s %s", devs[0].Addr, vendor, device)
		assert.Equal(t, devs[1].IOMMUGroup, devs[2].IOMMUGroup, "devices behind a conventional bridge share a group")
	})

	t.Run("BindRefusesDeviceWhoseInterfaceIsUp", func(t *testing.T) {
		d, err := pci.Lookup(nic)
		require.NoError(t, err)
		require.Len(t, d.Interfaces, 1)
		ifname := d.Interfaces[0]
		setLinkUp(t, ifname, true)
		err = pci.Bind("vfio-pci", nic)
		require.ErrorIs(t, err, pci.ErrInUse)
		assert.Contains(t, err.Error(), fmt.Sprintf("device %s is in use (it has an active network interface %s)", nic, ifname))
		setLinkUp(t, ifname, false)
	})

	t.Run("BindToVFIOAndBack", func(t *testing.T) {
		require.NoError(t, pci.Bind("vfio-pci", nic))
		d, err := pci.Lookup(nic)
		require.NoError(t, err)
		assert.Equal(t, "vfio-pci", d.Driver)
		assert.Empty(t, d.DriverOverride, "the override is cleared once bound")
		assert.Empty(t, d.Interfaces, "the kernel interface is gone")
		assert.FileExists(t, fmt.Sprintf("/dev/vfio/%d", d.IOMMUGroup))

		require.NoError(t, pci.Bind("vfio-pci", nic), "binding to the driver it is on does nothing")
		require.NoError(t, pci.Bind("virtio-pci", nic))
		d, err = pci.Lookup(nic)
		require.NoError(t, err)
		assert.Equal(t, "virtio-pci", d.Driver)
		assert.Len(t, d.Interfaces, 1, "the kernel interface is back")

		require.NoError(t, pci.Unbind(nic))
		d, err = pci.Lookup(nic)
		require.NoError(t, err)
		assert.Empty(t, d.Driver)
		require.NoError(t, pci.Bind("virtio-pci", nic))
	})

	t.Run("BindRefusesToLeaveGroupNotViable", func(t *testing.T) {
		err := pci.Bind("vfio-pci", right)
		require.ErrorIs(t, err, pci.ErrNotViable)
		d, err2 := pci.Lookup(right)
		require.NoError(t, err2)
		assert.EqualError(t, err, fmt.Sprintf("pci: IOMMU group %d is not viable: device %s is bound to virtio-pci (bind it to vfio-pci too, or unbind it)", d.IOMMUGroup, left))
		assert.Equal(t, "virtio-pci", d.Driver, "nothing moved")

		require.NoError(t, pci.Bind("vfio-pci", right, left), "the whole group at once")
		for _, a := range []pci.Addr{left, right} {
			d, err := pci.Lookup(a)
			require.NoError(t, err)
			assert.Equal(t, "vfio-pci", d.Driver, "%s", a)
		}
		require.NoError(t, pci.Bind("virtio-pci", left, right))
	})

	t.Run("BindToUnloadedDriverSaysHowToLoadIt", func(t *testing.T) {
		ko, err := filepath.Glob("/lib/modules/vmtest/vfio_pci.ko")
		require.NoError(t, err)
		require.Len(t, ko, 1, "the guest has the vfio_pci module file")
		require.NoError(t, unix.DeleteModule("vfio_pci", 0), "rmmod vfio_pci (no device is on it)")
		defer func() {
			f, err := os.Open(ko[0])
			require.NoError(t, err)
			defer f.Close()
			require.NoError(t, unix.FinitModule(int(f.Fd()), "", 0), "insmod vfio_pci again")
		}()
		err = pci.Bind("vfio-pci", nic)
		require.ErrorIs(t, err, pci.ErrNotLoaded)
		assert.EqualError(t, err, "pci: vfio-pci is not loaded (modprobe vfio-pci)")
	})
}

// setLinkUp sets or clears IFF_UP on a network interface.
func setLinkUp(t *testing.T, name string, up bool) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr))
	flags := ifr.Uint16() &^ unix.IFF_UP
	if up {
		flags |= unix.IFF_UP
	}
	ifr.SetUint16(flags)
	require.NoError(t, unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr), "set %s up=%v", name, up)
}
