package hash

import (
	"fmt"
	"hash/crc32"
)

// HashFunc names the hash function of a table's by-key API. The id, not
// the function, is stored in the shared header, so every binary that knows
// the id computes the same hashes. The ids are part of the shared format:
// never renumber them, never change what one computes.
type HashFunc uint32

const (
	// HashCRC32C is CRC-32C (Castagnoli), hardware-accelerated where the
	// CPU has it, started from the low 32 bits of the seed: with seed 0 it
	// equals crc32.Checksum(key, crc32.MakeTable(crc32.Castagnoli)), and
	// with seed s it equals crc32.Update(uint32(s), that table, key). It is
	// the default.
	HashCRC32C HashFunc = 1
	// HashFNV1a64 is 64-bit FNV-1a whose offset basis is XORed with the
	// seed: with seed 0 it equals hash/fnv's New64a.
	HashFNV1a64 HashFunc = 2
)

func (f HashFunc) String() string {
	switch f {
	case HashCRC32C:
		return "crc32c"
	case HashFNV1a64:
		return "fnv1a64"
	}
	return fmt.Sprintf("HashFunc(%d)", uint32(f))
}

func (f HashFunc) known() bool { return f == HashCRC32C || f == HashFNV1a64 }

// checkSeed reports a seed the function cannot use.
func (f HashFunc) checkSeed(seed uint64) error {
	if f == HashCRC32C && seed > 0xffffffff {
		return fmt.Errorf("seed %#x does not fit the 32 bits crc32c starts from", seed)
	}
	return nil
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

const (
	fnvOffset64 = 0xcbf29ce484222325
	fnvPrime64  = 0x100000001b3
)

// sum computes f over key. f must be known.
func (f HashFunc) sum(seed uint64, key []byte) uint64 {
	if f == HashFNV1a64 {
		h := uint64(fnvOffset64) ^ seed
		for _, c := range key {
			h ^= uint64(c)
			h *= fnvPrime64
		}
		return h
	}
	return uint64(crc32.Update(uint32(seed), castagnoli, key))
}

// mixHash spreads a caller's hash over all 64 bits (the finaliser of
// MurmurHash3), so the bucket index (low bits) and the signature (high 32
// bits) are independent however the caller's hash was made: a 32-bit CRC
// zero-extended works as well as a full 64-bit hash.
func mixHash(h uint64) uint64 {
	h ^= h >> 33
	h *= 0xff51afd7ed558ccd
	h ^= h >> 33
	h *= 0xc4ceb9fe1a85ec53
	h ^= h >> 33
	return h
}

// Where a hash goes: its primary bucket, its signature, and its alternative
// bucket. The alternative is the primary XOR a value derived from the
// signature alone, so a writer can move an entry between its two buckets
// knowing only the entry (the key need not be read, as in DPDK's cuckoo
// hash). The XORed value is odd, so the two buckets differ whenever the
// table has more than one.
func (t *Table) place(hash uint64) (prim, sig uint64) {
	m := mixHash(hash)
	return m & t.mask, m >> 32
}

func (t *Table) alt(bkt, sig uint64) uint64 { return (bkt ^ (sig | 1)) & t.mask }
