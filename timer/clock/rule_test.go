package clock

import (
	"errors"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/internal/vmtest"
	"github.com/gopmd/gopmd/timer"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Tolerances for a clock against CLOCK_MONOTONIC, measured over 300 ms in a
// child process: the rate of Cycles/Hz, and Nanos at the end of the
// measurement (which also covers the anchoring done at Select).
const (
	maxRateErrorPPM = 1000 // 0.1 %
	maxOffsetNs     = 1_000_000
)

type selection struct {
	src    string
	index  int
	hz     uint64
	reason string
}

// parseSelected reads a child's "selected" line.
func parseSelected(t *testing.T, line string) selection {
	t.Helper()
	f := strings.SplitN(strings.TrimPrefix(line, "selected "), " ", 4)
	require.Len(t, f, 4, "selected line %q: want source, comparator, hz, reason", line)
	index, err := strconv.Atoi(f[1])
	require.NoError(t, err)
	hz, err := strconv.ParseUint(f[2], 10, 64)
	require.NoError(t, err)
	return selection{f[0], index, hz, f[3]}
}

// expectAgreement reads the child's agreement line and checks it.
func expectAgreement(t *testing.T, c *testproc.Child, what string) {
	t.Helper()
	var ppm float64
	var offset int64
	_, err := fmt.Sscanf(c.Expect("agree "), "agree %g %d", &ppm, &offset)
	require.NoError(t, err)
	t.Logf("%s: %s rate off CLOCK_MONOTONIC by %.1f ppm, Nanos off by %d ns", c.Name(), what, ppm, offset)
	assert.LessOrEqual(t, math.Abs(ppm), float64(maxRateErrorPPM), "%s: %s rate error vs CLOCK_MONOTONIC, ppm", c.Name(), what)
	assert.LessOrEqual(t, math.Abs(float64(offset)), float64(maxOffsetNs), "%s: %s Nanos minus CLOCK_MONOTONIC, ns", c.Name(), what)
}

// checkComparatorRule plays out the rule with processes of one group
// against the HPET si stands in for (nil: the real /dev/hpet), which has
// free comparators for user space:
//
//   - free+2 processes ask for auto, one after the other: the first free
//     get the HPET, the others the TSC, saying which pids hold the HPET;
//   - a process asking for hpet fails, naming the holders;
//   - a holder releases and exits: the next process gets its comparator;
//   - that process is killed: the next one gets the comparator again and
//     drops the dead process's claim.
func checkComparatorRule(t *testing.T, si *standIn, free int) {
	_, opts := createGroup(t)
	spec := func(m Mode) childSpec { return childSpec{Mem: opts, Mode: m, StandIn: si} }

	var holders []*testproc.Child
	var held []int
	for i := range free + 2 {
		c := startChild(t, fmt.Sprintf("auto-%d", i), spec(ModeAuto))
		sel := parseSelected(t, c.Expect("selected "))
		if i < free {
			require.Equal(t, "hpet", sel.src, "process %d of %d with --timer=auto, %d comparators free: source (reason: %s)", i+1, free+2, free, sel.reason)
			assert.NotContains(t, held, sel.index, "comparator %d handed out twice", sel.index)
			holders, held = append(holders, c), append(held, sel.index)
			expectAgreement(t, c, "HPET")
			continue
		}
		require.Equal(t, "tsc", sel.src, "process %d of %d with --timer=auto, %d comparators free: source", i+1, free+2, free)
		assert.Contains(t, sel.reason, "fell back to the TSC")
		assert.Contains(t, sel.reason, "no free HPET comparator")
		assert.Contains(t, sel.reason, "the TSC is not invariant")
		for j, h := range holders {
			assert.Contains(t, sel.reason, fmt.Sprintf("pid %d holds comparator %d", h.Pid(), held[j]), "fallback reason names every holder")
		}
		expectAgreement(t, c, "TSC")
	}

	strict := startChild(t, "hpet", spec(ModeHPET))
	failure := strict.Expect("failed ")
	assert.Contains(t, failure, "--timer=hpet")
	assert.Contains(t, failure, "no free HPET comparator")
	for j, h := range holders {
		assert.Contains(t, failure, fmt.Sprintf("pid %d holds comparator %d", h.Pid(), held[j]), "--timer=hpet error names every holder")
	}

	// A holder lets go: the next process gets its comparator.
	holders[0].Send("release")
	holders[0].Expect("released")
	holders[0].CloseStdin()
	next := startChild(t, "after-release", spec(ModeAuto))
	sel := parseSelected(t, next.Expect("selected "))
	require.Equal(t, "hpet", sel.src, "after a holder released: source (reason: %s)", sel.reason)
	assert.Equal(t, held[0], sel.index, "comparator the released one frees")

	// A holder dies without releasing: the kernel frees its comparator,
	// and the next process drops the dead claim and takes it.
	next.Kill()
	last := startChild(t, "after-kill", spec(ModeAuto))
	last.ExpectContaining("released the HPET claim of a process that is gone", fmt.Sprintf("pid=%d", next.Pid()))
	sel = parseSelected(t, last.Expect("selected "))
	require.Equal(t, "hpet", sel.src, "after a holder was killed: source (reason: %s)", sel.reason)
	assert.Equal(t, held[0], sel.index, "comparator the killed holder had")
}

func TestComparatorRuleWithAStandInHPET(t *testing.T) {
	checkComparatorRule(t, &standIn{Dir: t.TempDir(), Keep: 2, Free: 2}, 2)
}

// countFreeHPET opens /dev/hpet until the kernel refuses and returns how
// many opens it allowed, and the HPET's comparator count.
func countFreeHPET(t *testing.T) (free, comparators int) {
	t.Helper()
	var open []*timer.HPET
	defer func() {
		for _, h := range open {
			h.Close()
		}
	}()
	for {
		h, err := timer.OpenHPET()
		if errors.Is(err, timer.ErrHPETBusy) {
			return len(open), comparators
		}
		require.NoError(t, err)
		open = append(open, h)
		comparators = h.Comparators()
	}
}

// TestComparatorRuleInVM plays out the rule against the real HPET of a
// QEMU guest (3 comparators; the guest kernel keeps 0 and 1).
func TestComparatorRuleInVM(t *testing.T) {
	if !vmtest.InGuest() {
		vmtest.RunInGuest(t, vmtest.Config{HugePages: vmtest.NoHugePages})
		return
	}
	testenv.RequireRoot(t)
	if _, err := os.Stat(timer.HPETPath); err != nil {
		t.Fatalf("the guest has no HPET device: %v", err)
	}
	free, comparators := countFreeHPET(t)
	t.Logf("HPET: %d comparators, %d of them open to user space; invariant TSC: %v", comparators, free, timer.InvariantTSC())
	require.Positive(t, free, "comparators user space may open")
	require.Less(t, free, comparators, "the kernel keeps some comparators for itself")
	checkComparatorRule(t, nil, free)
}
