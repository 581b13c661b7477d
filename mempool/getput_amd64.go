//go:build !race

package mempool

import "golang.org/x/sys/cpu"

// useAVX2 lets getBulk and putBulk copy with 32-byte moves; tests turn it
// off to cover the 16-byte ones.
var useAVX2 = cpu.X86.HasAVX2

// getBulk is GetBulk in getput_amd64.s: the cache fast path, and a jump to
// getBulkGo for everything else. noescape holds: getBulkGo keeps no
// reference to objs (only to p and c, which are always on the heap).
//
//go:noescape
func getBulk(p *Pool, c *Cache, objs []uint64) error

// putBulk is PutBulk in getput_amd64.s, as getBulk.
//
//go:noescape
func putBulk(p *Pool, c *Cache, objs []uint64) error
