package ring

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/require"
)

// heapRing puts a ring in Go heap memory rather than in a mapping: the race
// detector only watches the Go heap, so under -race this is the ring that
// proves the head/tail protocol orders every slot access.
func heapRing(tb testing.TB, name string, count uint32, flags Flags) *Ring {
	tb.Helper()
	size, err := MemSize(count, flags)
	require.NoError(tb, err)
	buf := make([]uint64, size/8+cacheLine/8)
	p := unsafe.Pointer(&buf[0])
	p = unsafe.Add(p, (cacheLine-uintptr(p)%cacheLine)%cacheLine)
	r, err := InitAt(p, size, name, count, flags)
	require.NoError(tb, err)
	tb.Cleanup(func() { runtime.KeepAlive(buf) })
	return r
}

type stressCase struct {
	producers, consumers int
	spEnq, scDeq         bool
}

func (c stressCase) String() string {
	p, q := "MP", "MC"
	if c.spEnq {
		p = "SP"
	}
	if c.scDeq {
		q = "SC"
	}
	return fmt.Sprintf("%dx%s-%dx%s", c.producers, p, c.consumers, q)
}

// TestStressDeliversEveryValueOnceInOrder runs producers and consumers at
// full speed against one small ring, mixing bulk, burst and single calls of
// random sizes. Every value must arrive exactly once, and the values of one
// producer must reach any one consumer in the order they were sent.
func TestStressDeliversEveryValueOnceInOrder(t *testing.T) {
	perProducer := 200_000
	if testing.Short() || raceEnabled {
		perProducer = 20_000
	}
	for _, c := range []stressCase{
		{1, 1, true, true},
		{4, 1, false, true},
		{1, 4, true, false},
		{4, 4, false, false},
		{3, 3, false, false},
	} {
		for _, where := range []string{"mapped", "heap"} {
			t.Run(c.String()+"/"+where, func(t *testing.T) {
				var r *Ring
				if where == "heap" {
					r = heapRing(t, "stress", 64, 0)
				} else {
					r = mapRing(t, "stress", 64, 0)
				}
				stress(t, r, c, perProducer)
			})
		}
	}
}

func stress(t *testing.T, r *Ring, c stressCase, perProducer int) {
	total := int64(c.producers * perProducer)
	var received atomic.Int64
	var wg sync.WaitGroup
	for p := range c.producers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(p), 1))
			buf := make([]uint64, 32)
			for next := 0; next < perProducer; {
				n := min(1+rng.IntN(32), perProducer-next)
				for i := range n {
					buf[i] = uint64(p)<<40 | uint64(next+i)
				}
				var done int
				switch kind := rng.IntN(3); {
				case kind == 0 && c.spEnq:
					done = int(r.SPEnqueueBulk(buf[:n]))
				case kind == 0:
					done = int(r.MPEnqueueBulk(buf[:n]))
				case kind == 1 && c.spEnq:
					done = int(r.SPEnqueueBurst(buf[:n]))
				case kind == 1:
					done = int(r.MPEnqueueBurst(buf[:n]))
				case c.spEnq:
					if r.SPEnqueue(buf[0]) {
						done = 1
					}
				default:
					if r.MPEnqueue(buf[0]) {
						done = 1
					}
				}
				next += done
				if done == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	got := make([][]uint64, c.consumers)
	for q := range c.consumers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			rng := rand.New(rand.NewPCG(uint64(q), 2))
			buf := make([]uint64, 32)
			for received.Load() < total {
				n := 1 + rng.IntN(32)
				var done uint32
				switch kind := rng.IntN(3); {
				case kind == 0 && c.scDeq:
					done = r.SCDequeueBulk(buf[:n])
				case kind == 0:
					done = r.MCDequeueBulk(buf[:n])
				case kind == 1 && c.scDeq:
					done = r.SCDequeueBurst(buf[:n])
				case kind == 1:
					done = r.MCDequeueBurst(buf[:n])
				default:
					var ok bool
					if c.scDeq {
						buf[0], ok = r.SCDequeue()
					} else {
						buf[0], ok = r.MCDequeue()
					}
					if ok {
						done = 1
					}
				}
				got[q] = append(got[q], buf[:done]...)
				received.Add(int64(done))
				if done == 0 {
					runtime.Gosched()
				}
			}
		}()
	}
	wg.Wait()

	seen := make([][]bool, c.producers)
	for p := range seen {
		seen[p] = make([]bool, perProducer)
	}
	for q, vals := range got {
		last := make([]int, c.producers)
		for p := range last {
			last[p] = -1
		}
		for _, v := range vals {
			p, i := int(v>>40), int(v&(1<<40-1))
			if p >= c.producers || i >= perProducer {
				t.Fatalf("consumer %d got %#x, which no producer sent", q, v)
			}
			if seen[p][i] {
				t.Fatalf("value %d of producer %d arrived twice", i, p)
			}
			seen[p][i] = true
			if i <= last[p] {
				t.Fatalf("consumer %d got value %d of producer %d after value %d: out of order", q, i, p, last[p])
			}
			last[p] = i
		}
	}
	for p := range seen {
		for i, ok := range seen[p] {
			if !ok {
				t.Fatalf("value %d of producer %d never arrived", i, p)
			}
		}
	}
	require.Zero(t, r.Count(), "the ring is empty at the end")
}

// TestMultiPublishWaitsForEarlierClaims plays a producer (consumer) that
// claimed slots and has not published them yet. A multi-producer
// (multi-consumer) call that claims after it must write its slots but leave
// the tail alone until the earlier claim is published, however long that
// takes (past the assembly's spin, into the Go wait), and then publish its
// own.
func TestMultiPublishWaitsForEarlierClaims(t *testing.T) {
	type op struct {
		name    string
		enqueue bool
		call    func(r *Ring) uint32
	}
	buf := make([]uint64, 2)
	for _, o := range []op{
		{"MPEnqueueBulk", true, func(r *Ring) uint32 { return r.MPEnqueueBulk([]uint64{7, 8}) }},
		{"MPEnqueueBurst", true, func(r *Ring) uint32 { return r.MPEnqueueBurst([]uint64{7, 8}) }},
		{"MPEnqueue", true, func(r *Ring) uint32 { return uint32(b2n(r.MPEnqueue(7))) }},
		{"EnqueueBulk", true, func(r *Ring) uint32 { return r.EnqueueBulk([]uint64{7, 8}) }},
		{"MCDequeueBulk", false, func(r *Ring) uint32 { return r.MCDequeueBulk(buf) }},
		{"MCDequeueBurst", false, func(r *Ring) uint32 { return r.MCDequeueBurst(buf) }},
		{"MCDequeue", false, func(r *Ring) uint32 { _, ok := r.MCDequeue(); return uint32(b2n(ok)) }},
		{"DequeueBurst", false, func(r *Ring) uint32 { return r.DequeueBurst(buf) }},
	} {
		t.Run(o.name, func(t *testing.T) {
			r := mapRing(t, "wait", 64, 0)
			require.Equal(t, uint32(10), r.SPEnqueueBulk(seq(100, 10)))
			side := &r.hdr.prod
			if !o.enqueue {
				side = &r.hdr.cons
			}
			earlier := atomic.LoadUint32(&side.head)
			atomic.StoreUint32(&side.head, earlier+3) // claimed, not published

			done := make(chan uint32, 1)
			go func() { done <- o.call(r) }()
			select {
			case n := <-done:
				t.Fatalf("returned %d before the earlier claim was published", n)
			case <-time.After(50 * time.Millisecond):
			}
			require.Equal(t, earlier, atomic.LoadUint32(&side.tail), "the tail waits for the earlier claim")

			atomic.StoreUint32(&side.tail, earlier+3) // the earlier claim publishes
			n := <-done
			require.NotZero(t, n)
			require.Equal(t, earlier+3+n, atomic.LoadUint32(&side.tail), "then this call publishes its own")
			if o.enqueue {
				require.Equal(t, uint64(7), r.slots[(earlier+3)&r.mask], "the entry went after the earlier claim")
			} else {
				require.Equal(t, uint64(103), buf[0], "the entries came after the earlier claim")
			}
		})
	}
}

func b2n(b bool) int {
	if b {
		return 1
	}
	return 0
}
