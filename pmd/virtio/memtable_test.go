package virtio

import (
	"encoding/binary"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// A segment another process of the group adds (a secondary creating a
// pool, say) reaches the vhost-user back-end in a new memory table, though
// the primary itself never took the group lock since.
func TestSegmentAddedByAnotherProcessReachesTheBackend(t *testing.T) {
	o := testmem.Options(t, "viomt")
	o.SegmentSize = 8 << 20
	mem, err := hugemem.Create(o)
	require.NoError(t, err)
	t.Cleanup(func() { mem.Close() })
	other, err := hugemem.Attach(o) // the other process: a second member in this one
	require.NoError(t, err)
	t.Cleanup(func() { other.Close() })

	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	backend := fds[1]
	t.Cleanup(func() { unix.Close(backend) })
	conn, err := newVhostConn(fds[0])
	require.NoError(t, err)
	u := &userTransport{dev: &device{mem: mem}, conn: conn, started: true, listenFD: -1,
		sentSegs: len(mem.Segments()), stopCh: make(chan struct{}), done: make(chan struct{})}
	go u.monitor()
	t.Cleanup(func() { u.close() })

	_, err = other.Reserve("big", 12<<20, 0)
	require.NoError(t, err)
	added := other.Segments()
	require.Greater(t, len(added), u.sentSegs, "the other process added segments")

	tv := unix.NsecToTimeval((5 * time.Second).Nanoseconds())
	require.NoError(t, unix.SetsockoptTimeval(backend, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv))
	msg := make([]byte, vhostHeaderSize+8+vhostMaxRegions*32)
	oob := make([]byte, unix.CmsgSpace(4*vhostMaxRegions))
	n, oobn, _, _, err := unix.Recvmsg(backend, msg, oob, unix.MSG_WAITALL)
	require.NoError(t, err, "no memory table reached the back-end")
	require.Equal(t, len(msg), n)
	require.Equal(t, uint32(vhostSetMemTable), binary.LittleEndian.Uint32(msg))
	cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	require.NoError(t, err)
	var got []int
	for _, c := range cmsgs {
		rights, err := unix.ParseUnixRights(&c)
		require.NoError(t, err)
		got = append(got, rights...)
	}
	for _, fd := range got {
		unix.Close(fd)
	}
	p := msg[vhostHeaderSize:]
	require.Equal(t, uint32(len(added)), binary.LittleEndian.Uint32(p), "regions in the table")
	require.Len(t, got, len(added), "descriptors with the table")
	for i, s := range added {
		r := p[8+32*i:]
		require.Equal(t, userAddrBase+s.Off, binary.LittleEndian.Uint64(r), "region %d guest address", i)
		require.Equal(t, s.Len, binary.LittleEndian.Uint64(r[8:]), "region %d size", i)
	}
}
