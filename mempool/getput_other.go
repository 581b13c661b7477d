//go:build !amd64 || race

package mempool

// useAVX2 is false: the assembly fast paths exist on amd64 only, and the
// race detector cannot see the memory that assembly touches.
var useAVX2 = false

func getBulk(p *Pool, c *Cache, objs []uint64) error { return getBulkGo(p, c, objs) }

func putBulk(p *Pool, c *Cache, objs []uint64) error { return putBulkGo(p, c, objs) }
