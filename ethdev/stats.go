package ethdev

import (
	"strconv"
	"sync/atomic"
)

// Stats are a port's counters summed over its queues, whichever processes
// poll them.
type Stats struct {
	RxPackets, RxBytes, RxErrors, RxDropped uint64
	TxPackets, TxBytes, TxErrors, TxDropped uint64
	RxQueues, TxQueues                      []QueueStats
}

// QueueStats is a snapshot of one queue's counters.
type QueueStats struct {
	Packets, Bytes, Errors, Dropped uint64
}

func snapshot(c *QueueCounters) QueueStats {
	return QueueStats{
		Packets: atomic.LoadUint64(&c.Packets),
		Bytes:   atomic.LoadUint64(&c.Bytes),
		Errors:  atomic.LoadUint64(&c.Errors),
		Dropped: atomic.LoadUint64(&c.Dropped),
	}
}

// Stats returns the port's counters.
func (p *Port) Stats() Stats {
	var s Stats
	for q := range int(p.sh.NbRxq) {
		c := snapshot(&p.sh.RxStats[q])
		s.RxQueues = append(s.RxQueues, c)
		s.RxPackets += c.Packets
		s.RxBytes += c.Bytes
		s.RxErrors += c.Errors
		s.RxDropped += c.Dropped
	}
	for q := range int(p.sh.NbTxq) {
		c := snapshot(&p.sh.TxStats[q])
		s.TxQueues = append(s.TxQueues, c)
		s.TxPackets += c.Packets
		s.TxBytes += c.Bytes
		s.TxErrors += c.Errors
		s.TxDropped += c.Dropped
	}
	return s
}

// ResetStats zeroes the port's counters. Queue owners keep counting from
// zero; a burst in flight may be lost from the figures. Only the primary
// may: the counters are every process's.
func (p *Port) ResetStats() error {
	if err := p.mustBePrimary("reset statistics of"); err != nil {
		return err
	}
	for q := range MaxQueues {
		p.sh.RxStats[q] = QueueCounters{}
		p.sh.TxStats[q] = QueueCounters{}
	}
	return nil
}

// XStats returns the generic counters under DPDK's xstats names, then the
// driver's own.
func (p *Port) XStats() []XStat {
	s := p.Stats()
	out := []XStat{
		{"rx_good_packets", s.RxPackets}, {"tx_good_packets", s.TxPackets},
		{"rx_good_bytes", s.RxBytes}, {"tx_good_bytes", s.TxBytes},
		{"rx_errors", s.RxErrors}, {"tx_errors", s.TxErrors},
		{"rx_missed_errors", s.RxDropped}, {"tx_dropped", s.TxDropped},
	}
	for q, c := range s.RxQueues {
		out = append(out, XStat{qname("rx", q, "packets"), c.Packets}, XStat{qname("rx", q, "bytes"), c.Bytes})
	}
	for q, c := range s.TxQueues {
		out = append(out, XStat{qname("tx", q, "packets"), c.Packets}, XStat{qname("tx", q, "bytes"), c.Bytes})
	}
	return append(out, p.dev.XStats()...)
}

func qname(dir string, q int, what string) string {
	return dir + "_q" + strconv.Itoa(q) + "_" + what
}

// Count adds a burst to a queue's counters; drivers call it on the fast
// path. Only the queue's owner writes, so atomic stores (plain MOVs on
// amd64) suffice for readers in other processes.
func (c *QueueCounters) Count(packets, bytes uint64) {
	atomic.StoreUint64(&c.Packets, c.Packets+packets)
	atomic.StoreUint64(&c.Bytes, c.Bytes+bytes)
}

// AddErrors counts frames dropped as bad.
func (c *QueueCounters) AddErrors(n uint64) { atomic.StoreUint64(&c.Errors, c.Errors+n) }

// AddDropped counts frames lost for want of buffers or room.
func (c *QueueCounters) AddDropped(n uint64) { atomic.StoreUint64(&c.Dropped, c.Dropped+n) }
