package timerlist

import (
	"fmt"
	"math/rand/v2"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The benchmarks follow DPDK's timer_perf_autotest: Manage with no timers
// and with a timer pending but none expired; and, for lists of 100 to
// 100000 timers, per timer: arming stopped timers to expire one second
// from now (each goes to the end of the list: "append"), running their
// callbacks once expired, and arming stopped timers at random times within
// the next second ("reset", inserts anywhere). "move" re-arms pending
// timers at random times, which DPDK's test does not measure.

func BenchmarkManageNoTimers(b *testing.B) {
	l, _ := open(b, 16)
	c := lcore(b, l, 0)
	for b.Loop() {
		c.Manage()
	}
}

func BenchmarkManageNothingExpired(b *testing.B) {
	for _, n := range []int{1, 1000} {
		b.Run(fmt.Sprintf("pending=%d", n), func(b *testing.B) {
			l, _ := open(b, n)
			require.NoError(b, l.Register(1, func(*Lcore, Timer, uint64) {}))
			c := lcore(b, l, 0)
			for range n {
				require.NoError(b, c.Reset(newTimer(b, l, 1, 0), time.Hour+time.Duration(rand.IntN(1e9)), 0, 0))
			}
			for b.Loop() {
				c.Manage()
			}
		})
	}
}

func BenchmarkTimers(b *testing.B) {
	for _, n := range []int{100, 1000, 10000, 100000} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			l, _ := open(b, n)
			now := fakeTime(l, 1)
			require.NoError(b, l.Register(1, func(*Lcore, Timer, uint64) {}))
			c := lcore(b, l, 0)
			timers := make([]Timer, n)
			after := make([]time.Duration, n)
			for i := range timers {
				timers[i] = newTimer(b, l, 1, 0)
				after[i] = time.Duration(rand.IntN(int(time.Second)))
			}
			expire := func() {
				now.Add(int64(2 * time.Second))
				if ran := c.Manage(); ran != n {
					b.Fatalf("Manage ran %d callbacks, want %d", ran, n)
				}
			}
			var appendNs, callbackNs, resetNs, moveNs time.Duration
			for b.Loop() {
				start := time.Now()
				for _, tm := range timers {
					c.Reset(tm, time.Second, 0, 0)
				}
				appendNs += time.Since(start)
				start = time.Now()
				expire()
				callbackNs += time.Since(start)

				start = time.Now()
				for i, tm := range timers {
					c.Reset(tm, after[i], 0, 0)
				}
				resetNs += time.Since(start)
				start = time.Now()
				for i, tm := range timers {
					c.Reset(tm, after[(i+1)%n], 0, 0)
				}
				moveNs += time.Since(start)
				expire()
			}
			per := func(d time.Duration) float64 { return float64(d) / float64(b.N*n) }
			b.ReportMetric(per(appendNs), "ns/append")
			b.ReportMetric(per(callbackNs), "ns/callback")
			b.ReportMetric(per(resetNs), "ns/reset")
			b.ReportMetric(per(moveNs), "ns/move")
		})
	}
}

func BenchmarkStop(b *testing.B) {
	const n = 1000
	l, _ := open(b, n)
	c := lcore(b, l, 0)
	timers := make([]Timer, n)
	for i := range timers {
		timers[i] = newTimer(b, l, 1, 0)
	}
	var stopNs time.Duration
	for b.Loop() {
		for _, tm := range timers {
			c.Reset(tm, time.Hour+time.Duration(rand.IntN(1e9)), 0, 0)
		}
		start := time.Now()
		for _, tm := range timers {
			c.Stop(tm)
		}
		stopNs += time.Since(start)
	}
	b.ReportMetric(float64(stopNs)/float64(b.N*n), "ns/stop")
}
