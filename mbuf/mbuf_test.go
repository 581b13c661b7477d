package mbuf

import (
	"bytes"
	"errors"
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/mempool"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestHeaderLayout(t *testing.T) {
	var m Mbuf
	assert.Equal(t, uintptr(HeaderSize), unsafe.Sizeof(m), "two cache lines")
	for _, f := range []struct {
		name      string
		got, want uintptr
	}{
		{"bufIOVA", unsafe.Offsetof(m.bufIOVA), 0},
		{"bufLen", unsafe.Offsetof(m.bufLen), 8},
		{"privSize", unsafe.Offsetof(m.privSize), 10},
		{"refcnt", unsafe.Offsetof(m.refcnt), 12},
		{"pool", unsafe.Offsetof(m.pool), 16},
		{"next", unsafe.Offsetof(m.next), 24},
		{"packet", unsafe.Offsetof(m.packet), 32},
		{"dataOff", unsafe.Offsetof(m.dataOff), 32 + 0},
		{"dataLen", unsafe.Offsetof(m.dataLen), 32 + 2},
		{"nbSegs", unsafe.Offsetof(m.nbSegs), 32 + 4},
		{"port", unsafe.Offsetof(m.port), 32 + 6},
		{"olFlags", unsafe.Offsetof(m.olFlags), 32 + 8},
		{"packetType", unsafe.Offsetof(m.packetType), 32 + 16},
		{"pktLen", unsafe.Offsetof(m.pktLen), 32 + 20},
		{"vlanTCI", unsafe.Offsetof(m.vlanTCI), 32 + 24},
		{"vlanTCIOuter", unsafe.Offsetof(m.vlanTCIOuter), 32 + 26},
		{"rssHash", unsafe.Offsetof(m.rssHash), 32 + 28},
		{"txOffload", unsafe.Offsetof(m.txOffload), 64},
		{"userData", unsafe.Offsetof(m.userData), 72},
	} {
		assert.Equal(t, f.want, f.got, "offset of %s", f.name)
	}
	assert.Equal(t, uintptr(32), unsafe.Sizeof(m.packet), "the packet fields end the first cache line")
	assert.Zero(t, unsafe.Offsetof(m.refcnt)%4, "refcnt is updated atomically")
	assert.Equal(t, uintptr(mempool.PrivateSize), unsafe.Sizeof(poolDesc{}), "the descriptor fills the mempool's private area")
}

func TestCreatePoolInitialisesEveryMbuf(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "init", PoolConfig{N: 64, PrivSize: 16})
	assert.Equal(t, uint16(DefaultDataRoom), p.DataRoom())
	assert.Equal(t, uint16(16), p.PrivSize())
	assert.Equal(t, uint32(HeaderSize+16+DefaultDataRoom), p.Mempool().EltSize())
	ms := make([]*Mbuf, 64)
	require.NoError(t, p.AllocBulk(nil, ms))
	for _, m := range ms {
		assert.Equal(t, uint16(DefaultDataRoom), m.BufLen())
		assert.Equal(t, uint32(1), m.Refcnt())
		assert.Equal(t, uint16(1), m.NumSegs())
		assert.Equal(t, uint16(PortInvalid), m.Port())
		assert.Equal(t, DefaultHeadroom, m.Headroom())
		assert.Equal(t, 2048, m.Tailroom())
		assert.Empty(t, m.Data())
		assert.Len(t, m.Priv(), 16)
		assert.Nil(t, m.Next())
		assert.Zero(t, m.BufIOVA(), "memfd-backed memory has no IOVA")
		assert.Zero(t, m.DataIOVA())
		assert.Equal(t, uintptr(unsafe.Pointer(m))+HeaderSize+16, uintptr(unsafe.Pointer(&m.Buf()[0])), "the buffer follows header and private area")
	}
	assert.Equal(t, uint32(64), p.Mempool().InUse())
	require.NoError(t, FreeBulk(nil, ms))
	assert.Equal(t, uint32(0), p.Mempool().InUse())
}

func TestCreatePoolRefusesBadConfigurations(t *testing.T) {
	mem := newMemory(t)
	_, err := CreatePool(mem, "priv", PoolConfig{N: 8, PrivSize: 12})
	require.ErrorContains(t, err, "private size 12 is not a multiple of 8")
	_, err = CreatePool(mem, "zero", PoolConfig{N: 0})
	require.ErrorContains(t, err, "object count is 0")
	_, err = LookupPool(mem, "zero")
	require.ErrorIs(t, err, hugemem.ErrNotFound)
	_, err = mempool.Create(mem, "plain", mempool.Config{N: 8, EltSize: 64})
	require.NoError(t, err)
	_, err = LookupPool(mem, "plain")
	require.ErrorContains(t, err, "not an mbuf pool")
}

func TestDataOperationsMoveTheWindow(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "data", PoolConfig{N: 4, DataRoom: 128 + 64})
	m := withData(t, p, "payload")
	assert.Equal(t, "payload", string(m.Data()))
	assert.Equal(t, uint32(7), m.PktLen())
	assert.Equal(t, uint16(7), m.DataLen())
	assert.Equal(t, 64-7, m.Tailroom())

	hdr, err := m.Prepend(4)
	require.NoError(t, err)
	copy(hdr, "eth|")
	assert.Equal(t, "eth|payload", string(m.Data()))
	assert.Equal(t, 124, m.Headroom())

	require.NoError(t, m.Adj(4))
	require.NoError(t, m.Trim(3))
	assert.Equal(t, "payl", string(m.Data()))
	assert.Equal(t, uint32(4), m.PktLen())

	m.Reset()
	assert.Empty(t, m.Data())
	assert.Equal(t, DefaultHeadroom, m.Headroom())
	assert.Equal(t, uint32(0), m.PktLen())
}

func TestDataOperationsRefuseToLeaveTheBuffer(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "bounds", PoolConfig{N: 4, DataRoom: 128 + 64})
	m := withData(t, p, "0123456789")
	before := *m

	_, err := m.Append(55)
	require.ErrorContains(t, err, "append 55 bytes: the last segment's tailroom is 54")
	_, err = m.Append(-1)
	require.Error(t, err)
	_, err = m.Prepend(129)
	require.ErrorContains(t, err, "prepend 129 bytes: the headroom is 128")
	require.ErrorContains(t, m.Adj(11), "adj 11 bytes: the first segment holds 10")
	require.ErrorContains(t, m.Trim(11), "trim 11 bytes: the last segment holds 10")
	require.ErrorContains(t, m.SetDataLen(65), "data length 65 at offset 128 does not fit the 192-byte buffer")
	assert.Equal(t, before, *m, "a refused operation changes nothing")

	_, err = m.Append(54)
	require.NoError(t, err, "exactly the tailroom fits")
	assert.Zero(t, m.Tailroom())
	require.NoError(t, m.SetDataLen(64))
}

func TestGettersAndSetters(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "fields", PoolConfig{N: 2})
	m := alloc(t, p)
	m.SetPort(3)
	m.SetOlFlags(1 << 7)
	m.SetPacketType(0x11)
	m.SetVlanTCI(100)
	m.SetVlanTCIOuter(200)
	m.SetRSSHash(0xdeadbeef)
	m.SetTxOffload(42)
	m.SetUserData(7)
	m.SetPktLen(60)
	require.NoError(t, m.SetDataLen(60))
	assert.Equal(t, uint16(3), m.Port())
	assert.Equal(t, uint64(1<<7), m.OlFlags())
	assert.Equal(t, uint32(0x11), m.PacketType())
	assert.Equal(t, uint16(100), m.VlanTCI())
	assert.Equal(t, uint16(200), m.VlanTCIOuter())
	assert.Equal(t, uint32(0xdeadbeef), m.RSSHash())
	assert.Equal(t, uint64(42), m.TxOffload())
	assert.Equal(t, uint64(7), m.UserData())
	assert.Equal(t, uint32(60), m.PktLen())
	assert.Len(t, m.Data(), 60)
	require.NoError(t, m.Free(nil))
	m = alloc(t, p)
	assert.Equal(t, uint16(PortInvalid), m.Port(), "Alloc resets")
	assert.Zero(t, m.OlFlags())
	assert.Zero(t, m.RSSHash())
}

func TestChainBuildsAMultiSegmentPacket(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "chain", PoolConfig{N: 8})
	head := withData(t, p, "abc")
	mid := withData(t, p, "defg")
	tail := withData(t, p, "hi")
	require.NoError(t, mid.Chain(tail))
	require.NoError(t, head.Chain(mid))

	assert.Equal(t, uint16(3), head.NumSegs())
	assert.Equal(t, uint32(9), head.PktLen())
	assert.Equal(t, uint32(4), mid.PktLen(), "a chained packet's length becomes its segment's")
	var all []byte
	for s := head; s != nil; s = s.Next() {
		all = append(all, s.Data()...)
	}
	assert.Equal(t, "abcdefghi", string(all))
	assert.Same(t, tail, head.LastSeg())

	b, err := head.Append(2)
	require.NoError(t, err)
	copy(b, "jk")
	assert.Equal(t, "hijk", string(tail.Data()), "append goes to the last segment")
	assert.Equal(t, uint32(11), head.PktLen())
	require.NoError(t, head.Trim(3))
	assert.Equal(t, "h", string(tail.Data()))
	assert.Equal(t, uint32(8), head.PktLen())

	require.ErrorContains(t, head.Chain(nil), "nil tail")
	require.ErrorContains(t, head.Chain(head), "to itself")
	require.ErrorContains(t, head.Chain(tail), "share a segment", "tail is already in head's chain")
	require.ErrorContains(t, mid.Chain(head), "share a segment", "head's chain holds mid")
	assert.Equal(t, uint16(3), head.NumSegs(), "refused chains change nothing")
	head.nbSegs = MaxSegs
	require.ErrorContains(t, head.Chain(withData(t, p, "x")), "at most 65535")
}

func TestFreeReturnsEverySegmentToItsOwnPool(t *testing.T) {
	mem := newMemory(t)
	hdrs := newPool(t, mem, "hdrs", PoolConfig{N: 64, CacheSize: 16, DataRoom: 256})
	data := newPool(t, mem, "data", PoolConfig{N: 64, CacheSize: 16})
	c := hdrs.Cache(3)

	pkts := make([]*Mbuf, 4)
	require.NoError(t, hdrs.AllocBulk(c, pkts))
	for _, pkt := range pkts {
		for range 3 {
			seg, err := data.Alloc(data.Cache(3))
			require.NoError(t, err)
			require.NoError(t, pkt.Chain(seg))
		}
	}
	assert.Equal(t, uint32(4), hdrs.Mempool().InUse())
	assert.Equal(t, uint32(12), data.Mempool().InUse())

	require.NoError(t, pkts[0].Free(c))
	assert.Equal(t, uint32(3), hdrs.Mempool().InUse())
	assert.Equal(t, uint32(9), data.Mempool().InUse())
	require.NoError(t, FreeBulk(c, pkts[1:]))
	assert.Equal(t, uint32(0), hdrs.Mempool().InUse())
	assert.Equal(t, uint32(0), data.Mempool().InUse())
	assert.NotZero(t, data.Cache(3).Len(), "segments of another pool go to that pool's cache of the same lcore")

	m := alloc(t, data)
	assert.Nil(t, m.Next(), "a freed segment comes back unchained")
	assert.Equal(t, uint16(1), m.NumSegs())
}

func TestFreeBulkLcoreUsesThatLcoresCaches(t *testing.T) {
	mem := newMemory(t)
	hdrs := newPool(t, mem, "lchdrs", PoolConfig{N: 64, CacheSize: 16, DataRoom: 256})
	data := newPool(t, mem, "lcdata", PoolConfig{N: 64, CacheSize: 16})
	pkts := make([]*Mbuf, 4)
	require.NoError(t, hdrs.AllocBulk(nil, pkts))
	for _, pkt := range pkts {
		seg, err := data.Alloc(nil)
		require.NoError(t, err)
		require.NoError(t, pkt.Chain(seg))
	}

	require.NoError(t, FreeBulkLcore(5, pkts[:2]))
	assert.Equal(t, 2, hdrs.Cache(5).Len())
	assert.Equal(t, 2, data.Cache(5).Len())
	require.NoError(t, FreeBulkLcore(-1, pkts[2:3]))
	require.NoError(t, FreeBulk(nil, pkts[3:]))
	assert.Equal(t, 2, hdrs.Cache(5).Len(), "lcore -1 and a nil cache use no cache")
	assert.Zero(t, hdrs.Cache(0).Len(), "a nil cache is not lcore 0's")
	assert.Zero(t, data.Cache(0).Len())
	assert.Zero(t, hdrs.Mempool().InUse())
	assert.Zero(t, data.Mempool().InUse())
}

func TestRefcntKeepsASegmentUntilItsLastFree(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "ref", PoolConfig{N: 8})
	m := withData(t, p, "shared")
	assert.Equal(t, uint32(2), m.RefcntUpdate(1))
	require.NoError(t, m.Free(nil))
	assert.Equal(t, uint32(1), p.Mempool().InUse(), "one reference left")
	assert.Equal(t, "shared", string(m.Data()))
	require.NoError(t, m.Free(nil))
	assert.Equal(t, uint32(0), p.Mempool().InUse())
	assert.Equal(t, uint32(1), m.Refcnt(), "free mbufs keep a count of 1")
}

func TestDoubleFreeIsReportedByADebugPool(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "dbg", PoolConfig{N: 8, CacheSize: 4, Flags: mempool.Debug})
	m := alloc(t, p)
	require.NoError(t, m.Free(p.Cache(0)))
	err := m.Free(p.Cache(0))
	require.ErrorContains(t, err, `mbuf pool "dbg"`)
	require.ErrorContains(t, err, "double free")
	assert.Equal(t, uint32(8), p.Mempool().Avail())
}

func TestAllocBulkIsAllOrNothing(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "aon", PoolConfig{N: 100})
	ms := make([]*Mbuf, 101)
	require.ErrorIs(t, p.AllocBulk(nil, ms), mempool.ErrEmpty)
	assert.Equal(t, uint32(100), p.Mempool().Avail(), "the first batches went back")
	for _, m := range ms {
		assert.Nil(t, m)
	}
	require.NoError(t, p.AllocBulk(nil, ms[:100]))
	_, err := p.Alloc(nil)
	require.ErrorIs(t, err, mempool.ErrEmpty)
}

func TestMbufsWorkThroughASecondMapping(t *testing.T) {
	o := memOptions(t)
	mem, other := testmem.Create(t, o), testmem.Attach(t, o)
	require.NotEqual(t, mem.Ptr(0), other.Ptr(0), "the mappings must differ")

	p := newPool(t, mem, "xmap", PoolConfig{N: 32, CacheSize: 8})
	q, err := LookupPool(other, "xmap")
	require.NoError(t, err)
	defer q.Close()

	head := withData(t, p, "from the first mapping,")
	off := head.Off(mem)
	theirs := FromOff(other, off)
	assert.NotEqual(t, uintptr(unsafe.Pointer(head)), uintptr(unsafe.Pointer(theirs)))
	assert.Equal(t, "from the first mapping,", string(theirs.Data()))

	seg, err := q.Alloc(q.Cache(1))
	require.NoError(t, err)
	b, err := seg.Append(11)
	require.NoError(t, err)
	copy(b, " the second")
	require.NoError(t, theirs.Chain(seg))
	var all []byte
	for s := head; s != nil; s = s.Next() {
		all = append(all, s.Data()...)
	}
	assert.Equal(t, "from the first mapping, the second", string(all), "the chain reads the same from the first mapping")

	require.NoError(t, theirs.Free(q.Cache(1)))
	assert.Equal(t, uint32(0), p.Mempool().InUse(), "counts seen from the first mapping")
}

func TestFreeOpensAPoolOnFirstUse(t *testing.T) {
	o := memOptions(t)
	mem, other := testmem.Create(t, o), testmem.Attach(t, o)

	p := newPool(t, mem, "lazy", PoolConfig{N: 8})
	newPool(t, mem, "known", PoolConfig{N: 8})
	m := withData(t, p, "x")
	theirs := FromOff(other, m.Off(mem))
	require.ErrorIs(t, theirs.Free(nil), ErrPoolNotOpen, "no pool open in the second mapping yet")
	assert.Equal(t, uint32(1), p.Mempool().InUse(), "nothing freed")
	ms := []*Mbuf{theirs}
	allocs := testing.AllocsPerRun(100, func() {
		if !errors.Is(FreeBulk(nil, ms), ErrPoolNotOpen) {
			panic("want ErrPoolNotOpen")
		}
	})
	assert.Zero(t, allocs, "a free that keeps failing for want of an open pool allocates nothing")

	k, err := LookupPool(other, "known")
	require.NoError(t, err)
	defer k.Close()
	require.NoError(t, theirs.Free(nil), "the group is known now: the pool opens on demand")
	assert.Equal(t, uint32(0), p.Mempool().InUse())
}

func TestBufIOVAOnHugepages(t *testing.T) {
	testenv.RequireRoot(t)
	o := memOptions(t)
	o.NoHuge = false
	mem, err := hugemem.Create(o)
	if err != nil || !mem.HugePages() {
		if err == nil {
			mem.Close()
		}
		testenv.Missing(t, "hugepages (%v)", err)
	}
	defer mem.Close()
	p := newPool(t, mem, "iova", PoolConfig{N: 16})
	m := alloc(t, p)
	want, err := mem.IOVA(m.Off(mem) + HeaderSize)
	require.NoError(t, err)
	assert.Equal(t, want, m.BufIOVA())
	assert.Equal(t, want+DefaultHeadroom, m.DataIOVA())
}

func TestAllocAndFreeAllocateNothing(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "allocs", PoolConfig{N: 256, CacheSize: 64})
	other := newPool(t, mem, "allocs2", PoolConfig{N: 256, CacheSize: 64})
	c := p.Cache(0)
	ms := make([]*Mbuf, 32)
	assert.Zero(t, testing.AllocsPerRun(200, func() {
		if err := p.AllocBulk(c, ms); err != nil {
			panic(err)
		}
		if err := FreeBulk(c, ms); err != nil {
			panic(err)
		}
	}), "AllocBulk+FreeBulk of 32")
	assert.Zero(t, testing.AllocsPerRun(200, func() {
		m, err := p.Alloc(c)
		if err != nil {
			panic(err)
		}
		b, _ := m.Append(64)
		b[0] = 1
		_ = m.Data()
		seg, _ := other.Alloc(other.Cache(0))
		m.Chain(seg)
		if err := m.Free(c); err != nil {
			panic(err)
		}
	}), "Alloc, Append, Data, Chain and Free of two pools")
}

func TestDataIsAViewNotACopy(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "view", PoolConfig{N: 2})
	m := withData(t, p, "abc")
	m.Data()[1] = 'X'
	assert.True(t, bytes.Equal([]byte("aXc"), m.Data()))
}

func TestPAModeKeepsEveryBufferPhysicallyContiguous(t *testing.T) {
	testenv.RequireRoot(t)
	o := memOptions(t)
	o.NoHuge = false
	o.IOVAMode = hugemem.IOVAModePA
	mem, err := hugemem.Create(o)
	if err != nil || !mem.HugePages() {
		if err == nil {
			mem.Close()
		}
		testenv.Missing(t, "hugepages (%v)", err)
	}
	defer mem.Close()
	const n = 2000 // about 2.2 pages of 2 MiB: some mbufs would straddle a page
	p := newPool(t, mem, "pa", PoolConfig{N: n})
	assert.NotZero(t, p.Mempool().Flags()&mempool.IOVAContig, "PA mode asks the mempool to keep objects inside pages")
	ms := make([]*Mbuf, n)
	require.NoError(t, p.AllocBulk(nil, ms))
	for _, m := range ms {
		start := m.Off(mem) + HeaderSize
		first, err := mem.IOVA(start)
		require.NoError(t, err)
		last, err := mem.IOVA(start + uint64(m.BufLen()) - 1)
		require.NoError(t, err)
		require.Equal(t, first, m.BufIOVA())
		require.Equal(t, first+uint64(m.BufLen())-1, last, "buffer at group offset %#x is not IOVA-contiguous", start)
	}
	require.NoError(t, FreeBulk(nil, ms))
}
