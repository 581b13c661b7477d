package timerlist

import (
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/gopmd/gopmd/timer/clock"
	"github.com/stretchr/testify/require"
)

func testGroup(t testing.TB) hugemem.Options {
	o := testmem.Options(t, "tl")
	o.Limit, o.SegmentSize = 256<<20, 32<<20
	return o
}

// open creates a group and its timer lists with n timers, on the TSC.
func open(t testing.TB, n int) (*Lists, hugemem.Options) {
	t.Helper()
	o := testGroup(t)
	mem := testmem.Create(t, o)
	clk, release, err := clock.Select(mem, clock.ModeTSC)
	require.NoError(t, err)
	t.Cleanup(func() { release() })
	l, err := Open(mem, clk, Config{Timers: n})
	require.NoError(t, err)
	return l, o
}

// fakeTime makes l's clock stand still until the test moves it.
func fakeTime(l *Lists, start int64) *atomic.Int64 {
	var now atomic.Int64
	now.Store(start)
	l.nowFn = now.Load
	return &now
}

func lcore(t testing.TB, l *Lists, id int) *Lcore {
	t.Helper()
	c, err := l.Lcore(id)
	require.NoError(t, err)
	return c
}

func newTimer(t testing.TB, l *Lists, cb CallbackID, arg uint64) Timer {
	t.Helper()
	tm, err := l.New(cb, arg)
	require.NoError(t, err)
	return tm
}

// checkLists verifies every list's structure: each level is ordered by
// (Expire, Seq) and a sub-sequence of the level below, the counts and the
// published first expiry are right, and every timer on lcore i's list is
// pending there and says so in Linked.
func checkLists(t testing.TB, l *Lists) (pending int) {
	t.Helper()
	for i := range l.lists {
		h := &l.lists[i]
		var level0 []uint32
		for n := h.Head[0]; n != 0; n = l.recs[n-1].Next[0] {
			level0 = append(level0, n)
			require.LessOrEqual(t, len(level0), len(l.recs), "lcore %d: level 0 has a cycle", i)
		}
		require.Equal(t, int(h.Count), len(level0), "lcore %d: Count vs timers on level 0", i)
		wantNext := int64(math.MaxInt64)
		if len(level0) > 0 {
			wantNext = l.recs[level0[0]-1].Expire
		}
		require.Equal(t, wantNext, h.NextExpire, "lcore %d: NextExpire", i)
		pos := map[uint32]int{}
		for k, n := range level0 {
			pos[n] = k
			r := &l.recs[n-1]
			if k > 0 {
				require.True(t, less(&l.recs[level0[k-1]-1], r), "lcore %d: level 0 out of order at %d", i, k)
			}
			s := r.Status
			require.Equal(t, statePending, stateOf(s), "lcore %d: state of timer %d on the list", i, n-1)
			require.Equal(t, i, lcoreOf(s), "lcore %d: lcore in the status of timer %d", i, n-1)
			require.Equal(t, uint32(i+1), r.Linked, "lcore %d: Linked of timer %d", i, n-1)
		}
		for lv := 1; lv < levels; lv++ {
			last := -1
			for n := h.Head[lv]; n != 0; n = l.recs[n-1].Next[lv] {
				k, ok := pos[n]
				require.True(t, ok, "lcore %d: level %d links timer %d, which level 0 lacks", i, lv, n-1)
				require.Greater(t, k, last, "lcore %d: level %d out of order", i, lv)
				last = k
			}
		}
		pending += len(level0)
	}
	return pending
}

// childSpec is what the parent tells a child, a process of its own: this
// test binary again (see TestMain).
type childSpec struct {
	Role   string
	Mem    hugemem.Options
	Timers []Timer
	Lcores []int
	Millis int
	Clock  clock.Mode
}

func startChild(t *testing.T, spec childSpec) *testproc.Child {
	t.Helper()
	return testproc.Start(t, testproc.Config{Name: spec.Role, Spec: spec})
}

// childRoles are what a child does once it has opened the timer lists.
var childRoles = map[string]func(l *Lists, spec childSpec) int{
	// arm resets each timer to expire in Millis on the lcores given, in
	// turn, and stops every third one again. It prints "armed" and, for
	// each timer, the times (Lists.Now) just before and just after its
	// Reset, as "before:after": Reset reads the clock in between, and the
	// process may be descheduled anywhere in the loop.
	"arm": func(l *Lists, spec childSpec) int {
		anyc, _ := l.Lcore(AnyLcore)
		windows := make([]string, len(spec.Timers))
		for i, tm := range spec.Timers {
			on := spec.Lcores[i%len(spec.Lcores)]
			before := l.Now()
			if err := anyc.Reset(tm, time.Duration(spec.Millis)*time.Millisecond, 0, on); err != nil {
				fmt.Println("error: reset:", err)
				return 1
			}
			windows[i] = fmt.Sprintf("%d:%d", before, l.Now())
			if i%3 == 2 {
				if err := anyc.StopSync(tm); err != nil {
					fmt.Println("error: stop:", err)
					return 1
				}
			}
		}
		fmt.Println("armed", strings.Join(windows, " "))
		return 0
	},
	// race resets and stops the timers at random for Millis.
	"race": func(l *Lists, spec childSpec) int {
		anyc, _ := l.Lcore(AnyLcore)
		var ok, busy int
		for end := time.Now().Add(time.Duration(spec.Millis) * time.Millisecond); time.Now().Before(end); {
			tm := spec.Timers[rand.IntN(len(spec.Timers))]
			var err error
			switch rand.IntN(4) {
			case 0:
				err = anyc.Stop(tm)
			case 1:
				err = anyc.StopSync(tm)
			case 2:
				err = anyc.ResetSync(tm, time.Duration(rand.IntN(5))*time.Microsecond, 0, spec.Lcores[rand.IntN(len(spec.Lcores))])
			default:
				err = anyc.Reset(tm, time.Duration(rand.IntN(5))*time.Microsecond, time.Duration(rand.IntN(2))*5*time.Microsecond, spec.Lcores[rand.IntN(len(spec.Lcores))])
			}
			switch err {
			case nil:
				ok++
			case ErrBusy:
				busy++
			default:
				fmt.Println("error:", err)
				return 1
			}
		}
		fmt.Println("done", ok, busy)
		return 0
	},
	// own creates Millis timers, arms them on the lcores given, prints
	// "own <count>" and waits to be killed.
	"own": func(l *Lists, spec childSpec) int {
		anyc, _ := l.Lcore(AnyLcore)
		for i := range spec.Millis {
			tm, err := l.New(1, uint64(i))
			if err != nil {
				fmt.Println("error:", err)
				return 1
			}
			if i%2 == 0 {
				anyc.Reset(tm, time.Hour, 0, spec.Lcores[i%len(spec.Lcores)])
			}
		}
		fmt.Println("own", spec.Millis)
		io.Copy(io.Discard, os.Stdin)
		return 0
	},
}

func runChild(spec childSpec) int {
	mem, err := hugemem.Attach(spec.Mem)
	if err != nil {
		fmt.Println("error: attach:", err)
		return 2
	}
	defer mem.Close()
	clk, release, err := clock.Select(mem, spec.Clock)
	if err != nil {
		fmt.Println("error: clock:", err)
		return 2
	}
	defer release()
	fmt.Println("clock", clk.Source())
	l, err := Open(mem, clk, Config{})
	if err != nil {
		fmt.Println("error: open:", err)
		return 2
	}
	return childRoles[spec.Role](l, spec)
}

func TestMain(m *testing.M) {
	// Each group's clock logs its choice at info level: not news here.
	slog.SetLogLoggerLevel(slog.LevelWarn)
	var spec childSpec
	if testproc.IsChild(&spec) {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}
