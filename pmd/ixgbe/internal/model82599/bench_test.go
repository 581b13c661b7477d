package model82599

import (
	"encoding/binary"
	"sync/atomic"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// forwarder is the smallest driver that forwards port A's receive queue 0
// to port B's transmit queue 0, zero-copy: the Tx descriptor points at the
// Rx buffer, and the buffer returns to the Rx ring once B has sent it (at
// once, in NoLatency mode).
type forwarder struct {
	rx    *rxRing
	tx    *txRing
	taken [32]int
}

func (f *forwarder) burst() int {
	a, b := f.rx, f.tx
	n := 0
	for n < len(f.taken) {
		d := a.ring[a.next*16 : a.next*16+16]
		if atomic.LoadUint32((*uint32)(unsafe.Pointer(&d[8])))&1 == 0 {
			break
		}
		length := binary.LittleEndian.Uint32(d[12:16]) & 0xFFFF
		td := b.ring[b.tail*16 : b.tail*16+16]
		binary.LittleEndian.PutUint64(td[0:8], a.bufIOVA[a.next])
		binary.LittleEndian.PutUint32(td[8:12], length|txData|txDEXT|txEOP|txIFCS|txRS)
		binary.LittleEndian.PutUint32(td[12:16], length<<14)
		b.tail = (b.tail + 1) % b.n
		f.taken[n] = a.next
		a.next = (a.next + 1) % a.n
		n++
	}
	if n == 0 {
		return 0
	}
	b.h.dev.Write32(oTDT(b.q), uint32(b.tail))
	for _, i := range f.taken[:n] {
		a.arm(i)
	}
	a.h.dev.Write32(oRDT(a.q), uint32(f.taken[n-1]))
	return n
}

// twoPorts wires A (receiving from the test) to B (sending to a counter).
func twoPorts(t testing.TB) (a *harness, fw *forwarder, sent *int) {
	a = newHarness(t)
	b := newHarness(t)
	sent = new(int)
	b.dev.OnTransmit(func([]byte) { *sent++ })
	a.resetAndInit()
	b.resetAndInit()
	rx := a.setupRx(0, rxOpts{n: 512})
	a.enableRx()
	// B's Tx descriptors point into A's memory: give B A's DMA view.
	b.dev.cfg.DMA = dmaFor(a.mem)
	b.mem = a.mem
	tx := b.setupTx(0, 512, true)
	require.Empty(t, a.viol)
	require.Empty(t, b.viol)
	return a, &forwarder{rx: rx, tx: tx}, sent
}

func TestForwardingAllocatesNothingPerFrame(t *testing.T) {
	a, fw, sent := twoPorts(t)
	frame := udpFrame(macDev, 18)
	allocs := testing.AllocsPerRun(200, func() {
		for range 32 {
			a.dev.Receive(frame)
		}
		if fw.burst() != 32 {
			panic("burst lost frames")
		}
	})
	require.Zero(t, allocs, "allocations per burst of 32")
	require.Equal(t, 201*32, *sent)
	a.requireNoViolations()
}

// BenchmarkForwardBurst32 is the model's own cost of a burst of 32 through
// two NoLatency ports, with a trivial driver.
func BenchmarkForwardBurst32(b *testing.B) {
	a, fw, sent := twoPorts(b)
	frame := udpFrame(macDev, 18)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		for range 32 {
			a.dev.Receive(frame)
		}
		fw.burst()
	}
	b.StopTimer()
	if *sent == 0 {
		b.Fatal("nothing forwarded")
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(*sent), "ns/frame")
}
