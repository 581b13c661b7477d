package main

import (
	"bytes"
	"os"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/gopmd/gopmd/internal/vmtest"
	"github.com/gopmd/gopmd/pci"
	"github.com/gopmd/gopmd/pci/pcitest"
)

func devbind(sys pci.Sysfs, args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, sys, &o, &e)
	return code, o.String(), e.String()
}

func TestStatusListsNetworkDevicesByDriver(t *testing.T) {
	sys := pcitest.Sysfs(t, []string{"vfio-pci"},
		pcitest.Device{Addr: pcitest.HostBridge, Group: 0},
		pcitest.Device{Addr: pcitest.Modern, Driver: "vfio-pci", Group: 1},
		pcitest.Device{Addr: pcitest.Legacy, Driver: "virtio-pci", Group: 3, Up: []string{"eth2"}, Virtio: true},
		pcitest.Device{Addr: pcitest.ModernINTx, Group: pcitest.NoGroup},
	)
	code, out, errOut := devbind(sys, "--status")
	require.Equal(t, 0, code, "stderr: %s", errOut)
	assert.Equal(t, `Network devices using vfio-pci
==============================
0000:00:10.0 'Virtio 1.0 network device 1041' numa_node=-1 iommu_group=1 drv=vfio-pci

Network devices using a kernel driver
=====================================
0000:00:12.0 'Virtio network device 1000' if=eth2 numa_node=-1 iommu_group=3 drv=virtio-pci *Active*

Network devices without a driver
================================
0000:00:11.0 'Virtio 1.0 network device 1041' numa_node=-1 iommu_group=none
`, out)
	assert.NotContains(t, out, pcitest.HostBridge, "only network devices are listed")
}

func TestBindErrorsSayWhatIsWrong(t *testing.T) {
	cases := []struct {
		name   string
		loaded []string
		args   []string
		want   string
	}{
		{"vfio-pci not loaded", nil, []string{"--bind=vfio-pci", pcitest.Modern},
			"pci: vfio-pci is not loaded (modprobe vfio-pci)\n"},
		{"interface up", []string{"vfio-pci"}, []string{"--bind=vfio-pci", pcitest.Legacy},
			"pci: device 0000:00:12.0 is in use (it has an active network interface eth2); take it down first, or force\n"},
		{"interface up, by interface name", []string{"vfio-pci"}, []string{"-b", "vfio-pci", "eth2"},
			"pci: device 0000:00:12.0 is in use (it has an active network interface eth2); take it down first, or force\n"},
		{"unbind with interface up", nil, []string{"--unbind", "00:12.0"},
			"pci: device 0000:00:12.0 is in use (it has an active network interface eth2); take it down first, or force\n"},
		{"group not viable", []string{"vfio-pci"}, []string{"--bind=vfio-pci", pcitest.BehindRight},
			"pci: IOMMU group 4 is not viable: device 0000:01:01.0 is bound to virtio-pci (bind it to vfio-pci too, or unbind it)\n"},
		{"unknown device", []string{"vfio-pci"}, []string{"--bind=vfio-pci", "eth9"},
			"devbind: \"eth9\" is neither a PCI address (0000:00:10.0) nor the interface of a network device\n"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, out, errOut := devbind(pcitest.Guest(t, c.loaded...), c.args...)
			assert.Equal(t, 1, code)
			assert.Empty(t, out)
			assert.Equal(t, c.want, errOut)
		})
	}
}

func TestForceGetsPastTheInUseCheck(t *testing.T) {
	code, _, errOut := devbind(pcitest.Guest(t, "vfio-pci"), "--bind=vfio-pci", pcitest.Legacy, "--force")
	assert.Equal(t, 1, code, "the fake tree has no kernel to bind the device")
	assert.NotContains(t, errOut, "in use")
	assert.Contains(t, errOut, `the device is on "virtio-pci" afterwards`)
}

func TestUsageErrors(t *testing.T) {
	sys := pcitest.Guest(t)
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "usage: devbind"},
		{[]string{"--status", "--unbind", pcitest.Modern}, "give one of --status, --bind and --unbind"},
		{[]string{"--status", pcitest.Modern}, "--status takes no devices"},
		{[]string{"--bind=vfio-pci"}, "no devices given"},
		{[]string{"--frobnicate"}, "flag provided but not defined: -frobnicate"},
	} {
		code, _, errOut := devbind(sys, c.args...)
		assert.Equal(t, 2, code, "%q", c.args)
		assert.Contains(t, errOut, c.want, "%q", c.args)
	}
}

// TestBindAndUnbindInGuest drives devbind against a real kernel: a
// virtio-net device goes from virtio-pci to vfio-pci, off any driver, and
// back.
func TestBindAndUnbindInGuest(t *testing.T) {
	if !vmtest.InGuest() {
		cfg := vmtest.Config{
			NICs:    []vmtest.NIC{{Backend: vmtest.UDP{Local: vmtest.FreeUDPAddr(t), Remote: vmtest.FreeUDPAddr(t)}, Modern: true, IOMMUPlatform: true}},
			Modules: vmtest.VirtioNetModules,
			// Under TCG on a busy host the kernel's boot-time timer check
			// through the interrupt-remapped IO-APIC can time out and panic.
		}
		cfg.Env = []string{"NIC=" + cfg.NICAddr(0)}
		vmtest.RunInGuest(t, cfg)
		return
	}
	nic := os.Getenv("NIC")
	sys := pci.Sysfs{}
	status := func() string {
		code, out, errOut := devbind(sys, "--status")
		require.Equal(t, 0, code, "stderr: %s", errOut)
		t.Logf("devbind --status:\n%s", out)
		return out
	}
	section := func(out, title string) string {
		_, rest, _ := strings.Cut(out, title+"\n")
		sec, _, _ := strings.Cut(rest, "\n\n")
		return sec
	}
	require.Contains(t, section(status(), "Network devices using a kernel driver"), nic+" 'Virtio 1.0 network device 1041' if=eth0")

	code, _, errOut := devbind(sys, "--bind=vfio-pci", "eth0")
	require.Equal(t, 0, code, "stderr: %s", errOut)
	assert.Contains(t, section(status(), "Network devices using vfio-pci"), nic+" 'Virtio 1.0 network device 1041' numa_node=-1 iommu_group=")

	code, _, errOut = devbind(sys, "--unbind", nic)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	assert.Contains(t, section(status(), "Network devices without a driver"), nic)

	code, _, errOut = devbind(sys, "--bind=virtio-pci", nic)
	require.Equal(t, 0, code, "stderr: %s", errOut)
	assert.Contains(t, section(status(), "Network devices using a kernel driver"), nic+" 'Virtio 1.0 network device 1041' if=eth")
}
