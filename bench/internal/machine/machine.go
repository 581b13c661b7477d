// Package machine describes the CPUs a comparison runs on: the model name
// for the report header and how two CPUs relate (hyperthreads of one core,
// two cores of one NUMA node, or two nodes), which decides the name DPDK
// gives the two-lcore ring test.
//
// Everything is read from /proc and /sys on each call; nothing is kept.
package machine

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// CPUModel is the first "model name" in /proc/cpuinfo, or "unknown CPU".
func CPUModel() string {
	f, err := os.Open("/proc/cpuinfo")
	if err != nil {
		return "unknown CPU"
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		key, val, ok := strings.Cut(sc.Text(), ":")
		if ok && strings.TrimSpace(key) == "model name" {
			return strings.TrimSpace(val)
		}
	}
	return "unknown CPU"
}

// Relation is how two CPUs share hardware, in DPDK's terms.
type Relation int

const (
	Hyperthreads Relation = iota // same core id and NUMA node: "two hyperthreads"
	Cores                        // same NUMA node, different cores: "two physical cores"
	Sockets                      // different NUMA nodes: "two NUMA nodes"
)

// Relate finds how cpu a and cpu b relate the way DPDK's ring_perf_autotest
// does: it compares the core id from sysfs topology and the NUMA node.
func Relate(a, b int) (Relation, error) {
	if a == b {
		return 0, fmt.Errorf("relate cpus %d and %d: need two different CPUs", a, b)
	}
	ca, na, err := place(a)
	if err != nil {
		return 0, err
	}
	cb, nb, err := place(b)
	if err != nil {
		return 0, err
	}
	return classify(ca, na, cb, nb), nil
}

// classify applies DPDK's rules (get_two_hyperthreads, get_two_cores,
// get_two_sockets) to two CPUs' core ids and NUMA nodes.
func classify(coreA, nodeA, coreB, nodeB int) Relation {
	switch {
	case nodeA != nodeB:
		return Sockets
	case coreA == coreB:
		return Hyperthreads
	default:
		return Cores
	}
}

// place returns the core id and NUMA node of cpu (node 0 without NUMA).
func place(cpu int) (core, node int, err error) {
	dir := fmt.Sprintf("/sys/devices/system/cpu/cpu%d", cpu)
	b, err := os.ReadFile(filepath.Join(dir, "topology", "core_id"))
	if err != nil {
		return 0, 0, fmt.Errorf("cpu %d: read core id (is the CPU online?): %w", cpu, err)
	}
	core, err = strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, 0, fmt.Errorf("cpu %d: core id %q is not a number", cpu, b)
	}
	nodes, _ := filepath.Glob(filepath.Join(dir, "node[0-9]*"))
	if len(nodes) > 0 {
		node, _ = strconv.Atoi(strings.TrimPrefix(filepath.Base(nodes[0]), "node"))
	}
	return core, node, nil
}

// Busy measures, over d, the fraction of time the given CPUs spent on
// anything but idling (from /proc/stat), averaged over the CPUs. Called
// while this process waits, it says how much other work shares the CPUs.
func Busy(cpus []int, d time.Duration) (float64, error) {
	before, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	time.Sleep(d)
	after, err := cpuTimes()
	if err != nil {
		return 0, err
	}
	var busy, total float64
	for _, c := range cpus {
		b, okB := before[c]
		a, okA := after[c]
		if !okB || !okA {
			return 0, fmt.Errorf("/proc/stat has no line for cpu %d", c)
		}
		busy += float64((a.total - a.idle) - (b.total - b.idle))
		total += float64(a.total - b.total)
	}
	if total == 0 {
		return 0, nil
	}
	return busy / total, nil
}

type cpuTime struct{ total, idle uint64 }

// cpuTimes reads the per-CPU lines of /proc/stat; idle includes iowait.
func cpuTimes() (map[int]cpuTime, error) {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return nil, err
	}
	times := map[int]cpuTime{}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[0], "cpu") || f[0] == "cpu" {
			continue
		}
		cpu, err := strconv.Atoi(strings.TrimPrefix(f[0], "cpu"))
		if err != nil {
			continue
		}
		var t cpuTime
		for i, v := range f[1:] {
			n, _ := strconv.ParseUint(v, 10, 64)
			t.total += n
			if i == 3 || i == 4 { // idle, iowait
				t.idle += n
			}
		}
		times[cpu] = t
	}
	return times, nil
}
