// Package benchtest holds what the tests of the benchmark packages share:
// an lcore launcher to run a measurement on, closed at the test's cleanup.
package benchtest

import (
	"testing"

	"github.com/gopmd/gopmd/eal"
)

// Launcher runs lcores 0 to n-1 on the CPUs of the same numbers, with
// lcore 0 as the main lcore.
func Launcher(tb testing.TB, n int) *eal.Launcher {
	tb.Helper()
	var lcores []eal.Lcore
	for i := range n {
		lcores = append(lcores, eal.Lcore{ID: i, CPUs: []int{i}})
	}
	l, err := eal.NewLauncher(lcores, 0)
	if err != nil {
		tb.Fatalf("benchtest: launcher of %d lcores: %v", n, err)
	}
	tb.Cleanup(func() { l.Close() })
	return l
}
