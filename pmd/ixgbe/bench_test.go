package ixgbe

import (
	"slices"
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/pmd/ixgbe/internal/model82599"
	"github.com/gopmd/gopmd/timer"
)

// timedRegs is a model behind a stopwatch. On the fast path the driver
// only writes tails, and a tail write is where the NoLatency model does its
// work (it transmits the frames, refills from its packet buffer), so the
// cycles inside Write32 are the model's, not the driver's.
type timedRegs struct {
	dev    *model82599.Device
	cycles uint64
}

func (r *timedRegs) Read32(off uint32) uint32 { return r.dev.Read32(off) }

func (r *timedRegs) Write32(off, v uint32) {
	t := timer.Cycles()
	r.dev.Write32(off, v)
	r.cycles += timer.Cycles() - t
}

// BenchmarkForward forwards bursts of 32 64-byte frames from port 0's rx
// queue to port 1's tx queue, two NoLatency model ports in one group, and
// reports the driver's cost per forwarded packet: RxBurst and TxBurst,
// mbuf allocation and freeing included, the model's work taken out. That
// work is timed apart, burst by burst: the frames the model takes off the
// wire, and what it does inside the tail writes (transmitting, refilling).
//
//	ns/pkt, cycles/pkt   the driver (TSC cycles)
//	p50-ns/pkt           the driver in the median burst: on a shared machine
//	                     a burst during which the thread lost the CPU inflates
//	                     the mean, not the median
//	model-ns/pkt         the model, with the stopwatch's own reads (a few ns per burst)
//	total-ns/pkt         both
//
// lcore-cache gives both queues an lcore's mempool cache (ethdev.BindLcore), as
// a forwarding loop on an eal lcore does; no-cache leaves them on the
// pool's ring.
func BenchmarkForward(b *testing.B) {
	b.Run("lcore-cache", func(b *testing.B) { benchForward(b, true) })
	b.Run("no-cache", func(b *testing.B) { benchForward(b, false) })
}

func benchForward(b *testing.B, cached bool) {
	r := newRig(b)
	in, inAddr := r.board(countOnly)
	out, outAddr := r.board(countOnly)
	inRegs, outRegs := &timedRegs{dev: in.dev}, &timedRegs{dev: out.dev}
	in.regs, out.regs = inRegs, outRegs
	p0 := r.port(0, inAddr, 1, 512)
	p1 := r.port(1, outAddr, 1, 512)
	rx, err := p0.RxQueue(0)
	if err != nil {
		b.Fatal(err)
	}
	tx, err := p1.TxQueue(0)
	if err != nil {
		b.Fatal(err)
	}
	if cached {
		ethdev.BindLcore(rx, 0)
		ethdev.BindLcore(tx, 0)
	}
	frame := udpFrame(macDev, 5, 60)
	pkts := make([]*mbuf.Mbuf, 32)
	hz := float64(timer.Hz())
	// forward does one burst and returns its cycles, all and the model's.
	forward := func() (all, model uint64) {
		regs := inRegs.cycles + outRegs.cycles
		t0 := timer.Cycles()
		for range 32 {
			in.dev.Receive(frame)
		}
		t1 := timer.Cycles()
		n := rx.RxBurst(pkts)
		if k := tx.TxBurst(pkts[:n]); k < n {
			mbuf.FreeBulk(nil, pkts[k:n])
		}
		t2 := timer.Cycles()
		return t2 - t0, t1 - t0 + inRegs.cycles + outRegs.cycles - regs
	}
	for range 1000 { // warm the rings, the pool and the caches
		forward()
	}
	samples := make([]uint64, 1<<16) // driver cycles of the last bursts
	var total, model uint64
	sent0 := out.sentN.Load()
	b.ReportAllocs()
	bursts := 0
	for b.Loop() {
		all, m := forward()
		total += all
		model += m
		samples[bursts%len(samples)] = all - m
		bursts++
	}
	pkts64 := float64(out.sentN.Load() - sent0)
	if pkts64 != float64(32*bursts) {
		b.Fatalf("forwarded %v frames in %d bursts of 32", pkts64, bursts)
	}
	samples = samples[:min(bursts, len(samples))]
	slices.Sort(samples)
	driver := total - model
	b.ReportMetric(float64(driver)/pkts64*1e9/hz, "ns/pkt")
	b.ReportMetric(float64(driver)/pkts64, "cycles/pkt")
	b.ReportMetric(float64(samples[len(samples)/2])/32*1e9/hz, "p50-ns/pkt")
	b.ReportMetric(float64(model)/pkts64*1e9/hz, "model-ns/pkt")
	b.ReportMetric(float64(total)/pkts64*1e9/hz, "total-ns/pkt")
}
