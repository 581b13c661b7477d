// Command simple_mp is the Go counterpart of DPDK's simple_mp sample: two
// processes of one group pass text messages to each other over two shared
// rings, in buffers from a shared mempool.
//
//	go run ./examples/simple_mp -l 0 --proc-type=primary
//	go run ./examples/simple_mp -l 1 --proc-type=secondary
//
// Each process reads commands on stdin: "send <text>" puts a message on the
// ring to the other process, which prints "Received '<text>'"; "quit"
// exits. The primary creates the rings PRI_2_SEC and SEC_2_PRI and the pool
// MSG_POOL; the secondary finds them by name, with the rings' roles swapped.
package main

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/mempool"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/ring"
)

const (
	ringSize   = 64
	poolSize   = 1023
	poolCache  = 32
	maxMessage = 127 // bytes of text in one message buffer
	bufSize    = maxMessage + 1
)

func main() {
	env, _, err := eal.Init(os.Args[1:])
	if err != nil {
		fmt.Fprintln(os.Stderr, "simple_mp:", err)
		os.Exit(1)
	}
	err = run(env)
	env.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "simple_mp:", err)
		os.Exit(1)
	}
}

func run(env *eal.Env) error {
	send, recv, pool, err := setUp(env)
	if err != nil {
		return err
	}
	cache := pool.Cache(env.Options.MainLcore)
	fmt.Printf("simple_mp: %s process %d ready on lcore %d\n", env.Proc.Type(), os.Getpid(), env.Options.MainLcore)

	// The receiver runs beside the command loop, so it must not share the
	// main lcore's cache; it puts buffers back without one (nil Cache).
	// Closing the process returns what the main lcore's cache holds.
	var stop atomic.Bool
	received := make(chan struct{})
	go func() {
		defer close(received)
		receive(recv, pool, nil, &stop)
	}()
	defer func() {
		stop.Store(true)
		<-received
	}()

	lines := make(chan string)
	go func() {
		sc := bufio.NewScanner(os.Stdin)
		for sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	for {
		select {
		case <-env.Proc.PrimaryGone():
			fmt.Println("simple_mp: the primary has exited; quitting")
			return nil
		case line, ok := <-lines:
			if !ok {
				return nil
			}
			quit, err := command(line, send, pool, cache)
			if err != nil {
				fmt.Println("error:", err)
			}
			if quit {
				return nil
			}
		}
	}
}

// setUp creates (primary) or finds (secondary) the rings and the pool.
func setUp(env *eal.Env) (send, recv *ring.Ring, pool *mempool.Pool, err error) {
	mem := env.Mem
	if env.Proc.Type() == mp.Primary {
		if send, err = ring.Create(mem, "PRI_2_SEC", ringSize, ring.SPEnq|ring.SCDeq); err != nil {
			return
		}
		if recv, err = ring.Create(mem, "SEC_2_PRI", ringSize, ring.SPEnq|ring.SCDeq); err != nil {
			return
		}
		pool, err = mempool.Create(mem, "MSG_POOL", mempool.Config{N: poolSize, EltSize: bufSize, CacheSize: poolCache})
		return
	}
	if send, err = ring.Lookup(mem, "SEC_2_PRI"); err != nil {
		return
	}
	if recv, err = ring.Lookup(mem, "PRI_2_SEC"); err != nil {
		return
	}
	pool, err = mempool.Lookup(mem, "MSG_POOL")
	return
}

func command(line string, send *ring.Ring, pool *mempool.Pool, cache *mempool.Cache) (quit bool, err error) {
	verb, arg, _ := strings.Cut(strings.TrimSpace(line), " ")
	switch verb {
	case "":
		return false, nil
	case "quit":
		return true, nil
	case "help":
		fmt.Println("commands: send <text>, quit, help")
		return false, nil
	case "send":
		if len(arg) > maxMessage {
			return false, fmt.Errorf("message of %d bytes is longer than %d", len(arg), maxMessage)
		}
		h, err := pool.Get(cache)
		if err != nil {
			return false, fmt.Errorf("no free message buffer: %w", err)
		}
		buf := unsafe.Slice((*byte)(pool.Ptr(h)), bufSize)
		buf[copy(buf, arg)] = 0
		if !send.Enqueue(h) {
			pool.Put(cache, h)
			return false, errors.New("the ring to the other process is full")
		}
		return false, nil
	}
	return false, fmt.Errorf("unknown command %q (try help)", verb)
}

// receive prints every message that arrives until stop is set.
func receive(recv *ring.Ring, pool *mempool.Pool, cache *mempool.Cache, stop *atomic.Bool) {
	for !stop.Load() {
		h, ok := recv.Dequeue()
		if !ok {
			time.Sleep(100 * time.Microsecond) // an interactive sample need not spin
			continue
		}
		buf := unsafe.Slice((*byte)(pool.Ptr(h)), bufSize)
		text := buf[:max(0, indexZero(buf))]
		fmt.Printf("Received '%s'\n", text)
		pool.Put(cache, h)
	}
}

func indexZero(b []byte) int {
	for i, c := range b {
		if c == 0 {
			return i
		}
	}
	return len(b)
}
