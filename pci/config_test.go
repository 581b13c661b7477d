package pci_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopmd/gopmd/pci"
	"github.com/gopmd/gopmd/pci/pcitest"
)

func TestModernVirtioNetHasMSIXAndVirtioCapabilities(t *testing.T) {
	c := pcitest.Config(t, pcitest.Modern)

	caps, err := c.Capabilities()
	require.NoError(t, err)
	var ids []uint8
	for _, cp := range caps {
		ids = append(ids, cp.ID)
	}
	assert.Equal(t, []uint8{pci.CapMSIX, pci.CapVendor, pci.CapVendor, pci.CapVendor, pci.CapVendor, pci.CapVendor}, ids)

	m, err := c.MSIX()
	require.NoError(t, err)
	assert.Equal(t, pci.MSIX{Offset: 0x98, TableSize: 4, TableBAR: 1, TableOffset: 0, PBABAR: 1, PBAOffset: 0x800, Enabled: true}, m,
		"QEMU's default: 3 vectors for one queue pair rounded to its table of 4; the guest's virtio driver had MSI-X on")

	vcs, err := c.VirtioCaps()
	require.NoError(t, err)
	want := map[uint8]pci.VirtioCap{
		pci.VirtioCommonCfg: {CapOffset: 0x40, Type: pci.VirtioCommonCfg, BAR: 4, Offset: 0x0000, Length: 0x1000},
		pci.VirtioISRCfg:    {CapOffset: 0x50, Type: pci.VirtioISRCfg, BAR: 4, Offset: 0x1000, Length: 0x1000},
		pci.VirtioDeviceCfg: {CapOffset: 0x60, Type: pci.VirtioDeviceCfg, BAR: 4, Offset: 0x2000, Length: 0x1000},
		pci.VirtioNotifyCfg: {CapOffset: 0x70, Type: pci.VirtioNotifyCfg, BAR: 4, Offset: 0x3000, Length: 0x1000, NotifyOffMultiplier: 4},
	}
	for typ, w := range want {
		got, err := c.VirtioCap(typ)
		require.NoError(t, err, "virtio cap type %d", typ)
		assert.Equal(t, w, got, "virtio cap type %d", typ)
	}
	assert.Len(t, vcs, 5, "the four structures and the PCI config access capability")
}

func TestDeviceWithoutMSIXSaysSo(t *testing.T) {
	c := pcitest.Config(t, pcitest.ModernINTx)
	_, err := c.MSIX()
	require.ErrorIs(t, err, pci.ErrNoCapability)
	_, err = c.VirtioCap(pci.VirtioCommonCfg)
	assert.NoError(t, err, "still a modern virtio device")
}

func TestTransitionalVirtioNetKeepsLegacyIDAndModernCapabilities(t *testing.T) {
	c := pcitest.Config(t, pcitest.Legacy)
	assert.Equal(t, uint16(0x1000), c.DeviceID())
	nc, err := c.VirtioCap(pci.VirtioNotifyCfg)
	require.NoError(t, err)
	assert.Equal(t, 4, nc.BAR)
}

func TestCapabilityListErrorsNameTheProblem(t *testing.T) {
	base := pcitest.Config(t, pcitest.Modern)

	loop := append(pci.Config(nil), base...)
	loop[0x99] = 0x98 // MSI-X capability points at itself
	_, err := loop.Capabilities()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "a loop at 0x98")

	wild := append(pci.Config(nil), base...)
	wild[pci.ConfigCapList] = 0x20 // inside the header
	_, err = wild.Capabilities()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "capability pointer 0x20 outside 0x40..0xfc")

	_, err = base[:64].Capabilities()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "needs 256 bytes of config space, have 64")

	_, err = base[:10].Capabilities()
	require.Error(t, err)
	assert.Equal(t, uint16(0xffff), base[:10].VendorID(), "too short to have IDs")

	noList := append(pci.Config(nil), base...)
	noList[pci.ConfigStatus] &^= pci.StatusCapList
	caps, err := noList.Capabilities()
	require.NoError(t, err)
	assert.Empty(t, caps, "status bit 4 clear: no capability list")
}
