package ring

import (
	"bytes"
	"sync"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"
)

// mapRing initialises a ring in anonymous memory of its own, unmapped when
// the test ends.
func mapRing(tb testing.TB, name string, count uint32, flags Flags) *Ring {
	tb.Helper()
	size, err := MemSize(count, flags)
	if err != nil {
		tb.Fatalf("MemSize(%d, %v): %v", count, flags, err)
	}
	mem := mapAnon(tb, size)
	r, err := InitAt(unsafe.Pointer(unsafe.SliceData(mem)), uint64(len(mem)), name, count, flags)
	if err != nil {
		tb.Fatalf("InitAt(%q, %d, %v): %v", name, count, flags, err)
	}
	return r
}

func mapAnon(tb testing.TB, size uint64) []byte {
	tb.Helper()
	mem, err := unix.Mmap(-1, 0, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_ANON|unix.MAP_PRIVATE)
	if err != nil {
		tb.Fatalf("mmap %d bytes: %v", size, err)
	}
	tb.Cleanup(func() { unix.Munmap(mem) })
	return mem
}

// lockedBuffer collects a child process's output for failure messages.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
