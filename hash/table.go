package hash

import (
	"bytes"
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
)

// Errors wrapped by the table's operations, to be tested with errors.Is.
var (
	// ErrNotFound is returned, unwrapped so a miss does not allocate, by
	// Lookup, LookupWithHash, Delete and DeleteWithHash for a key the table
	// does not hold. Attaching to a table that does not exist wraps
	// hugemem.ErrNotFound instead.
	ErrNotFound = errors.New("key not found")
	// ErrNoSpace means a key could not be added: every key slot is in use,
	// or no cuckoo path frees a place in either of the key's buckets.
	ErrNoSpace = errors.New("no space left in hash table")
	// ErrCorrupt means shared state breaks the table's rules: a damaged
	// header at attach, or an out-of-range key index later.
	ErrCorrupt = errors.New("hash table is corrupted")
	// ErrUnknownHash means a table names a hash function this binary does
	// not know, probably because a newer binary created it.
	ErrUnknownHash = errors.New("unknown hash function id")
)

// Config describes a table to Create.
type Config struct {
	Name    string   // 1 to MaxNameLen bytes, no NUL; the memzone is "HT_"+Name
	KeyLen  int      // bytes in every key, 1 to MaxKeyLen
	Entries int      // keys the table holds at most, 1 to MaxEntries
	Hash    HashFunc // hash function of Add, Lookup and Delete; HashCRC32C when 0
	Seed    uint64   // that function's seed (32 bits for HashCRC32C)
}

// Table is this process's handle on a table in shared memory. It holds
// only process-local copies of the header's constant fields and where the
// table is mapped here; it is safe for concurrent use by goroutines.
type Table struct {
	zone     *hugemem.Memzone
	hdr      *header
	buckets  unsafe.Pointer // bucket 0
	slots    unsafe.Pointer // key slot 0
	free     unsafe.Pointer // free list entry 0 (uint32)
	mask     uint64         // nbuckets - 1
	slotSize uintptr
	keyLen   int
	entries  uint32
	hashFunc HashFunc
	seed     uint64
	name     string
}

// MemSize returns the bytes of shared memory a table of cfg needs.
func MemSize(cfg Config) (uint64, error) {
	cfg, err := cfg.check()
	if err != nil {
		return 0, err
	}
	return layoutFor(uint32(cfg.KeyLen), uint32(cfg.Entries)).size, nil
}

func (cfg Config) check() (Config, error) {
	if err := checkName(cfg.Name); err != nil {
		return cfg, err
	}
	if cfg.KeyLen < 1 || cfg.KeyLen > MaxKeyLen {
		return cfg, fmt.Errorf("hash table %q: key length %d is out of range (1 to %d bytes)", cfg.Name, cfg.KeyLen, MaxKeyLen)
	}
	if cfg.Entries < 1 || cfg.Entries > MaxEntries {
		return cfg, fmt.Errorf("hash table %q: entries %d is out of range (1 to %d)", cfg.Name, cfg.Entries, MaxEntries)
	}
	if cfg.Hash == 0 {
		cfg.Hash = HashCRC32C
	}
	if !cfg.Hash.known() {
		return cfg, fmt.Errorf("hash table %q: hash function id %d: %w (known: 1 crc32c, 2 fnv1a64)", cfg.Name, uint32(cfg.Hash), ErrUnknownHash)
	}
	if err := cfg.Hash.checkSeed(cfg.Seed); err != nil {
		return cfg, fmt.Errorf("hash table %q: %w", cfg.Name, err)
	}
	return cfg, nil
}

func checkName(name string) error {
	switch {
	case name == "":
		return fmt.Errorf("hash table name is empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("hash table name %q is %d bytes; at most %d are allowed", name, len(name), MaxNameLen)
	case bytes.IndexByte([]byte(name), 0) >= 0:
		return fmt.Errorf("hash table name %q contains a NUL byte", name)
	}
	return nil
}

// Create reserves memzone "HT_"+cfg.Name in mem and makes an empty table
// in it. Any process of the group may then attach with Lookup.
func Create(mem *hugemem.Memory, cfg Config) (*Table, error) {
	cfg, err := cfg.check()
	if err != nil {
		return nil, err
	}
	g := layoutFor(uint32(cfg.KeyLen), uint32(cfg.Entries))
	z, err := mem.Reserve(zonePrefix+cfg.Name, g.size, cacheLine)
	if err != nil {
		return nil, fmt.Errorf("hash table %q: %w", cfg.Name, err)
	}
	h := (*header)(z.Ptr())
	*h = header{
		version:  layoutVersion,
		keyLen:   g.keyLen,
		slotSize: g.slotSize,
		entries:  g.entries,
		nbuckets: g.nbuckets,
		hashFunc: uint32(cfg.Hash),
		seed:     cfg.Seed,
		size:     g.size,
	}
	copy(h.name[:], cfg.Name)
	t := newTable(z, h, g)
	for i := uint32(0); i < g.entries; i++ {
		*t.freeAt(i) = g.entries - i // popped from the top: 1, 2, 3...
	}
	h.freeTop = g.entries
	atomic.StoreUint32(&h.magic, headerMagic) // last: Lookup trusts a header once magic is set
	return t, nil
}

// Lookup attaches to the table that a process of mem's group created under
// name. It checks the shared header (magic, layout version, sizes, hash
// function id) and refuses, with an error naming the field, a header it
// cannot trust.
func Lookup(mem *hugemem.Memory, name string) (*Table, error) {
	if err := checkName(name); err != nil {
		return nil, err
	}
	z, err := mem.Lookup(zonePrefix + name)
	if err != nil {
		return nil, fmt.Errorf("hash table %q: %w", name, err)
	}
	if z.Len < headerSize {
		return nil, fmt.Errorf("hash table %q: memzone of %d bytes is shorter than a table header (%d bytes): %w", name, z.Len, headerSize, ErrCorrupt)
	}
	h := (*header)(z.Ptr())
	g, err := h.validate(name, z.Len)
	if err != nil {
		return nil, err
	}
	return newTable(z, h, g), nil
}

// validate checks every header field a Table relies on and returns the
// geometry they describe.
func (h *header) validate(name string, zoneLen uint64) (geometry, error) {
	bad := func(format string, args ...any) (geometry, error) {
		return geometry{}, fmt.Errorf("hash table %q header: %s: %w", name, fmt.Sprintf(format, args...), ErrCorrupt)
	}
	if m := atomic.LoadUint32(&h.magic); m != headerMagic {
		return bad("magic is %#x, want %#x (not a hash table, or not initialised yet)", m, uint32(headerMagic))
	}
	if h.version != layoutVersion {
		return bad("layout version is %d, this program knows %d", h.version, layoutVersion)
	}
	n := bytes.IndexByte(h.name[:], 0)
	if n < 0 || string(h.name[:n]) != name {
		return bad("name field %q does not match the memzone's table name %q", h.name[:max(n, 0)], name)
	}
	if h.keyLen < 1 || h.keyLen > MaxKeyLen {
		return bad("key length %d is out of range (1 to %d)", h.keyLen, MaxKeyLen)
	}
	if h.entries < 1 || h.entries > MaxEntries {
		return bad("entries %d is out of range (1 to %d)", h.entries, MaxEntries)
	}
	g := layoutFor(h.keyLen, h.entries)
	if h.nbuckets != g.nbuckets {
		return bad("bucket count %d does not match %d entries (want %d)", h.nbuckets, h.entries, g.nbuckets)
	}
	if h.slotSize != g.slotSize {
		return bad("key slot size %d does not match key length %d (want %d)", h.slotSize, h.keyLen, g.slotSize)
	}
	if h.size != g.size {
		return bad("size %d does not match its key length and entries (want %d)", h.size, g.size)
	}
	if g.size > zoneLen {
		return bad("size %d is larger than its memzone (%d bytes)", g.size, zoneLen)
	}
	if c, top := atomic.LoadUint32(&h.count), atomic.LoadUint32(&h.freeTop); c > h.entries || top > h.entries {
		return bad("count %d or free list top %d exceeds entries %d", c, top, h.entries)
	}
	if f := HashFunc(h.hashFunc); !f.known() {
		return geometry{}, fmt.Errorf("hash table %q uses hash function id %d: %w (this program knows 1 crc32c, 2 fnv1a64; a newer program probably created the table)", name, h.hashFunc, ErrUnknownHash)
	}
	if err := HashFunc(h.hashFunc).checkSeed(h.seed); err != nil {
		return bad("%v", err)
	}
	return g, nil
}

func newTable(z *hugemem.Memzone, h *header, g geometry) *Table {
	base := unsafe.Pointer(h)
	return &Table{
		zone:     z,
		hdr:      h,
		buckets:  unsafe.Add(base, g.buckets),
		slots:    unsafe.Add(base, g.slots),
		free:     unsafe.Add(base, g.free),
		mask:     uint64(g.nbuckets) - 1,
		slotSize: uintptr(g.slotSize),
		keyLen:   int(g.keyLen),
		entries:  g.entries,
		hashFunc: HashFunc(h.hashFunc),
		seed:     h.seed,
		name:     string(h.name[:bytes.IndexByte(h.name[:], 0)]),
	}
}

// Name returns the table's name.
func (t *Table) Name() string { return t.name }

// KeyLen returns the length of every key, in bytes.
func (t *Table) KeyLen() int { return t.keyLen }

// Capacity returns how many keys the table holds at most.
func (t *Table) Capacity() int { return int(t.entries) }

// HashFunc returns the hash function of the by-key API, and its seed.
func (t *Table) HashFunc() (HashFunc, uint64) { return t.hashFunc, t.seed }

// Count returns how many keys the table holds. With writers running it is
// a snapshot that may be stale on return.
func (t *Table) Count() int { return int(atomic.LoadUint32(&t.hdr.count)) }

// Hash returns the hash the by-key API uses for key: the table's hash
// function with its seed. Key may be any length; the table only stores
// keys of KeyLen bytes.
func (t *Table) Hash(key []byte) uint64 { return t.hashFunc.sum(t.seed, key) }

// Free removes the table and returns its memory to the group. Every
// process must have stopped using the table: their handles then point to
// memory that a later memzone may reuse.
func (t *Table) Free() error {
	t.lock()
	atomic.StoreUint32(&t.hdr.magic, 0) // a late Lookup refuses the table
	t.unlock()
	if err := t.zone.Memory().Free(t.zone.Name); err != nil {
		return fmt.Errorf("hash table %q: %w", t.name, err)
	}
	return nil
}

func (t *Table) bucketAt(b uint64) *bucket {
	return (*bucket)(unsafe.Add(t.buckets, uintptr(b)*uintptr(bucketSize)))
}

func (t *Table) slotAt(k uint32) unsafe.Pointer {
	return unsafe.Add(t.slots, uintptr(k)*t.slotSize)
}

func (t *Table) stateAt(k uint32) *uint64 { return (*uint64)(t.slotAt(k)) }

func (t *Table) valueAt(k uint32) *uint64 { return (*uint64)(unsafe.Add(t.slotAt(k), 8)) }

// keyWordAt returns the address of word i of slot k's key.
func (t *Table) keyWordAt(k uint32, i int) *uint64 {
	return (*uint64)(unsafe.Add(t.slotAt(k), slotHeader+uintptr(i)*8))
}

func (t *Table) freeAt(i uint32) *uint32 { return (*uint32)(unsafe.Add(t.free, uintptr(i)*4)) }

func (t *Table) keyLenError(op string, key []byte) error {
	return fmt.Errorf("hash table %q: %s: key is %d bytes, the table's keys are %d bytes", t.name, op, len(key), t.keyLen)
}
