package ringperf

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// sectionPrefix maps the autotest's section headings to row-name prefixes.
// An empty prefix marks a section without cycle counts (the all-lcores test
// prints operation counts).
var sectionPrefix = map[string]string{
	"Testing single element enq/deq":   "single-core",
	"Testing burst enq/deq":            "single-core",
	"Testing bulk enq/deq":             "single-core",
	"Testing empty bulk deq":           "empty",
	"Testing using two hyperthreads":   "two-hyperthread",
	"Testing using two physical cores": "two-core",
	"Testing using two NUMA nodes":     "two-socket",
	"Testing using all worker nodes":   "",
}

var (
	sectionLine = regexp.MustCompile(`^### (.*) ###$`)
	legacyLine  = regexp.MustCompile(`^legacy APIs: (SP/SC|MP/MC): (single|burst|bulk)(?: \(size: (\d+)\))?: (\S+)$`)
)

// ParseDPDK reads the output of dpdk-test's ring_perf_autotest and returns
// the cycles of every legacy-API row, by row name (the names Tests uses).
// Rows of the elem APIs and the all-lcores counts are ignored. It fails if
// the autotest did not end with "Test OK", or a legacy row is malformed,
// repeated or outside a known section.
func ParseDPDK(out []byte) (map[string]float64, error) {
	rows := map[string]float64{}
	section, prefix := "", ""
	ok := false
	sc := bufio.NewScanner(bytes.NewReader(out))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if m := sectionLine.FindStringSubmatch(line); m != nil {
			p, known := sectionPrefix[m[1]]
			section, prefix = m[1], p
			if !known {
				section, prefix = m[1], "?"
			}
			continue
		}
		if strings.HasSuffix(line, "Test OK") {
			ok = true
		}
		if strings.HasSuffix(line, "Test Failed") {
			return nil, fmt.Errorf("ring_perf_autotest output line %d: the autotest failed", n)
		}
		if !strings.HasPrefix(line, "legacy APIs:") {
			continue
		}
		m := legacyLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("ring_perf_autotest output line %d: %q is not \"legacy APIs: SP/SC|MP/MC: single|burst (size: N)|bulk (size: N): <cycles>\"", n, line)
		}
		switch {
		case section == "":
			return nil, fmt.Errorf("ring_perf_autotest output line %d: row %q comes before any ### section ###", n, line)
		case prefix == "?":
			return nil, fmt.Errorf("ring_perf_autotest output line %d: row %q is in unknown section %q", n, line, section)
		case prefix == "":
			return nil, fmt.Errorf("ring_perf_autotest output line %d: row %q is in section %q, which has no cycle rows", n, line, section)
		}
		s := SPSC
		if m[1] == "MP/MC" {
			s = MPMC
		}
		op := map[string]Op{"single": Single, "burst": Burst, "bulk": Bulk}[m[2]]
		size := 1
		if (op == Single) != (m[3] == "") {
			return nil, fmt.Errorf("ring_perf_autotest output line %d: %q: single rows have no size, burst and bulk rows have one", n, line)
		}
		if m[3] != "" {
			size, _ = strconv.Atoi(m[3])
		}
		v, err := strconv.ParseFloat(m[4], 64)
		if err != nil {
			return nil, fmt.Errorf("ring_perf_autotest output line %d: cycles %q are not a number", n, m[4])
		}
		name := rowName(prefix, s, op, size)
		if _, dup := rows[name]; dup {
			return nil, fmt.Errorf("ring_perf_autotest output line %d: row %q appears twice", n, name)
		}
		rows[name] = v
	}
	if !ok {
		return nil, fmt.Errorf("ring_perf_autotest output does not end with \"Test OK\": the autotest did not finish")
	}
	if len(rows) == 0 {
		return nil, fmt.Errorf("ring_perf_autotest output has no legacy APIs rows")
	}
	return rows, nil
}
