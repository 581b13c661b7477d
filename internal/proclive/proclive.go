// Package proclive tells whether a process recorded in shared memory still
// runs. A pid alone is not enough: pids are reused, so a record also keeps
// the process's start time, which a reused pid does not share.
package proclive

import (
	"bytes"
	"fmt"
	"os"
	"strconv"

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
func Alive(pid int, start uint64) bool {
	st, err := StartTime(pid)
	return err == nil && st == start
}
