// Package compare turns paired DPDK and gopmd measurements into vsdpdk's
// report: one row per test with both values and gopmd's speedup, then the
// geometric mean of the speedups.
//
// A Table is built by the caller, filled with Add, and printed once with
// Write; it holds plain values and nothing to release.
package compare

import (
	"fmt"
	"io"
	"math"
	"strconv"
)

// Unit says how a measurement reads and which direction is better.
type Unit struct {
	Name          string // e.g. "TSC cycles per iteration"
	LowerIsBetter bool   // cycles: lower is better; rates: higher is better
	Decimals      int    // digits after the point when printing values
}

// Cycles is ring_perf_autotest's unit, printed like DPDK prints it (%.2f).
var Cycles = Unit{Name: "TSC cycles per enqueue+dequeue iteration (lower is better)", LowerIsBetter: true, Decimals: 2}

// Rate is mempool_perf_autotest's rate_persec, printed as an integer.
var Rate = Unit{Name: "objects per second, rate_persec (higher is better)", Decimals: 0}

// Row is one test measured on both sides, in the table's unit.
type Row struct {
	Name  string
	DPDK  float64
	Gopmd float64
}

// Speedup is how many times faster gopmd is than DPDK in unit u: above 1
// means gopmd is faster. Both values must be positive and finite.
func (u Unit) Speedup(r Row) (float64, error) {
	for _, v := range []struct {
		side string
		val  float64
	}{{"dpdk", r.DPDK}, {"gopmd", r.Gopmd}} {
		if !(v.val > 0) || math.IsInf(v.val, 0) {
			return 0, fmt.Errorf("row %q: %s value is %v, want a positive finite number", r.Name, v.side, v.val)
		}
	}
	if u.LowerIsBetter {
		return r.DPDK / r.Gopmd, nil
	}
	return r.Gopmd / r.DPDK, nil
}

// Geomean is the geometric mean of xs, which must be non-empty and positive.
func Geomean(xs []float64) (float64, error) {
	if len(xs) == 0 {
		return 0, fmt.Errorf("geometric mean of no values")
	}
	var sumLog float64
	for i, x := range xs {
		if !(x > 0) || math.IsInf(x, 0) {
			return 0, fmt.Errorf("geometric mean: value %d is %v, want a positive finite number", i, x)
		}
		sumLog += math.Log(x)
	}
	return math.Exp(sumLog / float64(len(xs))), nil
}

// Table collects rows of one unit.
type Table struct {
	Unit Unit
	Rows []Row
}

// Add appends a row.
func (t *Table) Add(name string, dpdk, gopmd float64) {
	t.Rows = append(t.Rows, Row{Name: name, DPDK: dpdk, Gopmd: gopmd})
}

// Write prints one line per row,
//
//	<name>\tdpdk=<value>\tgopmd=<value>\tspeedup=<x>
//
// and then "geomean\tspeedup=<x>". It writes nothing when a row cannot be
// compared (a value that is not positive) and says which row in the error.
func (t *Table) Write(w io.Writer) error {
	speedups := make([]float64, len(t.Rows))
	for i, r := range t.Rows {
		s, err := t.Unit.Speedup(r)
		if err != nil {
			return err
		}
		speedups[i] = s
	}
	g, err := Geomean(speedups)
	if err != nil {
		return err
	}
	for i, r := range t.Rows {
		if _, err := fmt.Fprintf(w, "%s\tdpdk=%s\tgopmd=%s\tspeedup=%s\n", r.Name,
			t.Unit.format(r.DPDK), t.Unit.format(r.Gopmd), formatSpeedup(speedups[i])); err != nil {
			return err
		}
	}
	_, err = fmt.Fprintf(w, "geomean\tspeedup=%s\n", formatSpeedup(g))
	return err
}

func (u Unit) format(v float64) string { return strconv.FormatFloat(v, 'f', u.Decimals, 64) }

func formatSpeedup(s float64) string { return strconv.FormatFloat(s, 'f', 3, 64) }
