package mempool

import (
	"strings"

	"github.com/gopmd/gopmd/hugemem"
)

// All attaches to every pool of the group, for tools and for the process
// model, which returns a dead process's cached objects to their pools.
// Memzones that carry the pool prefix but fail validation are skipped and
// reported in the error, after the pools that did attach.
func All(mem *hugemem.Memory) ([]*Pool, error) {
	var names []string
	if err := mem.Walk(func(z hugemem.Memzone) {
		if strings.HasPrefix(z.Name, zonePrefix) {
			names = append(names, strings.TrimPrefix(z.Name, zonePrefix))
		}
	}); err != nil {
		return nil, err
	}
	var pools []*Pool
	var firstErr error
	for _, n := range names {
		p, err := Lookup(mem, n)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			continue
		}
		pools = append(pools, p)
	}
	return pools, firstErr
}
