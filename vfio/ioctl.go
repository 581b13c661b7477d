package vfio

import (
	"fmt"
	"unsafe"

	"golang.org/x/sys/unix"
)

// This file is the only place that knows the kernel's VFIO ABI
// (include/uapi/linux/vfio.h): ioctl numbers, flags and struct layouts.
// TestLayoutMatchesKernelHeader compiles the header with cc and compares.

// VFIO ioctls: _IO(VFIO_TYPE ';', VFIO_BASE 100 + n). The argument, if any,
// is a pointer or an int passed by value despite the _IO encoding.
const (
	ioctlGetAPIVersion        = 0x3b64 // VFIO_GET_API_VERSION
	ioctlCheckExtension       = 0x3b65 // VFIO_CHECK_EXTENSION
	ioctlSetIOMMU             = 0x3b66 // VFIO_SET_IOMMU
	ioctlGroupGetStatus       = 0x3b67 // VFIO_GROUP_GET_STATUS
	ioctlGroupSetContainer    = 0x3b68 // VFIO_GROUP_SET_CONTAINER
	ioctlGroupUnsetContainer  = 0x3b69 // VFIO_GROUP_UNSET_CONTAINER
	ioctlGroupGetDeviceFD     = 0x3b6a // VFIO_GROUP_GET_DEVICE_FD
	ioctlDeviceGetInfo        = 0x3b6b // VFIO_DEVICE_GET_INFO
	ioctlDeviceGetRegionInfo  = 0x3b6c // VFIO_DEVICE_GET_REGION_INFO
	ioctlDeviceGetIRQInfo     = 0x3b6d // VFIO_DEVICE_GET_IRQ_INFO
	ioctlDeviceSetIRQs        = 0x3b6e // VFIO_DEVICE_SET_IRQS
	ioctlDeviceReset          = 0x3b6f // VFIO_DEVICE_RESET
	ioctlIOMMUGetInfo         = 0x3b70 // VFIO_IOMMU_GET_INFO
	ioctlIOMMUMapDMA          = 0x3b71 // VFIO_IOMMU_MAP_DMA
	ioctlIOMMUUnmapDMA        = 0x3b72 // VFIO_IOMMU_UNMAP_DMA
	apiVersion                = 0      // VFIO_API_VERSION
	iommuType1                = 1      // VFIO_TYPE1_IOMMU
	iommuType1v2              = 3      // VFIO_TYPE1v2_IOMMU
	groupFlagsViable          = 1 << 0 // VFIO_GROUP_FLAGS_VIABLE
	groupFlagsContainerSet    = 1 << 1 // VFIO_GROUP_FLAGS_CONTAINER_SET
	iommuInfoCaps             = 1 << 1 // VFIO_IOMMU_INFO_CAPS
	iommuInfoCapIOVARange     = 1      // VFIO_IOMMU_TYPE1_INFO_CAP_IOVA_RANGE
	iommuInfoCapDMAAvail      = 3      // VFIO_IOMMU_TYPE1_INFO_DMA_AVAIL
	dmaMapFlagRead            = 1 << 0 // VFIO_DMA_MAP_FLAG_READ
	dmaMapFlagWrite           = 1 << 1 // VFIO_DMA_MAP_FLAG_WRITE
	regionInfoCapSparseMmap   = 1      // VFIO_REGION_INFO_CAP_SPARSE_MMAP
	regionInfoCapMSIXMappable = 3      // VFIO_REGION_INFO_CAP_MSIX_MAPPABLE
	irqSetDataNone            = 1 << 0 // VFIO_IRQ_SET_DATA_NONE
	irqSetDataEventFD         = 1 << 2 // VFIO_IRQ_SET_DATA_EVENTFD
	irqSetActionUnmask        = 1 << 4 // VFIO_IRQ_SET_ACTION_UNMASK
	irqSetActionTrigger       = 1 << 5 // VFIO_IRQ_SET_ACTION_TRIGGER
)

// Device info flags (struct vfio_device_info.flags).
const (
	DeviceFlagReset = 1 << 0 // VFIO_DEVICE_FLAGS_RESET: Reset works
	DeviceFlagPCI   = 1 << 1 // VFIO_DEVICE_FLAGS_PCI: a vfio-pci device
	DeviceFlagCaps  = 1 << 7 // VFIO_DEVICE_FLAGS_CAPS
)

// Region info flags (struct vfio_region_info.flags).
const (
	RegionRead  = 1 << 0 // VFIO_REGION_INFO_FLAG_READ: pread works
	RegionWrite = 1 << 1 // VFIO_REGION_INFO_FLAG_WRITE: pwrite works
	RegionMmap  = 1 << 2 // VFIO_REGION_INFO_FLAG_MMAP: mmap works (see RegionInfo.Sparse)
	RegionCaps  = 1 << 3 // VFIO_REGION_INFO_FLAG_CAPS
)

// IRQ info flags (struct vfio_irq_info.flags).
const (
	IRQEventFD    = 1 << 0 // VFIO_IRQ_INFO_EVENTFD
	IRQMaskable   = 1 << 1 // VFIO_IRQ_INFO_MASKABLE
	IRQAutomasked = 1 << 2 // VFIO_IRQ_INFO_AUTOMASKED: unmask after each interrupt
	IRQNoResize   = 1 << 3 // VFIO_IRQ_INFO_NORESIZE
)

// Region indexes of a vfio-pci device (VFIO_PCI_*_REGION_INDEX).
const (
	RegionBAR0   = 0 // BARs are regions 0..5
	RegionROM    = 6
	RegionConfig = 7
	RegionVGA    = 8
)

// IRQ indexes of a vfio-pci device (VFIO_PCI_*_IRQ_INDEX).
const (
	IRQINTx = 0
	IRQMSI  = 1
	IRQMSIX = 2
	IRQErr  = 3
	IRQReq  = 4
)

// struct vfio_group_status
type groupStatus struct {
	Argsz uint32
	Flags uint32
}

// struct vfio_device_info as of Linux 6.1 (later kernels append a pad
// word; argsz tells them which layout we pass).
type deviceInfo struct {
	Argsz      uint32
	Flags      uint32
	NumRegions uint32
	NumIRQs    uint32
	CapOffset  uint32
}

// struct vfio_region_info
type regionInfo struct {
	Argsz     uint32
	Flags     uint32
	Index     uint32
	CapOffset uint32
	Size      uint64
	Offset    uint64
}

// struct vfio_info_cap_header, the head of each capability in a chain
// that follows an info struct.
type infoCapHeader struct {
	ID      uint16
	Version uint16
	Next    uint32
}

// struct vfio_region_info_cap_sparse_mmap, followed by NrAreas areas.
type regionSparseMmap struct {
	Header   infoCapHeader
	NrAreas  uint32
	Reserved uint32
}

// struct vfio_region_sparse_mmap_area
type sparseMmapArea struct {
	Offset uint64
	Size   uint64
}

// struct vfio_irq_info
type irqInfo struct {
	Argsz uint32
	Flags uint32
	Index uint32
	Count uint32
}

// struct vfio_irq_set, followed by Count data elements.
type irqSet struct {
	Argsz uint32
	Flags uint32
	Index uint32
	Start uint32
	Count uint32
}

// struct vfio_iommu_type1_info
type iommuType1Info struct {
	Argsz       uint32
	Flags       uint32
	IOVAPgsizes uint64
	CapOffset   uint32
	_           uint32
}

// struct vfio_iommu_type1_info_cap_iova_range, followed by NrIOVAs ranges.
type iommuCapIOVARange struct {
	Header   infoCapHeader
	NrIOVAs  uint32
	Reserved uint32
}

// struct vfio_iova_range
type iovaRange struct {
	Start uint64
	End   uint64
}

// struct vfio_iommu_type1_info_dma_avail
type iommuCapDMAAvail struct {
	Header infoCapHeader
	Avail  uint32
}

// struct vfio_iommu_type1_dma_map
type dmaMap struct {
	Argsz uint32
	Flags uint32
	Vaddr uint64
	IOVA  uint64
	Size  uint64
}

// struct vfio_iommu_type1_dma_unmap
type dmaUnmap struct {
	Argsz uint32
	Flags uint32
	IOVA  uint64
	Size  uint64
}

// Error is a failed VFIO system call: which object, which operation, and
// the errno.
type Error struct {
	Object string // "0000:00:10.0", "group 7", "container"
	Op     string // "VFIO_DEVICE_GET_REGION_INFO region 4"
	Errno  unix.Errno
}

func (e *Error) Error() string {
	return fmt.Sprintf("vfio: %s: %s: errno %s (%v)", e.Object, e.Op, unix.ErrnoName(e.Errno), e.Errno)
}

// Unwrap returns the errno, for errors.Is(err, unix.EINVAL) and the like.
func (e *Error) Unwrap() error { return e.Errno }

// ioctlPtr issues an ioctl whose argument is a pointer.
func ioctlPtr(fd int, req uintptr, arg unsafe.Pointer) (uintptr, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, uintptr(arg))
	return r, errno
}

// ioctlVal issues an ioctl whose argument is a plain number.
func ioctlVal(fd int, req, arg uintptr) (uintptr, unix.Errno) {
	r, _, errno := unix.Syscall(unix.SYS_IOCTL, uintptr(fd), req, arg)
	return r, errno
}

// walkCaps calls fn for each capability in the chain that starts at
// offset first of buf (an info struct as the kernel filled it), until fn
// returns false. Offsets out of range or going backwards end the walk.
func walkCaps(buf []byte, first uint32, fn func(h infoCapHeader, off int) bool) {
	hdr := int(unsafe.Sizeof(infoCapHeader{}))
	for off, n := int(first), 0; off != 0 && off+hdr <= len(buf) && n < 64; n++ {
		h := *(*infoCapHeader)(unsafe.Pointer(&buf[off]))
		if !fn(h, off) || int(h.Next) <= off {
			return
		}
		off = int(h.Next)
	}
}
