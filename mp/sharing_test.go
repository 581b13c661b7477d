package mp

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/mempool"
	"github.com/gopmd/gopmd/ring"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func init() {
	// aslr-peer maps its segments elsewhere on purpose, then echoes every
	// message it finds on ring "to_sec" back on "to_pri" in a fresh object
	// of pool "msgs".
	childRoles["aslr-peer"] = func(p *Process, _ []string) int {
		fmt.Printf("base %#x\n", uintptr(p.Mem.Ptr(0)))
		toSec, err1 := ring.Lookup(p.Mem, "to_sec")
		toPri, err2 := ring.Lookup(p.Mem, "to_pri")
		pool, err3 := mempool.Lookup(p.Mem, "msgs")
		if err1 != nil || err2 != nil || err3 != nil {
			fmt.Println("error:", err1, err2, err3)
			return 1
		}
		cache := pool.Cache(p.Lcores()[0].ID)
		in := make([]uint64, 1)
		deadline := time.Now().Add(10 * time.Second)
		for echoed := 0; echoed < 100; {
			if time.Now().After(deadline) {
				fmt.Println("error: timed out after", echoed)
				return 1
			}
			if toSec.DequeueBurst(in) == 0 {
				continue
			}
			msg := readMsg(pool.Ptr(in[0]))
			out, err := pool.Get(cache)
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			writeMsg(pool.Ptr(out), "echo:"+msg)
			for !toPri.Enqueue(out) {
			}
			pool.Put(cache, in[0])
			echoed++
		}
		fmt.Println("echoed 100")
		return 0
	}
	// cache-holder leaves objects in its lcore cache of pool "msgs" and
	// waits to be killed.
	childRoles["cache-holder"] = func(p *Process, args []string) int {
		pool, err := mempool.Lookup(p.Mem, "msgs")
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		n, _ := strconv.Atoi(args[0])
		c := pool.Cache(p.Lcores()[0].ID)
		objs := make([]uint64, n)
		if err := pool.GetBulk(c, objs); err != nil {
			fmt.Println("error:", err)
			return 1
		}
		pool.PutBulk(c, objs)
		fmt.Println("cached", pool.Avail())
		io.Copy(io.Discard, os.Stdin)
		return 0
	}
}

func writeMsg(p unsafe.Pointer, s string) {
	b := unsafe.Slice((*byte)(p), 64)
	b[0] = byte(len(s))
	copy(b[1:], s)
}

func readMsg(p unsafe.Pointer) string {
	b := unsafe.Slice((*byte)(p), 64)
	return string(b[1 : 1+b[0]])
}

// TestSecondaryMappedElsewhereExchangesDataOverRingsAndMempools removes
// DPDK's ASLR limitation: the secondary's mapping lands at another address
// on purpose, and rings and pools still work because they hold offsets.
func TestSecondaryMappedElsewhereExchangesDataOverRingsAndMempools(t *testing.T) {
	g := testGroup(t)
	p, err := Start(Config{Type: Primary, Memory: g, Lcores: lcore(0, 0)})
	require.NoError(t, err)
	defer p.Close()
	toSec, err := ring.Create(p.Mem, "to_sec", 256, ring.SPEnq|ring.SCDeq)
	require.NoError(t, err)
	toPri, err := ring.Create(p.Mem, "to_pri", 256, ring.SPEnq|ring.SCDeq)
	require.NoError(t, err)
	pool, err := mempool.Create(p.Mem, "msgs", mempool.Config{N: 1023, EltSize: 64, CacheSize: 32})
	require.NoError(t, err)
	cache := pool.Cache(0)

	// A big PROT_NONE mapping in the child before it attaches pushes its
	// reservation away from where ours is.
	s := startChild(t, childSpec{Role: "aslr-peer", Type: Secondary, Mem: g, Lcores: lcore(1, 1), ShiftMapping: true})
	s.Expect("ready secondary")
	base, err := strconv.ParseUint(strings.TrimPrefix(s.Expect("base "), "base 0x"), 16, 64)
	require.NoError(t, err)
	require.NotEqual(t, uint64(uintptr(p.Mem.Ptr(0))), base, "the secondary's segments are mapped at a different address")

	got := map[string]bool{}
	for i := 0; i < 100; i++ {
		h, err := pool.Get(cache)
		require.NoError(t, err)
		writeMsg(pool.Ptr(h), fmt.Sprintf("msg-%d", i))
		for !toSec.Enqueue(h) {
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(got) < 100 && time.Now().Before(deadline) {
		if h, ok := toPri.Dequeue(); ok {
			got[readMsg(pool.Ptr(h))] = true
			require.NoError(t, pool.Put(cache, h))
		}
	}
	s.Expect("echoed 100")
	require.NoError(t, s.Wait())
	for i := 0; i < 100; i++ {
		require.True(t, got[fmt.Sprintf("echo:msg-%d", i)], "echo of msg-%d", i)
	}
	pool.FlushCache(0)
	require.Equal(t, uint32(1023), pool.Avail(), "every object is back in the pool")
}

// TestKilledSecondarysCachedObjectsReturnToThePool: the primary notices the
// death, flushes the dead lcore's cache and reports the exit.
func TestKilledSecondarysCachedObjectsReturnToThePool(t *testing.T) {
	g := testGroup(t)
	p, err := Start(Config{Type: Primary, Memory: g, Lcores: lcore(0, 0), ReapInterval: 10 * time.Millisecond})
	require.NoError(t, err)
	defer p.Close()
	exited := make(chan ExitedProcess, 1)
	p.OnProcessExit(func(e ExitedProcess) { exited <- e })
	pool, err := mempool.Create(p.Mem, "msgs", mempool.Config{N: 1023, EltSize: 64, CacheSize: 64})
	require.NoError(t, err)

	s := startChild(t, childSpec{Role: "cache-holder", Type: Secondary, Mem: g, Lcores: lcore(5, 1), Args: []string{"40"}})
	s.Expect("ready secondary")
	s.Expect("cached")
	require.Less(t, ringAvail(pool), uint32(1023), "the child's cache holds objects the ring lacks")
	s.Kill()

	select {
	case e := <-exited:
		require.Equal(t, s.Pid(), e.PID)
		require.Equal(t, Secondary, e.Type)
		require.Equal(t, []int{5}, e.Lcores)
	case <-time.After(5 * time.Second):
		t.Fatal("the primary did not notice the killed secondary")
	}
	require.Equal(t, uint32(1023), ringAvail(pool), "the dead lcore's cached objects are back in the ring")
}

// ringAvail counts the objects in the ring alone, leaving caches out.
func ringAvail(p *mempool.Pool) uint32 {
	total := p.Avail()
	for id := range maxLcoreID {
		total -= uint32(p.Cache(id).Len())
	}
	return total
}

func init() {
	// creator makes zones and rings of its own while others do the same,
	// then checks it sees everyone's.
	childRoles["creator"] = func(p *Process, args []string) int {
		me, peers := args[0], args[1:]
		for i := range 20 {
			if _, err := ring.Create(p.Mem, fmt.Sprintf("r-%s-%d", me, i), 64, 0); err != nil {
				fmt.Println("error:", err)
				return 1
			}
		}
		fmt.Println("created")
		deadline := time.Now().Add(10 * time.Second)
		for _, peer := range peers {
			for i := range 20 {
				for {
					if _, err := ring.Lookup(p.Mem, fmt.Sprintf("r-%s-%d", peer, i)); err == nil {
						break
					}
					if time.Now().After(deadline) {
						fmt.Printf("error: ring r-%s-%d never appeared\n", peer, i)
						return 1
					}
					time.Sleep(time.Millisecond)
				}
			}
		}
		fmt.Println("saw all")
		return 0
	}
	// segment-fds asks the primary for the segment fds and checks they are
	// the same files it mapped.
	childRoles["segment-fds"] = func(p *Process, args []string) int {
		at, _ := strconv.ParseUint(args[0], 0, 64)
		segs, err := p.SegmentFDs()
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		for _, s := range segs {
			if at < s.Off || at >= s.Off+s.Len {
				unix.Close(s.FD)
				continue
			}
			b, err := unix.Mmap(s.FD, 0, int(s.Len), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			fmt.Printf("segment %#x word at %#x is %#x\n", s.Off, at, *(*uint64)(unsafe.Pointer(&b[at-s.Off])))
			unix.Munmap(b)
			unix.Close(s.FD)
		}
		return 0
	}
}

func TestSecondariesCreateObjectsConcurrentlyAndEveryoneSeesThem(t *testing.T) {
	g := testGroup(t)
	p, err := Start(Config{Type: Primary, Memory: g, Lcores: lcore(0, 0)})
	require.NoError(t, err)
	defer p.Close()
	names := []string{"a", "b", "c"}
	var kids []*testproc.Child
	for i, n := range names {
		var peers []string
		for _, o := range names {
			if o != n {
				peers = append(peers, o)
			}
		}
		kids = append(kids, startChild(t, childSpec{Role: "creator", Type: Secondary, Mem: g, Lcores: lcore(i+1, 1), Args: append([]string{n}, peers...)}))
	}
	for _, k := range kids {
		k.Expect("saw all")
		require.NoError(t, k.Wait())
	}
	for _, n := range names {
		for i := range 20 {
			_, err := ring.Lookup(p.Mem, fmt.Sprintf("r-%s-%d", n, i))
			require.NoError(t, err, "the primary sees what secondaries created")
		}
	}
}

func TestSecondaryObtainsSegmentFDsFromThePrimary(t *testing.T) {
	g := testGroup(t)
	p, err := Start(Config{Type: Primary, Memory: g, Lcores: lcore(0, 0)})
	require.NoError(t, err)
	defer p.Close()
	seg := p.Mem.Segments()[0]
	z, err := p.Mem.Reserve("probe", 64, 0)
	require.NoError(t, err)
	*(*uint64)(z.Ptr()) = 0x5eed
	s := startChild(t, childSpec{Role: "segment-fds", Type: Secondary, Mem: g, Lcores: lcore(1, 1), Args: []string{fmt.Sprint(z.Off)}})
	line := s.Expect("segment ")
	require.Equal(t, fmt.Sprintf("segment %#x word at %#x is 0x5eed", seg.Off, z.Off), line)
	require.NoError(t, s.Wait())
}
