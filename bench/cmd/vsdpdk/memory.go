package main

import (
	"fmt"
	"os"

	"github.com/gopmd/gopmd/hugemem"
)

// goMemLimit bounds gopmd's group: the ring test needs a few KiB, the
// mempool test two pools of 2047 x 2 KiB objects plus caches.
const goMemLimit = 64 << 20

// openMemory creates gopmd's own group for one comparison, on hugepages
// when there are any (hugemem falls back to memfd memory otherwise), and
// says which kind it got.
func openMemory(what string) (*hugemem.Memory, string, error) {
	prefix := fmt.Sprintf("vsgopmd-%s-%d", what, os.Getpid())
	mem, err := hugemem.Create(hugemem.Options{Prefix: prefix, Limit: goMemLimit})
	if err != nil {
		return nil, "", fmt.Errorf("gopmd memory group %s: %w", prefix, err)
	}
	kind := "memory: hugepages"
	if !mem.HugePages() {
		kind = "memory: memfd (no hugepages available)"
	}
	return mem, kind + ", group prefix " + prefix, nil
}
