// Command htwriter is the hash package's first test program: it creates a
// table in a group's memory, adds keys with the by-key API, checks keys
// another program added, or churns keys until it is killed.
//
// Keys are 16 bytes: a tag padded with spaces to 6 bytes, then the key
// number in 10 decimal digits; the value is number<<8 | tag[0].
package main

import (
	"flag"
	"fmt"
	"os"
	"reflect"

	"github.com/gopmd/gopmd/hash"
	"github.com/gopmd/gopmd/hugemem"
)

func main() {
	prefix := flag.String("prefix", "", "group file prefix")
	rundir := flag.String("rundir", "", "group runtime directory")
	table := flag.String("table", "", "table name")
	op := flag.String("op", "", "create | add | check | churn")
	tag := flag.String("tag", "A", "key tag")
	from := flag.Int("from", 0, "first key number")
	n := flag.Int("n", 0, "number of keys")
	entries := flag.Int("entries", 0, "capacity, for create")
	seed := flag.Uint64("seed", 0, "hash seed, for create")
	fnv := flag.Bool("fnv", false, "use FNV-1a 64 instead of CRC32C, for create")
	flag.Parse()
	if err := run(*prefix, *rundir, *table, *op, *tag, *from, *n, *entries, *seed, *fnv); err != nil {
		fmt.Fprintln(os.Stderr, "htwriter:", err)
		os.Exit(1)
	}
}

func key(tag string, i int) []byte { return []byte(fmt.Sprintf("%-6s%010d", tag, i)) }

func value(tag string, i int) uint64 { return uint64(i)<<8 | uint64(tag[0]) }

func run(prefix, rundir, table, op, tag string, from, n, entries int, seed uint64, fnv bool) error {
	mem, err := hugemem.Attach(hugemem.Options{Prefix: prefix, RuntimeDir: rundir})
	if err != nil {
		return err
	}
	defer mem.Close()
	var t *hash.Table
	if op == "create" {
		f := hash.HashCRC32C
		if fnv {
			f = hash.HashFNV1a64
		}
		t, err = hash.Create(mem, hash.Config{Name: table, KeyLen: 16, Entries: entries, Hash: f, Seed: seed})
	} else {
		t, err = hash.Lookup(mem, table)
	}
	if err != nil {
		return err
	}
	fmt.Printf("hash func at %#x\n", reflect.ValueOf((*hash.Table).Hash).Pointer())
	switch op {
	case "create", "add":
		for i := from; i < from+n; i++ {
			if err := t.Add(key(tag, i), value(tag, i)); err != nil {
				return fmt.Errorf("add %s: %w", key(tag, i), err)
			}
		}
		fmt.Printf("added %d\n", n)
	case "check":
		for i := from; i < from+n; i++ {
			v, err := t.Lookup(key(tag, i))
			if err != nil {
				return fmt.Errorf("lookup %s: %w", key(tag, i), err)
			}
			if v != value(tag, i) {
				return fmt.Errorf("lookup %s: value %#x, want %#x", key(tag, i), v, value(tag, i))
			}
		}
		fmt.Printf("found %d\n", n)
	case "churn":
		fmt.Println("churning")
		for round := 0; ; round++ {
			for i := from; i < from+n; i++ {
				if err := t.Add(key(tag, i), value(tag, i)); err != nil {
					return err
				}
			}
			for i := from; i < from+n; i++ {
				if err := t.Delete(key(tag, i)); err != nil {
					return err
				}
			}
		}
	default:
		return fmt.Errorf("unknown op %q", op)
	}
	return nil
}
