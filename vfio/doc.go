// Package vfio is how gopmd's poll-mode drivers reach real PCI devices:
// thin wrappers over the kernel's VFIO interface (containers, IOMMU
// groups, devices) for DMA mappings, register access and interrupts.
//
// # Objects and their lives
//
// A Container is an IOMMU context. Groups are added to it (AddGroup; the
// group must be viable, every member on vfio-pci or no driver), its IOMMU
// model is set once (SetIOMMU: type1v2 where the kernel has it), and
// devices are opened through their group (Group.Device, or
// Container.OpenDevice for all three steps). The container owns its
// groups and they own their devices: Container.Close closes everything,
// and the kernel then drops the DMA mappings and resets the devices it has
// a reset for.
// These are process-local objects around file descriptors; none of them
// belongs in shared memory.
//
// # DMA
//
// MapDMA maps process memory at an IOVA of our choosing. MapMemory maps a
// hugemem group the way hugemem.Memory.IOVA expects in VA mode: each
// segment at hugemem.IOVABase plus its group offset, so any process of the
// group computes the same IOVA for the same byte. Call it again after the
// group grew; it maps only the new segments.
//
// # Registers and interrupts
//
// Device.BAR returns a BAR accessor: memory BARs are mmap'd and accessed
// without system calls, I/O port BARs (legacy virtio) go through
// pread/pwrite on the device descriptor. Config space is read and written
// the same way (ConfigRead, ConfigWrite, Config for the capability list).
// EnableMSIX delivers each vector on its own eventfd; EnableINTx is the
// fallback for devices without MSI-X.
//
// # Secondary processes
//
// A secondary needs no VFIO set-up of its own. The primary runs Serve on
// its mp IPC endpoint; a secondary calls Attach, which receives duplicates
// of the container, group and device descriptors (action "vfio_fds") and
// builds its own objects from them (FromFDs). The DMA mappings are the
// primary's, and the secondary mmaps the BARs itself to reach its queues'
// doorbells.
//
// # Errors
//
// Every failed system call is an *Error naming the device (or group, or
// container), the operation and the errno:
//
//	vfio: 0000:00:10.0: VFIO_DEVICE_GET_REGION_INFO region 4: errno EINVAL (invalid argument)
package vfio
