package hash_test

import (
	"fmt"
	"os"

	"github.com/gopmd/gopmd/hash"
	"github.com/gopmd/gopmd/hugemem"
)

// A primary process creates a table of 6-byte keys (MAC addresses, say)
// mapping to port numbers; any other process of the group, whatever its
// binary, attaches with hash.Lookup and uses the same by-key API.
func Example() {
	dir, _ := os.MkdirTemp("", "hash-example")
	defer os.RemoveAll(dir)
	mem, err := hugemem.Create(hugemem.Options{Prefix: fmt.Sprintf("hash-ex-%d", os.Getpid()), NoHuge: true, RuntimeDir: dir})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer mem.Close()

	macs, err := hash.Create(mem, hash.Config{Name: "mac2port", KeyLen: 6, Entries: 1024, Hash: hash.HashCRC32C, Seed: 0x1234})
	if err != nil {
		fmt.Println(err)
		return
	}
	macs.Add([]byte{0x02, 0, 0, 0, 0, 0x01}, 3)
	macs.Add([]byte{0x02, 0, 0, 0, 0, 0x02}, 7)

	// In another process: attach, and look keys up by key.
	t, err := hash.Lookup(mem, "mac2port")
	if err != nil {
		fmt.Println(err)
		return
	}
	port, err := t.Lookup([]byte{0x02, 0, 0, 0, 0, 0x02})
	fmt.Println(port, err)
	_, err = t.Lookup([]byte{0x02, 0, 0, 0, 0, 0x09})
	fmt.Println(err)

	// A caller that has the hash already (from the NIC, say) passes it in.
	key := []byte{0x02, 0, 0, 0, 0, 0x01}
	port, err = t.LookupWithHash(key, t.Hash(key))
	fmt.Println(port, err, t.Count())
	// Output:
	// 7 <nil>
	// key not found
	// 3 <nil> 2
}
