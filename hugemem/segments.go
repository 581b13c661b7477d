package hugemem

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// findHugeDir returns the hugetlbfs directory: the one given, or the first
// hugetlbfs mount in /proc/mounts that this process may write to.
func (m *Memory) findHugeDir() (string, error) {
	if m.opts.HugeDir != "" {
		if !isHugetlbfs(m.opts.HugeDir) {
			return "", fmt.Errorf("--huge-dir %s is not a hugetlbfs mount", m.opts.HugeDir)
		}
		return m.opts.HugeDir, nil
	}
	f, err := os.Open("/proc/mounts")
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[2] == "hugetlbfs" && unix.Access(fields[1], unix.W_OK) == nil {
			return fields[1], nil
		}
	}
	return "", fmt.Errorf("no writable hugetlbfs mount in /proc/mounts")
}

func isHugetlbfs(dir string) bool {
	var st unix.Statfs_t
	return unix.Statfs(dir, &st) == nil && st.Type == unix.HUGETLBFS_MAGIC
}

func (m *Memory) segmentPath(n int) string {
	dir := unix.ByteSliceToString(m.cfg.HugeDir[:])
	return filepath.Join(dir, fmt.Sprintf("%smap_%d", m.opts.Prefix, n))
}

// removeStaleSegments deletes segment files a dead group of the same prefix
// left on hugetlbfs; the creator lock proves no live process uses them.
func (m *Memory) removeStaleSegments() {
	dir, err := m.findHugeDir()
	if err != nil {
		return
	}
	stale, _ := filepath.Glob(filepath.Join(dir, m.opts.Prefix+"map_*"))
	for _, p := range stale {
		var n int
		if _, err := fmt.Sscanf(strings.TrimPrefix(filepath.Base(p), m.opts.Prefix+"map_"), "%d", &n); err == nil {
			os.Remove(p)
		}
	}
}

// holdSegment takes a shared flock on a segment file for as long as this
// process keeps it open. DPDK's EAL, starting with hugepages, deletes every
// "*map_*" file in hugetlbfs on which it can take an exclusive lock; our
// shared lock keeps a running group's files from such a clean-up.
func holdSegment(f *os.File) {
	unix.Flock(int(f.Fd()), unix.LOCK_SH|unix.LOCK_NB)
}

// addSegment creates segment number NSegs of at least size bytes, maps it
// and publishes it. Callers hold the registry lock (or are still creating).
func (m *Memory) addSegment(size uint64, kind uint32) error {
	c := m.cfg
	n := c.NSegs
	if n >= maxSegments {
		return fmt.Errorf("hugemem: group %q already has the maximum of %d segments: %w", m.opts.Prefix, maxSegments, ErrNoSpace)
	}
	var file *os.File
	var path string
	pageSize := uint64(os.Getpagesize())
	switch kind {
	case kindHugetlbfs:
		path = m.segmentPath(int(n))
		f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return fmt.Errorf("create segment file: %w", err)
		}
		holdSegment(f)
		var st unix.Statfs_t
		if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
			f.Close()
			os.Remove(path)
			return fmt.Errorf("statfs %s: %w", path, err)
		}
		file, pageSize = f, uint64(st.Bsize)
	case kindMemfd:
		fd, err := unix.MemfdCreate(fmt.Sprintf("%smap_%d", m.opts.Prefix, n), unix.MFD_CLOEXEC)
		if err != nil {
			return fmt.Errorf("hugemem: memfd_create: %w", err)
		}
		file = os.NewFile(uintptr(fd), "memfd")
	}
	fail := func(err error) error {
		file.Close()
		if path != "" {
			os.Remove(path)
		}
		return err
	}

	off := uint64(firstOffset)
	used := uint64(0)
	if n > 0 {
		last := &c.Segs[n-1]
		off = alignUp(last.Off+last.Len, 1<<21)
	}
	for i := range n {
		used += c.Segs[i].Len
	}
	size = alignUp(size, pageSize)
	if used+size > c.Limit {
		return fail(fmt.Errorf("hugemem: group %q would map %d bytes, over its limit of %d (-m): %w", m.opts.Prefix, used+size, c.Limit, ErrNoSpace))
	}
	if off+size > firstOffset+c.Span {
		return fail(fmt.Errorf("hugemem: group %q address span of %d bytes is used up: %w", m.opts.Prefix, c.Span, ErrNoSpace))
	}
	if err := file.Truncate(int64(size)); err != nil {
		return fail(fmt.Errorf("hugemem: size segment %d to %d bytes: %w", n, size, err))
	}
	flags := unix.MAP_SHARED | unix.MAP_FIXED
	if kind == kindHugetlbfs {
		flags |= unix.MAP_POPULATE
	}
	// For a shared hugetlbfs mapping the kernel reserves the hugepages at
	// mmap time, so a shortage is an error here rather than a SIGBUS later.
	if _, err := unix.MmapPtr(int(file.Fd()), 0, m.Ptr(off), uintptr(size), unix.PROT_READ|unix.PROT_WRITE, flags); err != nil {
		return fail(fmt.Errorf("hugemem: map %d bytes for segment %d (free hugepages: %s): %w", size, n, freeHugepages(), err))
	}
	d := &c.Segs[n]
	*d = segDesc{Off: off, Len: size, PageSize: pageSize, Kind: kind, OwnerPID: int32(os.Getpid()), OwnerFD: int32(file.Fd())}
	if kind == kindHugetlbfs && IOVAMode(c.IOVAMode) == IOVAModePA {
		if err := m.recordPhysical(d); err != nil {
			unix.MmapPtr(-1, 0, m.Ptr(off), uintptr(size), unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_FIXED|unix.MAP_NORESERVE)
			return fail(err)
		}
	}
	m.mapped = append(m.mapped, mappedSegment{file: file, path: path})
	atomic.StoreUint32(&c.NSegs, n+1)
	return nil
}

// syncSegments maps the segments other processes added since we last looked.
// Callers hold m.mu; locked says they hold the group lock too.
//
// A memfd segment is reachable by others only through the fd table of the
// process recorded as its owner (/proc/<pid>/fd/<fd>). A secondary that
// adds one may exit long before the group does, so the creator, which
// lives as long as the group, takes over as owner of every memfd segment
// it maps, under the group lock.
func (m *Memory) syncSegments(locked bool) error {
	n := atomic.LoadUint32(&m.cfg.NSegs)
	if n > maxSegments {
		return fmt.Errorf("hugemem: group %q config records %d segments, more than the maximum %d: the shared config is corrupted", m.opts.Prefix, n, maxSegments)
	}
	for i := uint32(len(m.mapped)); i < n; i++ {
		d := &m.cfg.Segs[i]
		if d.Len == 0 || d.Off < firstOffset || d.Off+d.Len > firstOffset+m.cfg.Span || d.PageSize == 0 {
			return fmt.Errorf("hugemem: segment %d descriptor is corrupted (offset %#x, length %d, page size %d)", i, d.Off, d.Len, d.PageSize)
		}
		var path, open string
		switch d.Kind {
		case kindHugetlbfs:
			path = m.segmentPath(int(i))
			open = path
		case kindMemfd:
			open = fmt.Sprintf("/proc/%d/fd/%d", d.OwnerPID, d.OwnerFD)
		default:
			return fmt.Errorf("hugemem: segment %d has unknown kind %d", i, d.Kind)
		}
		f, err := os.OpenFile(open, os.O_RDWR, 0)
		if err != nil {
			return fmt.Errorf("hugemem: open segment %d: %w", i, err)
		}
		holdSegment(f)
		if st, err := f.Stat(); err != nil || uint64(st.Size()) < d.Len {
			f.Close()
			return fmt.Errorf("hugemem: segment %d file %s is shorter than its recorded %d bytes", i, open, d.Len)
		}
		if _, err := unix.MmapPtr(int(f.Fd()), 0, m.Ptr(d.Off), uintptr(d.Len), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_FIXED); err != nil {
			f.Close()
			return fmt.Errorf("hugemem: map segment %d: %w", i, err)
		}
		m.mapped = append(m.mapped, mappedSegment{file: f, path: path})
		if d.Kind == kindMemfd && m.creator && locked {
			d.OwnerPID, d.OwnerFD = int32(os.Getpid()), int32(f.Fd())
		}
	}
	return nil
}

// recordPhysical stores the physical address of each page of d for PA mode.
// Pages are already faulted in (MAP_POPULATE).
func (m *Memory) recordPhysical(d *segDesc) error {
	c := m.cfg
	pages := uint32(d.Len / d.PageSize)
	if c.NPages+pages > maxPages {
		return fmt.Errorf("hugemem: PA mode records at most %d pages: %w", maxPages, ErrNoSpace)
	}
	f, err := os.Open("/proc/self/pagemap")
	if err != nil {
		return fmt.Errorf("hugemem: PA mode needs /proc/self/pagemap: %w", err)
	}
	defer f.Close()
	var entry [8]byte
	for i := range pages {
		va := uint64(uintptr(m.Ptr(d.Off))) + uint64(i)*d.PageSize
		if _, err := f.ReadAt(entry[:], int64(va/uint64(os.Getpagesize())*8)); err != nil {
			return fmt.Errorf("hugemem: read pagemap: %w", err)
		}
		e := binary.LittleEndian.Uint64(entry[:])
		pfn := e & (1<<55 - 1)
		if e&(1<<63) == 0 || pfn == 0 {
			return fmt.Errorf("hugemem: IOVA mode pa needs physical addresses, and /proc/self/pagemap shows none (root with CAP_SYS_ADMIN is required); use --iova-mode=va")
		}
		c.Pages[c.NPages+i] = pfn * uint64(os.Getpagesize())
	}
	d.FirstPage = c.NPages
	c.NPages += pages
	return nil
}

func freeHugepages() string {
	b, err := os.ReadFile("/proc/meminfo")
	if err != nil {
		return "unknown"
	}
	for _, line := range bytes.Split(b, []byte("\n")) {
		if bytes.HasPrefix(line, []byte("HugePages_Free:")) {
			return string(bytes.TrimSpace(line[len("HugePages_Free:"):]))
		}
	}
	return "unknown"
}
