//go:build !race

package ring

import (
	"math/rand/v2"
	"testing"
	"unsafe"
)

// TestAssemblyMatchesReference runs the same random operations through the
// amd64 assembly (the public methods) and through the Go reference
// implementation, on two rings that start alike, and requires the same
// results and the same bytes in the two rings after every step. Some runs
// start from arbitrary indices, including ones no sane ring has.
func TestAssemblyMatchesReference(t *testing.T) {
	const count = 16
	size, err := MemSize(count, 0)
	if err != nil {
		t.Fatal(err)
	}
	for run := range 40 {
		rng := rand.New(rand.NewPCG(uint64(run), 7))
		a := mapRing(t, "twin", count, 0)
		b := mapRing(t, "twin", count, 0)
		if run > 0 {
			// Each side's head and tail stay equal, so that multi-producer
			// publishes never wait; the two sides need not agree.
			p, c := rng.Uint32(), rng.Uint32()
			if run%2 == 0 {
				c = p - uint32(rng.IntN(count)) // a sane ring
			}
			for _, r := range []*Ring{a, b} {
				r.hdr.prod.head, r.hdr.prod.tail = p, p
				r.hdr.cons.head, r.hdr.cons.tail = c, c
			}
		}
		memA := unsafe.Slice((*byte)(unsafe.Pointer(a.hdr)), size)
		memB := unsafe.Slice((*byte)(unsafe.Pointer(b.hdr)), size)
		bufA, bufB := make([]uint64, 40), make([]uint64, 40)
		for step := range 2000 {
			n := rng.IntN(len(bufA) + 1)
			for i := range n {
				bufA[i] = rng.Uint64()
			}
			copy(bufB, bufA)
			burst, multi := rng.IntN(2) == 0, rng.IntN(2) == 0
			var got, want uint64
			var what string
			switch op := rng.IntN(4); op {
			case 0:
				what = "enqueue"
				switch {
				case multi && burst:
					got = uint64(a.MPEnqueueBurst(bufA[:n]))
				case multi:
					got = uint64(a.MPEnqueueBulk(bufA[:n]))
				case burst:
					got = uint64(a.SPEnqueueBurst(bufA[:n]))
				default:
					got = uint64(a.SPEnqueueBulk(bufA[:n]))
				}
				w, _, _ := goEnqueueN(b, bufB[:n], burst, multi)
				want = uint64(w)
			case 1:
				what = "dequeue"
				switch {
				case multi && burst:
					got = uint64(a.MCDequeueBurst(bufA[:n]))
				case multi:
					got = uint64(a.MCDequeueBulk(bufA[:n]))
				case burst:
					got = uint64(a.SCDequeueBurst(bufA[:n]))
				default:
					got = uint64(a.SCDequeueBulk(bufA[:n]))
				}
				w, _, _ := goDequeueN(b, bufB[:n], burst, multi)
				want = uint64(w)
			case 2:
				what = "enqueue one"
				var ok bool
				if multi {
					ok = a.MPEnqueue(bufA[0])
				} else {
					ok = a.SPEnqueue(bufA[0])
				}
				w, _, _ := goEnqueue1(b, bufB[0], multi)
				got, want = b2u(ok), b2u(w)
			default:
				what = "dequeue one"
				var v uint64
				var ok bool
				if multi {
					v, ok = a.MCDequeue()
				} else {
					v, ok = a.SCDequeue()
				}
				wv, w, _, _ := goDequeue1(b, multi)
				got, want = b2u(ok)<<63|v&(1<<63-1), b2u(w)<<63|wv&(1<<63-1)
			}
			if got != want {
				t.Fatalf("run %d step %d: %s of %d (burst %v, multi %v): assembly gave %#x, reference %#x", run, step, what, n, burst, multi, got, want)
			}
			for i := range bufA {
				if bufA[i] != bufB[i] {
					t.Fatalf("run %d step %d: %s of %d (burst %v, multi %v): entry %d is %#x from assembly, %#x from reference", run, step, what, n, burst, multi, i, bufA[i], bufB[i])
				}
			}
			for i := range memA {
				if memA[i] != memB[i] {
					t.Fatalf("run %d step %d: %s of %d (burst %v, multi %v): ring byte %d is %#x from assembly, %#x from reference", run, step, what, n, burst, multi, i, memA[i], memB[i])
				}
			}
		}
	}
}

func b2u(b bool) uint64 {
	if b {
		return 1
	}
	return 0
}
