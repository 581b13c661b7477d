package hash

import (
	"encoding/binary"
	"fmt"
	"os/exec"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/proclive"
	"github.com/stretchr/testify/require"
)

// keyID recovers i from key16(i).
func keyID(key []byte) int { return int(binary.LittleEndian.Uint64(key)) }

// TestConcurrentWritersAndReaders runs two writer goroutines, one by key
// and one with piled-up caller hashes that force cuckoo moves, against
// readers and an iterator. Every value encodes its key's number, so a
// reader that matched a torn key or read another key's value would see it.
// Run it with -race (the short variant is quick).
func TestConcurrentWritersAndReaders(t *testing.T) {
	const (
		entries = 2048
		stable  = 1200 // always present; values change
		churnA  = 300  // by-key adds and deletes
		piled   = 12   // per round, all with one hash: crowd its two buckets
	)
	rounds := 3000
	if testing.Short() {
		rounds = 300
	}
	tbl := makeTable(t, Config{Name: "conc", KeyLen: 16, Entries: entries})
	for i := 0; i < stable; i++ {
		require.NoError(t, tbl.Add(key16(i), valueOf(i)))
	}
	var (
		stop    atomic.Bool
		deletes atomic.Uint64
		wg      sync.WaitGroup
		errs    = make(chan error, 16)
	)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
		stop.Store(true)
	}
	wg.Add(2)
	go func() { // writer 1: by-key churn and value updates of stable keys
		defer wg.Done()
		for r := 0; r < rounds && !stop.Load(); r++ {
			for i := 0; i < churnA; i++ {
				id := 10000 + i
				if err := tbl.Add(key16(id), valueOf(id)); err != nil {
					fail("writer 1 round %d: Add(%d): %v", r, id, err)
					return
				}
				if err := tbl.Add(key16(i), valueOf(i)|uint64(r&0xfff)<<8); err != nil {
					fail("writer 1: update of stable key %d: %v", i, err)
					return
				}
			}
			for i := 0; i < churnA; i++ {
				if err := tbl.Delete(key16(10000 + i)); err != nil {
					fail("writer 1 round %d: Delete(%d): %v", r, 10000+i, err)
					return
				}
				deletes.Add(1)
			}
		}
	}()
	go func() { // writer 2: keys piled on one hash per round, then deleted
		defer wg.Done()
		for r := 0; r < rounds && !stop.Load(); r++ {
			hash := uint64(r) * 0x9e3779b97f4a7c15
			for i := 0; i < piled; i++ {
				id := 20000 + i
				if err := tbl.AddWithHash(key16(id), hash, valueOf(id)); err != nil {
					fail("writer 2 round %d: AddWithHash(%d): %v", r, id, err)
					return
				}
			}
			for i := 0; i < piled; i++ {
				if err := tbl.DeleteWithHash(key16(20000+i), hash); err != nil {
					fail("writer 2 round %d: DeleteWithHash(%d): %v", r, 20000+i, err)
					return
				}
				deletes.Add(1)
			}
		}
	}()

	var readers sync.WaitGroup
	var lookups atomic.Uint64
	for g := 0; g < 2; g++ {
		readers.Add(1)
		go func() {
			defer readers.Done()
			for n := 0; !stop.Load(); n++ {
				i := n % stable
				v, err := tbl.Lookup(key16(i))
				if err != nil {
					fail("reader: stable key %d: %v", i, err)
					return
				}
				if v>>20 != uint64(i) {
					fail("reader: stable key %d has value %#x, which belongs to key %d", i, v, v>>20)
					return
				}
				c := 10000 + n%churnA
				if v, err := tbl.Lookup(key16(c)); err == nil && v != valueOf(c) {
					fail("reader: churned key %d has value %#x, want %#x", c, v, valueOf(c))
					return
				} else if err != nil && err != ErrNotFound {
					fail("reader: churned key %d: %v", c, err)
					return
				}
				lookups.Add(2)
			}
		}()
	}
	readers.Add(1)
	go func() { // an iterator, checking pairs and that stable keys appear once each
		defer readers.Done()
		for !stop.Load() {
			seen := make([]bool, stable)
			tbl.Iterate(func(key []byte, v uint64) bool {
				id := keyID(key)
				if string(key) != string(key16(id)) || v>>20 != uint64(id) {
					fail("Iterate: key %x with value %#x", key, v)
					return false
				}
				if id < stable {
					if seen[id] {
						fail("Iterate: stable key %d seen twice", id)
						return false
					}
					seen[id] = true
				}
				return true
			})
			for id, ok := range seen {
				if !ok && !stop.Load() {
					fail("Iterate: stable key %d not seen", id)
				}
			}
		}
	}()

	wg.Wait()
	stop.Store(true)
	readers.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	checkConsistent(t, tbl)
	require.Equal(t, stable, tbl.Count())
	moves := tbl.hdr.changes - deletes.Load()
	t.Logf("%d lookups, %d deletes, %d cuckoo moves", lookups.Load(), deletes.Load(), moves)
	require.NotZero(t, moves, "writer 2's piles forced cuckoo moves while readers ran")
}

// TestReadersDoNotWaitForTheLock holds the writer lock, as a writer that
// stopped forever would, and reads.
func TestReadersDoNotWaitForTheLock(t *testing.T) {
	tbl := makeTable(t, Config{Name: "ro", KeyLen: 16, Entries: 64})
	require.NoError(t, tbl.Add(key16(1), 7))
	tbl.lock()
	defer tbl.unlock()
	v, err := tbl.Lookup(key16(1))
	require.NoError(t, err)
	require.Equal(t, uint64(7), v)
	_, err = tbl.LookupWithHash(key16(1), tbl.Hash(key16(1)))
	require.NoError(t, err)
	require.Equal(t, 1, tbl.Count())
	require.Len(t, contents(t, tbl), 1)
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) uint64 {
	cmd := exec.Command("true")
	require.NoError(t, cmd.Run())
	return uint64(cmd.Process.Pid)
}

// TestWriterThatDiedIsTakenOverAndRepaired leaves the table as writers that
// died at each step of their work would, with the lock still naming them,
// and checks that the next writer takes over and the table comes out whole:
// right count, no duplicate entry, no leaked key slot.
func TestWriterThatDiedIsTakenOverAndRepaired(t *testing.T) {
	for _, who := range []struct {
		name  string
		owner func(t *testing.T) uint64
	}{
		{"dead process", func(t *testing.T) uint64 { return deadPID(t)<<32 | 1 }},
		{"earlier process with our pid", func(t *testing.T) uint64 { return myOwner ^ 2 }},
		{"garbage lock word", func(t *testing.T) uint64 { return 0xffffffff_00000000 }},
	} {
		t.Run(who.name, func(t *testing.T) {
			const entries = 64
			tbl := makeTable(t, Config{Name: "crash", KeyLen: 16, Entries: entries})
			for i := 0; i < 20; i++ {
				require.NoError(t, tbl.Add(key16(i), valueOf(i)))
			}
			h := tbl.hdr
			// An Add that died after taking a slot off the free list.
			h.freeTop--
			tbl.writeKey(*tbl.freeAt(h.freeTop), key16(999))
			// A cuckoo move that died after copying an entry: key 3 is in
			// both of its buckets.
			prim, sig := tbl.place(tbl.Hash(key16(3)))
			b, i, k := tbl.findLocked(prim, tbl.alt(prim, sig), sig, key16(3))
			require.NotZero(t, k)
			other, j, ok := tbl.emptyEntry(tbl.alt(b, sig))
			require.True(t, ok)
			tbl.bucketAt(other)[j] = tbl.bucketAt(b)[i]
			// A Delete that died after clearing key 5's entry.
			prim, sig = tbl.place(tbl.Hash(key16(5)))
			b, i, _ = tbl.findLocked(prim, tbl.alt(prim, sig), sig, key16(5))
			tbl.bucketAt(b)[i] = 0
			changes := h.changes
			atomic.StoreUint64(&h.lock, who.owner(t))

			done := make(chan error, 1)
			go func() { done <- tbl.Add(key16(100), valueOf(100)) }()
			select {
			case err := <-done:
				require.NoError(t, err)
			case <-time.After(20 * time.Second):
				t.Fatalf("Add wedged on a dead writer's lock %#x", h.lock)
			}
			require.Greater(t, h.changes, changes, "the repair moved the change counter")
			require.Equal(t, 20, tbl.Count(), "19 keys left and one added")
			checkConsistent(t, tbl)
			_, err := tbl.Lookup(key16(5))
			require.Same(t, ErrNotFound, err, "the dead Delete's key")
			require.Same(t, ErrNotFound, tbl.Delete(key16(5)))
			require.NoError(t, tbl.Delete(key16(3)))
			_, err = tbl.Lookup(key16(3))
			require.Same(t, ErrNotFound, err, "key 3's duplicate entry went with the repair")
			// No slot leaked: the table fills to its capacity exactly.
			for i := 200; tbl.Count() < entries; i++ {
				require.NoError(t, tbl.Add(key16(i), valueOf(i)))
			}
			require.ErrorIs(t, tbl.Add(key16(1000), 1), ErrNoSpace)
			checkConsistent(t, tbl)
		})
	}
}

func TestLiveOwnersAreNotTakenOver(t *testing.T) {
	initWord, err := proclive.Word(1)
	require.NoError(t, err)
	require.True(t, proclive.WordAlive(myOwner), "this process")
	require.True(t, proclive.WordAlive(initWord), "pid 1 (init) is alive")
	require.False(t, proclive.WordAlive(deadPID(t)<<32|1), "a reaped process")
	require.False(t, proclive.WordAlive(myOwner^4), "our pid with another start time")
}

func TestLookupDoesNotAllocate(t *testing.T) {
	tbl := makeTable(t, Config{Name: "alloc", KeyLen: 16, Entries: 1024})
	for i := 0; i < 512; i++ {
		require.NoError(t, tbl.Add(key16(i), valueOf(i)))
	}
	hit, miss := key16(7), key16(100000)
	hitHash, missHash := tbl.Hash(hit), tbl.Hash(miss)
	for name, fn := range map[string]func(){
		"Lookup hit":          func() { tbl.Lookup(hit) },
		"Lookup miss":         func() { tbl.Lookup(miss) },
		"LookupWithHash hit":  func() { tbl.LookupWithHash(hit, hitHash) },
		"LookupWithHash miss": func() { tbl.LookupWithHash(miss, missHash) },
		"Add update":          func() { tbl.Add(hit, 1) },
		"Add+Delete":          func() { tbl.Add(miss, 1); tbl.Delete(miss) },
		"Count":               func() { tbl.Count() },
	} {
		require.Zero(t, testing.AllocsPerRun(1000, fn), "%s allocates", name)
	}
}

// hashFor returns a hash, searched from start, whose primary bucket is prim
// and whose alternative satisfies ok.
func hashFor(t *testing.T, tbl *Table, start, prim uint64, ok func(sec uint64) bool) uint64 {
	for h := start; h < start+1<<26; h++ {
		p, sig := tbl.place(h)
		if p == prim && ok(tbl.alt(p, sig)) {
			return h
		}
	}
	t.Fatalf("no hash with primary bucket %d found", prim)
	return 0
}

// TestReadersFindKeysThatCuckooMovesCarry makes a writer carry six keys
// back and forth between their two buckets X and Y, by crowding X, then Y,
// with keys of other bucket pairs, while readers look the six keys up
// without pause: a reader must find each of them every time, although a
// key may leave the bucket not yet searched for the one already searched.
func TestReadersFindKeysThatCuckooMovesCarry(t *testing.T) {
	rounds := 20000
	if testing.Short() {
		rounds = 2000
	}
	tbl := makeTable(t, Config{Name: "carry", KeyLen: 16, Entries: 1024})
	const x, y = 10, 21 // a key's two buckets differ in their lowest bit
	const victims = 6
	const crowd = 2 * BucketEntries
	var vHash [victims]uint64
	next := uint64(1)
	for i := range vHash {
		vHash[i] = hashFor(t, tbl, next, x, func(sec uint64) bool { return sec == y })
		next = vHash[i] + 1
		require.NoError(t, tbl.AddWithHash(key16(i), vHash[i], valueOf(i)))
	}
	crowdX := hashFor(t, tbl, 1, x, func(sec uint64) bool { return sec != y })
	crowdY := hashFor(t, tbl, 1, y, func(sec uint64) bool { return sec != x })

	var stop atomic.Bool
	errs := make(chan error, 4)
	fail := func(format string, args ...any) {
		select {
		case errs <- fmt.Errorf(format, args...):
		default:
		}
		stop.Store(true)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	for g := 0; g < 2; g++ {
		go func() {
			defer wg.Done()
			for n := 0; !stop.Load(); n++ {
				i := n % victims
				v, err := tbl.LookupWithHash(key16(i), vHash[i])
				if err != nil {
					fail("reader: key %d (buckets %d and %d): %v", i, x, y, err)
					return
				}
				if v != valueOf(i) {
					fail("reader: key %d has value %#x, want %#x", i, v, valueOf(i))
					return
				}
				// A crowding key, whose slot may be freed and reused
				// for another crowding key while we compare it.
				c := 100 + n%(3*crowd)
				v, err = tbl.LookupWithHash(key16(c), []uint64{crowdX, crowdY}[n/7%2])
				if err == nil && v != valueOf(c) {
					fail("reader: crowding key %d has value %#x, want %#x", c, v, valueOf(c))
					return
				}
			}
		}()
	}
	before := tbl.hdr.changes
	deletes := 0
	for r := 0; r < rounds && !stop.Load(); r++ {
		hash := []uint64{crowdX, crowdY}[r%2]
		first := 100 + r%3*crowd // another set of keys each round, reusing the same slots
		for i := first; i < first+crowd; i++ {
			if err := tbl.AddWithHash(key16(i), hash, valueOf(i)); err != nil {
				fail("round %d: crowding key %d: %v", r, i, err)
				break
			}
		}
		for i := first; i < first+crowd; i++ {
			if tbl.DeleteWithHash(key16(i), hash) == nil {
				deletes++
			}
		}
	}
	stop.Store(true)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	moves := tbl.hdr.changes - before - uint64(deletes)
	t.Logf("%d rounds made %d cuckoo moves", rounds, moves)
	require.GreaterOrEqual(t, moves, uint64(rounds), "each round moved keys")
	checkConsistent(t, tbl)
}
