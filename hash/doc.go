// Package hash is a hash table in a group's shared memory (a hugemem
// memzone) that every process of the group can read and write, whatever
// binary it runs: fixed-length byte keys mapping to uint64 values, built
// like DPDK's rte_hash (a cuckoo hash with buckets of 8 entries).
//
// # Why the hash function is an id
//
// rte_hash keeps a pointer to its hash function in shared memory, so only
// processes of the same binary, with the function at the same address, can
// use the by-key API on a shared table; DPDK tells the others to compute
// hashes themselves and use rte_hash_add_key_with_hash and friends. Here
// the shared header stores plain data only: the id of a hash function
// (HashCRC32C, HashFNV1a64) and its seed. Every binary maps the id to its
// own copy of the function, so Add in one program and Lookup in another
// agree. A table whose id this binary does not know (made by a newer one)
// is refused at Lookup with ErrUnknownHash rather than read with the wrong
// function.
//
// # Two ways to hash
//
// Add, Lookup and Delete hash the key with the table's function.
// AddWithHash, LookupWithHash and DeleteWithHash take a 64-bit hash from
// the caller instead, for callers that already have one (from the NIC, or
// computed once for several tables). Any value works, a 32-bit hash
// zero-extended included: the table mixes it before picking buckets. The
// same key must always come with the same hash, and the two ways only meet
// when the caller's hash is t.Hash(key).
//
// # Layout
//
// A key hashes to a primary bucket and a 32-bit signature; its alternative
// bucket is the primary XOR a value derived from the signature. A bucket
// is one cache line of 8 entries, each entry one 64-bit word holding the
// signature and the index of a key slot; key slots (key, value) sit in
// their own array, with a free list of slot indices. The buckets have room
// for 5/4 of the capacity, so Add fails with ErrNoSpace when Capacity keys
// are stored, and otherwise only when many keys share the same two buckets
// (possible with caller-supplied hashes) and a bounded breadth-first
// search finds no cuckoo path to a free entry.
//
// # Concurrency
//
// Writers (Add, Delete, Reset and their WithHash forms) take a lock in the
// shared header, so any number of goroutines and processes may write. The
// lock word names its holder by pid and start time: a writer that finds
// the holder dead (killed mid-write, a zombie, or its pid now another
// process's) takes the lock over and repairs what the dead writer left
// half done, so a crash never wedges the table nor leaks its entries: an
// Add or Delete that died either took effect or did not (a Reset may be
// partly done). A holder that is alive but stopped (SIGSTOP,
// a debugger) makes other writers wait.
//
// Readers (Lookup, LookupWithHash, Iterate, Count) take no lock and never
// wait, not even for a dead writer. Writers bump a change counter after
// every step that takes a key out of a place (a delete, a cuckoo move);
// a reader that sees the counter move while it searched retries. Every
// entry and key word is read and written whole, with atomic operations, so
// a reader never returns a torn key or a value of another key. Lookup
// makes no allocation and no system call.
//
// # Lifetime
//
// Create reserves memzone "HT_"+name and makes the table; Lookup attaches
// from any process of the group; a Table holds only process-local copies
// of constant header fields, so attaching is cheap and needs no Close. The
// table lives as long as its memzone: Free (once every process has stopped
// using it) or the end of the group. Reset empties it in place. A Table
// points into its hugemem.Memory and must not be used after that Memory
// is closed.
package hash
