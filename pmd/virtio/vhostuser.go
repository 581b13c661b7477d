package virtio

import (
	"encoding/binary"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// The vhost-user protocol, front-end side (QEMU's docs/interop/vhost-user.rst):
// little-endian messages on a unix stream socket, a 12-byte header (request,
// flags, payload size) and a payload; file descriptors ride along as
// SCM_RIGHTS.

// vhost-user requests.
const (
	vhostGetFeatures         = 1
	vhostSetFeatures         = 2
	vhostSetOwner            = 3
	vhostSetMemTable         = 5
	vhostSetVringNum         = 8
	vhostSetVringAddr        = 9
	vhostSetVringBase        = 10
	vhostGetVringBase        = 11
	vhostSetVringKick        = 12
	vhostSetVringCall        = 13
	vhostGetProtocolFeatures = 15
	vhostSetProtocolFeatures = 16
	vhostGetQueueNum         = 17
	vhostSetVringEnable      = 18
)

var vhostRequestNames = map[uint32]string{
	vhostGetFeatures: "GET_FEATURES", vhostSetFeatures: "SET_FEATURES", vhostSetOwner: "SET_OWNER",
	vhostSetMemTable: "SET_MEM_TABLE", vhostSetVringNum: "SET_VRING_NUM", vhostSetVringAddr: "SET_VRING_ADDR",
	vhostSetVringBase: "SET_VRING_BASE", vhostGetVringBase: "GET_VRING_BASE", vhostSetVringKick: "SET_VRING_KICK",
	vhostSetVringCall: "SET_VRING_CALL", vhostGetProtocolFeatures: "GET_PROTOCOL_FEATURES",
	vhostSetProtocolFeatures: "SET_PROTOCOL_FEATURES", vhostGetQueueNum: "GET_QUEUE_NUM",
	vhostSetVringEnable: "SET_VRING_ENABLE",
}

// Header flags and limits.
const (
	vhostVersion     = 0x1
	vhostFlagReply   = 1 << 2
	vhostFlagNeedAck = 1 << 3
	vhostHeaderSize  = 12
	vhostMaxPayload  = 4096 // nothing we receive is larger
	// vhostMaxRegions is VHOST_MEMORY_MAX_NREGIONS: a SET_MEM_TABLE carries
	// at most 8 regions (and fds).
	vhostMaxRegions = 8
	// vhostNoFD in a vring index says no descriptor rides along.
	vhostNoFD = 1 << 8
)

// Protocol features (VHOST_USER_PROTOCOL_F_*) we use.
const (
	protoMQ       = 0 // GET_QUEUE_NUM
	protoReplyAck = 3 // NEED_REPLY on any request
)

// featProtocolFeatures is VHOST_USER_F_PROTOCOL_FEATURES, a device feature
// bit that only vhost-user knows: the back-end speaks the protocol feature
// messages, and rings start disabled until SET_VRING_ENABLE.
const featProtocolFeatures = 30

// vhostTimeout bounds every exchange with the back-end.
const vhostTimeout = 5 * time.Second

// errBackendGone wraps failures that mean the connection is over.
var errBackendGone = errors.New("vhost-user back-end disconnected")

// vhostConn is a connected vhost-user socket.
type vhostConn struct {
	fd       int
	replyAck bool // REPLY_ACK negotiated: ask for an answer to every request
}

// region is one entry of VHOST_USER_SET_MEM_TABLE.
type region struct {
	GuestAddr uint64 // what descriptors and ring addresses say
	Size      uint64
	UserAddr  uint64 // the front-end's "virtual address" of the region, for ring addresses; we make it the guest address
	MmapOff   uint64 // offset of the region in the fd
	FD        int
}

func dialVhost(path string) (*vhostConn, error) {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("vhost-user socket: %w", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vhost-user connect %s: %w", path, err)
	}
	return newVhostConn(fd)
}

func newVhostConn(fd int) (*vhostConn, error) {
	tv := unix.NsecToTimeval(vhostTimeout.Nanoseconds())
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vhost-user socket timeout: %w", err)
	}
	if err := unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &tv); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("vhost-user socket timeout: %w", err)
	}
	return &vhostConn{fd: fd}, nil
}

func (c *vhostConn) close() {
	if c != nil && c.fd >= 0 {
		unix.Close(c.fd)
		c.fd = -1
	}
}

// hungUp reports, without blocking, whether the back-end closed its end.
func (c *vhostConn) hungUp() bool {
	fds := []unix.PollFd{{Fd: int32(c.fd), Events: unix.POLLRDHUP}}
	n, err := unix.Poll(fds, 0)
	if err != nil {
		return !errors.Is(err, unix.EINTR)
	}
	return n > 0 && fds[0].Revents&(unix.POLLRDHUP|unix.POLLHUP|unix.POLLERR|unix.POLLNVAL) != 0
}

func requestName(req uint32) string {
	if n, ok := vhostRequestNames[req]; ok {
		return n
	}
	return fmt.Sprintf("request %d", req)
}

// send writes one message.
func (c *vhostConn) send(req, flags uint32, payload []byte, fds []int) error {
	msg := make([]byte, vhostHeaderSize+len(payload))
	binary.LittleEndian.PutUint32(msg[0:], req)
	binary.LittleEndian.PutUint32(msg[4:], vhostVersion|flags)
	binary.LittleEndian.PutUint32(msg[8:], uint32(len(payload)))
	copy(msg[vhostHeaderSize:], payload)
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	n, err := unix.SendmsgN(c.fd, msg, oob, nil, unix.MSG_NOSIGNAL)
	if err != nil {
		return fmt.Errorf("vhost-user %s: send: %w (%w)", requestName(req), err, errBackendGone)
	}
	if n != len(msg) {
		return fmt.Errorf("vhost-user %s: sent %d of %d bytes (%w)", requestName(req), n, len(msg), errBackendGone)
	}
	return nil
}

// recvReply reads the answer to req: a header flagged as a reply to the
// same request and its payload. Descriptors are not expected and closed.
func (c *vhostConn) recvReply(req uint32) ([]byte, error) {
	hdr := make([]byte, vhostHeaderSize)
	if err := c.readFull(req, hdr); err != nil {
		return nil, err
	}
	got := binary.LittleEndian.Uint32(hdr[0:])
	flags := binary.LittleEndian.Uint32(hdr[4:])
	size := binary.LittleEndian.Uint32(hdr[8:])
	if got != req || flags&vhostFlagReply == 0 || flags&0x3 != vhostVersion {
		return nil, fmt.Errorf("vhost-user %s: the back-end answered %s with flags %#x (want a version-1 reply to the same request) (%w)",
			requestName(req), requestName(got), flags, errBackendGone)
	}
	if size > vhostMaxPayload {
		return nil, fmt.Errorf("vhost-user %s: reply payload of %d bytes, more than %d (%w)", requestName(req), size, vhostMaxPayload, errBackendGone)
	}
	payload := make([]byte, size)
	if err := c.readFull(req, payload); err != nil {
		return nil, err
	}
	return payload, nil
}

func (c *vhostConn) readFull(req uint32, b []byte) error {
	oob := make([]byte, unix.CmsgSpace(4*vhostMaxRegions))
	for len(b) > 0 {
		n, oobn, _, _, err := unix.Recvmsg(c.fd, b, oob, unix.MSG_CMSG_CLOEXEC)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return fmt.Errorf("vhost-user %s: no reply: %w (%w)", requestName(req), err, errBackendGone)
		}
		if oobn > 0 {
			closeRights(oob[:oobn])
		}
		if n == 0 {
			return fmt.Errorf("vhost-user %s: %w", requestName(req), errBackendGone)
		}
		b = b[n:]
	}
	return nil
}

func closeRights(oob []byte) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return
	}
	for _, m := range msgs {
		if fds, err := unix.ParseUnixRights(&m); err == nil {
			for _, fd := range fds {
				unix.Close(fd)
			}
		}
	}
}

// call sends a request that the back-end answers with a payload.
func (c *vhostConn) call(req uint32, payload []byte) ([]byte, error) {
	if err := c.send(req, 0, payload, nil); err != nil {
		return nil, err
	}
	return c.recvReply(req)
}

// do sends a request without an answer of its own; with REPLY_ACK it waits
// for the back-end's verdict.
func (c *vhostConn) do(req uint32, payload []byte, fds ...int) error {
	var flags uint32
	if c.replyAck {
		flags = vhostFlagNeedAck
	}
	if err := c.send(req, flags, payload, fds); err != nil {
		return err
	}
	if !c.replyAck {
		return nil
	}
	ack, err := c.recvReply(req)
	if err != nil {
		return err
	}
	if len(ack) != 8 {
		return fmt.Errorf("vhost-user %s: acknowledgement of %d bytes, want 8 (%w)", requestName(req), len(ack), errBackendGone)
	}
	if v := binary.LittleEndian.Uint64(ack); v != 0 {
		return fmt.Errorf("vhost-user %s: the back-end refused it (status %d)", requestName(req), v)
	}
	return nil
}

func u64(v uint64) []byte { return binary.LittleEndian.AppendUint64(nil, v) }

// getU64 sends a request answered by one 64-bit number.
func (c *vhostConn) getU64(req uint32) (uint64, error) {
	p, err := c.call(req, nil)
	if err != nil {
		return 0, err
	}
	if len(p) != 8 {
		return 0, fmt.Errorf("vhost-user %s: answer of %d bytes, want 8 (%w)", requestName(req), len(p), errBackendGone)
	}
	return binary.LittleEndian.Uint64(p), nil
}

// vringState is the payload of SET_VRING_NUM, SET_VRING_BASE,
// GET_VRING_BASE and SET_VRING_ENABLE.
func vringState(index, num uint32) []byte {
	b := binary.LittleEndian.AppendUint32(nil, index)
	return binary.LittleEndian.AppendUint32(b, num)
}

func (c *vhostConn) getVringBase(index uint32) (uint32, error) {
	p, err := c.call(vhostGetVringBase, vringState(index, 0))
	if err != nil {
		return 0, err
	}
	if len(p) != 8 || binary.LittleEndian.Uint32(p) != index {
		return 0, fmt.Errorf("vhost-user GET_VRING_BASE of vring %d: malformed answer of %d bytes (%w)", index, len(p), errBackendGone)
	}
	return binary.LittleEndian.Uint32(p[4:]), nil
}

// setVringAddr sends the device addresses of a vring's three parts.
func (c *vhostConn) setVringAddr(index uint32, desc, driver, device uint64) error {
	b := binary.LittleEndian.AppendUint32(nil, index)
	b = binary.LittleEndian.AppendUint32(b, 0) // no logging
	b = binary.LittleEndian.AppendUint64(b, desc)
	b = binary.LittleEndian.AppendUint64(b, device) // used ring before avail ring, as in struct vhost_vring_addr
	b = binary.LittleEndian.AppendUint64(b, driver)
	b = binary.LittleEndian.AppendUint64(b, 0) // log_guest_addr
	return c.do(vhostSetVringAddr, b)
}

// setVringFD sends a kick or call eventfd.
func (c *vhostConn) setVringFD(req, index uint32, fd int) error {
	return c.do(req, u64(uint64(index)), fd)
}

func (c *vhostConn) setMemTable(regions []region) error {
	if len(regions) > vhostMaxRegions {
		return fmt.Errorf("vhost-user SET_MEM_TABLE: the group has %d memory segments; vhost-user takes at most %d (make fewer, larger segments)",
			len(regions), vhostMaxRegions)
	}
	b := binary.LittleEndian.AppendUint32(nil, uint32(len(regions)))
	b = binary.LittleEndian.AppendUint32(b, 0)
	fds := make([]int, len(regions))
	for i, r := range regions {
		b = binary.LittleEndian.AppendUint64(b, r.GuestAddr)
		b = binary.LittleEndian.AppendUint64(b, r.Size)
		b = binary.LittleEndian.AppendUint64(b, r.UserAddr)
		b = binary.LittleEndian.AppendUint64(b, r.MmapOff)
		fds[i] = r.FD
	}
	// The payload is the fixed-size struct VhostUserMemory.
	b = append(b, make([]byte, 8+vhostMaxRegions*32-len(b))...)
	return c.do(vhostSetMemTable, b, fds...)
}
