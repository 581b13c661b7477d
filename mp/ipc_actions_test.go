package mp

import (
	"os"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mp/ipc"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

func startIn(t *testing.T, typ ProcType, g hugemem.Options, id int) *Process {
	t.Helper()
	p, err := Start(Config{Type: typ, Memory: g, Lcores: lcore(id, 0)})
	require.NoError(t, err)
	t.Cleanup(func() { p.Close() })
	return p
}

func TestEventsFromAnyoneButThePrimaryAreRefused(t *testing.T) {
	g := testGroup(t)
	primary := startIn(t, Primary, g, 0)
	victim := startIn(t, Secondary, g, 1)
	forger := startIn(t, Secondary, g, 2)
	ch, err := victim.Subscribe()
	require.NoError(t, err)

	forged, err := encodeEvent(Event{Name: "link", Data: []byte{0xba, 0xd}})
	require.NoError(t, err)
	require.NoError(t, forger.IPC().Send(victim.IPC().Name(), ipc.Message{Action: actionEvent, Payload: forged}))
	require.NoError(t, primary.Publish(Event{Name: "link", Data: []byte{1}}))

	select {
	case ev := <-ch:
		require.Equal(t, Event{Name: "link", Data: []byte{1}}, ev, "the first event delivered is the primary's, not the forged one")
	case <-time.After(5 * time.Second):
		t.Fatal("the primary's event did not arrive")
	}
	require.Equal(t, uint64(1), victim.ev.forged.Load(), "forged events counted")

	_, err = forger.IPC().Request(ipc.PrimarySocket, ipc.Message{Action: actionEvent, Payload: forged}, time.Now().Add(2*time.Second))
	require.ErrorContains(t, err, "no handler", "the primary takes no events")
}

func openFDs(t *testing.T) int {
	ents, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(ents)
}

func TestHandlersCloseDescriptorsTheyAreSent(t *testing.T) {
	g := testGroup(t)
	primary := startIn(t, Primary, g, 0)
	sec := startIn(t, Secondary, g, 1)
	_ = primary
	efd, err := unix.Eventfd(0, unix.EFD_CLOEXEC)
	require.NoError(t, err)
	defer unix.Close(efd)
	payload, err := encodeEvent(Event{Name: "x"})
	require.NoError(t, err)
	sync := func() { // handlers run in order: once a request is answered, earlier messages were handled
		_, err := sec.IPC().Request(ipc.PrimarySocket, ipc.Message{Action: actionSubscribe}, time.Now().Add(2*time.Second))
		require.NoError(t, err)
		_, err = primary.IPC().Request(sec.IPC().Name(), ipc.Message{Action: "no-such-action"}, time.Now().Add(2*time.Second))
		require.Error(t, err)
	}
	sync()
	before := openFDs(t)
	for range 20 {
		require.NoError(t, sec.IPC().Send(ipc.PrimarySocket, ipc.Message{Action: actionSubscribe, FDs: []int{efd}}))
		require.NoError(t, sec.IPC().Send(ipc.PrimarySocket, ipc.Message{Action: actionSegmentFDs, Payload: []byte{0, 0, 0, 0}, FDs: []int{efd}}))
		require.NoError(t, primary.IPC().Send(sec.IPC().Name(), ipc.Message{Action: actionEvent, Payload: payload, FDs: []int{efd}}))
	}
	sync()
	require.Less(t, openFDs(t)-before, 10, "open descriptors before %d, after %d: handlers leak what they receive", before, openFDs(t))
}

func TestSegmentFDsPageThroughMoreSegmentsThanOneMessageCarries(t *testing.T) {
	g := testGroup(t)
	g.SegmentSize = 1 << 20
	primary := startIn(t, Primary, g, 0)
	sec := startIn(t, Secondary, g, 1)
	for i := range ipc.MaxFDs + 3 {
		_, err := primary.Mem.Reserve(string(rune('a'+i))+"-zone", 1<<20, 0)
		require.NoError(t, err)
	}
	// A segment the secondary adds: the primary must sync before answering.
	_, err := sec.Mem.Reserve("by-secondary", 1<<20, 0)
	require.NoError(t, err)
	want := sec.Mem.Segments()
	require.Greater(t, len(want), ipc.MaxFDs+3)

	got, err := sec.SegmentFDs()
	require.NoError(t, err)
	defer CloseSegmentFDs(got)
	require.Len(t, got, len(want), "every segment, over several messages")
	for i, s := range got {
		require.Equal(t, want[i].Off, s.Off, "segment %d offset", i)
		require.Equal(t, want[i].Len, s.Len, "segment %d length", i)
		var st unix.Stat_t
		require.NoError(t, unix.Fstat(s.FD, &st))
		require.GreaterOrEqual(t, uint64(st.Size), s.Len, "segment %d file size", i)
	}
}

func TestPrimarysSegmentFDsAreDuplicatesTheCallerCloses(t *testing.T) {
	g := testGroup(t)
	primary := startIn(t, Primary, g, 0)
	own := primary.Mem.Segments()
	got, err := primary.SegmentFDs()
	require.NoError(t, err)
	require.Len(t, got, len(own))
	for i, s := range got {
		require.NotEqual(t, own[i].FD, s.FD, "segment %d: the caller gets its own descriptor, not the Memory's", i)
	}
	CloseSegmentFDs(got)
	var st unix.Stat_t
	for i, s := range own {
		require.NoError(t, unix.Fstat(s.FD, &st), "segment %d: the Memory's descriptor survives the caller closing its copy", i)
	}
	_, err = primary.Mem.Reserve("still-works", 64, 0)
	require.NoError(t, err)
}
