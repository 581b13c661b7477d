package memif

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"golang.org/x/sys/unix"
)

// Timing of the control channel.
const (
	handshakeTimeout = 5 * time.Second        // from accept/connect to CONNECTED
	pollInterval     = 100 * time.Millisecond // how often a connected session looks at Corrupt and stop
	retryInterval    = 250 * time.Millisecond // a client's wait between connection attempts
	maxRetryInterval = 4 * time.Second        // ... growing to this while handshakes fail
	sendTimeout      = time.Second
	appName          = "gopmd"
)

// control is the primary's control channel of a started port: a listener
// (server) or a connect-and-retry loop (client), and at most one session.
type control struct {
	d      *device
	stopCh chan struct{}
	wg     sync.WaitGroup

	mu    sync.Mutex
	ln    *net.UnixListener
	conns map[*net.UnixConn]struct{}
	busy  atomic.Bool // a server session is in progress
}

func startControl(d *device) (*control, error) {
	c := &control{d: d, stopCh: make(chan struct{}), conns: map[*net.UnixConn]struct{}{}}
	if d.cfg.role == roleServer {
		ln, err := listen(d.cfg)
		if err != nil {
			return nil, err
		}
		c.ln = ln
		c.wg.Add(1)
		go c.acceptLoop()
		d.log.Info("memif: listening")
	} else {
		c.wg.Add(1)
		go c.dialLoop()
	}
	return c, nil
}

// listen binds the server socket. A socket file left by a dead server is
// replaced; one a live server answers on is not.
func listen(cfg config) (*net.UnixListener, error) {
	addr := cfg.addr()
	if !cfg.abstract {
		if _, err := os.Lstat(cfg.socket); err == nil {
			if conn, err := net.DialUnix("unixpacket", nil, addr); err == nil {
				conn.Close()
				return nil, fmt.Errorf("socket %s: a server is already listening on it", cfg.socket)
			}
			os.Remove(cfg.socket)
		}
	}
	ln, err := net.ListenUnix("unixpacket", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr.Name, err)
	}
	return ln, nil
}

func (c *control) stopping() bool {
	select {
	case <-c.stopCh:
		return true
	default:
		return false
	}
}

// stop ends the control channel: sessions notice at their next read,
// tell the peer and unpublish the connection.
func (c *control) stop() {
	c.mu.Lock()
	close(c.stopCh)
	if c.ln != nil {
		c.ln.Close()
	}
	for conn := range c.conns {
		conn.SetReadDeadline(time.Now())
	}
	c.mu.Unlock()
	c.wg.Wait()
}

func (c *control) track(conn *net.UnixConn) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.stopping() {
		return false
	}
	c.conns[conn] = struct{}{}
	return true
}

func (c *control) untrack(conn *net.UnixConn) {
	c.mu.Lock()
	delete(c.conns, conn)
	c.mu.Unlock()
	conn.Close()
}

func (c *control) acceptLoop() {
	defer c.wg.Done()
	for {
		conn, err := c.ln.AcceptUnix()
		if err != nil {
			if c.stopping() {
				return
			}
			c.d.log.Warn("memif: accept failed", "err", err)
			if !c.sleep(retryInterval) {
				return
			}
			continue
		}
		if !c.track(conn) {
			conn.Close()
			return
		}
		c.wg.Add(1)
		go func() {
			defer c.wg.Done()
			defer c.untrack(conn)
			c.serve(conn)
		}()
	}
}

func (c *control) dialLoop() {
	defer c.wg.Done()
	addr := c.d.cfg.addr()
	reported := false
	backoff := retryInterval
	for !c.stopping() {
		conn, err := net.DialUnix("unixpacket", nil, addr)
		if err != nil {
			if !reported {
				c.d.log.Info("memif: waiting for the server", "err", err)
				reported = true
			}
			if !c.sleep(retryInterval) {
				return
			}
			continue
		}
		reported = false
		if !c.track(conn) {
			conn.Close()
			return
		}
		s := &session{c: c, conn: conn}
		if s.run(s.clientHandshake) {
			backoff = retryInterval
		} else { // refused or refusing: do not hammer the server
			backoff = min(2*backoff, maxRetryInterval)
		}
		c.untrack(conn)
		if !c.sleep(backoff) {
			return
		}
	}
}

func (c *control) sleep(d time.Duration) bool {
	select {
	case <-c.stopCh:
		return false
	case <-time.After(d):
		return true
	}
}

// serve runs one server-side session. A server has one peer at a time;
// a second client is told so.
func (c *control) serve(conn *net.UnixConn) {
	s := &session{c: c, conn: conn}
	if !c.busy.CompareAndSwap(false, true) {
		s.end(refuse("Already connected"))
		return
	}
	defer c.busy.Store(false)
	s.run(s.serverHandshake)
}

// session is one connection attempt, from socket connection to
// disconnection, with the regions and rings the peer and we agreed on.
type session struct {
	c       *control
	conn    *net.UnixConn
	regions []region
	c2s     []ringSpec // by ring index
	s2c     []ringSpec
	peerApp string
	peerIf  string
}

type region struct {
	fd int
	m  mapping // the control channel's own mapping, to set rings up
}

type ringSpec struct {
	present bool
	region  uint16
	log2    uint8
	offset  uint32
	bufOff  uint32 // client role: our first buffer for the ring
}

func (r ringSpec) ptr(s *session) unsafe.Pointer {
	return unsafe.Add(s.regions[r.region].m.base, r.offset)
}

// Errors that end a session besides refusals.
var errStopped = errors.New("device stopped")

type peerDisconnect struct{ reason string }

func (p *peerDisconnect) Error() string { return "peer disconnected: " + p.reason }

// run performs the handshake, publishes the connection, waits for its
// end, and cleans up. It reports whether the connection was made.
func (s *session) run(handshake func() error) bool {
	defer s.release()
	s.conn.SetDeadline(time.Now().Add(handshakeTimeout))
	if err := handshake(); err != nil {
		s.end(err)
		return false
	}
	gen := s.publish()
	err := s.waitConnected(gen)
	s.unpublish()
	s.end(err)
	return true
}

// end reports why a session ended, and tells the peer when the reason is
// ours.
func (s *session) end(err error) {
	d := s.c.d
	var r *refusal
	var pd *peerDisconnect
	switch {
	case s.c.stopping() || errors.Is(err, errStopped):
		s.sendDisconnect("Device stopped")
	case errors.As(err, &r):
		s.sendDisconnect(r.reason)
		atomic.AddUint64(&d.sh.Refused, 1)
		d.log.Warn("memif: refused peer", "reason", r.reason, "peer", s.peerApp)
	case errors.As(err, &pd):
		d.log.Info("memif: peer disconnected", "reason", pd.reason, "peer", s.peerApp)
	case errors.Is(err, io.EOF):
		d.log.Info("memif: peer closed the control channel", "peer", s.peerApp)
	default:
		d.log.Warn("memif: control channel failed", "err", err, "peer", s.peerApp)
	}
}

func (s *session) release() {
	for i := range s.regions {
		s.regions[i].m.unmap()
		unix.Close(s.regions[i].fd)
	}
	s.regions = nil
}

// recv reads one message and the file descriptor it carries (-1 if none).
// Anything but one 128-byte message with at most one descriptor is
// refused; descriptors of refused messages are closed.
func (s *session) recv() (*msg, int, error) {
	var m msg
	oob := make([]byte, unix.CmsgSpace(4*4))
	n, oobn, flags, _, err := s.conn.ReadMsgUnix(m[:], oob)
	if err != nil {
		if errors.Is(err, os.ErrDeadlineExceeded) && s.c.stopping() {
			return nil, -1, errStopped
		}
		return nil, -1, err
	}
	fds := parseFDs(oob[:oobn])
	fail := func(e error) (*msg, int, error) {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, -1, e
	}
	switch {
	case flags&unix.MSG_CTRUNC != 0:
		return fail(refuse("message carries too many file descriptors"))
	case flags&unix.MSG_TRUNC != 0:
		return fail(refuse("message is longer than %d bytes", msgSize))
	case n == 0:
		return fail(io.EOF)
	case n != msgSize:
		return fail(refuse("message is %d bytes, want %d", n, msgSize))
	case len(fds) > 1:
		return fail(refuse("%v message carries %d file descriptors, at most 1", m.typ(), len(fds)))
	}
	if len(fds) == 1 {
		return &m, fds[0], nil
	}
	return &m, -1, nil
}

func parseFDs(oob []byte) []int {
	cmsgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil
	}
	var fds []int
	for _, cm := range cmsgs {
		if f, err := unix.ParseUnixRights(&cm); err == nil {
			fds = append(fds, f...)
		}
	}
	return fds
}

func closeFD(fd int) {
	if fd >= 0 {
		unix.Close(fd)
	}
}

func (s *session) send(m *msg, fd int) error {
	var oob []byte
	if fd >= 0 {
		oob = unix.UnixRights(fd)
	}
	s.conn.SetWriteDeadline(time.Now().Add(sendTimeout))
	_, _, err := s.conn.WriteMsgUnix(m[:], oob, nil)
	return err
}

func (s *session) sendDisconnect(reason string) { s.send(encodeDisconnect(0, reason), -1) }

// expect reads a message of type t; a DISCONNECT instead ends the session
// with the peer's reason, anything else is refused.
func (s *session) expect(t msgType) (*msg, error) {
	m, fd, err := s.recv()
	if err != nil {
		return nil, err
	}
	closeFD(fd)
	switch m.typ() {
	case t:
		return m, nil
	case msgDisconnect:
		_, reason := decodeDisconnect(m)
		return nil, &peerDisconnect{reason}
	}
	return nil, refuse("expected %v, got %v", t, m.typ())
}

// publish records the connection in shared memory for every poller, in
// any process, and brings the link up. It returns the connection's Gen.
func (s *session) publish() uint32 {
	d := s.c.d
	sh := d.sh
	sh.PrimaryPID = int32(os.Getpid())
	sh.NumRegions = uint32(len(s.regions))
	for i, r := range s.regions {
		sh.Regions[i] = sharedRegion{FD: int32(r.fd), Size: r.m.size}
	}
	sh.BufSize = 0
	rx, tx := s.c2s, s.s2c
	if d.cfg.role == roleClient {
		rx, tx = s.s2c, s.c2s
		sh.BufSize = d.cfg.bufSize
	}
	for q := range ethdev.MaxQueues {
		sh.Rx[q], sh.Tx[q] = shared(rx, q), shared(tx, q)
	}
	gen := atomic.AddUint32(&sh.Gen, 1)
	atomic.AddUint64(&sh.Connects, 1)
	d.port.SetLink(ethdev.Link{Up: true, Mbps: linkMbps})
	d.log.Info("memif: connected", "peer", s.peerApp, "peer_if", s.peerIf,
		"c2s_rings", count(s.c2s), "s2c_rings", count(s.s2c), "regions", len(s.regions))
	return gen
}

func shared(list []ringSpec, q int) sharedRing {
	if q >= len(list) || !list[q].present {
		return sharedRing{}
	}
	r := list[q]
	return sharedRing{Present: 1, Region: r.region, Log2: r.log2, Offset: r.offset, BufOffset: r.bufOff}
}

func count(list []ringSpec) int {
	n := 0
	for _, r := range list {
		if r.present {
			n++
		}
	}
	return n
}

// unpublish marks the connection gone before its fds close: pollers stop
// using it at their next burst (their mappings stay valid until then).
func (s *session) unpublish() {
	d := s.c.d
	atomic.AddUint32(&d.sh.Gen, 1)
	atomic.AddUint64(&d.sh.Disconnects, 1)
	d.port.SetLink(ethdev.Link{})
}

// waitConnected blocks until the connection ends: the peer disconnects or
// hangs up, a poller reports ring corruption, or the port stops.
func (s *session) waitConnected(gen uint32) error {
	for {
		s.conn.SetReadDeadline(time.Now().Add(pollInterval))
		m, fd, err := s.recv()
		if errors.Is(err, os.ErrDeadlineExceeded) {
			if atomic.LoadUint32(&s.c.d.sh.Corrupt) == gen {
				return refuse("Ring corrupted: the peer moved a ring index or descriptor out of bounds")
			}
			continue
		}
		if err != nil {
			return err
		}
		closeFD(fd)
		if m.typ() == msgDisconnect {
			_, reason := decodeDisconnect(m)
			return &peerDisconnect{reason}
		}
		return refuse("unexpected %v on a connected channel", m.typ())
	}
}
