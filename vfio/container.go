package vfio

import (
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/pci"
)

// ContainerPath is the VFIO container device.
const ContainerPath = "/dev/vfio/vfio"

// dmaAlign is the granularity MapDMA asks for: the smallest IOMMU page.
const dmaAlign = 4096

// Container is an IOMMU context: the groups added to it share one set of
// DMA mappings. It owns its groups, which own their devices; Close closes
// them all. Its methods are safe for concurrent use.
type Container struct {
	fd int

	mu      sync.Mutex
	iommu   int // iommuType1 or iommuType1v2 once set, -1 when set by another process
	groups  map[int]*Group
	devices map[pci.Addr]*Device
	dma     []dmaRange // mappings made through this object, by IOVA
	mems    []*hugemem.Memory
	closed  bool

	// dmaIoctl issues the MAP_DMA and UNMAP_DMA ioctls; tests replace it
	// to follow the mappings without an IOMMU.
	dmaIoctl func(fd int, req uintptr, arg unsafe.Pointer) (uintptr, unix.Errno)
}

type dmaRange struct {
	iova, size uint64
	vaddr      uintptr
	mem        *hugemem.Memory // the group memory mapped (MapMemory), nil for MapDMA
}

// OpenContainer opens a new container and checks that the kernel speaks
// this VFIO API and offers a type1 IOMMU.
func OpenContainer() (*Container, error) {
	fd, err := unix.Open(ContainerPath, unix.O_RDWR|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("vfio: %s does not exist: VFIO is not loaded (modprobe vfio-pci)", ContainerPath)
	}
	if err != nil {
		return nil, fmt.Errorf("vfio: open %s: %w", ContainerPath, err)
	}
	c := newContainer(fd, 0)
	if err := c.checkAPI(); err != nil {
		unix.Close(fd)
		return nil, err
	}
	if c.extension(iommuType1v2) == 0 && c.extension(iommuType1) == 0 {
		unix.Close(fd)
		return nil, fmt.Errorf("vfio: container: the kernel offers no type1 IOMMU (VFIO_CHECK_EXTENSION); is vfio_iommu_type1 loaded and the IOMMU on?")
	}
	return c, nil
}

func newContainer(fd, iommu int) *Container {
	return &Container{fd: fd, iommu: iommu, groups: map[int]*Group{}, devices: map[pci.Addr]*Device{}, dmaIoctl: ioctlPtr}
}

func (c *Container) checkAPI() error {
	v, errno := ioctlVal(c.fd, ioctlGetAPIVersion, 0)
	if errno != 0 {
		return &Error{"container", "VFIO_GET_API_VERSION", errno}
	}
	if v != apiVersion {
		return fmt.Errorf("vfio: container: kernel VFIO API version %d, this package speaks %d", v, apiVersion)
	}
	return nil
}

func (c *Container) extension(ext uintptr) uintptr {
	r, errno := ioctlVal(c.fd, ioctlCheckExtension, ext)
	if errno != 0 {
		return 0
	}
	return r
}

// FD returns the container's file descriptor, owned by the Container.
func (c *Container) FD() int { return c.fd }

// AddGroup adds IOMMU group n to the container. The group must be viable:
// every device in it bound to vfio-pci or to no driver (pci-stub and
// PCIe port drivers are allowed too); if not, the error names the device
// and driver in the way. Adding a group twice returns the same Group.
func (c *Container) AddGroup(n int) (*Group, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errors.New("vfio: container: AddGroup after Close")
	}
	if g, ok := c.groups[n]; ok {
		return g, nil
	}
	path := fmt.Sprintf("/dev/vfio/%d", n)
	fd, err := unix.Open(path, unix.O_RDWR|unix.O_CLOEXEC, 0)
	switch {
	case errors.Is(err, unix.ENOENT):
		return nil, fmt.Errorf("vfio: group %d: %s does not exist: no device of the group is bound to vfio-pci", n, path)
	case errors.Is(err, unix.EBUSY):
		return nil, fmt.Errorf("vfio: group %d: %s is busy: another process (or another container of this one) has the group open", n, path)
	case err != nil:
		return nil, fmt.Errorf("vfio: group %d: open %s: %w", n, path, err)
	}
	g := &Group{n: n, fd: fd, c: c}
	fail := func(err error) (*Group, error) {
		unix.Close(fd)
		return nil, err
	}
	st, err := g.status()
	if err != nil {
		return fail(err)
	}
	if st&groupFlagsViable == 0 {
		return fail(notViable(n))
	}
	if g.members, err = (pci.Sysfs{}).Group(n); err != nil {
		return fail(fmt.Errorf("vfio: group %d: %w", n, err))
	}
	if _, errno := ioctlPtr(fd, ioctlGroupSetContainer, unsafe.Pointer(&c.fd)); errno != 0 {
		return fail(&Error{g.name(), "VFIO_GROUP_SET_CONTAINER", errno})
	}
	c.groups[n] = g
	return g, nil
}

// notViable explains why VFIO calls group n not viable: the first member
// on a driver VFIO cannot share the group with.
func notViable(n int) error {
	s := pci.Sysfs{}
	members, err := s.Group(n)
	if err != nil {
		return fmt.Errorf("vfio: group %d is not viable, and its members cannot be listed: %w", n, err)
	}
	for _, a := range members {
		d, err := s.Lookup(a)
		if err != nil {
			continue
		}
		switch d.Driver {
		case "", pci.VFIODriver, "pci-stub", "pcieport":
		default:
			return fmt.Errorf("vfio: group %d is not viable: device %s is bound to %s (bind it to vfio-pci too, or unbind it): %w",
				n, a, d.Driver, pci.ErrNotViable)
		}
	}
	return fmt.Errorf("vfio: group %d is not viable (VFIO_GROUP_GET_STATUS), though every member %v is on vfio-pci or no driver: %w", n, members, pci.ErrNotViable)
}

// SetIOMMU gives the container its IOMMU model: type1v2 where the kernel
// has it, else type1. The container needs a group first. Calling it again
// does nothing.
func (c *Container) SetIOMMU() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.setIOMMULocked()
}

func (c *Container) setIOMMULocked() error {
	if c.iommu != 0 {
		return nil
	}
	if len(c.groups) == 0 {
		return errors.New("vfio: container: SetIOMMU needs a group (AddGroup first)")
	}
	t := uintptr(iommuType1v2)
	if c.extension(iommuType1v2) == 0 {
		t = iommuType1
	}
	if _, errno := ioctlVal(c.fd, ioctlSetIOMMU, t); errno != 0 {
		return &Error{"container", fmt.Sprintf("VFIO_SET_IOMMU %s", iommuName(int(t))), errno}
	}
	c.iommu = int(t)
	return nil
}

func iommuName(t int) string {
	switch t {
	case iommuType1:
		return "type1"
	case iommuType1v2:
		return "type1v2"
	case -1:
		return "set by another process"
	}
	return "none"
}

// IOMMU returns the container's IOMMU model: "type1v2", "type1", "none"
// before SetIOMMU, or "set by another process" for a container received
// with FromFDs.
func (c *Container) IOMMU() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return iommuName(c.iommu)
}

// IOVARange is a span of IOVAs the IOMMU can map, both ends included.
type IOVARange struct {
	Start, End uint64
}

// IOMMUInfo is what the container's IOMMU can do.
type IOMMUInfo struct {
	PageSizes  uint64      // bitmap of supported IOMMU page sizes
	IOVARanges []IOVARange // usable IOVAs; nil if the kernel does not say
	DMAAvail   int         // mappings that may still be made; -1 if the kernel does not say
}

// IOMMUInfo asks the IOMMU for its page sizes and usable IOVA ranges.
func (c *Container) IOMMUInfo() (IOMMUInfo, error) {
	buf := alignedBuf(int(unsafe.Sizeof(iommuType1Info{})))
	for {
		info := (*iommuType1Info)(unsafe.Pointer(&buf[0]))
		info.Argsz = uint32(len(buf))
		if _, errno := ioctlPtr(c.fd, ioctlIOMMUGetInfo, unsafe.Pointer(&buf[0])); errno != 0 {
			return IOMMUInfo{}, &Error{"container", "VFIO_IOMMU_GET_INFO", errno}
		}
		if int(info.Argsz) > len(buf) {
			buf = alignedBuf(int(info.Argsz))
			continue
		}
		out := IOMMUInfo{PageSizes: info.IOVAPgsizes, DMAAvail: -1}
		if info.Flags&iommuInfoCaps == 0 {
			return out, nil
		}
		walkCaps(buf, info.CapOffset, func(h infoCapHeader, off int) bool {
			switch h.ID {
			case iommuInfoCapIOVARange:
				r := (*iommuCapIOVARange)(unsafe.Pointer(&buf[off]))
				first := off + int(unsafe.Sizeof(*r))
				for i := range int(r.NrIOVAs) {
					p := first + i*int(unsafe.Sizeof(iovaRange{}))
					if p+int(unsafe.Sizeof(iovaRange{})) > len(buf) {
						break
					}
					ir := (*iovaRange)(unsafe.Pointer(&buf[p]))
					out.IOVARanges = append(out.IOVARanges, IOVARange{ir.Start, ir.End})
				}
			case iommuInfoCapDMAAvail:
				if off+int(unsafe.Sizeof(iommuCapDMAAvail{})) <= len(buf) {
					out.DMAAvail = int((*iommuCapDMAAvail)(unsafe.Pointer(&buf[off])).Avail)
				}
			}
			return true
		})
		return out, nil
	}
}

// MapDMA makes size bytes at vaddr in this process visible to the
// container's devices at iova, readable and writable. All three must be
// multiples of 4096. The kernel pins the pages until UnmapDMA or Close.
func (c *Container) MapDMA(vaddr uintptr, iova, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mapDMALocked(vaddr, iova, size, nil)
}

func (c *Container) mapDMALocked(vaddr uintptr, iova, size uint64, mem *hugemem.Memory) error {
	op := fmt.Sprintf("VFIO_IOMMU_MAP_DMA vaddr %#x iova %#x size %#x", vaddr, iova, size)
	switch {
	case c.closed:
		return fmt.Errorf("vfio: container: %s after Close", op)
	case size == 0 || vaddr%dmaAlign != 0 || iova%dmaAlign != 0 || size%dmaAlign != 0:
		return fmt.Errorf("vfio: container: %s: vaddr, iova and size must be non-zero multiples of %d", op, dmaAlign)
	case iova+size < iova:
		return fmt.Errorf("vfio: container: %s: the range wraps around", op)
	case c.iommu == 0:
		return fmt.Errorf("vfio: container: %s before SetIOMMU", op)
	}
	m := dmaMap{Argsz: uint32(unsafe.Sizeof(dmaMap{})), Flags: dmaMapFlagRead | dmaMapFlagWrite,
		Vaddr: uint64(vaddr), IOVA: iova, Size: size}
	if _, errno := c.dmaIoctl(c.fd, ioctlIOMMUMapDMA, unsafe.Pointer(&m)); errno != 0 {
		return &Error{"container", op, errno}
	}
	i, _ := slices.BinarySearchFunc(c.dma, iova, func(r dmaRange, iova uint64) int { return cmpU64(r.iova, iova) })
	c.dma = slices.Insert(c.dma, i, dmaRange{iova: iova, size: size, vaddr: vaddr, mem: mem})
	return nil
}

// UnmapDMA removes the mapping of size bytes at iova. It must match a
// whole earlier MapDMA (type1 does not split mappings reliably).
func (c *Container) UnmapDMA(iova, size uint64) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.unmapDMALocked(iova, size)
}

func (c *Container) unmapDMALocked(iova, size uint64) error {
	op := fmt.Sprintf("VFIO_IOMMU_UNMAP_DMA iova %#x size %#x", iova, size)
	if c.closed {
		return fmt.Errorf("vfio: container: %s after Close", op)
	}
	u := dmaUnmap{Argsz: uint32(unsafe.Sizeof(dmaUnmap{})), IOVA: iova, Size: size}
	if _, errno := c.dmaIoctl(c.fd, ioctlIOMMUUnmapDMA, unsafe.Pointer(&u)); errno != 0 {
		return &Error{"container", op, errno}
	}
	c.dma = slices.DeleteFunc(c.dma, func(r dmaRange) bool { return r.iova >= iova && r.iova+r.size <= iova+size })
	if u.Size != size {
		return fmt.Errorf("vfio: container: %s unmapped %#x bytes (no mapping covers the rest)", op, u.Size)
	}
	return nil
}

// Mapped reports whether iova lies in a mapping made through this
// Container object.
func (c *Container) Mapped(iova uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	i, found := slices.BinarySearchFunc(c.dma, iova, func(r dmaRange, iova uint64) int { return cmpU64(r.iova, iova) })
	if found {
		return true
	}
	return i > 0 && iova-c.dma[i-1].iova < c.dma[i-1].size
}

// MapMemory maps every segment of mem, including segments other processes
// added (it syncs mem first), each at its VA-mode IOVA (hugemem.IOVABase +
// group offset), so that the IOVAs mem.IOVA hands out work for the
// container's devices. Segments already mapped at the same address are
// skipped: call it again after the group grew to map the new ones. The
// container remembers mem and maps its new segments again before it passes
// its descriptors to a secondary (Serve).
//
// When mem is closed, the container unmaps its segments and forgets it, so
// the devices can no longer write into memory that is gone. Every group's
// IOVAs start at hugemem.IOVABase, so one container serves one live group
// at a time: mapping a second one while the first is open is an error.
func (c *Container) MapMemory(mem *hugemem.Memory) error {
	if mem.IOVAMode() != hugemem.IOVAModeVA {
		return fmt.Errorf("vfio: container: MapMemory of group %q: IOVA mode is %v; VFIO maps VA-mode memory only (--iova-mode=va)", mem.Prefix(), mem.IOVAMode())
	}
	// Sync takes the group lock: never while holding c.mu, which a closing
	// Memory's hook takes.
	if err := mem.Sync(); err != nil {
		return fmt.Errorf("vfio: container: MapMemory of group %q: %w", mem.Prefix(), err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return fmt.Errorf("vfio: container: MapMemory of group %q after Close", mem.Prefix())
	}
	if err := c.mapMemoryLocked(mem); err != nil {
		return err
	}
	if !slices.Contains(c.mems, mem) {
		c.mems = append(c.mems, mem)
		mem.OnClose(func() { c.forgetMemory(mem) })
	}
	return nil
}

func (c *Container) mapMemoryLocked(mem *hugemem.Memory) error {
	for _, s := range mem.Segments() {
		iova, err := mem.IOVA(s.Off)
		if err != nil {
			return fmt.Errorf("vfio: container: MapMemory of group %q segment at offset %#x: %w", mem.Prefix(), s.Off, err)
		}
		vaddr := uintptr(mem.Ptr(s.Off))
		var stale []dmaRange
		current := false
		for _, r := range c.dma {
			if r.iova >= iova+s.Len || iova >= r.iova+r.size {
				continue
			}
			switch {
			case r.iova == iova && r.size == s.Len && r.vaddr == vaddr:
				current = true
			case r.mem != nil && r.mem != mem:
				return fmt.Errorf("vfio: container: MapMemory of group %q: IOVA %#x+%#x is mapped to group %q, which is still open: one container maps one group's memory at a time",
					mem.Prefix(), iova, s.Len, r.mem.Prefix())
			default: // an earlier mapping of other addresses at these IOVAs
				stale = append(stale, r)
			}
		}
		if current && len(stale) == 0 {
			continue
		}
		for _, r := range stale {
			if err := c.unmapDMALocked(r.iova, r.size); err != nil {
				return fmt.Errorf("vfio: container: MapMemory of group %q: remove the stale mapping of vaddr %#x at IOVA %#x: %w", mem.Prefix(), r.vaddr, r.iova, err)
			}
		}
		if err := c.mapDMALocked(vaddr, iova, s.Len, mem); err != nil {
			return err
		}
	}
	return nil
}

// forgetMemory runs when mem closes, while it is still mapped: it removes
// mem's DMA mappings and mem itself from the container.
func (c *Container) forgetMemory(mem *hugemem.Memory) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.mems = slices.DeleteFunc(c.mems, func(m *hugemem.Memory) bool { return m == mem })
	if c.closed {
		return
	}
	var mine []dmaRange
	for _, r := range c.dma {
		if r.mem == mem {
			mine = append(mine, r)
		}
	}
	for _, r := range mine {
		if err := c.unmapDMALocked(r.iova, r.size); err != nil {
			slog.Warn("vfio: a closed group's memory stays mapped for DMA", "group", mem.Prefix(), "iova", r.iova, "err", err)
		}
	}
}

// syncMemory maps segments that remembered memories gained since.
func (c *Container) syncMemory() error {
	c.mu.Lock()
	mems := slices.Clone(c.mems)
	c.mu.Unlock()
	for _, m := range mems {
		if err := c.MapMemory(m); err != nil {
			return err
		}
	}
	return nil
}

// OpenDevice opens the vfio-pci device at addr: it adds the device's IOMMU
// group (once), sets the IOMMU (once) and returns the device. The device
// must be bound to vfio-pci already (pci.Bind, or cmd/devbind).
func (c *Container) OpenDevice(addr pci.Addr) (*Device, error) {
	d, err := pci.Lookup(addr)
	if err != nil {
		return nil, fmt.Errorf("vfio: %w", err)
	}
	if d.Driver != pci.VFIODriver {
		drv := d.Driver
		if drv == "" {
			drv = "no driver"
		}
		return nil, fmt.Errorf("vfio: %s is bound to %s, not vfio-pci (devbind --bind=vfio-pci %s)", addr, drv, addr)
	}
	if d.IOMMUGroup < 0 {
		return nil, fmt.Errorf("vfio: %s has no IOMMU group: %w", addr, pci.ErrNoGroup)
	}
	g, err := c.AddGroup(d.IOMMUGroup)
	if err != nil {
		return nil, err
	}
	if err := c.SetIOMMU(); err != nil {
		return nil, err
	}
	return g.Device(addr)
}

// Device returns a device opened through this container, or nil.
func (c *Container) Device(addr pci.Addr) *Device {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.devices[addr]
}

// Close closes the container's devices and groups and the container. The
// kernel then drops its DMA mappings and unpins their pages (once no
// other process holds the container's descriptor either).
func (c *Container) Close() error {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return nil
	}
	c.closed = true
	groups := make([]*Group, 0, len(c.groups))
	for _, g := range c.groups {
		groups = append(groups, g)
	}
	c.mu.Unlock()
	var errs []error
	for _, g := range groups {
		errs = append(errs, g.Close())
	}
	c.mu.Lock()
	c.dma = nil
	c.mu.Unlock()
	errs = append(errs, closeFD("container", c.fd))
	return errors.Join(errs...)
}

func closeFD(what string, fd int) error {
	if err := unix.Close(fd); err != nil {
		return fmt.Errorf("vfio: %s: close: %w", what, err)
	}
	return nil
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// alignedBuf returns n zeroed bytes (at least 8) aligned for the uint64
// fields of VFIO info structs.
func alignedBuf(n int) []byte {
	words := make([]uint64, (max(n, 8)+7)/8)
	return unsafe.Slice((*byte)(unsafe.Pointer(&words[0])), n)
}
