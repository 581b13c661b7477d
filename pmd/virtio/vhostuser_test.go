package virtio

import (
	"encoding/binary"
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// pair returns our end of a connected socket pair and the back-end's.
func pair(t testing.TB) (*vhostConn, int) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	c, err := newVhostConn(fds[0])
	require.NoError(t, err)
	t.Cleanup(func() { c.close(); unix.Close(fds[1]) })
	return c, fds[1]
}

func reply(req, flags uint32, payload []byte) []byte {
	b := binary.LittleEndian.AppendUint32(nil, req)
	b = binary.LittleEndian.AppendUint32(b, flags)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(payload)))
	return append(b, payload...)
}

func TestVhostRepliesAreChecked(t *testing.T) {
	for _, c := range []struct {
		name  string
		bytes []byte
		want  string
	}{
		{"another request", reply(vhostGetProtocolFeatures, vhostVersion|vhostFlagReply, u64(1)), "answered GET_PROTOCOL_FEATURES"},
		{"not a reply", reply(vhostGetFeatures, vhostVersion, u64(1)), "flags 0x1"},
		{"version 2", reply(vhostGetFeatures, 2|vhostFlagReply, u64(1)), "flags 0x6"},
		{"short payload", reply(vhostGetFeatures, vhostVersion|vhostFlagReply, []byte{1, 2, 3}), "answer of 3 bytes, want 8"},
		{"huge payload", reply(vhostGetFeatures, vhostVersion|vhostFlagReply, make([]byte, 5000)), "more than 4096"},
		{"hang-up", nil, "disconnected"},
	} {
		t.Run(c.name, func(t *testing.T) {
			conn, backend := pair(t)
			unix.Write(backend, c.bytes)
			unix.Shutdown(backend, unix.SHUT_WR)
			_, err := conn.getU64(vhostGetFeatures)
			require.Error(t, err)
			assert.Contains(t, err.Error(), c.want)
			assert.True(t, errors.Is(err, errBackendGone), "a malformed reply ends the session: %v", err)
		})
	}
}

func TestVhostReplyAckReportsRefusal(t *testing.T) {
	conn, backend := pair(t)
	conn.replyAck = true
	unix.Write(backend, reply(vhostSetOwner, vhostVersion|vhostFlagReply, u64(1)))
	err := conn.do(vhostSetOwner, nil)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "refused it (status 1)")
	// and the request went out with NEED_REPLY
	buf := make([]byte, 64)
	n, _ := unix.Read(backend, buf)
	require.Equal(t, vhostHeaderSize, n)
	assert.Equal(t, uint32(vhostVersion|vhostFlagNeedAck), binary.LittleEndian.Uint32(buf[4:]))
}

func TestMemTableRefusesTooManySegments(t *testing.T) {
	conn, _ := pair(t)
	err := conn.setMemTable(make([]region, 9))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "at most 8")
}

// FuzzVhostReply feeds the reply reader whatever a back-end might send:
// it returns a payload or an error, and never panics or reads past what
// it was sent.
func FuzzVhostReply(f *testing.F) {
	f.Add(reply(vhostGetFeatures, vhostVersion|vhostFlagReply, u64(1<<32)))
	f.Add(reply(vhostGetVringBase, vhostVersion|vhostFlagReply, vringState(3, 7)))
	f.Add([]byte{1, 0, 0, 0})
	f.Add(reply(vhostGetFeatures, vhostVersion|vhostFlagReply, make([]byte, 4096)))
	f.Fuzz(func(t *testing.T, b []byte) {
		conn, backend := pair(t)
		go func() {
			unix.Write(backend, b)
			unix.Shutdown(backend, unix.SHUT_WR)
		}()
		if p, err := conn.getVringBase(3); err == nil {
			_ = p
		}
	})
}
