// Package testmem gives a test a group memory of its own: a unique prefix,
// a runtime directory under t.TempDir and a Close at cleanup, and a second
// mapping of it when the test plays another process. It is for the tests
// of packages built on hugemem (hugemem's own tests cannot use it).
package testmem

import (
	"fmt"
	"os"
	"sync/atomic"
	"testing"

	"github.com/gopmd/gopmd/hugemem"
)

var seq atomic.Int64

// Options returns memfd-backed options for a new group named after tag,
// unique in this process.
func Options(tb testing.TB, tag string) hugemem.Options {
	return hugemem.Options{
		Prefix:     fmt.Sprintf("%s%d-%d", tag, os.Getpid(), seq.Add(1)),
		NoHuge:     true,
		Limit:      256 << 20,
		RuntimeDir: tb.TempDir(),
	}
}

// New creates a memfd-backed group for the test and closes it at cleanup.
func New(tb testing.TB, tag string) *hugemem.Memory {
	tb.Helper()
	return Create(tb, Options(tb, tag))
}

// Create creates the group o describes and closes it at cleanup.
func Create(tb testing.TB, o hugemem.Options) *hugemem.Memory {
	tb.Helper()
	return openUntilCleanup(tb, hugemem.Create, o)
}

// Attach maps the group o describes once more, as another process would
// (at other addresses), and closes that mapping at cleanup.
func Attach(tb testing.TB, o hugemem.Options) *hugemem.Memory {
	tb.Helper()
	return openUntilCleanup(tb, hugemem.Attach, o)
}

func openUntilCleanup(tb testing.TB, open func(hugemem.Options) (*hugemem.Memory, error), o hugemem.Options) *hugemem.Memory {
	tb.Helper()
	mem, err := open(o)
	if err != nil {
		tb.Fatalf("testmem: %v", err)
	}
	tb.Cleanup(func() { mem.Close() })
	return mem
}

// ForBenchmark is hugepage-backed memory when the machine has it, as DPDK
// runs, else memfd-backed memory (4 KiB pages: more TLB misses), said in
// the log.
func ForBenchmark(b *testing.B, tag string) *hugemem.Memory {
	b.Helper()
	o := Options(b, tag)
	o.NoHuge = false
	mem, err := hugemem.Create(o)
	if err != nil {
		b.Logf("hugepages unavailable (%v): memfd-backed memory", err)
		return New(b, tag)
	}
	b.Cleanup(func() { mem.Close() })
	if !mem.HugePages() {
		b.Logf("memfd-backed memory: no hugepages")
	}
	return mem
}
