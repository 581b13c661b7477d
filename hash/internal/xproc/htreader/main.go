// Command htreader is the hash package's second test program, different
// code from htwriter on purpose. Configured by environment variables, it
// attaches to a table another program created, checks that every key of
// one tag is there (by-key Lookup), then adds keys of its own tag.
//
// HTR_PREFIX, HTR_RUNDIR, HTR_TABLE name the group and the table;
// HTR_CHECK_TAG and HTR_CHECK_N the keys to find (numbers 0 to N-1);
// HTR_ADD_TAG, HTR_ADD_FROM and HTR_ADD_N the keys to add. Keys and values
// follow htwriter's format.
package main

import (
	"errors"
	"log"
	"os"
	"reflect"
	"strconv"
	"strings"

	"github.com/gopmd/gopmd/hash"
	"github.com/gopmd/gopmd/hugemem"
)

type keyMaker struct {
	buf []byte
}

// key builds the 16-byte key without fmt: tag, spaces to 6 bytes, then 10
// zero-padded digits.
func (m *keyMaker) key(tag string, n uint64) []byte {
	m.buf = append(m.buf[:0], tag...)
	m.buf = append(m.buf, strings.Repeat(" ", 6-len(tag))...)
	digits := strconv.FormatUint(n, 10)
	m.buf = append(m.buf, strings.Repeat("0", 10-len(digits))...)
	return append(m.buf, digits...)
}

func envInt(name string) uint64 {
	v, err := strconv.ParseUint(os.Getenv(name), 10, 64)
	if err != nil && os.Getenv(name) != "" {
		log.Fatalf("%s: %v", name, err)
	}
	return v
}

func main() {
	log.SetFlags(0)
	log.SetPrefix("htreader: ")
	mem, err := hugemem.Attach(hugemem.Options{Prefix: os.Getenv("HTR_PREFIX"), RuntimeDir: os.Getenv("HTR_RUNDIR")})
	if err != nil {
		log.Fatal(err)
	}
	defer mem.Close()
	table, err := hash.Lookup(mem, os.Getenv("HTR_TABLE"))
	if err != nil {
		log.Fatal(err)
	}
	os.Stdout.WriteString("hash func at 0x" + strconv.FormatUint(uint64(reflect.ValueOf((*hash.Table).Hash).Pointer()), 16) + "\n")

	var km keyMaker
	if tag := os.Getenv("HTR_CHECK_TAG"); tag != "" {
		n := envInt("HTR_CHECK_N")
		missing := 0
		for i := uint64(0); i < n; i++ {
			v, err := table.Lookup(km.key(tag, i))
			switch {
			case errors.Is(err, hash.ErrNotFound):
				missing++
			case err != nil:
				log.Fatal(err)
			case v != i<<8|uint64(tag[0]):
				log.Fatalf("key %q has value %#x, want %#x", km.buf, v, i<<8|uint64(tag[0]))
			}
		}
		if missing > 0 {
			log.Fatalf("%d of %d keys tagged %q are missing", missing, n, tag)
		}
		os.Stdout.WriteString("found " + strconv.FormatUint(n, 10) + "\n")
	}
	if tag := os.Getenv("HTR_ADD_TAG"); tag != "" {
		from, n := envInt("HTR_ADD_FROM"), envInt("HTR_ADD_N")
		for i := from; i < from+n; i++ {
			if err := table.Add(km.key(tag, i), i<<8|uint64(tag[0])); err != nil {
				log.Fatalf("add %q: %v", km.buf, err)
			}
		}
		os.Stdout.WriteString("added " + strconv.FormatUint(n, 10) + "\n")
	}
}
