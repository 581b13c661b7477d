package vmtest_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/internal/vmtest"
)

// udpNIC is a NIC whose frames go to a UDP port nobody reads: enough for
// the device to exist in the guest.
func udpNIC(t *testing.T) vmtest.NIC {
	return vmtest.NIC{Backend: vmtest.UDP{Local: vmtest.FreeUDPAddr(t), Remote: vmtest.FreeUDPAddr(t)}}
}

func TestBootRunsProgramAndReportsItsExitStatus(t *testing.T) {
	if vmtest.InGuest() {
		t.Skip("host-side test")
	}
	cfg := vmtest.Config{
		Binary: vmtest.BuildMain(t, "./internal/guestinfo"),
		NICs:   []vmtest.NIC{udpNIC(t)},
	}
	res := vmtest.Run(t, cfg)

	require.Equal(t, 3, res.ExitStatus, "guestinfo exits 3 after printing")
	var uts unix.Utsname
	release := ""
	for _, l := range res.Output {
		if r, ok := strings.CutPrefix(l, "release "); ok {
			release = r
		}
	}
	require.NoError(t, unix.Uname(&uts))
	assert.NotEmpty(t, release, "guest printed no kernel release")
	assert.NotEqual(t, unix.ByteSliceToString(uts.Release[:]), release, "guest should run the Debian kernel, not the host's")

	nic := "pci " + cfg.NICAddr(0) + " "
	var found string
	for _, l := range res.Output {
		if strings.HasPrefix(l, nic) {
			found = l
		}
	}
	require.NotEmpty(t, found, "guest lists no PCI device at %s", cfg.NICAddr(0))
	assert.Contains(t, []string{"1af4:1000", "1af4:1041"}, strings.Fields(found)[2],
		"device at %s should be virtio-net (transitional 1af4:1000 or modern 1af4:1041)", cfg.NICAddr(0))
	t.Logf("boot %v, total %v", res.Boot, res.Total)
}

// VFIO ioctls (linux/vfio.h): _IO(';', 100 + n).
const (
	vfioGetAPIVersion     = 0x3b64
	vfioCheckExtension    = 0x3b65
	vfioSetIOMMU          = 0x3b66
	vfioGroupGetStatus    = 0x3b67
	vfioGroupSetContainer = 0x3b68
	vfioGroupGetDeviceFD  = 0x3b6a
	vfioIOMMUMapDMA       = 0x3b71
	vfioIOMMUUnmapDMA     = 0x3b72

	vfioAPIVersion      = 0
	vfioType1v2IOMMU    = 3
	vfioGroupFlagViable = 1
	vfioDMARead         = 1
	vfioDMAWrite        = 2
)

type vfioDMAMap struct {
	Argsz, Flags      uint32
	Vaddr, IOVA, Size uint64
}

type vfioDMAUnmap struct {
	Argsz, Flags uint32
	IOVA, Size   uint64
}

func TestGuestBindsNICToVFIOAndHasHPET(t *testing.T) {
	if !vmtest.InGuest() {
		cfg := vmtest.Config{NICs: []vmtest.NIC{udpNIC(t)}}
		cfg.NICs[0].Modern = true
		cfg.NICs[0].IOMMUPlatform = true
		cfg.NICs[0].VFIO = true
		cfg.Env = []string{"VMTEST_VFIO_DEV=" + cfg.NICAddr(0)}
		vmtest.RunInGuest(t, cfg)
		return
	}

	dev := os.Getenv("VMTEST_VFIO_DEV")
	require.NotEmpty(t, dev, "host passes the NIC's address in VMTEST_VFIO_DEV")
	sys := filepath.Join("/sys/bus/pci/devices", dev)
	driver, err := os.Readlink(filepath.Join(sys, "driver"))
	require.NoError(t, err)
	assert.Equal(t, "vfio-pci", filepath.Base(driver), "driver of %s", dev)
	groupLink, err := os.Readlink(filepath.Join(sys, "iommu_group"))
	require.NoError(t, err, "%s has no IOMMU group: is the vIOMMU on?", dev)
	groupPath := filepath.Join("/dev/vfio", filepath.Base(groupLink))
	require.FileExists(t, groupPath)

	container, err := unix.Open("/dev/vfio/vfio", unix.O_RDWR, 0)
	require.NoError(t, err, "open /dev/vfio/vfio")
	defer unix.Close(container)
	v, err := unix.IoctlRetInt(container, vfioGetAPIVersion)
	require.NoError(t, err)
	require.Equal(t, vfioAPIVersion, v, "VFIO API version")
	has, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(container), vfioCheckExtension, vfioType1v2IOMMU)
	require.Zero(t, errno)
	require.EqualValues(t, 1, has, "container supports the type1v2 IOMMU")

	group, err := unix.Open(groupPath, unix.O_RDWR, 0)
	require.NoError(t, err, "open %s", groupPath)
	defer unix.Close(group)
	status := [2]uint32{8, 0}
	_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(group), vfioGroupGetStatus, uintptr(unsafe.Pointer(&status)))
	require.Zero(t, errno)
	require.Equal(t, uint32(vfioGroupFlagViable), status[1]&vfioGroupFlagViable, "group %s viable", groupPath)
	_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(group), vfioGroupSetContainer, uintptr(unsafe.Pointer(&container)))
	require.Zero(t, errno, "VFIO_GROUP_SET_CONTAINER: %v", errno)
	_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(container), vfioSetIOMMU, vfioType1v2IOMMU)
	require.Zero(t, errno, "VFIO_SET_IOMMU type1v2: %v (needs interrupt remapping)", errno)

	// DMA-map one hugepage at an IOVA unrelated to its guest-physical
	// address: translation goes through the emulated IOMMU.
	hp, err := os.CreateTemp("/dev/hugepages", "vmtest")
	require.NoError(t, err)
	defer os.Remove(hp.Name())
	const size = 2 << 20
	mem, err := unix.Mmap(int(hp.Fd()), 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	require.NoError(t, err, "mmap a hugepage")
	defer unix.Munmap(mem)
	mem[0] = 1
	m := vfioDMAMap{Argsz: uint32(unsafe.Sizeof(vfioDMAMap{})), Flags: vfioDMARead | vfioDMAWrite,
		Vaddr: uint64(uintptr(unsafe.Pointer(&mem[0]))), IOVA: 1 << 32, Size: size}
	_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(container), vfioIOMMUMapDMA, uintptr(unsafe.Pointer(&m)))
	require.Zero(t, errno, "VFIO_IOMMU_MAP_DMA: %v", errno)
	u := vfioDMAUnmap{Argsz: uint32(unsafe.Sizeof(vfioDMAUnmap{})), IOVA: m.IOVA, Size: size}
	_, _, errno = unix.Syscall(unix.SYS_IOCTL, uintptr(container), vfioIOMMUUnmapDMA, uintptr(unsafe.Pointer(&u)))
	require.Zero(t, errno, "VFIO_IOMMU_UNMAP_DMA: %v", errno)
	assert.EqualValues(t, size, u.Size, "bytes unmapped")

	name := append([]byte(dev), 0)
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(group), vfioGroupGetDeviceFD, uintptr(unsafe.Pointer(&name[0])))
	require.Zero(t, errno, "VFIO_GROUP_GET_DEVICE_FD %s: %v", dev, errno)
	unix.Close(int(fd))

	require.FileExists(t, "/dev/hpet")
	hpet, err := os.Open("/dev/hpet")
	require.NoError(t, err, "open /dev/hpet")
	hpet.Close()
}
