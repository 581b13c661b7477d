// Package mempoolperf compares gopmd's mempool with DPDK's on the loop of
// DPDK 22.11's mempool_perf_autotest: each lcore repeatedly gets Keep
// objects in bulks of Get and puts them back in bulks of Put, through its
// per-lcore cache (or none), for a fixed time; the result is objects per
// second summed over the lcores (rate_persec).
//
// The DPDK side is the C harness in harness/, embedded here and built by
// vsdpdk against libdpdk; ParseDPDK reads its output, which uses the
// autotest's own line format. Run is the same loop on gopmd's mempool. Both
// sides create their pools for the run and free them before returning.
package mempoolperf

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
)

// HarnessSource is the C program that runs DPDK's side (harness/mempool_perf.c).
//
//go:embed harness/mempool_perf.c
var HarnessSource []byte

// The autotest's parameters (test_mempool_perf.c).
const (
	objsPerRound = 65536 // N: objects got and put per round of the loop
	maxKeep      = 512   // MAX_KEEP
	cacheMax     = 512   // RTE_MEMPOOL_CACHE_MAX_SIZE, the cached pool's cache size
)

// EltSize is the bytes of every pool object (MEMPOOL_ELT_SIZE).
const EltSize = 2048

// PoolSize is the autotest's pool size for lcores lcores:
// lcores*(MAX_KEEP+RTE_MEMPOOL_CACHE_MAX_SIZE)-1.
func PoolSize(lcores int) int { return lcores*(maxKeep+cacheMax) - 1 }

// Row is one configuration of the loop.
type Row struct {
	Cache int // per-lcore cache size: 0 or 512
	Cores int // lcores running the loop at once
	Get   int // objects per get
	Put   int // objects per put
	Keep  int // objects held before putting them back
}

// Name is the row's name in the report, e.g.
// "cache=512 cores=1 get=32 put=32 keep=128".
func (r Row) Name() string {
	return fmt.Sprintf("cache=%d cores=%d get=%d put=%d keep=%d", r.Cache, r.Cores, r.Get, r.Put, r.Keep)
}

// arg is the row as the C harness takes it: cache,cores,get,put,keep.
func (r Row) arg() string {
	return fmt.Sprintf("%d,%d,%d,%d,%d", r.Cache, r.Cores, r.Get, r.Put, r.Keep)
}

// Check says which rule r breaks for a run on lcores lcores, if any; the C
// harness applies the same rules.
func (r Row) Check(lcores int) error {
	switch {
	case r.Cache != 0 && r.Cache != cacheMax:
		return fmt.Errorf("row %s: cache must be 0 or %d", r.Name(), cacheMax)
	case r.Cores < 1 || r.Cores > lcores:
		return fmt.Errorf("row %s: cores must be 1..%d (the CPUs given)", r.Name(), lcores)
	case r.Keep < 1 || r.Keep > maxKeep:
		return fmt.Errorf("row %s: keep must be 1..%d", r.Name(), maxKeep)
	case r.Get < 1 || r.Keep%r.Get != 0 || r.Put < 1 || r.Keep%r.Put != 0:
		return fmt.Errorf("row %s: get and put must be positive divisors of keep", r.Name())
	}
	return nil
}

// Rows are the comparison's rows: cache 0 and 512, 1 and 2 cores, get and
// put both 1 or both 32, keep 128, in the autotest's order (no cache first).
func Rows() []Row {
	var rows []Row
	for _, cache := range []int{0, cacheMax} {
		for _, cores := range []int{1, 2} {
			for _, bulk := range []int{1, 32} {
				rows = append(rows, Row{Cache: cache, Cores: cores, Get: bulk, Put: bulk, Keep: 128})
			}
		}
	}
	return rows
}

// Harness is what the C harness reported besides the rows.
type Harness struct {
	TimerHz uint64 // rte_get_timer_hz()
	Version string // rte_version()
}

// ParseDPDK reads mempool_perf_autotest lines ("mempool_autotest cache=..
// cores=.. n_get_bulk=.. n_put_bulk=.. n_keep=.. constant_n=0
// rate_persec=..") from the C harness or from dpdk-test itself and returns
// the rates by row. Lines with constant_n=1 (DPDK's compile-time-constant
// replay, which the harness does not run) are skipped, as is everything
// else; timer_hz= and version= lines fill Harness.
func ParseDPDK(out []byte) (map[Row]float64, Harness, error) {
	rates := map[Row]float64{}
	var h Harness
	for n, line := range strings.Split(string(out), "\n") {
		line = strings.TrimSpace(line)
		if v, ok := strings.CutPrefix(line, "timer_hz="); ok {
			hz, err := strconv.ParseUint(v, 10, 64)
			if err != nil {
				return nil, h, fmt.Errorf("mempool harness output line %d: timer_hz %q is not a number", n+1, v)
			}
			h.TimerHz = hz
			continue
		}
		if v, ok := strings.CutPrefix(line, "version="); ok {
			h.Version = v
			continue
		}
		fields := strings.Fields(line)
		if len(fields) == 0 || fields[0] != "mempool_autotest" {
			continue
		}
		kv := map[string]uint64{}
		for _, f := range fields[1:] {
			k, v, ok := strings.Cut(f, "=")
			num, err := strconv.ParseUint(v, 10, 64)
			if !ok || err != nil {
				return nil, h, fmt.Errorf("mempool output line %d: field %q is not key=<unsigned number>", n+1, f)
			}
			kv[k] = num
		}
		for _, k := range []string{"cache", "cores", "n_get_bulk", "n_put_bulk", "n_keep", "constant_n"} {
			if _, ok := kv[k]; !ok {
				return nil, h, fmt.Errorf("mempool output line %d: no %s= in %q", n+1, k, line)
			}
		}
		if kv["constant_n"] != 0 {
			continue
		}
		rate, ok := kv["rate_persec"]
		if !ok {
			return nil, h, fmt.Errorf("mempool output line %d: row has no rate_persec= (did the run fail?): %q", n+1, line)
		}
		row := Row{Cache: int(kv["cache"]), Cores: int(kv["cores"]), Get: int(kv["n_get_bulk"]), Put: int(kv["n_put_bulk"]), Keep: int(kv["n_keep"])}
		if _, dup := rates[row]; dup {
			return nil, h, fmt.Errorf("mempool output line %d: row %s appears twice", n+1, row.Name())
		}
		rates[row] = float64(rate)
	}
	if len(rates) == 0 {
		return nil, h, fmt.Errorf("mempool output has no rows with a rate_persec")
	}
	return rates, h, nil
}

// HarnessArgs are the harness's arguments after the EAL's "--".
func HarnessArgs(seconds float64, rows []Row) []string {
	args := []string{"-d", strconv.FormatFloat(seconds, 'f', -1, 64)}
	for _, r := range rows {
		args = append(args, r.arg())
	}
	return args
}
