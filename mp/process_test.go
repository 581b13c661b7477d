package mp

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

func TestProcTableLayout(t *testing.T) {
	require.Equal(t, uintptr(64), unsafe.Sizeof(procEntry{}))
	require.Equal(t, uintptr(16), unsafe.Offsetof(procTable{}.Procs))
	require.Equal(t, uintptr(16+MaxProcs*64), unsafe.Sizeof(procTable{}))
}

func lcore(id, cpu int) []Lcore { return []Lcore{{ID: id, CPUs: []int{cpu}}} }

func TestSecondPrimaryFailsNamingTheRunningOne(t *testing.T) {
	g := testGroup(t)
	first := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(0, 0)})
	first.Expect("ready primary")

	second := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(1, 1)})
	line := second.Expect("error:")
	require.Contains(t, line, "cannot start a second primary")
	require.Contains(t, line, fmt.Sprintf("pid %d", first.Pid()))
}

func TestSecondaryWithoutPrimaryFailsAndCreatesNothing(t *testing.T) {
	g := testGroup(t)
	c := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	require.Contains(t, c.Expect("error:"), "is its primary running?")
	entries, err := os.ReadDir(g.RuntimeDir)
	require.NoError(t, err)
	require.Empty(t, entries, "a failed secondary leaves no files")
}

func TestAutoBecomesPrimaryThenSecondary(t *testing.T) {
	g := testGroup(t)
	a := startChild(t, childSpec{Role: "hold", Type: Auto, Mem: g, Lcores: lcore(0, 0)})
	a.Expect("ready primary")
	b := startChild(t, childSpec{Role: "hold", Type: Auto, Mem: g, Lcores: lcore(1, 1)})
	b.Expect("ready secondary")
}

func TestSecondaryOnTakenCoreIsRefused(t *testing.T) {
	g := testGroup(t)
	p := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(0, 0)})
	p.Expect("ready primary")

	sameLcore := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(0, 1)})
	require.Contains(t, sameLcore.Expect("error:"), fmt.Sprintf("lcore 0 is held by pid %d (primary)", p.Pid()))

	sameCPU := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(1, 0)})
	sameCPU.Expect("ready secondary")
}

func TestSharingACPUIsAllowedWithAWarning(t *testing.T) {
	var tbl procTable
	first := procEntry{Type: uint32(Primary), PID: int32(os.Getpid())}
	first.StartTime, _ = procStartTime(os.Getpid())
	first.Lcores[0], first.CPUs[0] = 1<<0, 1<<0
	_, warnings, err := tbl.claim(first, nil)
	require.NoError(t, err)
	require.Empty(t, warnings)

	second := first
	second.Type = uint32(Secondary)
	second.Lcores[0] = 1 << 1
	_, warnings, err = tbl.claim(second, nil)
	require.NoError(t, err)
	require.Equal(t, []string{fmt.Sprintf("cpu 0 is also used by pid %d (primary): pollers sharing a CPU take turns and lose throughput", os.Getpid())}, warnings)

	third := first
	third.Type = uint32(Secondary)
	_, _, err = tbl.claim(third, nil)
	require.ErrorIs(t, err, ErrCoreTaken)
	require.ErrorContains(t, err, fmt.Sprintf("lcore 0 is held by pid %d (primary)", os.Getpid()))
}

func TestCoresOfAKilledSecondaryAreReclaimed(t *testing.T) {
	g := testGroup(t)
	p := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(0, 0)})
	p.Expect("ready primary")
	s := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	s.Expect("ready secondary")
	s.Kill()

	again := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	again.Expect("ready secondary")
	leftover, _ := filepath.Glob(filepath.Join(g.RuntimeDir, fmt.Sprintf("mp_socket_%d_*", s.Pid())))
	require.Empty(t, leftover, "the killed secondary's socket file is removed when it is reaped")
}

func TestClosedSecondaryReleasesItsCores(t *testing.T) {
	g := testGroup(t)
	p := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(0, 0)})
	p.Expect("ready primary")
	s := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	s.Expect("ready secondary")
	s.CloseStdin()
	require.NoError(t, s.Wait())

	again := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	again.Expect("ready secondary")
}

func TestSecondaryLearnsThatThePrimaryWasKilled(t *testing.T) {
	g := testGroup(t)
	p := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(0, 0)})
	p.Expect("ready primary")
	s := startChild(t, childSpec{Role: "watch-primary", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	s.Expect("ready secondary")
	p.Kill()
	s.Expect("primary gone")
	require.NoError(t, s.Wait(), "the secondary exits cleanly")
}

func TestNewPrimaryStartsOverAKilledGroupsFiles(t *testing.T) {
	g := testGroup(t)
	p := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(0, 0)})
	p.Expect("ready primary")
	p.Kill()
	require.FileExists(t, filepath.Join(g.RuntimeDir, "config"), "a killed primary leaves its config behind")

	again := startChild(t, childSpec{Role: "hold", Type: Primary, Mem: g, Lcores: lcore(0, 0)})
	again.Expect("ready primary")
	s := startChild(t, childSpec{Role: "hold", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	s.Expect("ready secondary")
}

func TestAProcessKilledHoldingTheGroupLockDoesNotWedgeTheGroup(t *testing.T) {
	g := testGroup(t)
	p, err := Start(Config{Type: Primary, Memory: g, Lcores: lcore(0, 0)})
	require.NoError(t, err)
	defer p.Close()

	s := startChild(t, childSpec{Role: "die-holding-lock", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	s.Expect("locked")
	s.Wait()

	done := make(chan error, 1)
	go func() {
		_, err := p.Mem.Reserve("after-crash", 64, 0)
		done <- err
	}()
	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the group lock stayed wedged after its holder died")
	}
}

func TestGroupsWithDifferentPrefixesNeverSeeEachOther(t *testing.T) {
	a, b := testGroup(t), testGroup(t)
	pa, err := Start(Config{Type: Primary, Memory: a, Lcores: lcore(0, 0)})
	require.NoError(t, err)
	defer pa.Close()
	pb, err := Start(Config{Type: Primary, Memory: b, Lcores: lcore(0, 0)})
	require.NoError(t, err, "the same lcore in another group is fine")
	defer pb.Close()

	_, err = pa.Mem.Reserve("only-in-a", 64, 0)
	require.NoError(t, err)
	_, err = pb.Mem.Lookup("only-in-a")
	require.ErrorIs(t, err, hugemem.ErrNotFound)
}

func TestRuntimeDirectoryIsPrivate(t *testing.T) {
	g := testGroup(t)
	g.RuntimeDir = filepath.Join(t.TempDir(), "rt")
	p, err := Start(Config{Type: Primary, Memory: g, Lcores: lcore(0, 0)})
	require.NoError(t, err)
	defer p.Close()
	st, err := os.Stat(g.RuntimeDir)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o700), st.Mode().Perm())
	entries, err := os.ReadDir(g.RuntimeDir)
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	for _, e := range entries {
		info, err := e.Info()
		require.NoError(t, err)
		if !info.IsDir() && info.Mode()&os.ModeSocket == 0 {
			require.Equal(t, os.FileMode(0o600), info.Mode().Perm(), e.Name())
		}
	}
}

func TestBadLcoresAreRefused(t *testing.T) {
	g := testGroup(t)
	_, err := Start(Config{Type: Primary, Memory: g, Lcores: []Lcore{{ID: 200}}})
	require.ErrorContains(t, err, "lcore id 200 is out of range")
	_, err = Start(Config{Type: Primary, Memory: g, Lcores: []Lcore{{ID: 1}, {ID: 1}}})
	require.ErrorContains(t, err, "lcore id 1 is given twice")
	_, err = Start(Config{Type: 9, Memory: g})
	require.ErrorContains(t, err, "process type 9")
}

func TestSecondariesReceiveThePrimarysEvents(t *testing.T) {
	g := testGroup(t)
	p, err := Start(Config{Type: Primary, Memory: g, Lcores: lcore(0, 0)})
	require.NoError(t, err)
	defer p.Close()
	own, err := p.Subscribe()
	require.NoError(t, err)

	a := startChild(t, childSpec{Role: "events", Type: Secondary, Mem: g, Lcores: lcore(1, 1)})
	a.Expect("subscribed")
	b := startChild(t, childSpec{Role: "events", Type: Secondary, Mem: g, Lcores: lcore(2, 1)})
	b.Expect("subscribed")

	require.NoError(t, p.Publish(Event{Name: "link", Data: []byte{0, 1}}))
	a.Expect("event link [0 1]")
	b.Expect("event link [0 1]")
	require.Equal(t, Event{Name: "link", Data: []byte{0, 1}}, <-own)

	b.Kill()
	require.NoError(t, p.Publish(Event{Name: "link", Data: []byte{0, 0}}), "a dead subscriber is dropped, not an error")
	a.Expect("event link [0 0]")

	_, err = Start(Config{Type: Secondary, Memory: g, Lcores: lcore(3, 1)})
	require.NoError(t, err)
	require.ErrorContains(t, p.Publish(Event{Name: "", Data: nil}), "does not fit")
}

func init() {
	childRoles["events"] = func(p *Process, _ []string) int {
		ch, err := p.Subscribe()
		if err != nil {
			fmt.Println("error:", err)
			return 1
		}
		fmt.Println("subscribed")
		for {
			select {
			case ev := <-ch:
				fmt.Printf("event %s %v\n", ev.Name, ev.Data)
			case <-time.After(20 * time.Second):
				return 0
			}
		}
	}
}
