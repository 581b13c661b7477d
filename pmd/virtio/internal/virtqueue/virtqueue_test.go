package virtqueue

import (
	"encoding/binary"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var kinds = []Kind{Split, Packed}

// forEachKind runs a test on a split and a packed ring.
func forEachKind(t *testing.T, f func(t *testing.T, kind Kind)) {
	for _, k := range kinds {
		t.Run(k.String(), func(t *testing.T) { f(t, k) })
	}
}

func testFrame(i, size int) []byte {
	f := make([]byte, size)
	for j := range f {
		f[j] = byte(i*7 + j)
	}
	binary.BigEndian.PutUint32(f, uint32(i))
	return f
}

func packetBytes(m *mbuf.Mbuf) []byte {
	var b []byte
	for s := m; s != nil; s = s.Next() {
		b = append(b, s.Data()...)
	}
	return b
}

func newPacket(t testing.TB, pool *mbuf.Pool, data []byte) *mbuf.Mbuf {
	m, err := pool.Alloc(nil)
	require.NoError(t, err)
	b, err := m.Append(len(data))
	require.NoError(t, err)
	copy(b, data)
	return m
}

func TestSharedLayout(t *testing.T) {
	assert.Equal(t, uintptr(16), unsafe.Sizeof(splitDesc{}))
	assert.Equal(t, uintptr(16), unsafe.Sizeof(packedDesc{}))
	assert.Equal(t, uintptr(8), unsafe.Sizeof(usedElem{}))
	assert.Equal(t, uintptr(16), unsafe.Sizeof(idEntry{}))
	assert.Equal(t, uintptr(12), unsafe.Offsetof(packedDesc{}.ID), "id and flags of a packed descriptor form one 32-bit word")
	assert.Equal(t, uintptr(0), unsafe.Sizeof(state{})%64, "state is whole cache lines")
	assert.Equal(t, uintptr(64), unsafe.Offsetof(state{}.Enabled), "Enabled starts the second cache line")
	assert.Equal(t, uintptr(128), unsafe.Offsetof(state{}.Busy), "the poller's cursors start the third")
	assert.Equal(t, uintptr(192), unsafe.Offsetof(state{}.Counters))
	avail, used, size := splitLayout(256)
	assert.Equal(t, []uint64{4096, 8192, 8192 + 6 + 8*256}, []uint64{avail, used, size}, "legacy split layout of 256 entries (virtio 1.2 section 2.7.2)")
	for _, k := range kinds {
		g := layout(k, 256)
		assert.Zero(t, g.ring%4096, "%s ring is page aligned", k)
		assert.GreaterOrEqual(t, g.ring, g.free+2*256)
	}
}

func TestInitRefusesBadGeometry(t *testing.T) {
	h := newHarness(t, queueSpec{kind: Split, role: RoleRx, size: 64})
	z, err := h.mem.Reserve("small", 4096, ZoneAlign)
	require.NoError(t, err)
	for _, c := range []struct {
		cfg  Config
		want string
	}{
		{Config{Kind: Split, Role: RoleRx, Size: 100, HdrLen: 12}, "power of two"},
		{Config{Kind: Split, Role: RoleRx, Size: 65536, HdrLen: 12}, "power of two"},
		{Config{Kind: 9, Role: RoleRx, Size: 64, HdrLen: 12}, "neither split nor packed"},
		{Config{Kind: Split, Role: RoleRx, Size: 64, HdrLen: 10, Mergeable: true}, "12-byte header"},
		{Config{Kind: Split, Role: RoleRx, Size: 1024, HdrLen: 12}, "needs"},
	} {
		err := Init(h.mem, z, c.cfg)
		require.Error(t, err, "%+v", c.cfg)
		assert.Contains(t, err.Error(), c.want)
	}
}

func TestRxDeliversFramesIntactAndRefills(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleRx, size: 64})
		require.Equal(t, poolSize-64, h.avail(), "Fill posts one mbuf per descriptor")
		pkts := make([]*mbuf.Mbuf, 32)
		for round := range 10 { // several times around the ring
			for i := range 20 {
				h.dev.receive(t, testFrame(round*20+i, 60+i*50))
			}
			n := h.q.Rx(pkts)
			require.Equal(t, 20, n, "frames received in round %d", round)
			for i, m := range pkts[:n] {
				want := testFrame(round*20+i, 60+i*50)
				require.Equal(t, want, packetBytes(m), "frame %d of round %d", i, round)
				assert.Equal(t, uint32(len(want)), m.PktLen())
				assert.Equal(t, uint16(7), m.Port())
			}
			require.NoError(t, mbuf.FreeBulk(nil, pkts[:n]))
			require.Equal(t, 64, h.q.InFlight(), "the ring is refilled after each burst")
		}
		assert.Equal(t, uint64(200), h.counters.Packets)
		assert.Zero(t, h.counters.Errors)
		h.checkNoLeak(0)
	})
}

func TestRxChainsMergedFramesIntoSegments(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleRx, size: 64, merge: true})
		pkts := make([]*mbuf.Mbuf, 8)
		sizes := []int{60, 2048, 2049, 5000, 9000, 1514}
		for i, s := range sizes {
			h.dev.receive(t, testFrame(i, s))
		}
		n := h.q.Rx(pkts)
		require.Equal(t, len(sizes), n)
		for i, m := range pkts[:n] {
			require.Equal(t, testFrame(i, sizes[i]), packetBytes(m), "frame %d of %d bytes", i, sizes[i])
			assert.Equal(t, uint32(sizes[i]), m.PktLen())
			assert.Equal(t, uint16((sizes[i]+12+2059)/2060), m.NumSegs(), "segments of a %d-byte frame in 2060-byte buffers", sizes[i])
		}
		require.NoError(t, mbuf.FreeBulk(nil, pkts[:n]))
		h.checkNoLeak(0)
	})
}

func TestRxWaitsForTheRestOfAMergedFrame(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleRx, size: 64, merge: true})
		// The device announces three buffers but has written two so far.
		var cs []devChain
		for range 3 {
			c, ok := h.dev.next()
			require.True(t, ok)
			cs = append(cs, c)
		}
		frame := testFrame(1, 5000)
		data := append(make([]byte, 12), frame...)
		binary.LittleEndian.PutUint16(data[10:], 3)
		for _, c := range cs[:2] {
			k := copy(h.dev.bytes(c.bufs[0]), data)
			data = data[k:]
			h.dev.complete(c, uint32(k))
		}
		pkts := make([]*mbuf.Mbuf, 4)
		require.Zero(t, h.q.Rx(pkts), "half a frame is not delivered")
		k := copy(h.dev.bytes(cs[2].bufs[0]), data)
		h.dev.complete(cs[2], uint32(k))
		require.Equal(t, 1, h.q.Rx(pkts))
		require.Equal(t, frame, packetBytes(pkts[0]))
		pkts[0].Free(nil)
		h.checkNoLeak(0)
	})
}

func TestTxSendsFramesAndFreesWhatTheDeviceReturns(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleTx, size: 64})
		sent := 0
		for round := range 10 {
			var pkts []*mbuf.Mbuf
			for i := range 40 {
				pkts = append(pkts, newPacket(t, h.pool, testFrame(round*40+i, 60+i)))
			}
			require.Equal(t, 40, h.q.Tx(pkts), "round %d: the ring had room", round)
			for i := range 40 {
				c, got, ok := h.dev.transmit(t)
				require.True(t, ok, "frame %d of round %d on the ring", i, round)
				require.Equal(t, testFrame(round*40+i, 60+i), got)
				assert.Len(t, c.bufs, 1, "a lone segment carries its header in its headroom")
				h.dev.complete(c, 0)
			}
			sent += 40
		}
		require.Zero(t, h.q.Tx(nil))
		assert.Equal(t, poolSize, h.avail(), "every sent mbuf is back in the pool")
		assert.Equal(t, uint64(sent), h.counters.Packets)
		h.checkNoLeak(0)
	})
}

func TestTxChainsSegmentsBehindAHeaderSlot(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleTx, size: 16})
		first := newPacket(t, h.pool, testFrame(1, 100))
		second := newPacket(t, h.pool, testFrame(2, 200))
		require.NoError(t, first.Chain(second))
		shared := newPacket(t, h.pool, testFrame(3, 64))
		shared.RefcntUpdate(1) // someone else holds it too: no header in its headroom
		require.Equal(t, 2, h.q.Tx([]*mbuf.Mbuf{first, shared}))

		c, got, ok := h.dev.transmit(t)
		require.True(t, ok)
		assert.Len(t, c.bufs, 3, "header, then one descriptor per segment")
		assert.Equal(t, append(testFrame(1, 100), testFrame(2, 200)...), got)
		h.dev.complete(c, 0)
		c, got, ok = h.dev.transmit(t)
		require.True(t, ok)
		assert.Len(t, c.bufs, 2)
		assert.Equal(t, testFrame(3, 64), got)
		h.dev.complete(c, 0)
		h.q.Tx(nil)
		assert.Equal(t, uint32(1), shared.Refcnt(), "the queue dropped its reference only")
		shared.Free(nil)
		h.checkNoLeak(0)
	})
}

func TestTxStopsWhenTheRingIsFullAndDropsWhatCanNeverFit(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleTx, size: 8})
		var pkts []*mbuf.Mbuf
		for i := range 12 {
			pkts = append(pkts, newPacket(t, h.pool, testFrame(i, 60)))
		}
		require.Equal(t, 8, h.q.Tx(pkts), "a ring of 8 takes 8 one-descriptor frames")
		require.Zero(t, h.q.Tx(pkts[8:]), "nothing until the device returns some")
		require.NoError(t, mbuf.FreeBulk(nil, pkts[8:]))

		long := newPacket(t, h.pool, testFrame(0, 60))
		for range 8 {
			require.NoError(t, long.Chain(newPacket(t, h.pool, testFrame(0, 60))))
		}
		require.Equal(t, 1, h.q.Tx([]*mbuf.Mbuf{long}), "a packet that can never fit is taken")
		assert.Equal(t, uint64(1), h.q.Stats().Oversize)
		assert.Equal(t, uint64(1), h.counters.Errors)
		h.checkNoLeak(0)
	})
}

// TestBadUsedEntriesAreDroppedAndCounted has the device return used
// entries that no correct device would: ids out of range, ids it already
// returned, lengths beyond the buffer or shorter than the header. Each is
// counted; good frames around them arrive intact; no mbuf is lost.
func TestBadUsedEntriesAreDroppedAndCounted(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleRx, size: 32})
		pkts := make([]*mbuf.Mbuf, 32)
		good := func(i int) { h.dev.receive(t, testFrame(i, 100)) }

		good(0)
		c, _ := h.dev.next()
		c.id = 1000 // out of range
		h.dev.complete(c, 100)
		good(1)
		c, _ = h.dev.next()
		h.dev.complete(c, 100000) // longer than the buffer
		c, _ = h.dev.next()
		h.dev.complete(c, 5) // shorter than the header
		good(2)
		n := h.q.Rx(pkts)
		require.Equal(t, 3, n)
		for i := range n {
			assert.Equal(t, testFrame(i, 100), packetBytes(pkts[i]))
		}
		require.NoError(t, mbuf.FreeBulk(nil, pkts[:n]))
		st := h.q.Stats()
		assert.Equal(t, uint64(1), st.BadID)
		assert.Equal(t, uint64(2), st.BadLen)
		assert.Equal(t, uint64(3), h.counters.Errors)

		// The same id twice, the second time in place of another buffer.
		c1, _ := h.dev.next()
		c2, _ := h.dev.next()
		h.dev.complete(c1, 60)
		c2.id = c1.id
		h.dev.complete(c2, 60)
		good(3)
		n = h.q.Rx(pkts)
		require.Equal(t, 2, n)
		assert.Equal(t, testFrame(3, 100), packetBytes(pkts[1]))
		require.NoError(t, mbuf.FreeBulk(nil, pkts[:n]))
		assert.Equal(t, uint64(2), h.q.Stats().BadID)

		for i := range 100 { // and the queue keeps working
			good(i)
			require.Equal(t, 1, h.q.Rx(pkts))
			require.Equal(t, testFrame(i, 100), packetBytes(pkts[0]))
			pkts[0].Free(nil)
		}
		h.checkNoLeak(0)
	})
}

func TestMergedFramesClaimingTooManyBuffersAreDropped(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleRx, size: 32, merge: true})
		pkts := make([]*mbuf.Mbuf, 8)
		for _, nb := range []uint16{0, 33, 60000} {
			c, _ := h.dev.next()
			hdr := h.dev.bytes(c.bufs[0])
			clear(hdr[:12])
			binary.LittleEndian.PutUint16(hdr[10:], nb)
			h.dev.complete(c, 100)
		}
		h.dev.receive(t, testFrame(9, 3000))
		n := h.q.Rx(pkts)
		require.Equal(t, 1, n)
		assert.Equal(t, testFrame(9, 3000), packetBytes(pkts[0]))
		pkts[0].Free(nil)
		assert.Equal(t, uint64(3), h.q.Stats().BadMerge)

		// A merged frame with one bad piece is dropped whole.
		var cs []devChain
		for range 3 {
			c, _ := h.dev.next()
			cs = append(cs, c)
		}
		hdr := h.dev.bytes(cs[0].bufs[0])
		clear(hdr[:12])
		binary.LittleEndian.PutUint16(hdr[10:], 3)
		h.dev.complete(cs[0], 2060)
		h.dev.complete(cs[1], 99999)
		h.dev.complete(cs[2], 100)
		h.dev.receive(t, testFrame(10, 200))
		n = h.q.Rx(pkts)
		require.Equal(t, 1, n)
		assert.Equal(t, testFrame(10, 200), packetBytes(pkts[0]))
		pkts[0].Free(nil)
		h.checkNoLeak(0)
	})
}

// TestLoopingDescriptorChainIsNeverFollowed has the device rewrite the
// driver's descriptors into a loop before returning the chain: the driver
// frees the chain it recorded, in bounded time, and loses nothing.
func TestLoopingDescriptorChainIsNeverFollowed(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleTx, size: 16})
		m := newPacket(t, h.pool, testFrame(1, 100))
		require.NoError(t, m.Chain(newPacket(t, h.pool, testFrame(2, 100))))
		require.Equal(t, 1, h.q.Tx([]*mbuf.Mbuf{m}))
		c, ok := h.dev.next()
		require.True(t, ok)
		require.Equal(t, uint32(3), c.ndesc)
		if kind == Split {
			for i := range h.q.desc[:16] {
				h.q.desc[i].Next = uint16(i) // every descriptor points at itself
				h.q.desc[i].Flags |= descFNext
			}
		} else {
			for i := range h.q.pdesc[:16] {
				h.q.pdesc[i].Flags |= descFNext
			}
		}
		h.dev.complete(c, 0)
		done := make(chan struct{})
		go func() { h.q.Tx(nil); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			t.Fatal("reclaiming a chain the device looped did not finish")
		}
		assert.Equal(t, poolSize, h.avail())
		assert.Equal(t, uint32(16), h.q.st.FreeTop, "every id is free again")
		h.checkNoLeak(0)
	})
}

func TestUsedIndexRunningAheadOnlyCostsDrops(t *testing.T) {
	h := newHarness(t, queueSpec{kind: Split, role: RoleRx, size: 32})
	h.dev.usedIdx = 5000 // entries that were never written
	h.dev.publishUsed()
	pkts := make([]*mbuf.Mbuf, 64)
	n := h.q.Rx(pkts)
	require.Zero(t, n)
	st := h.q.Stats()
	assert.Equal(t, uint64(32), st.BadID+st.BadLen, "at most a ring's worth of entries is looked at in one burst")
	assert.Equal(t, 32, h.q.InFlight(), "the buffers stay posted")
	h.checkNoLeak(0)
}

func TestKicksOnlyWhenTheDeviceAsks(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleTx, size: 16})
		pkt := func() []*mbuf.Mbuf { return []*mbuf.Mbuf{newPacket(t, h.pool, testFrame(0, 60))} }
		require.Equal(t, 1, h.q.Tx(pkt()))
		assert.Zero(t, h.kicks.n, "the device said it polls")
		h.dev.setNoNotify(false)
		require.Equal(t, 1, h.q.Tx(pkt()))
		assert.Equal(t, 1, h.kicks.n)
		if kind == Split {
			assert.Equal(t, uint32(availFNoInterrupt), atomic32(h.q.availWord)&0xffff, "interrupts are suppressed")
		} else {
			assert.Equal(t, uint32(eventFDisable), atomic32(h.q.drvEvent)>>16, "interrupts are suppressed")
		}
		h.checkNoLeak(0)
	})
}

func TestDisabledQueueDoesNothingAndDisableWaitsForABurst(t *testing.T) {
	h := newHarness(t, queueSpec{kind: Split, role: RoleRx, size: 16})
	h.dev.receive(t, testFrame(0, 60))
	require.NoError(t, h.q.Disable(time.Second))
	pkts := make([]*mbuf.Mbuf, 4)
	require.Zero(t, h.q.Rx(pkts))
	h.q.st.Busy = 1 // a poller in the middle of a burst
	err := h.q.Disable(50 * time.Millisecond)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "did not finish")
	h.q.st.Busy = 0
	h.q.Enable()
	require.Equal(t, 1, h.q.Rx(pkts))
	pkts[0].Free(nil)
	h.checkNoLeak(0)
}

func TestDeviceBaseIsWhereTheDeviceStopped(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleTx, size: 8})
		for round := range 3 {
			var pkts []*mbuf.Mbuf
			for i := range 5 {
				pkts = append(pkts, newPacket(t, h.pool, testFrame(i, 60)))
			}
			require.Equal(t, 5, h.q.Tx(pkts))
			for range 3 { // the device sends three, and the driver has not looked yet
				c, _, ok := h.dev.transmit(t)
				require.True(t, ok)
				h.dev.complete(c, 0)
			}
			require.NoError(t, h.q.Disable(0))
			var want uint32
			if kind == Split {
				want = h.dev.usedIdx
			} else {
				want = h.dev.usedPos | h.dev.usedWrap<<15
			}
			require.Equal(t, want, h.q.DeviceBase(), "round %d", round)
			h.q.Enable()
			for range 2 {
				c, _, _ := h.dev.transmit(t)
				h.dev.complete(c, 0)
			}
			h.q.Tx(nil)
		}
		h.checkNoLeak(0)
	})
}

func TestControlCommandGetsTheDevicesAnswer(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		h := newHarness(t, queueSpec{kind: kind, role: RoleCtrl, size: 16})
		for i := range 20 {
			done := make(chan struct{})
			go func() {
				defer close(done)
				for {
					c, ok := h.dev.next()
					if !ok {
						time.Sleep(time.Millisecond)
						continue
					}
					assert.Len(t, c.bufs, 2)
					cmd := h.dev.bytes(c.bufs[0])
					assert.Equal(t, []byte{0, 1, byte(i)}, cmd)
					h.dev.bytes(c.bufs[1])[0] = byte(i % 2)
					h.dev.complete(c, 1)
					return
				}
			}()
			ack, err := h.q.Command([]byte{0, 1, byte(i)}, time.Second)
			<-done
			require.NoError(t, err)
			assert.Equal(t, byte(i%2), ack)
		}
		_, err := h.q.Command([]byte{0, 1, 0}, 20*time.Millisecond)
		require.Error(t, err, "nobody answers")
		assert.Contains(t, err.Error(), "no answer")
	})
}

func TestBurstsAllocateNothing(t *testing.T) {
	forEachKind(t, func(t *testing.T, kind Kind) {
		rx := newHarness(t, queueSpec{kind: kind, role: RoleRx, size: 64, merge: true})
		tx := newHarness(t, queueSpec{kind: kind, role: RoleTx, size: 64})
		pkts := make([]*mbuf.Mbuf, 32)
		frame := testFrame(0, 3000)
		var got int
		allocs := testing.AllocsPerRun(100, func() {
			rx.dev.receiveNoAlloc(frame)
			got = rx.q.Rx(pkts)
			if tx.q.Tx(pkts[:got]) != got {
				panic("tx ring full")
			}
			for {
				c, ok := tx.dev.nextNoAlloc()
				if !ok {
					break
				}
				tx.dev.complete(c, 0)
			}
		})
		assert.Zero(t, allocs)
		assert.Equal(t, 1, got)
	})
}

func atomic32(p *uint32) uint32 { return *p }

// receiveNoAlloc is receive for a frame that takes two buffers of a
// mergeable queue, without allocating.
func (d *fakeDev) receiveNoAlloc(frame []byte) {
	c1, _ := d.nextFlat()
	c2, _ := d.nextFlat()
	b1 := unsafe.Slice((*byte)(d.mem.Ptr(c1.addr-testBase)), c1.len)
	b2 := unsafe.Slice((*byte)(d.mem.Ptr(c2.addr-testBase)), c2.len)
	clear(b1[:12])
	binary.LittleEndian.PutUint16(b1[10:], 2)
	k := copy(b1[12:], frame)
	copy(b2, frame[k:])
	d.complete(devChain{id: c1.id, ndesc: 1}, uint32(12+k))
	d.complete(devChain{id: c2.id, ndesc: 1}, uint32(len(frame)-k))
}

type flatChain struct {
	id, ndesc uint32
	addr      uint64
	len       uint32
}

// nextNoAlloc is next for one-descriptor chains, without allocating.
func (d *fakeDev) nextNoAlloc() (devChain, bool) {
	c, ok := d.nextFlat()
	return devChain{id: c.id, ndesc: c.ndesc}, ok
}

func (d *fakeDev) nextFlat() (flatChain, bool) {
	q := d.q
	if q.kind == Split {
		if *q.availWord>>16 == d.lastAvail {
			return flatChain{}, false
		}
		head := uint32(q.availRing[d.lastAvail&q.mask])
		d.lastAvail = (d.lastAvail + 1) & 0xffff
		return flatChain{id: head, ndesc: 1, addr: q.desc[head].Addr, len: q.desc[head].Len}, true
	}
	f := uint32(q.pdesc[d.availPos].Flags)
	if (f>>7)&1 != d.availWrap || (f>>15)&1 == d.availWrap {
		return flatChain{}, false
	}
	desc := q.pdesc[d.availPos]
	d.availPos, d.availWrap = advance(d.availPos, d.availWrap, 1, q.size)
	return flatChain{id: uint32(desc.ID), ndesc: 1, addr: desc.Addr, len: desc.Len}, true
}
