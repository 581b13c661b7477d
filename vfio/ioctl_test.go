package vfio

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/internal/testenv"
)

// layoutFacts pairs a C expression over <linux/vfio.h> with the value this
// package uses for it.
var layoutFacts = []struct {
	c    string
	ours uintptr
}{
	{"VFIO_API_VERSION", apiVersion},
	{"VFIO_TYPE1_IOMMU", iommuType1},
	{"VFIO_TYPE1v2_IOMMU", iommuType1v2},
	{"VFIO_GET_API_VERSION", ioctlGetAPIVersion},
	{"VFIO_CHECK_EXTENSION", ioctlCheckExtension},
	{"VFIO_SET_IOMMU", ioctlSetIOMMU},
	{"VFIO_GROUP_GET_STATUS", ioctlGroupGetStatus},
	{"VFIO_GROUP_SET_CONTAINER", ioctlGroupSetContainer},
	{"VFIO_GROUP_UNSET_CONTAINER", ioctlGroupUnsetContainer},
	{"VFIO_GROUP_GET_DEVICE_FD", ioctlGroupGetDeviceFD},
	{"VFIO_DEVICE_GET_INFO", ioctlDeviceGetInfo},
	{"VFIO_DEVICE_GET_REGION_INFO", ioctlDeviceGetRegionInfo},
	{"VFIO_DEVICE_GET_IRQ_INFO", ioctlDeviceGetIRQInfo},
	{"VFIO_DEVICE_SET_IRQS", ioctlDeviceSetIRQs},
	{"VFIO_DEVICE_RESET", ioctlDeviceReset},
	{"VFIO_IOMMU_GET_INFO", ioctlIOMMUGetInfo},
	{"VFIO_IOMMU_MAP_DMA", ioctlIOMMUMapDMA},
	{"VFIO_IOMMU_UNMAP_DMA", ioctlIOMMUUnmapDMA},
	{"VFIO_GROUP_FLAGS_VIABLE", groupFlagsViable},
	{"VFIO_GROUP_FLAGS_CONTAINER_SET", groupFlagsContainerSet},
	{"VFIO_IOMMU_INFO_CAPS", iommuInfoCaps},
	{"VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE", iommuInfoCapIOVARange},
	{"VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL", iommuInfoCapDMAAvail},
	{"VFIO_DMA_MAP_FLAG_READ", dmaMapFlagRead},
	{"VFIO_DMA_MAP_FLAG_WRITE", dmaMapFlagWrite},
	{"VFIO_REGION_INFO_CAP_SPARSE_MMAP", regionInfoCapSparseMmap},
	{"VFIO_REGION_INFO_CAP_MSIX_MAPPABLE", regionInfoCapMSIXMappable},
	{"VFIO_IRQ_SET_DATA_NONE", irqSetDataNone},
	{"VFIO_IRQ_SET_DATA_EVENTFD", irqSetDataEventFD},
	{"VFIO_IRQ_SET_ACTION_UNMASK", irqSetActionUnmask},
	{"VFIO_IRQ_SET_ACTION_TRIGGER", irqSetActionTrigger},
	{"VFIO_DEVICE_FLAGS_RESET", DeviceFlagReset},
	{"VFIO_DEVICE_FLAGS_PCI", DeviceFlagPCI},
	{"VFIO_DEVICE_FLAGS_CAPS", DeviceFlagCaps},
	{"VFIO_REGION_INFO_FLAG_READ", RegionRead},
	{"VFIO_REGION_INFO_FLAG_WRITE", RegionWrite},
	{"VFIO_REGION_INFO_FLAG_MMAP", RegionMmap},
	{"VFIO_REGION_INFO_FLAG_CAPS", RegionCaps},
	{"VFIO_IRQ_INFO_EVENTFD", IRQEventFD},
	{"VFIO_IRQ_INFO_MASKABLE", IRQMaskable},
	{"VFIO_IRQ_INFO_AUTOMASKED", IRQAutomasked},
	{"VFIO_IRQ_INFO_NORESIZE", IRQNoResize},
	{"VFIO_PCI_BAR0_REGION_INDEX", RegionBAR0},
	{"VFIO_PCI_ROM_REGION_INDEX", RegionROM},
	{"VFIO_PCI_CONFIG_REGION_INDEX", RegionConfig},
	{"VFIO_PCI_VGA_REGION_INDEX", RegionVGA},
	{"VFIO_PCI_INTX_IRQ_INDEX", IRQINTx},
	{"VFIO_PCI_MSI_IRQ_INDEX", IRQMSI},
	{"VFIO_PCI_MSIX_IRQ_INDEX", IRQMSIX},
	{"VFIO_PCI_ERR_IRQ_INDEX", IRQErr},
	{"VFIO_PCI_REQ_IRQ_INDEX", IRQReq},

	{"sizeof(struct vfio_group_status)", unsafe.Sizeof(groupStatus{})},
	{"offsetof(struct vfio_group_status, flags)", unsafe.Offsetof(groupStatus{}.Flags)},
	// Linux 6.1 ends vfio_device_info at cap_offset; later headers add a
	// pad word, so compare where our struct ends with that field's end.
	{"offsetof(struct vfio_device_info, cap_offset) + 4", unsafe.Sizeof(deviceInfo{})},
	{"offsetof(struct vfio_device_info, num_regions)", unsafe.Offsetof(deviceInfo{}.NumRegions)},
	{"offsetof(struct vfio_device_info, num_irqs)", unsafe.Offsetof(deviceInfo{}.NumIRQs)},
	{"sizeof(struct vfio_region_info)", unsafe.Sizeof(regionInfo{})},
	{"offsetof(struct vfio_region_info, index)", unsafe.Offsetof(regionInfo{}.Index)},
	{"offsetof(struct vfio_region_info, cap_offset)", unsafe.Offsetof(regionInfo{}.CapOffset)},
	{"offsetof(struct vfio_region_info, size)", unsafe.Offsetof(regionInfo{}.Size)},
	{"offsetof(struct vfio_region_info, offset)", unsafe.Offsetof(regionInfo{}.Offset)},
	{"sizeof(struct vfio_info_cap_header)", unsafe.Sizeof(infoCapHeader{})},
	{"offsetof(struct vfio_info_cap_header, version)", unsafe.Offsetof(infoCapHeader{}.Version)},
	{"offsetof(struct vfio_info_cap_header, next)", unsafe.Offsetof(infoCapHeader{}.Next)},
	{"sizeof(struct vfio_region_info_cap_sparse_mmap)", unsafe.Sizeof(regionSparseMmap{})},
	{"offsetof(struct vfio_region_info_cap_sparse_mmap, nr_areas)", unsafe.Offsetof(regionSparseMmap{}.NrAreas)},
	{"offsetof(struct vfio_region_info_cap_sparse_mmap, areas)", unsafe.Sizeof(regionSparseMmap{})},
	{"sizeof(struct vfio_region_sparse_mmap_area)", unsafe.Sizeof(sparseMmapArea{})},
	{"offsetof(struct vfio_region_sparse_mmap_area, size)", unsafe.Offsetof(sparseMmapArea{}.Size)},
	{"sizeof(struct vfio_irq_info)", unsafe.Sizeof(irqInfo{})},
	{"offsetof(struct vfio_irq_info, index)", unsafe.Offsetof(irqInfo{}.Index)},
	{"offsetof(struct vfio_irq_info, count)", unsafe.Offsetof(irqInfo{}.Count)},
	{"sizeof(struct vfio_irq_set)", unsafe.Sizeof(irqSet{})},
	{"offsetof(struct vfio_irq_set, start)", unsafe.Offsetof(irqSet{}.Start)},
	{"offsetof(struct vfio_irq_set, count)", unsafe.Offsetof(irqSet{}.Count)},
	{"offsetof(struct vfio_irq_set, data)", unsafe.Sizeof(irqSet{})},
	{"sizeof(struct vfio_iommu_type1_info)", unsafe.Sizeof(iommuType1Info{})},
	{"offsetof(struct vfio_iommu_type1_info, iova_pgsizes)", unsafe.Offsetof(iommuType1Info{}.IOVAPgsizes)},
	{"offsetof(struct vfio_iommu_type1_info, cap_offset)", unsafe.Offsetof(iommuType1Info{}.CapOffset)},
	{"sizeof(struct vfio_iommu_type1_info_cap_iova_range)", unsafe.Sizeof(iommuCapIOVARange{})},
	{"offsetof(struct vfio_iommu_type1_info_cap_iova_range, nr_iovas)", unsafe.Offsetof(iommuCapIOVARange{}.NrIOVAs)},
	{"offsetof(struct vfio_iommu_type1_info_cap_iova_range, iova_ranges)", unsafe.Sizeof(iommuCapIOVARange{})},
	{"sizeof(struct vfio_iova_range)", unsafe.Sizeof(iovaRange{})},
	{"offsetof(struct vfio_iova_range, end)", unsafe.Offsetof(iovaRange{}.End)},
	{"offsetof(struct vfio_iommu_type1_info_dma_avail, avail)", unsafe.Offsetof(iommuCapDMAAvail{}.Avail)},
	{"sizeof(struct vfio_iommu_type1_dma_map)", unsafe.Sizeof(dmaMap{})},
	{"offsetof(struct vfio_iommu_type1_dma_map, vaddr)", unsafe.Offsetof(dmaMap{}.Vaddr)},
	{"offsetof(struct vfio_iommu_type1_dma_map, iova)", unsafe.Offsetof(dmaMap{}.IOVA)},
	{"offsetof(struct vfio_iommu_type1_dma_map, size)", unsafe.Offsetof(dmaMap{}.Size)},
	{"sizeof(struct vfio_iommu_type1_dma_unmap)", unsafe.Sizeof(dmaUnmap{})},
	{"offsetof(struct vfio_iommu_type1_dma_unmap, iova)", unsafe.Offsetof(dmaUnmap{}.IOVA)},
	{"offsetof(struct vfio_iommu_type1_dma_unmap, size)", unsafe.Offsetof(dmaUnmap{}.Size)},
}

// TestLayoutMatchesKernelHeader compiles a C program that prints every
// fact of layoutFacts from the installed <linux/vfio.h> and compares.
func TestLayoutMatchesKernelHeader(t *testing.T) {
	cc := testenv.RequireCommand(t, "cc")
	if _, err := os.Stat("/usr/include/linux/vfio.h"); err != nil {
		testenv.Missing(t, "/usr/include/linux/vfio.h (install linux-libc-dev)")
	}
	var src strings.Builder
	src.WriteString("#include <stdio.h>\n#include <stddef.h>\n#include <linux/vfio.h>\nint main(void) {\n")
	for _, f := range layoutFacts {
		fmt.Fprintf(&src, "\tprintf(\"%%lu\\n\", (unsigned long)(%s));\n", f.c)
	}
	src.WriteString("\treturn 0;\n}\n")
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "layout.c"), []byte(src.String()), 0o644))
	out, err := exec.Command(cc, "-o", filepath.Join(dir, "layout"), filepath.Join(dir, "layout.c")).CombinedOutput()
	require.NoError(t, err, "cc: %s", out)
	out, err = exec.Command(filepath.Join(dir, "layout")).Output()
	require.NoError(t, err)
	lines := strings.Fields(string(out))
	require.Len(t, lines, len(layoutFacts))
	for i, f := range layoutFacts {
		v, err := strconv.ParseUint(lines[i], 10, 64)
		require.NoError(t, err)
		assert.Equal(t, uint64(v), uint64(f.ours), "%s: header says %d, vfio uses %d", f.c, v, f.ours)
	}
}

// TestLayoutIsLinux61 pins the sizes the kernel checks argsz against, for
// hosts without a C compiler.
func TestLayoutIsLinux61(t *testing.T) {
	sizes := map[string][2]uintptr{
		"vfio_group_status":            {unsafe.Sizeof(groupStatus{}), 8},
		"vfio_device_info":             {unsafe.Sizeof(deviceInfo{}), 20},
		"vfio_region_info":             {unsafe.Sizeof(regionInfo{}), 32},
		"vfio_irq_info":                {unsafe.Sizeof(irqInfo{}), 16},
		"vfio_irq_set":                 {unsafe.Sizeof(irqSet{}), 20},
		"vfio_iommu_type1_info":        {unsafe.Sizeof(iommuType1Info{}), 24},
		"vfio_iommu_type1_dma_map":     {unsafe.Sizeof(dmaMap{}), 32},
		"vfio_iommu_type1_dma_unmap":   {unsafe.Sizeof(dmaUnmap{}), 24},
		"vfio_region_sparse_mmap_area": {unsafe.Sizeof(sparseMmapArea{}), 16},
	}
	for name, s := range sizes {
		assert.Equal(t, s[1], s[0], "sizeof(struct %s)", name)
	}
}

func TestErrorNamesObjectOperationAndErrno(t *testing.T) {
	err := error(&Error{"0000:00:10.0", "VFIO_DEVICE_GET_REGION_INFO region 4", unix.EINVAL})
	assert.EqualError(t, err, "vfio: 0000:00:10.0: VFIO_DEVICE_GET_REGION_INFO region 4: errno EINVAL (invalid argument)")
	assert.ErrorIs(t, err, unix.EINVAL)
	var ve *Error
	require.True(t, errors.As(fmt.Errorf("probe: %w", err), &ve))
	assert.Equal(t, unix.EINVAL, ve.Errno)
}

// fakeBAR returns a BAR over n bytes of ordinary memory (as if mmap'd) or,
// with io, over a temporary file standing in for the device fd at region
// offset 0x1000.
func fakeBAR(t *testing.T, n int, io bool) *BAR {
	t.Helper()
	f, err := os.CreateTemp(t.TempDir(), "devfd")
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	require.NoError(t, f.Truncate(0x1000+int64(n)))
	d := &Device{name: "0000:00:10.0", fd: int(f.Fd())}
	b := &BAR{dev: d, index: 4, size: uint64(n), offset: 0x1000, io: io}
	if !io {
		mem, err := unix.Mmap(-1, 0, n, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS)
		require.NoError(t, err)
		t.Cleanup(func() { unix.Munmap(mem) })
		b.mem, b.base, b.areas = mem, unsafe.Pointer(&mem[0]), []Area{{0, uint64(n)}}
	}
	return b
}

func TestMappedBARReadsWhatWasWritten(t *testing.T) {
	b := fakeBAR(t, 4096, false)
	require.NoError(t, b.Write32(0x14, 0xdeadbeef))
	require.NoError(t, b.Write16(0x1a, 0x1234))
	require.NoError(t, b.Write8(0x1c, 0x56))
	require.NoError(t, b.Write64(0x20, 0x0102030405060708))
	v32, err := b.Read32(0x14)
	require.NoError(t, err)
	assert.Equal(t, uint32(0xdeadbeef), v32)
	v16, _ := b.Read16(0x1a)
	v8, _ := b.Read8(0x1c)
	v64, _ := b.Read64(0x20)
	assert.Equal(t, uint16(0x1234), v16)
	assert.Equal(t, uint8(0x56), v8)
	assert.Equal(t, uint64(0x0102030405060708), v64)
	assert.Equal(t, byte(0xef), b.mem[0x14], "little-endian, straight into the mapping")
	assert.True(t, b.Mapped(0, 4096))
	s, err := b.Slice(0x14, 4)
	require.NoError(t, err)
	assert.Equal(t, []byte{0xef, 0xbe, 0xad, 0xde}, s)
}

func TestIOBARGoesThroughTheDeviceFD(t *testing.T) {
	b := fakeBAR(t, 32, true)
	require.NoError(t, b.Write32(0, 0x11223344))
	require.NoError(t, b.Write8(18, 7))
	v, err := b.Read32(0)
	require.NoError(t, err)
	assert.Equal(t, uint32(0x11223344), v)
	s, err := b.Read8(18)
	require.NoError(t, err)
	assert.Equal(t, uint8(7), s)
	var raw [4]byte
	_, err = unix.Pread(b.dev.fd, raw[:], 0x1000)
	require.NoError(t, err)
	assert.Equal(t, [4]byte{0x44, 0x33, 0x22, 0x11}, raw, "written at the region's offset in the fd")
	assert.False(t, b.Mapped(0, 4))
	_, err = b.Slice(0, 4)
	assert.ErrorContains(t, err, "BAR 4 bytes 0x0+4 are not mmap'd")
}

func TestBARAccessOutsideOrMisalignedIsAnError(t *testing.T) {
	for _, io := range []bool{false, true} {
		b := fakeBAR(t, 32, io)
		_, err := b.Read32(32)
		assert.EqualError(t, err, "vfio: 0000:00:10.0: BAR 4: 4-byte read at 0x20 outside its 32 bytes", "io=%v", io)
		err = b.Write16(31, 1)
		assert.EqualError(t, err, "vfio: 0000:00:10.0: BAR 4: 2-byte write at 0x1f is not aligned", "io=%v", io)
		_, err = b.Read32(1 << 63)
		assert.Error(t, err, "huge offsets must not wrap into range (io=%v)", io)
	}
	io := fakeBAR(t, 32, true)
	_, err := io.Read64(0)
	assert.EqualError(t, err, "vfio: 0000:00:10.0: BAR 4 is an I/O BAR: 8-byte read at 0x0; I/O ports take 1, 2 or 4 bytes")
}

func TestBARAccessorsDoNotAllocate(t *testing.T) {
	mem := fakeBAR(t, 4096, false)
	io := fakeBAR(t, 32, true)
	allocs := testing.AllocsPerRun(100, func() {
		mem.Write32(0x10, 1)
		mem.Read32(0x10)
		mem.Write16(0x12, 1)
		io.Write16(0x10, 1)
		io.Read32(0)
	})
	assert.Zero(t, allocs, "allocations per doorbell write and register read")
}

func TestEventFDWaitReturnsCountOrTimesOut(t *testing.T) {
	e, err := newEventFD()
	require.NoError(t, err)
	defer e.close()
	n, err := e.Read()
	require.NoError(t, err)
	assert.Zero(t, n, "nothing pending")

	var one [8]byte
	one[0] = 3
	_, err = unix.Write(e.fd, one[:])
	require.NoError(t, err)
	n, err = e.Wait(0)
	require.NoError(t, err)
	assert.Equal(t, uint64(3), n, "a pending count is returned even with no time left")

	_, err = e.Wait(20e6)
	require.ErrorIs(t, err, os.ErrDeadlineExceeded)
}

func TestOpenContainerWithoutVFIOSaysHowToLoadIt(t *testing.T) {
	if _, err := os.Stat(ContainerPath); err == nil {
		t.Skip("this host has VFIO; the VM tests cover OpenContainer")
	}
	_, err := OpenContainer()
	assert.EqualError(t, err, "vfio: /dev/vfio/vfio does not exist: VFIO is not loaded (modprobe vfio-pci)")
}
