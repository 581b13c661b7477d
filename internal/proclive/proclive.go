// Package proclive tells whether a process recorded in shared memory still
// runs. A pid alone is not enough: pids are reused, so a record also keeps
// the process's start time, which a reused pid does not share.
package proclive

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// StartTime reads field 22 of /proc/<pid>/stat, the process's start time in
// clock ticks since boot. A zombie counts as gone (unix.ESRCH).
func StartTime(pid int) (uint64, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields after it start behind the last ')'.
	i := bytes.LastIndexByte(b, ')')
	if i < 0 {
		return 0, fmt.Errorf("proclive: /proc/%d/stat has no command field", pid)
	}
	fields := bytes.Fields(b[i+1:])
	const startTimeField = 22 - 3 // fields[0] is field 3 (state)
	if len(fields) <= startTimeField {
		return 0, fmt.Errorf("proclive: /proc/%d/stat has only %d fields", pid, len(fields)+2)
	}
	if fields[0][0] == 'Z' || fields[0][0] == 'X' {
		return 0, unix.ESRCH
	}
	return strconv.ParseUint(string(fields[startTimeField]), 10, 64)
}

// Alive reports whether the process pid, started at start, still runs.
// When /proc cannot tell (too many open files, say), it says yes: taking
// over from a live process is worse than waiting for a dead one.
func Alive(pid int, start uint64) bool {
	st, err := StartTime(pid)
	if err != nil {
		return !gone(err)
	}
	return st == start
}

// gone reports whether an error of StartTime says the process does not
// exist (or is a zombie); any other error leaves it in doubt.
func gone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.ESRCH)
}

// A Word names a process in one 64-bit word, for lock words that are taken
// and compared with a single compare-and-swap: the pid in the high 32 bits,
// the low 32 bits of its start time below. Start times count clock ticks
// (100 a second), so 32 bits of them repeat only after 497 days: a reused
// pid is told from the process that held a word as surely as by Alive.
// No process has Word 0, so 0 can mean "free".
func Word(pid int) (uint64, error) {
	start, err := StartTime(pid)
	return uint64(uint32(pid))<<32 | uint64(uint32(start)), err
}

// Self returns this process's Word, read once.
func Self() uint64 { return self() }

var self = sync.OnceValue(func() uint64 {
	w, _ := Word(os.Getpid()) // /proc/self/stat is always readable
	return w
})

// WordAlive reports whether the process a Word names still runs. A word
// that names no process (0, or garbage) is not alive; when /proc cannot
// tell, it is, as with Alive.
func WordAlive(w uint64) bool {
	start, err := StartTime(int(w >> 32))
	if err != nil {
		return !gone(err)
	}
	return uint32(start) == uint32(w)
}

// Running reports whether some process has pid now, a zombie not counted,
// whichever process that is. It is for records with room for a pid only:
// a reused pid looks alive there, so what such a record guards waits for
// the newcomer to exit rather than be taken from a live owner. When /proc
// cannot tell, it says running, for the same reason.
func Running(pid int) bool {
	_, err := StartTime(pid)
	return err == nil || !gone(err)
}
