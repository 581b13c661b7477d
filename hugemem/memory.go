package hugemem

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

// IOVAMode says how device addresses are derived from memory.
type IOVAMode uint32

const (
	// IOVAModeVA hands out IOVAs as IOVABase + group offset; VFIO maps them.
	IOVAModeVA IOVAMode = iota
	// IOVAModePA uses physical addresses from /proc/self/pagemap (root only).
	IOVAModePA
)

func (m IOVAMode) String() string {
	if m == IOVAModePA {
		return "pa"
	}
	return "va"
}

// Defaults for Options fields left zero.
const (
	DefaultLimit       = 1 << 30  // bytes a group may map when -m is not given
	DefaultSegmentSize = 64 << 20 // bytes of a new segment file, unless a reservation needs more
)

// Options says where a group's memory lives and how much of it there may be.
type Options struct {
	Prefix      string   // group file prefix (--file-prefix); DefaultPrefix when empty
	HugeDir     string   // hugetlbfs directory (--huge-dir); found in /proc/mounts when empty
	NoHuge      bool     // memfd-backed memory instead of hugepages (--no-huge); no DMA
	Limit       int64    // bytes the group may map (-m); DefaultLimit when 0
	SegmentSize int64    // bytes of each new segment file; DefaultSegmentSize when 0
	IOVAMode    IOVAMode // how IOVAs are derived (--iova-mode)
	RuntimeDir  string   // config and lock directory; RuntimeDir(Prefix) when empty
}

// Errors wrapped by Reserve, Lookup and Free, to be tested with errors.Is.
var (
	ErrExists   = errors.New("memzone already exists")
	ErrNotFound = errors.New("not found")
	ErrNoSpace  = errors.New("no space left")
	ErrInUse    = errors.New("group is in use by a live process")
	ErrNoGroup  = errors.New("no live group")
)

// Memory is one process's view of a group's shared memory.
type Memory struct {
	opts     Options
	creator  bool
	attached bool // Attach succeeded: this process is a member of the group

	cfg     *sharedConfig
	cfgFile *os.File
	lockFD  int // flock'd by the creator for its lifetime; -1 otherwise

	reservation []byte         // the whole PROT_NONE reservation, for munmap
	base        unsafe.Pointer // address of group offset 0

	mu      sync.Mutex // orders this process's goroutines before the shared lock
	mapped  []mappedSegment
	closed  bool
	onClose []func()
}

type mappedSegment struct {
	file *os.File
	path string // empty for memfd segments
}

// Create makes a new group's memory: the config file, and a first segment on
// hugetlbfs, or in memfd when hugepages cannot be had (with a warning).
// Files that a dead group with the same prefix left behind are removed;
// a group whose creator is still alive is refused.
func Create(o Options) (*Memory, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Memory{opts: o, creator: true, lockFD: -1}
	if err := m.takeCreatorLock(); err != nil {
		return nil, err
	}
	if err := m.create(); err != nil {
		m.Close()
		return nil, err
	}
	return m, nil
}

func (o Options) withDefaults() (Options, error) {
	if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if err := CheckPrefix(o.Prefix); err != nil {
		return o, fmt.Errorf("hugemem: %w", err)
	}
	if o.RuntimeDir == "" {
		o.RuntimeDir = RuntimeDir(o.Prefix)
	}
	if o.Limit == 0 {
		o.Limit = DefaultLimit
	}
	if o.Limit < 0 || o.Limit > 1<<40 {
		return o, fmt.Errorf("hugemem: memory limit %d bytes is out of range (1 byte to 1 TiB)", o.Limit)
	}
	if o.SegmentSize == 0 {
		o.SegmentSize = DefaultSegmentSize
	}
	if o.SegmentSize < 0 {
		return o, fmt.Errorf("hugemem: segment size %d is negative", o.SegmentSize)
	}
	if o.SegmentSize > o.Limit {
		o.SegmentSize = o.Limit
	}
	if o.IOVAMode > IOVAModePA {
		return o, fmt.Errorf("hugemem: IOVA mode %d is neither va nor pa", o.IOVAMode)
	}
	return o, nil
}

func (m *Memory) configPath() string { return filepath.Join(m.opts.RuntimeDir, "config") }

// takeCreatorLock holds an exclusive flock for the creator's lifetime, so a
// later Create can tell a live group from files a crashed one left behind.
func (m *Memory) takeCreatorLock() error {
	path := filepath.Join(m.opts.RuntimeDir, "memory.lock")
	var fd int
	for try := 0; ; try++ {
		if err := os.MkdirAll(m.opts.RuntimeDir, 0o700); err != nil {
			return fmt.Errorf("hugemem: runtime directory: %w", err)
		}
		var err error
		fd, err = unix.Open(path, unix.O_RDWR|unix.O_CREAT|unix.O_CLOEXEC, 0o600)
		if err == nil {
			break
		}
		// The last member of an earlier group removes the directory once
		// it is empty (Close), possibly between MkdirAll and Open: make it
		// again. Once the lock file is in it, it stays.
		if !errors.Is(err, unix.ENOENT) || try == 10 {
			return fmt.Errorf("hugemem: open %s: %w", path, err)
		}
	}
	// An attacher probes the lock with a brief shared flock; try a few times
	// so such a probe is not mistaken for a live creator.
	for try := 0; ; try++ {
		err := unix.Flock(fd, unix.LOCK_EX|unix.LOCK_NB)
		if err == nil {
			break
		}
		if !errors.Is(err, unix.EWOULDBLOCK) {
			unix.Close(fd)
			return fmt.Errorf("hugemem: lock %s: %w", path, err)
		}
		if pid := m.livePID(); pid != 0 || try == 20 {
			unix.Close(fd)
			return fmt.Errorf("hugemem: group %q: pid %d created it and is alive: %w", m.opts.Prefix, pid, ErrInUse)
		}
		time.Sleep(5 * time.Millisecond)
	}
	m.lockFD = fd
	return nil
}

// livePID reads the creator's pid from an existing config file, or 0.
func (m *Memory) livePID() int32 {
	f, err := os.Open(m.configPath())
	if err != nil {
		return 0
	}
	defer f.Close()
	var pid int32
	buf := unsafe.Slice((*byte)(unsafe.Pointer(&pid)), unsafe.Sizeof(pid))
	if _, err := f.ReadAt(buf, int64(unsafe.Offsetof(sharedConfig{}.Creator))); err != nil {
		return 0
	}
	return pid
}

func (m *Memory) create() error {
	// Unlink rather than truncate what a dead creator left: processes of
	// that group still running keep their own, intact, copy.
	m.removeStaleSegments()
	os.Remove(m.configPath())
	f, err := os.OpenFile(m.configPath(), os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("hugemem: create config: %w", err)
	}
	m.cfgFile = f
	if err := f.Truncate(int64(configSize)); err != nil {
		return fmt.Errorf("hugemem: size config file: %w", err)
	}
	if err := m.mapConfig(); err != nil {
		return err
	}
	c := m.cfg
	c.Version = layoutVersion
	c.Size = uint32(configSize)
	c.IOVAMode = uint32(m.opts.IOVAMode)
	c.Limit = uint64(m.opts.Limit)
	c.Span = alignUp(uint64(m.opts.Limit), 1<<30) + 1<<30
	c.Creator = int32(os.Getpid())
	if err := m.reserveAddressSpace(); err != nil {
		return err
	}
	if !m.opts.NoHuge {
		dir, err := m.findHugeDir()
		if err == nil {
			copy(c.HugeDir[:len(c.HugeDir)-1], dir)
			err = m.addSegment(uint64(m.opts.SegmentSize), kindHugetlbfs)
		}
		if err != nil {
			slog.Warn("hugemem: no hugepages, using memfd-backed memory without DMA", "group", m.opts.Prefix, "reason", err)
			c.HugeDir = [256]byte{}
		}
	}
	if c.NSegs == 0 {
		if err := m.addSegment(uint64(m.opts.SegmentSize), kindMemfd); err != nil {
			return err
		}
	}
	atomic.StoreUint64(&c.Magic, configMagic) // last: attachers trust a config only once Magic is set
	return nil
}

// Attach joins the existing group named by o.Prefix: it maps the config and
// every segment, at whatever addresses this process gets.
func Attach(o Options) (*Memory, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	m := &Memory{opts: o, lockFD: -1}
	if err := m.attach(); err != nil {
		m.Close()
		return nil, err
	}
	m.attached = true
	return m, nil
}

func (m *Memory) attach() error {
	if err := m.requireLiveCreator(); err != nil {
		return err
	}
	f, err := os.OpenFile(m.configPath(), os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("hugemem: open config: %w", err)
	}
	m.cfgFile = f
	st, err := f.Stat()
	if err != nil {
		return fmt.Errorf("hugemem: stat config: %w", err)
	}
	if uint64(st.Size()) != configSize {
		return fmt.Errorf("hugemem: config %s is %d bytes, this build's layout v%d needs %d: truncated, corrupted or from an incompatible build",
			m.configPath(), st.Size(), layoutVersion, configSize)
	}
	if err := m.mapConfig(); err != nil {
		return err
	}
	// The creator sets Magic last; give a creator that is still starting a moment.
	for i := 0; i < 200 && atomic.LoadUint64(&m.cfg.Magic) == 0; i++ {
		time.Sleep(5 * time.Millisecond)
	}
	if err := m.cfg.validate(); err != nil {
		return fmt.Errorf("hugemem: config %s: %w", m.configPath(), err)
	}
	if err := m.reserveAddressSpace(); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.syncSegments(false)
}

// requireLiveCreator checks that the group's creator still holds its lock,
// with a shared flock that succeeds only when nobody holds it. An attacher
// creates nothing, not even the runtime directory.
func (m *Memory) requireLiveCreator() error {
	path := filepath.Join(m.opts.RuntimeDir, "memory.lock")
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("hugemem: group %q has no lock file at %s: is its primary running? %w", m.opts.Prefix, path, ErrNoGroup)
	}
	defer unix.Close(fd)
	if err := unix.Flock(fd, unix.LOCK_SH|unix.LOCK_NB); err == nil {
		unix.Flock(fd, unix.LOCK_UN)
		return fmt.Errorf("hugemem: group %q: the process that created it has exited: is its primary running? %w", m.opts.Prefix, ErrNoGroup)
	}
	return nil
}

func (c *sharedConfig) validate() error {
	switch {
	case atomic.LoadUint64(&c.Magic) != configMagic:
		return fmt.Errorf("magic is %#x, want %#x: not a gopmd group config, or not initialised yet", c.Magic, uint64(configMagic))
	case c.Version != layoutVersion:
		return fmt.Errorf("layout version is %d, this build understands %d", c.Version, layoutVersion)
	case uint64(c.Size) != configSize:
		return fmt.Errorf("recorded size %d does not match this build's %d", c.Size, configSize)
	case c.NSegs > maxSegments:
		return fmt.Errorf("segment count %d exceeds the maximum %d", c.NSegs, maxSegments)
	case c.IOVAMode > uint32(IOVAModePA):
		return fmt.Errorf("IOVA mode %d is unknown", c.IOVAMode)
	case c.Span == 0 || c.Span > 1<<41 || c.Limit > c.Span:
		return fmt.Errorf("address span %d or limit %d is out of range", c.Span, c.Limit)
	}
	return nil
}

func (m *Memory) mapConfig() error {
	b, err := unix.Mmap(int(m.cfgFile.Fd()), 0, int(configSize), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	if err != nil {
		return fmt.Errorf("hugemem: map config: %w", err)
	}
	m.cfg = (*sharedConfig)(unsafe.Pointer(&b[0]))
	return nil
}

// reserveAddressSpace takes a PROT_NONE stretch big enough for the group's
// whole span, aligned to 1 GiB so any hugepage size fits. The first
// firstOffset bytes stay inaccessible, catching use of offset 0.
func (m *Memory) reserveAddressSpace() error {
	const align = 1 << 30
	size := int(firstOffset + m.cfg.Span + align)
	r, err := unix.Mmap(-1, 0, size, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE)
	if err != nil {
		return fmt.Errorf("hugemem: reserve %d bytes of address space: %w", size, err)
	}
	m.reservation = r
	start := uintptr(unsafe.Pointer(&r[0]))
	m.base = unsafe.Add(unsafe.Pointer(&r[0]), alignUp(uint64(start), align)-uint64(start))
	return nil
}

// Close unmaps the group's memory from this process. The creator also
// removes the group's files, and the last process to leave the runtime
// directory, once it is empty. Any pointer into the memory is invalid
// after.
func (m *Memory) Close() error {
	m.mu.Lock()
	hooks := m.onClose
	m.onClose = nil
	m.mu.Unlock()
	for _, fn := range hooks {
		fn()
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil
	}
	m.closed = true
	for _, s := range m.mapped {
		s.file.Close()
		if m.creator && s.path != "" {
			os.Remove(s.path)
		}
	}
	m.mapped = nil
	if m.reservation != nil {
		unix.Munmap(m.reservation)
		m.reservation = nil
	}
	if m.cfg != nil {
		unix.Munmap(unsafe.Slice((*byte)(unsafe.Pointer(m.cfg)), configSize))
		m.cfg = nil
	}
	if m.cfgFile != nil {
		m.cfgFile.Close()
	}
	member := m.attached || m.creator && m.lockFD >= 0
	if m.creator && m.lockFD >= 0 {
		os.Remove(m.configPath())
		os.Remove(filepath.Join(m.opts.RuntimeDir, "memory.lock"))
		unix.Close(m.lockFD)
	}
	if member {
		// Whoever leaves last removes the directory: the creator when no
		// one else keeps files there, else the last member to remove its
		// own (an IPC socket, say). It only goes once empty, so while the
		// group lives its config and lock file keep it.
		os.Remove(m.opts.RuntimeDir)
	}
	return nil
}

// OnClose registers fn to run at the start of Close, while the memory is
// still mapped: packages that keep process-local tables of objects in the
// group (open pools, say) drop them there, so nothing outlives the mapping.
func (m *Memory) OnClose(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return
	}
	m.onClose = append(m.onClose, fn)
}

// Prefix returns the group's file prefix.
func (m *Memory) Prefix() string { return m.opts.Prefix }

// RuntimeDir returns the directory holding the group's config.
func (m *Memory) RuntimeDir() string { return m.opts.RuntimeDir }

// Ptr returns the address in this process of a group offset.
func (m *Memory) Ptr(off uint64) unsafe.Pointer { return unsafe.Add(m.base, off) }

// Off returns the group offset of an address in this process's mapping.
func (m *Memory) Off(p unsafe.Pointer) uint64 { return uint64(uintptr(p) - uintptr(m.base)) }

// Contains reports whether [off, off+n) lies inside one mapped segment.
func (m *Memory) Contains(off, n uint64) bool {
	s := m.segmentOf(off)
	return s != nil && n <= s.Off+s.Len-off
}

// HugePages reports whether the memory is hugepage-backed, which DMA needs.
func (m *Memory) HugePages() bool { return m.cfg.Segs[0].Kind == kindHugetlbfs }

// IOVAMode returns the group's IOVA mode.
func (m *Memory) IOVAMode() IOVAMode { return IOVAMode(m.cfg.IOVAMode) }

// IOVA returns the device address of a group offset.
func (m *Memory) IOVA(off uint64) (uint64, error) {
	s := m.segmentOf(off)
	if s == nil {
		return 0, fmt.Errorf("hugemem: offset %#x is outside every segment: %w", off, ErrNotFound)
	}
	if s.Kind != kindHugetlbfs {
		return 0, fmt.Errorf("hugemem: group %q runs on memfd-backed memory (no hugepages), so DMA is refused", m.opts.Prefix)
	}
	if m.cfg.IOVAMode == uint32(IOVAModeVA) {
		return IOVABase + off, nil
	}
	in := off - s.Off
	if s.PageSize == 0 {
		return 0, fmt.Errorf("hugemem: group %q segment at offset %#x records page size 0: the shared config is corrupted", m.opts.Prefix, s.Off)
	}
	page := uint64(s.FirstPage) + in/s.PageSize
	if page >= maxPages {
		return 0, fmt.Errorf("hugemem: group %q offset %#x falls on physical page record %d, beyond the %d recorded at most: the shared config is corrupted",
			m.opts.Prefix, off, page, maxPages)
	}
	return m.cfg.Pages[page] + in%s.PageSize, nil
}

// segmentOf returns the descriptor of the segment holding off, or nil. The
// segment count comes from shared memory, so it is bounded, not trusted.
func (m *Memory) segmentOf(off uint64) *segDesc {
	n := min(atomic.LoadUint32(&m.cfg.NSegs), maxSegments)
	for i := range n {
		s := &m.cfg.Segs[i]
		if off >= s.Off && off-s.Off < s.Len {
			return s
		}
	}
	return nil
}

// Segment describes one backing file of the group, as this process holds it.
type Segment struct {
	Off      uint64 // group offset of the first byte
	Len      uint64
	PageSize uint64
	FD       int    // open for the life of the Memory: pass it to other processes or vhost-user
	Path     string // hugetlbfs file, or "" for memfd
}

// Segments lists the group's segments this process has mapped. Segments
// that other processes added since this one last took the group lock are
// not among them: call Sync first when the list must be complete (to map
// the memory for a device, or to hand the descriptors on). Segments takes
// no group lock, so it may be called inside WithLock.
func (m *Memory) Segments() []Segment {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]Segment, len(m.mapped))
	for i, ms := range m.mapped {
		d := &m.cfg.Segs[i]
		out[i] = Segment{Off: d.Off, Len: d.Len, PageSize: d.PageSize, FD: int(ms.file.Fd()), Path: ms.path}
	}
	return out
}

// Sync maps the segments other processes added to the group since this
// process last looked, taking the group lock as Lookup does. Do not call it
// inside WithLock.
func (m *Memory) Sync() error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	unlock()
	return nil
}

func alignUp(v, a uint64) uint64 { return (v + a - 1) &^ (a - 1) }
