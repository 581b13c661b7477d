package pci_test

import (
	"errors"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/pci"
	"github.com/gopmd/gopmd/pci/pcitest"
)

// Short names for the captured guest's devices.
const (
	hostBridge  = pcitest.HostBridge
	modern      = pcitest.Modern
	modernINTx  = pcitest.ModernINTx
	legacy      = pcitest.Legacy
	bridge      = pcitest.Bridge
	behindLeft  = pcitest.BehindLeft
	behindRight = pcitest.BehindRight
)

func addr(t *testing.T, s string) pci.Addr {
	t.Helper()
	a, err := pci.ParseAddr(s)
	require.NoError(t, err)
	return a
}

func addrs(devs []*pci.Device) []string {
	var out []string
	for _, d := range devs {
		out = append(out, d.Addr.String())
	}
	return out
}

func TestLookupReadsIDsDriverGroupNUMAInterfacesAndBARs(t *testing.T) {
	s := pcitest.Guest(t)
	d, err := s.Lookup(addr(t, modern))
	require.NoError(t, err)

	assert.Equal(t, pci.ID{Vendor: 0x1af4, Device: 0x1041}, d.ID())
	assert.Equal(t, uint16(0x1af4), d.SubVendorID)
	assert.Equal(t, uint16(0x1100), d.SubDeviceID)
	assert.Equal(t, uint32(0x020000), d.Class, "class code of an Ethernet controller")
	assert.Equal(t, "virtio-pci", d.Driver)
	assert.Empty(t, d.DriverOverride, `"(null)" means no override`)
	assert.Equal(t, 1, d.IOMMUGroup)
	assert.Equal(t, -1, d.NUMANode, "QEMU's q35 does not give a NUMA node")
	assert.Equal(t, []string{"eth0"}, d.Interfaces)
	assert.Empty(t, d.ActiveInterfaces(), "eth0 is down")
	assert.Equal(t, []pci.BAR{
		{Index: 1, Start: 0xfe6c0000, Size: 0x1000},
		{Index: 4, Start: 0xfea00000, Size: 0x4000, Mem64: true},
	}, d.BARs, "BAR1 holds the MSI-X table, BAR4 the virtio structures; the ROM is left out")
	assert.Len(t, d.Config, 256)
	assert.Equal(t, uint16(0x1041), d.Config.DeviceID())

	l, err := s.Lookup(addr(t, legacy))
	require.NoError(t, err)
	require.NotEmpty(t, l.BARs)
	assert.Equal(t, pci.BAR{Index: 0, Start: 0xd040, Size: 0x20, IO: true}, l.BARs[0], "legacy virtio's I/O BAR0")
	assert.Equal(t, []string{"eth2"}, l.ActiveInterfaces())
}

func TestLookupOfMissingDeviceIsNotExist(t *testing.T) {
	_, err := pcitest.Guest(t).Lookup(addr(t, "0000:00:05.0"))
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.Contains(t, err.Error(), "0000:00:05.0")
}

func TestDeviceWithoutIOMMUGroupHasGroupMinusOne(t *testing.T) {
	s := pcitest.Sysfs(t, nil, pcitest.Device{Addr: modern, Group: pcitest.NoGroup})
	d, err := s.Lookup(addr(t, modern))
	require.NoError(t, err)
	assert.Equal(t, -1, d.IOMMUGroup)
	assert.Empty(t, d.Driver)
}

func TestScanFiltersByIDClassAllowAndBlock(t *testing.T) {
	s := pcitest.Guest(t)
	virtioNet := []pci.ID{{Vendor: 0x1af4, Device: 0x1000}, {Vendor: 0x1af4, Device: 0x1041}}
	cases := []struct {
		name   string
		filter pci.Filter
		want   []string
	}{
		{"zero filter selects all", pci.Filter{}, []string{hostBridge, modern, modernINTx, legacy, bridge, behindLeft, behindRight}},
		{"network class", pci.Filter{Class: pci.ClassNetwork, ClassMask: pci.ClassMaskBase}, []string{modern, modernINTx, legacy, behindLeft, behindRight}},
		{"transitional IDs only", pci.Filter{IDs: virtioNet[:1]}, []string{legacy, behindLeft}},
		{"any device of the vendor", pci.Filter{IDs: []pci.ID{{Vendor: 0x1af4, Device: pci.AnyID}}}, []string{modern, modernINTx, legacy, behindLeft, behindRight}},
		{"allow list", pci.Filter{IDs: virtioNet, Allow: []pci.Addr{addr(t, legacy), addr(t, modern), addr(t, hostBridge)}}, []string{modern, legacy}},
		{"block list", pci.Filter{IDs: virtioNet, Block: []pci.Addr{addr(t, modern), addr(t, behindLeft)}}, []string{modernINTx, legacy, behindRight}},
		{"none", pci.Filter{None: true}, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			devs, err := s.Scan(c.filter)
			require.NoError(t, err)
			assert.Equal(t, c.want, addrs(devs))
		})
	}
}

func TestFromEALHonoursAllowBlockAndNoPCI(t *testing.T) {
	s := pcitest.Guest(t)
	opts, _, err := eal.ParseArgs([]string{"-l", "0", "-a", modern, "-a", legacy + ",foo=1", "--file-prefix", "x"})
	require.NoError(t, err)
	f := pci.FromEAL(opts)
	f.IDs = []pci.ID{{Vendor: 0x1af4, Device: pci.AnyID}}
	devs, err := s.Scan(f)
	require.NoError(t, err)
	assert.Equal(t, []string{modern, legacy}, addrs(devs), "-a selects only the listed devices")

	opts, _, err = eal.ParseArgs([]string{"-l", "0", "-b", modern, "-b", behindLeft})
	require.NoError(t, err)
	devs, err = s.Scan(pci.FromEAL(opts))
	require.NoError(t, err)
	assert.NotContains(t, addrs(devs), modern)
	assert.NotContains(t, addrs(devs), behindLeft)
	assert.Contains(t, addrs(devs), legacy)

	opts, _, err = eal.ParseArgs([]string{"-l", "0", "--no-pci"})
	require.NoError(t, err)
	devs, err = s.Scan(pci.FromEAL(opts))
	require.NoError(t, err)
	assert.Empty(t, devs, "--no-pci selects nothing")
}

func TestGroupListsMembersSorted(t *testing.T) {
	members, err := pcitest.Guest(t).Group(4)
	require.NoError(t, err)
	assert.Equal(t, []pci.Addr{addr(t, bridge), addr(t, behindLeft), addr(t, behindRight)}, members)
}

func TestBindRefusesWhenDriverIsNotLoaded(t *testing.T) {
	s := pcitest.Guest(t) // vfio-pci not loaded
	err := s.Bind("vfio-pci", []pci.Addr{addr(t, modern)}, pci.BindOptions{})
	require.ErrorIs(t, err, pci.ErrNotLoaded)
	assert.EqualError(t, err, "pci: vfio-pci is not loaded (modprobe vfio-pci)")
	d, err := s.Lookup(addr(t, modern))
	require.NoError(t, err)
	assert.Equal(t, "virtio-pci", d.Driver, "a refused bind changes nothing")
	assert.Empty(t, d.DriverOverride)
}

func TestBindRefusesDeviceWithActiveInterface(t *testing.T) {
	s := pcitest.Guest(t, "vfio-pci")
	err := s.Bind("vfio-pci", []pci.Addr{addr(t, modern), addr(t, legacy)}, pci.BindOptions{})
	require.ErrorIs(t, err, pci.ErrInUse)
	assert.Contains(t, err.Error(), "device 0000:00:12.0 is in use (it has an active network interface eth2)")
	d, err := s.Lookup(addr(t, modern))
	require.NoError(t, err)
	assert.Empty(t, d.DriverOverride, "no device is touched when one is refused")

	err = s.Unbind([]pci.Addr{addr(t, legacy)}, pci.BindOptions{})
	require.ErrorIs(t, err, pci.ErrInUse, "unbinding would kill eth2 too")
}

func TestBindWithForceGoesPastActiveInterface(t *testing.T) {
	s := pcitest.Guest(t, "vfio-pci")
	err := s.Bind("vfio-pci", []pci.Addr{addr(t, legacy)}, pci.BindOptions{Force: true})
	// The fake tree has no kernel behind it, so the device stays where it
	// was: Bind got through its checks and noticed.
	require.Error(t, err)
	assert.NotErrorIs(t, err, pci.ErrInUse)
	assert.Contains(t, err.Error(), `the device is on "virtio-pci" afterwards`)
}

func TestBindToVFIORefusesGroupLeftNotViable(t *testing.T) {
	s := pcitest.Guest(t, "vfio-pci")
	err := s.Bind("vfio-pci", []pci.Addr{addr(t, behindRight)}, pci.BindOptions{})
	require.ErrorIs(t, err, pci.ErrNotViable)
	assert.Contains(t, err.Error(), "IOMMU group 4 is not viable: device 0000:01:01.0 is bound to virtio-pci")

	// Binding the whole group at once passes the check (the bridge has no
	// driver, which VFIO accepts).
	err = s.Bind("vfio-pci", []pci.Addr{addr(t, behindRight), addr(t, behindLeft)}, pci.BindOptions{})
	assert.NotErrorIs(t, err, pci.ErrNotViable)

	// A kernel driver other than vfio-pci does not care about groups.
	err = s.Bind("virtio-pci", []pci.Addr{addr(t, behindRight)}, pci.BindOptions{})
	assert.NoError(t, err, "already on virtio-pci: nothing to do")
}

func TestBindToVFIORefusesDeviceWithoutIOMMUGroup(t *testing.T) {
	s := pcitest.Sysfs(t, []string{"vfio-pci"}, pcitest.Device{Addr: modern, Group: pcitest.NoGroup})
	err := s.Bind("vfio-pci", []pci.Addr{addr(t, modern)}, pci.BindOptions{})
	require.ErrorIs(t, err, pci.ErrNoGroup)
	assert.Contains(t, err.Error(), "device 0000:00:10.0 has no IOMMU group")
}

func TestBindRefusesBadArguments(t *testing.T) {
	s := pcitest.Guest(t, "vfio-pci")
	for _, drv := range []string{"", "../vfio-pci", ".."} {
		err := s.Bind(drv, []pci.Addr{addr(t, modern)}, pci.BindOptions{})
		require.Error(t, err, "driver %q", drv)
		assert.Contains(t, err.Error(), "is not a driver name")
	}
	err := s.Bind("vfio-pci", nil, pci.BindOptions{})
	assert.EqualError(t, err, "pci: no device addresses given")
	err = s.Bind("vfio-pci", []pci.Addr{addr(t, "0000:00:05.0")}, pci.BindOptions{})
	assert.True(t, errors.Is(err, fs.ErrNotExist), "missing device: %v", err)
}
