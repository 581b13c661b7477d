package virtqueue

import (
	"encoding/binary"
	"fmt"
	"os"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
)

// A fake device in Go, working on the ring from the device's side the way
// the specification says, plus the ways a broken device may go wrong.

// testBase is the device address of group offset 0 in these tests.
const testBase = 1 << 40

const poolSize = 1023

var seq atomic.Int64

type harness struct {
	t        testing.TB
	mem      *hugemem.Memory
	pool     *mbuf.Pool
	q        *Queue
	dev      *fakeDev
	counters ethdev.QueueCounters
	kicks    countingNotifier
}

type countingNotifier struct{ n int }

func (c *countingNotifier) Notify() { c.n++ }

type queueSpec struct {
	kind  Kind
	role  Role
	size  int
	merge bool
	hdr   int
}

func newHarness(t testing.TB, s queueSpec) *harness {
	t.Helper()
	mem, err := hugemem.Create(hugemem.Options{Prefix: fmt.Sprintf("vq%d-%d", os.Getpid(), seq.Add(1)), NoHuge: true,
		Limit: 64 << 20, SegmentSize: 32 << 20, RuntimeDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	pool, err := mbuf.CreatePool(mem, "pkts", mbuf.PoolConfig{N: poolSize})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	if s.hdr == 0 && s.role != RoleCtrl {
		s.hdr = 12
	}
	z, err := mem.Reserve("vq", ZoneSize(s.kind, s.size), ZoneAlign)
	require.NoError(t, err)
	require.NoError(t, Init(mem, z, Config{Kind: s.kind, Role: s.role, Size: s.size, HdrLen: s.hdr, Mergeable: s.merge,
		Addressing: Addressing{Linear: true, Base: testBase}}))
	h := &harness{t: t, mem: mem, pool: pool}
	a := Attachment{Notifier: &h.kicks, Counters: &h.counters, Port: 7}
	if s.role == RoleRx {
		a.Pool = pool
	}
	h.q, err = Attach(mem, z, a)
	require.NoError(t, err)
	h.q.Enable()
	h.dev = &fakeDev{q: h.q, mem: mem, availWrap: 1, usedWrap: 1, hdr: uint32(s.hdr)}
	h.dev.setNoNotify(true)
	if s.role == RoleRx {
		require.NoError(t, h.q.Fill())
	}
	return h
}

// avail returns the mbufs in the pool.
func (h *harness) avail() int { return int(h.pool.Mempool().Avail()) }

// checkNoLeak resets the queue and expects every mbuf back in the pool.
func (h *harness) checkNoLeak(outside int) {
	h.t.Helper()
	require.NoError(h.t, h.q.Disable(0))
	h.q.Reset()
	require.Equal(h.t, poolSize-outside, h.avail(), "mbufs in the pool after reset, with %d held by the test", outside)
}

type fakeDev struct {
	q   *Queue
	mem *hugemem.Memory
	hdr uint32
	// split
	lastAvail uint32
	usedIdx   uint32
	// packed
	availPos, availWrap uint32
	usedPos, usedWrap   uint32
	noNotify            bool
}

type devBuf struct {
	addr  uint64
	len   uint32
	write bool
}

type devChain struct {
	id    uint32
	bufs  []devBuf
	ndesc uint32
}

func (d *fakeDev) setNoNotify(on bool) {
	d.noNotify = on
	if d.q.kind == Split {
		d.publishUsed()
		return
	}
	flags := uint32(eventFEnable)
	if on {
		flags = eventFDisable
	}
	atomic.StoreUint32(d.q.devEvent, flags<<16)
}

func (d *fakeDev) publishUsed() {
	var flags uint32
	if d.noNotify {
		flags = usedFNoNotify
	}
	atomic.StoreUint32(d.q.usedWord, d.usedIdx<<16|flags)
}

// bytes returns the memory behind a buffer the driver posted.
func (d *fakeDev) bytes(b devBuf) []byte {
	return unsafe.Slice((*byte)(d.mem.Ptr(b.addr-testBase)), b.len)
}

// next takes the next chain the driver made available.
func (d *fakeDev) next() (devChain, bool) {
	q := d.q
	if q.kind == Split {
		if atomic.LoadUint32(q.availWord)>>16 == d.lastAvail {
			return devChain{}, false
		}
		head := uint32(q.availRing[d.lastAvail&q.mask])
		d.lastAvail = (d.lastAvail + 1) & 0xffff
		c := devChain{id: head}
		for i, k := head, 0; k < int(q.size); k++ {
			desc := q.desc[i]
			c.bufs = append(c.bufs, devBuf{desc.Addr, desc.Len, desc.Flags&descFWrite != 0})
			c.ndesc++
			if desc.Flags&descFNext == 0 {
				break
			}
			i = uint32(desc.Next) & q.mask
		}
		return c, true
	}
	w := atomic.LoadUint32(q.descWord(d.availPos))
	f := w >> 16
	if (f>>7)&1 != d.availWrap || (f>>15)&1 == d.availWrap {
		return devChain{}, false
	}
	var c devChain
	for range q.size {
		desc := q.pdesc[d.availPos]
		c.bufs = append(c.bufs, devBuf{desc.Addr, desc.Len, desc.Flags&descFWrite != 0})
		c.id = uint32(desc.ID)
		c.ndesc++
		d.availPos, d.availWrap = advance(d.availPos, d.availWrap, 1, q.size)
		if desc.Flags&descFNext == 0 {
			break
		}
	}
	return c, true
}

// complete writes a used entry.
func (d *fakeDev) complete(c devChain, l uint32) {
	q := d.q
	if q.kind == Split {
		q.usedRing[d.usedIdx&q.mask] = usedElem{ID: c.id, Len: l}
		d.usedIdx = (d.usedIdx + 1) & 0xffff
		d.publishUsed()
		return
	}
	desc := &q.pdesc[d.usedPos]
	desc.Len = l
	flags := uint32(0)
	if d.usedWrap != 0 {
		flags = descFAvail | descFUsed
	}
	atomic.StoreUint32(q.descWord(d.usedPos), c.id&0xffff|flags<<16)
	d.usedPos, d.usedWrap = advance(d.usedPos, d.usedWrap, max(c.ndesc, 1), q.size)
}

// receive writes frame into the next rx buffer (or buffers, with
// mergeable rx) and completes them.
func (d *fakeDev) receive(t testing.TB, frame []byte) {
	t.Helper()
	var chains []devChain
	rest := len(frame) + int(d.hdr)
	for rest > 0 {
		c, ok := d.next()
		require.True(t, ok, "the driver posted no rx buffer")
		require.Len(t, c.bufs, 1)
		require.True(t, c.bufs[0].write, "rx buffers are device-writable")
		chains = append(chains, c)
		rest -= int(c.bufs[0].len)
	}
	hdr := make([]byte, d.hdr)
	if d.hdr == 12 {
		binary.LittleEndian.PutUint16(hdr[10:], uint16(len(chains)))
	}
	data := append(hdr, frame...)
	for _, c := range chains {
		b := d.bytes(c.bufs[0])
		n := copy(b, data)
		data = data[n:]
		d.complete(c, uint32(n))
	}
}

// transmit takes the next tx chain and returns the frame it carries,
// checking the all-zero header in front.
func (d *fakeDev) transmit(t testing.TB) (devChain, []byte, bool) {
	t.Helper()
	c, ok := d.next()
	if !ok {
		return c, nil, false
	}
	var all []byte
	for _, b := range c.bufs {
		require.False(t, b.write, "tx buffers are device-readable")
		all = append(all, d.bytes(b)...)
	}
	require.GreaterOrEqual(t, len(all), int(d.hdr))
	require.Equal(t, make([]byte, d.hdr), all[:d.hdr], "the virtio-net header of a frame without offloads is all zero")
	return c, all[d.hdr:], true
}
