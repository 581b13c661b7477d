package ixgbe

import (
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mempool"
)

// The fast path. One packet's trip: RxBurst finds a descriptor with DD,
// hands its mbuf to the caller and arms the descriptor with a fresh one;
// TxBurst writes one descriptor per segment and moves TDT once per burst,
// and frees mbufs a batch of 32 descriptors at a time once the device
// reports the batch's last descriptor done.

// rxDesc is an advanced receive descriptor (7.1.6). Read format (7.1.6.1):
// lo is the packet buffer address, hi the header buffer address (0: no
// header split). Write-back (7.1.6.2): lo holds the RSS type, packet type
// and RSS hash; hi the status, errors, length and VLAN tag.
type rxDesc struct{ lo, hi uint64 }

// arm gives the descriptor to the device in the read format; hi = 0 also
// clears DD.
func (d *rxDesc) arm(iova uint64) {
	d.lo = iova
	d.hi = 0
}

// txDesc is an advanced transmit data descriptor (7.2.3.2.4): lo the data
// address, hi DTALEN, DTYP, DCMD and PAYLEN; the device writes STA.DD into
// hi (7.2.3.5).
type txDesc struct{ lo, hi uint64 }

// rxQueue is one process's poller of an rx queue.
type rxQueue struct {
	sh       *rxShared             // cursors, in shared memory
	ring     unsafe.Pointer        // descriptor 0 in this process
	slots    unsafe.Pointer        // mbuf table: the group offset of each descriptor's mbuf
	base     unsafe.Pointer        // group offset 0 in this process
	mask     uint32                // descriptors - 1
	bufLen   uint32                // bytes the device may write per buffer
	rdt      uint32                // offset of this queue's RDT
	port     uint16                // recorded in each mbuf
	regs     registers             // for RDT
	pool     *mbuf.Pool            // refills
	cache    *mempool.Cache        // the polling lcore's cache of pool, or nil
	counters *ethdev.QueueCounters // shared counters, written only here
	dma      dma                   // mbuf to device address
	fresh    [maxBurst]*mbuf.Mbuf  // replacement buffers of one burst
	flags    [16]uint64            // olFlags by checksum status, see rxFlagIndex
}

// rxQueue builds a poller of rx queue q from the shared state.
func (d *Device) rxQueue(q int, pool *mbuf.Pool, c *ethdev.QueueCounters) *rxQueue {
	rs := &d.sh.Rx[q]
	rq := &rxQueue{
		sh:       rs,
		ring:     d.mem.Ptr(rs.Zone),
		slots:    d.mem.Ptr(rs.Zone + uint64(rs.Size)*descSize),
		base:     d.mem.Ptr(0),
		mask:     rs.Size - 1,
		bufLen:   rs.BufLen,
		rdt:      rxq(q, rqRDT),
		port:     d.cfg.portID,
		regs:     d.regs,
		pool:     pool,
		counters: c,
		dma:      dma{base: d.mem.Ptr(0), iova: d.iova},
	}
	for i := range rq.flags {
		var f uint64
		if i&2 != 0 { // IPCS: the device checked the IPv4 header checksum
			f |= olRxIPGood
			if i&8 != 0 {
				f = f&^olRxIPGood | olRxIPBad
			}
		}
		if i&1 != 0 { // L4CS: it checked the TCP/UDP checksum
			f |= olRxL4Good
			if i&4 != 0 {
				f = f&^olRxL4Good | olRxL4Bad
			}
		}
		rq.flags[i] = f
	}
	return rq
}

// rxFlagIndex packs the checksum bits of a write-back status (7.1.6.2):
// L4CS, IPCS, TCPE, IPE into bits 0 to 3.
func rxFlagIndex(status uint32) uint32 { return status>>5&3 | status>>28&0xC }

func (q *rxQueue) desc(i uint32) *rxDesc { return (*rxDesc)(unsafe.Add(q.ring, uintptr(i)*descSize)) }
func (q *rxQueue) slot(i uint32) *uint64 { return (*uint64)(unsafe.Add(q.slots, uintptr(i)*8)) }
func (q *rxQueue) mbufAt(off uint64) *mbuf.Mbuf {
	return (*mbuf.Mbuf)(unsafe.Add(q.base, off))
}

// dma turns mbufs into device addresses in one process.
type dma struct {
	base unsafe.Pointer               // group offset 0 in this process
	iova func(uint64) (uint64, error) // group offset to device address
}

// data is the device address of m's data, 0 if the device cannot reach
// it. The mbuf knows it when its pool is in hugepages; otherwise (memfd
// memory, in tests) the translator gives it.
func (d *dma) data(m *mbuf.Mbuf) uint64 {
	if v := m.BufIOVA(); v != 0 {
		return v + uint64(m.Headroom())
	}
	return d.translate(m)
}

func (d *dma) translate(m *mbuf.Mbuf) uint64 {
	data := uintptr(unsafe.Pointer(unsafe.SliceData(m.Buf()))) + uintptr(m.Headroom())
	v, err := d.iova(uint64(data - uintptr(d.base)))
	if err != nil {
		return 0
	}
	return v
}

// RxBurst receives up to len(pkts) frames (at most 64). Only descriptors
// the driver handed over are read; each received one is armed again with a
// fresh mbuf before RDT moves, once for the burst. A write-back the driver
// cannot trust (no EOP, a length of 0 or beyond the buffer) drops the frame
// and counts an error; its mbuf is re-armed. When the pool runs dry the
// frames wait in the ring, and the device drops what does not fit and
// counts it (QPRDC), which shows in the queue's Dropped.
func (q *rxQueue) RxBurst(pkts []*mbuf.Mbuf) int {
	sh := q.sh
	if hw := atomic.LoadUint64(&sh.HWDropped); hw != sh.DropSeen {
		q.counters.AddDropped(hw - sh.DropSeen)
		sh.DropSeen = hw
	}
	next, mask := sh.Next, q.mask
	limit := uint32(min(len(pkts), maxBurst))
	if posted := (sh.Tail - next) & mask; limit > posted {
		limit = posted
	}
	ready := uint32(0)
	for ready < limit && atomic.LoadUint64(&q.desc((next+ready)&mask).hi)&rxStatDD != 0 {
		ready++
	}
	if ready == 0 {
		return 0
	}
	got := ready
	for q.pool.AllocBulk(q.cache, q.fresh[:got]) != nil {
		if got /= 2; got == 0 {
			return 0
		}
	}
	var n, used, bad int
	var bytes uint64
	discard := sh.Discard
	idx := next
	for range ready {
		if used == int(got) {
			break
		}
		d := q.desc(idx)
		hi, lo := atomic.LoadUint64(&d.hi), d.lo
		status, length := uint32(hi), uint32(hi>>rxLenShift)&0xFFFF
		slot := q.slot(idx)
		m := q.mbufAt(*slot)
		switch {
		case status&rxStatEOP == 0: // a frame over several buffers: never programmed, dropped
			discard = 1
			q.rearm(d, m)
		case discard != 0 || length == 0 || length > q.bufLen:
			discard = 0
			bad++
			q.rearm(d, m)
		default:
			fresh := q.fresh[used]
			iova := fresh.BufIOVA() + uint64(fresh.Headroom()) // q.dma.data by hand: inlined
			if fresh.BufIOVA() == 0 {
				iova = q.dma.translate(fresh)
			}
			if iova == 0 { // memory that is not DMA-capable: keep the old buffer
				bad++
				q.rearm(d, m)
				break
			}
			used++
			*slot = uint64(uintptr(unsafe.Pointer(fresh)) - uintptr(q.base))
			d.arm(iova)
			m.SetDataLen(uint16(length))
			m.SetPktLen(length)
			m.SetPort(q.port)
			m.SetRSSHash(uint32(lo >> 32))
			fl := q.flags[rxFlagIndex(status)]
			if uint32(lo)&rxRSSTypeLo != 0 {
				fl |= olRxRSSHash
			}
			m.SetOlFlags(fl)
			pkts[n] = m
			n++
			bytes += uint64(length)
		}
		idx = (idx + 1) & mask
	}
	if used < int(got) {
		// Back to the pool they just came from, open in this process: only
		// a Debug pool's double-free check can refuse them.
		mbuf.FreeBulk(q.cache, q.fresh[used:got])
	}
	// The descriptor at the old tail was armed but not the device's; it is
	// now. DD there means the device wrote a descriptor it did not own.
	if old := q.desc(sh.Tail); atomic.LoadUint64(&old.hi)&rxStatDD != 0 {
		bad++
		q.rearm(old, q.mbufAt(*q.slot(sh.Tail)))
	}
	sh.Next, sh.Tail, sh.Discard = idx, (idx-1)&mask, discard
	q.regs.Write32(q.rdt, sh.Tail) // 8.2.3.8.5: one tail write per burst
	if bad > 0 {
		q.counters.AddErrors(uint64(bad))
	}
	if n > 0 {
		q.counters.Count(uint64(n), bytes)
	}
	return n
}

// rearm gives a descriptor its own buffer back.
func (q *rxQueue) rearm(d *rxDesc, m *mbuf.Mbuf) {
	d.arm(q.dma.data(m)) // translated when it was first armed
}

// txQueue is one process's sender on a tx queue.
type txQueue struct {
	sh       *txShared             // cursors, in shared memory
	ring     unsafe.Pointer        // descriptor 0 in this process
	slots    unsafe.Pointer        // mbuf table: a packet's group offset at its last descriptor
	base     unsafe.Pointer        // group offset 0 in this process
	mask     uint32                // descriptors - 1
	tdt      uint32                // offset of this queue's TDT
	regs     registers             // for TDT
	counters *ethdev.QueueCounters // shared counters, written only here
	dma      dma                   // mbuf to device address
	lcore    int                   // the polling lcore (BindLcore), whose caches frees use; -1: none
	done     [txBatch]*mbuf.Mbuf   // mbufs of one cleaned batch
}

func (d *Device) txQueue(q int, c *ethdev.QueueCounters) *txQueue {
	ts := &d.sh.Tx[q]
	return &txQueue{
		lcore:    -1,
		sh:       ts,
		ring:     d.mem.Ptr(ts.Zone),
		slots:    d.mem.Ptr(ts.Zone + uint64(ts.Size)*descSize),
		base:     d.mem.Ptr(0),
		mask:     ts.Size - 1,
		tdt:      txq(q, tqTDT),
		regs:     d.regs,
		counters: c,
		dma:      dma{base: d.mem.Ptr(0), iova: d.iova},
	}
}

func (q *txQueue) desc(i uint32) *txDesc { return (*txDesc)(unsafe.Add(q.ring, uintptr(i)*descSize)) }
func (q *txQueue) slot(i uint32) *uint64 { return (*uint64)(unsafe.Add(q.slots, uintptr(i)*8)) }

// clean frees the mbufs of every batch of txBatch descriptors whose last
// descriptor the device reports done (DD, 7.2.3.5): it sends in order, so
// the whole batch is. It returns the new clean cursor.
func (q *txQueue) clean(next, clean uint32) uint32 {
	for (next-clean)&q.mask >= txBatch {
		if atomic.LoadUint64(&q.desc((clean+txBatch-1)&q.mask).hi)&txStatDD == 0 {
			break
		}
		k := 0
		for i := range uint32(txBatch) {
			s := q.slot(clean + i) // batches never wrap: the ring size is a multiple of txBatch
			if *s != 0 {
				q.done[k] = (*mbuf.Mbuf)(unsafe.Add(q.base, *s))
				*s = 0
				k++
			}
		}
		if mbuf.FreeBulkLcore(q.lcore, q.done[:k]) != nil {
			q.lost(uint64(k))
		}
		clean = (clean + txBatch) & q.mask
	}
	return clean
}

// drop frees a packet the device cannot send.
func (q *txQueue) drop(pkt []*mbuf.Mbuf) {
	if mbuf.FreeBulkLcore(q.lcore, pkt) != nil {
		q.lost(1)
	}
}

// lost counts mbufs a free could not give back: their pool is not open in
// this process (mbuf.ErrPoolNotOpen) or refused them. They stay out of
// their pool; the count shows as tx_q<n>_mbufs_lost. Counting allocates
// nothing, so a process that keeps failing does not slow down further.
func (q *txQueue) lost(n uint64) {
	atomic.StoreUint64(&q.sh.Lost, q.sh.Lost+n)
}

// TxBurst queues up to len(pkts) packets (at most 64) and moves TDT once.
// It returns how many it took; the rest did not fit the ring. A packet the
// device cannot send (empty or with an empty segment, longer than 15.5 KB
// or 40 segments, or in memory it cannot reach) is taken, freed and
// counted as an error.
func (q *txQueue) TxBurst(pkts []*mbuf.Mbuf) int {
	sh := q.sh
	next, mask := sh.Next, q.mask
	clean := q.clean(next, sh.Clean)
	free := mask - (next-clean)&mask // one slot stays empty: TDT = TDH means an empty ring
	n := 0
	var bytes, bad uint64
	for i, m := range pkts[:min(len(pkts), maxBurst)] {
		segs := uint32(m.NumSegs())
		if segs > free && segs <= maxTxSegs {
			break
		}
		n++
		pktLen := m.PktLen()
		if segs == 1 {
			iova := m.BufIOVA() + uint64(m.Headroom()) // q.dma.data by hand: inlined
			if m.BufIOVA() == 0 {
				iova = q.dma.translate(m)
			}
			if iova == 0 || pktLen == 0 || pktLen > maxTxFrame || uint32(m.DataLen()) != pktLen {
				bad++
				q.drop(pkts[i : i+1])
				continue
			}
			cmd := uint64(pktLen) | txdDTYPData | txdDEXT | txdIFCS | txdEOP
			if next&(txBatch-1) == txBatch-1 {
				cmd |= txdRS
			}
			d := q.desc(next)
			d.lo, d.hi = iova, cmd|uint64(pktLen)<<txdPayShift
			*q.slot(next) = uint64(uintptr(unsafe.Pointer(m)) - uintptr(q.base))
			next = (next + 1) & mask
			free--
			bytes += uint64(pktLen)
			continue
		}
		if !q.chain(m, &next) {
			bad++
			q.drop(pkts[i : i+1])
			continue
		}
		free -= segs
		bytes += uint64(pktLen)
	}
	// The cursors first, then TDT: an owner dying in between leaves the
	// next owner knowing the descriptors up to next are written (the
	// device just does not have them yet); the other order would have it
	// rewrite descriptors the device owns.
	moved := next != sh.Next
	sh.Next, sh.Clean = next, clean
	if moved {
		q.regs.Write32(q.tdt, next) // 8.2.3.9.9: one tail write per burst
	}
	if bad > 0 {
		q.counters.AddErrors(bad)
	}
	if sent := uint64(n) - bad; sent > 0 {
		q.counters.Count(sent, bytes)
	}
	return n
}

// chain writes one descriptor per segment of a multi-segment packet, EOP
// on the last, and keeps the packet's mbuf at the last descriptor so it is
// freed after every segment went out. It writes nothing for a packet the
// device cannot send.
func (q *txQueue) chain(m *mbuf.Mbuf, next *uint32) bool {
	segs := uint32(m.NumSegs())
	if segs > maxTxSegs || m.PktLen() == 0 || m.PktLen() > maxTxFrame {
		return false
	}
	var iovas [maxTxSegs]uint64
	var total uint32
	s := m
	for i := range segs {
		if s == nil {
			return false // fewer segments than the header claims
		}
		v := q.dma.data(s)
		if v == 0 || s.DataLen() == 0 { // every data descriptor carries bytes
			return false
		}
		iovas[i] = v
		total += uint32(s.DataLen())
		s = s.Next()
	}
	if total != m.PktLen() {
		return false
	}
	idx := *next
	s = m
	for i := range segs {
		cmd := uint64(s.DataLen()) | txdDTYPData | txdDEXT | txdIFCS
		if i == segs-1 {
			cmd |= txdEOP
		}
		if idx&(txBatch-1) == txBatch-1 {
			cmd |= txdRS
		}
		if i == 0 {
			cmd |= uint64(total) << txdPayShift // PAYLEN in the first descriptor
		}
		d := q.desc(idx)
		d.lo, d.hi = iovas[i], cmd
		*q.slot(idx) = 0
		if i == segs-1 {
			*q.slot(idx) = uint64(uintptr(unsafe.Pointer(m)) - uintptr(q.base))
		}
		idx = (idx + 1) & q.mask
		s = s.Next()
	}
	*next = idx
	return true
}

// BindLcore (ethdev.LcoreBinder) makes the queue's refills go through the
// lcore's cache of its pool, as DPDK drivers do with rte_lcore_id(). The
// cache must be used by no other goroutine meanwhile; a negative lcore goes
// back to the ring.
func (q *rxQueue) BindLcore(lcore int) { q.cache = q.pool.Cache(lcore) }

// BindLcore makes frees of sent mbufs go through the lcore's cache of each
// mbuf's own pool (mbuf.FreeBulkLcore); a negative lcore goes back to the
// rings.
func (q *txQueue) BindLcore(lcore int) { q.lcore = max(lcore, -1) }

var (
	_ ethdev.LcoreBinder = (*rxQueue)(nil)
	_ ethdev.LcoreBinder = (*txQueue)(nil)
)
