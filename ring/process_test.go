package ring

import (
	"fmt"
	"os"
	"runtime"
	"strconv"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/stretchr/testify/require"
)

// TestRingsCrossProcesses starts a second process that joins the group,
// looks up two rings and moves every entry from one to the other while this
// process fills the first and drains the second. Both processes run at once
// on small rings, so the indices wrap many times under real concurrency.
func TestRingsCrossProcesses(t *testing.T) {
	n := 200_000
	if testing.Short() {
		n = 20_000
	}
	m, o := testGroup(t)
	ping, err := Create(m, "ping", 64, SPEnq|SCDeq)
	require.NoError(t, err)
	pong, err := Create(m, "pong", 32, ExactSize)
	require.NoError(t, err)

	cmd := testproc.Command(t, testproc.Config{Run: "^TestRingHelperProcess$", Env: []string{
		"GOPMD_RING_HELPER=1",
		"GOPMD_RING_PREFIX=" + o.Prefix,
		"GOPMD_RING_DIR=" + o.RuntimeDir,
		"GOPMD_RING_N=" + strconv.Itoa(n)}})
	out := &lockedBuffer{}
	cmd.Stdout, cmd.Stderr = out, out
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()

	deadline := time.Now().Add(60 * time.Second)
	sent, want := 0, 0
	buf := make([]uint64, 16)
	for want < n {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("timed out: sent %d, received %d of %d; helper said:\n%s", sent, want, n, out)
		}
		if sent < n {
			k := min(len(buf), n-sent)
			sent += int(ping.SPEnqueueBurst(seq(sent, k)))
		}
		got := pong.MCDequeueBurst(buf)
		for _, v := range buf[:got] {
			if v != uint64(want) {
				t.Fatalf("received %d, want %d (in order)", v, want)
			}
			want++
		}
		if got == 0 {
			runtime.Gosched()
		}
		select {
		case err := <-exited:
			if want < n && pong.Count() == 0 {
				t.Fatalf("helper exited early (%v) after %d of %d entries:\n%s", err, want, n, out)
			}
			exited <- err
		default:
		}
	}
	require.NoError(t, <-exited, "helper output:\n%s", out)
	require.Zero(t, ping.Count())
	require.Zero(t, pong.Count())
}

// TestRingHelperProcess is the second process of TestRingsCrossProcesses.
func TestRingHelperProcess(t *testing.T) {
	if os.Getenv("GOPMD_RING_HELPER") != "1" {
		t.Skip("runs only as the helper of TestRingsCrossProcesses")
	}
	n, err := strconv.Atoi(os.Getenv("GOPMD_RING_N"))
	require.NoError(t, err)
	m, err := hugemem.Attach(hugemem.Options{
		Prefix:     os.Getenv("GOPMD_RING_PREFIX"),
		NoHuge:     true,
		RuntimeDir: os.Getenv("GOPMD_RING_DIR"),
	})
	require.NoError(t, err)
	defer m.Close()
	ping, err := Lookup(m, "ping")
	require.NoError(t, err)
	pong, err := Lookup(m, "pong")
	require.NoError(t, err)
	buf := make([]uint64, 8)
	deadline := time.Now().Add(60 * time.Second)
	for moved := 0; moved < n; {
		if time.Now().After(deadline) {
			t.Fatalf("helper timed out after moving %d of %d", moved, n)
		}
		got := ping.DequeueBurst(buf) // SC: this process is ping's only consumer
		for i := uint32(0); i < got; {
			i += pong.MPEnqueueBurst(buf[i:got])
		}
		moved += int(got)
		if got == 0 {
			runtime.Gosched()
		}
	}
	fmt.Println("helper moved", n)
}
