package ipc

import (
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// PrimarySocket is the name of the primary's socket in the runtime
// directory. A secondary's socket is PrimarySocket + "_<pid>_<n>".
const PrimarySocket = "mp_socket"

const (
	// sendTimeout bounds how long Send, Broadcast and Call.Reply wait for
	// room in a peer's receive queue.
	sendTimeout = 2 * time.Second
	// livenessInterval is how often a waiting request checks that its
	// peer still has its socket open.
	livenessInterval = 200 * time.Millisecond
	// queueLen is how many received calls may wait for the handler goroutine.
	queueLen = 256
	// maxSunPath is the longest socket path the kernel accepts.
	maxSunPath = len(unix.RawSockaddrUnix{}.Path) - 1
)

// Errors returned by this package wrap one of these; test with errors.Is.
var (
	ErrClosed        = errors.New("endpoint is closed")
	ErrInvalid       = errors.New("invalid message")
	ErrPeerGone      = errors.New("peer is gone")
	ErrTimeout       = errors.New("deadline exceeded")
	ErrUnknownAction = errors.New("peer has no handler for the action")
	ErrRemote        = errors.New("peer failed the request")
)

// Options says where an endpoint binds.
type Options struct {
	Dir     string       // the group's runtime directory; it must exist
	Primary bool         // bind PrimarySocket; otherwise a new secondary name
	Logger  *slog.Logger // receives rejected input and handler errors; nil means slog.Default()
}

// Message is what travels between endpoints.
type Message struct {
	Action  string // selects the handler: 1..MaxActionLen bytes of printable ASCII, no spaces
	Payload []byte // at most MaxPayload bytes
	FDs     []int  // at most MaxFDs descriptors, passed with SCM_RIGHTS
}

// CloseFDs closes the message's descriptors and forgets them. It returns
// the first error from close(2).
func (m *Message) CloseFDs() error {
	var first error
	for _, fd := range m.FDs {
		if err := unix.Close(fd); err != nil && first == nil {
			first = fmt.Errorf("ipc: close fd %d of %q: %w", fd, m.Action, err)
		}
	}
	m.FDs = nil
	return first
}

func (m *Message) check() error {
	if err := checkAction(m.Action); err != nil {
		return err
	}
	if len(m.Payload) > MaxPayload {
		return fmt.Errorf("payload is %d bytes, more than the %d-byte limit", len(m.Payload), MaxPayload)
	}
	if len(m.FDs) > MaxFDs {
		return fmt.Errorf("%d fds attached, more than the limit of %d", len(m.FDs), MaxFDs)
	}
	for i, fd := range m.FDs {
		if fd < 0 {
			return fmt.Errorf("fd %d at index %d is negative", fd, i)
		}
	}
	return nil
}

// Stats counts what an endpoint received.
type Stats struct {
	Received  uint64 // datagrams read from the socket
	Rejected  uint64 // datagrams dropped: malformed, unknown action or request id, foreign sender, queue full
	FDsClosed uint64 // received descriptors closed because nobody could take them
}

// Endpoint is one process's socket in the group. Its methods are safe for
// concurrent use.
type Endpoint struct {
	dir     string
	dirStat unix.Stat_t
	name    string
	sockIno uint64
	conn    *net.UnixConn
	raw     syscall.RawConn
	log     *slog.Logger

	hmu      sync.RWMutex
	handlers map[string]Handler

	mu      sync.Mutex
	closed  bool
	pending map[uint64]*pending

	nextID   atomic.Uint64
	queue    chan *Call
	recvDone chan struct{}
	workDone chan struct{}

	closeOnce sync.Once
	closeErr  error

	received, rejected, fdsClosed atomic.Uint64
}

var secondarySeq atomic.Uint64

// Listen binds this process's endpoint in o.Dir and starts receiving.
//
// A primary binds PrimarySocket; if that file exists and no process has it
// open, it is a leftover and is replaced, while a live primary is an error.
// A secondary binds PrimarySocket_<pid>_<n>, n counting endpoints of this
// process. The socket file has mode 0600.
func Listen(o Options) (*Endpoint, error) {
	if o.Dir == "" {
		return nil, errors.New("ipc: listen: Options.Dir is empty; give the group's runtime directory")
	}
	dir, err := filepath.Abs(o.Dir)
	if err != nil {
		return nil, fmt.Errorf("ipc: listen: runtime directory %q: %w", o.Dir, err)
	}
	e := &Endpoint{
		dir:      dir,
		handlers: make(map[string]Handler),
		pending:  make(map[uint64]*pending),
		queue:    make(chan *Call, queueLen),
		recvDone: make(chan struct{}),
		workDone: make(chan struct{}),
	}
	if err := unix.Stat(dir, &e.dirStat); err != nil {
		return nil, fmt.Errorf("ipc: listen: runtime directory %s: %w", dir, err)
	}
	if e.dirStat.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("ipc: listen: runtime directory %s is not a directory", dir)
	}
	e.name = PrimarySocket
	if !o.Primary {
		e.name = fmt.Sprintf("%s_%d_%d", PrimarySocket, os.Getpid(), secondarySeq.Add(1)-1)
	}
	path := e.path(e.name)
	if len(path) > maxSunPath {
		return nil, fmt.Errorf("ipc: listen: socket path %s is %d bytes; unix sockets allow at most %d", path, len(path), maxSunPath)
	}
	fd, ino, err := bindSocket(path)
	if err != nil {
		return nil, err
	}
	e.sockIno = ino
	f := os.NewFile(uintptr(fd), path)
	c, err := net.FileConn(f)
	f.Close()
	if err != nil {
		unix.Unlink(path)
		return nil, fmt.Errorf("ipc: listen: %s: %w", path, err)
	}
	e.conn = c.(*net.UnixConn)
	if e.raw, err = e.conn.SyscallConn(); err != nil {
		e.conn.Close()
		unix.Unlink(path)
		return nil, fmt.Errorf("ipc: listen: %s: %w", path, err)
	}
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	e.log = log.With("endpoint", e.name)
	go e.receive()
	go e.work()
	return e, nil
}

// bindSocket makes a datagram socket bound at path with mode 0600,
// replacing a socket file nobody listens on.
func bindSocket(path string) (fd int, ino uint64, err error) {
	fd, err = unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return -1, 0, fmt.Errorf("ipc: listen: socket: %w", err)
	}
	fail := func(err error) (int, uint64, error) {
		unix.Close(fd)
		return -1, 0, err
	}
	// Credentials let rejection logs name the sending pid.
	if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_PASSCRED, 1); err != nil {
		return fail(fmt.Errorf("ipc: listen: SO_PASSCRED: %w", err))
	}
	// bind(2) creates the file with the socket inode's mode minus the
	// umask, so this makes it 0600 from the start, with no window.
	if err := unix.Fchmod(fd, 0o600); err != nil {
		return fail(fmt.Errorf("ipc: listen: fchmod socket: %w", err))
	}
	sa := &unix.SockaddrUnix{Name: path}
	err = unix.Bind(fd, sa)
	if errors.Is(err, unix.EADDRINUSE) {
		if perr := probe(path); !isGone(perr) {
			return fail(fmt.Errorf("ipc: listen: %s is in use by a live endpoint", path))
		}
		if uerr := unix.Unlink(path); uerr != nil && !errors.Is(uerr, unix.ENOENT) {
			return fail(fmt.Errorf("ipc: listen: remove stale socket %s: %w", path, uerr))
		}
		err = unix.Bind(fd, sa)
	}
	if err != nil {
		return fail(fmt.Errorf("ipc: listen: bind %s: %w", path, err))
	}
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return fail(fmt.Errorf("ipc: listen: stat %s: %w", path, err))
	}
	if st.Mode&0o777 != 0o600 {
		if err := unix.Chmod(path, 0o600); err != nil {
			unix.Unlink(path)
			return fail(fmt.Errorf("ipc: listen: chmod %s: %w", path, err))
		}
	}
	return fd, st.Ino, nil
}

// probe reports whether a socket is bound at path: nil if so,
// ECONNREFUSED for a leftover file, ENOENT for no file.
func probe(path string) error {
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.Connect(fd, &unix.SockaddrUnix{Name: path})
}

func isGone(err error) bool {
	return errors.Is(err, unix.ECONNREFUSED) || errors.Is(err, unix.ENOENT)
}

// Name is this endpoint's socket name in the runtime directory; peers use
// it as the address to send to.
func (e *Endpoint) Name() string { return e.name }

func (e *Endpoint) path(name string) string { return e.dir + "/" + name }

// Stats returns the endpoint's counters.
func (e *Endpoint) Stats() Stats {
	return Stats{Received: e.received.Load(), Rejected: e.rejected.Load(), FDsClosed: e.fdsClosed.Load()}
}

// Close stops receiving, fails pending requests with ErrClosed, waits for
// the running handler to return, drops the calls still queued (closing
// their descriptors; their requesters see ErrPeerGone) and removes the
// socket file. It must not be called from a handler (it
// would wait for itself); a handler can run go e.Close() instead.
func (e *Endpoint) Close() error {
	e.closeOnce.Do(func() {
		e.mu.Lock()
		e.closed = true
		for id, p := range e.pending {
			p.ch <- delivery{idx: p.idx, err: fmt.Errorf("ipc: request %q to %s: %w", p.action, p.peer, ErrClosed)}
			delete(e.pending, id)
		}
		e.mu.Unlock()
		e.closeErr = e.conn.Close()
		<-e.recvDone
		close(e.queue)
		<-e.workDone
		path := e.path(e.name)
		var st unix.Stat_t
		if unix.Lstat(path, &st) == nil && st.Ino == e.sockIno {
			if err := unix.Unlink(path); err != nil && e.closeErr == nil {
				e.closeErr = fmt.Errorf("ipc: close: remove %s: %w", path, err)
			}
		}
	})
	return e.closeErr
}

func (e *Endpoint) isClosed() bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.closed
}

// validPeerName accepts PrimarySocket and PrimarySocket_<pid>_<n>.
func validPeerName(name string) bool {
	if name == PrimarySocket {
		return true
	}
	rest, ok := strings.CutPrefix(name, PrimarySocket+"_")
	if !ok {
		return false
	}
	pid, n, ok := strings.Cut(rest, "_")
	return ok && isDecimal(pid) && isDecimal(n)
}

func isDecimal(s string) bool {
	if len(s) == 0 || len(s) > 20 {
		return false
	}
	_, err := strconv.ParseUint(s, 10, 64)
	return err == nil
}

func checkPeer(name string) error {
	if !validPeerName(name) {
		return fmt.Errorf("peer %q is not an endpoint name (%s or %s_<pid>_<n>)", name, PrimarySocket, PrimarySocket)
	}
	return nil
}

// send writes one datagram to the named peer. The socket is non-blocking:
// while the peer's receive queue is full the send is retried with backoff
// until the deadline. A missing or orphaned socket file fails at once.
func (e *Endpoint) send(peer string, b, oob []byte, deadline time.Time) error {
	if e.isClosed() {
		return ErrClosed
	}
	sa := &unix.SockaddrUnix{Name: e.path(peer)}
	backoff := 20 * time.Microsecond
	for {
		var serr error
		if err := e.raw.Control(func(fd uintptr) {
			serr = unix.Sendmsg(int(fd), b, oob, sa, unix.MSG_NOSIGNAL)
		}); err != nil {
			return ErrClosed
		}
		if !errors.Is(serr, unix.EAGAIN) {
			if isGone(serr) {
				return fmt.Errorf("%w (%w)", ErrPeerGone, serr)
			}
			return serr
		}
		left := time.Until(deadline)
		if left <= 0 {
			return fmt.Errorf("%w: the peer's receive queue stayed full", ErrTimeout)
		}
		time.Sleep(min(backoff, left))
		backoff = min(2*backoff, 10*time.Millisecond)
	}
}

func rights(fds []int) []byte {
	if len(fds) == 0 {
		return nil
	}
	return unix.UnixRights(fds...)
}

// Send delivers a one-way message to the peer named to (a socket name in
// the runtime directory, such as PrimarySocket). It waits at most a couple
// of seconds for room in the peer's receive queue. The caller keeps its
// descriptors: the peer gets duplicates.
func (e *Endpoint) Send(to string, m Message) error {
	if err := checkPeer(to); err != nil {
		return fmt.Errorf("ipc: send %q: %w: %v", m.Action, ErrInvalid, err)
	}
	if err := m.check(); err != nil {
		return fmt.Errorf("ipc: send %q to %s: %w: %v", truncate(m.Action, MaxActionLen), to, ErrInvalid, err)
	}
	b := appendDatagram(make([]byte, 0, headerLen+len(m.Action)+len(m.Payload)), kindMessage, statusOK, 0, m.Action, m.Payload, len(m.FDs))
	if err := e.send(to, b, rights(m.FDs), time.Now().Add(sendTimeout)); err != nil {
		return fmt.Errorf("ipc: send %q to %s: %w", m.Action, to, err)
	}
	return nil
}

// receive is the endpoint's receive loop: it reads datagrams, answers
// replies to pending requests itself and queues the rest for the handler
// goroutine, so a handler may wait for a reply without deadlock.
func (e *Endpoint) receive() {
	defer close(e.recvDone)
	buf := make([]byte, maxDatagram+1)
	oob := make([]byte, unix.CmsgSpace(unix.SizeofUcred)+unix.CmsgSpace(4*MaxFDs))
	for {
		n, oobn, flags, addr, err := e.conn.ReadMsgUnix(buf, oob)
		fds, pid := parseControl(oob[:oobn])
		if err != nil {
			e.closeReceived(fds)
			if errors.Is(err, net.ErrClosed) {
				return
			}
			e.log.Error("ipc: receive failed; continuing", "err", err)
			time.Sleep(10 * time.Millisecond) // do not spin on a persistent error
			continue
		}
		e.received.Add(1)
		from := ""
		if addr != nil {
			from = addr.Name
		}
		e.handleDatagram(buf[:n], flags, fds, from, pid)
	}
}

// parseControl collects the descriptors and the sender's pid from the
// ancillary data of one datagram.
func parseControl(oob []byte) (fds []int, pid int32) {
	for len(oob) >= unix.CmsgLen(0) {
		h, data, rest, err := unix.ParseOneSocketControlMessage(oob)
		if err != nil {
			break // the kernel writes whole headers; nothing more to find
		}
		if h.Level == unix.SOL_SOCKET {
			switch h.Type {
			case unix.SCM_RIGHTS:
				for i := 0; i+4 <= len(data); i += 4 {
					fds = append(fds, int(int32(binary.NativeEndian.Uint32(data[i:]))))
				}
			case unix.SCM_CREDENTIALS:
				if len(data) >= unix.SizeofUcred {
					pid = int32(binary.NativeEndian.Uint32(data))
				}
			}
		}
		oob = rest
	}
	return fds, pid
}

// handleDatagram routes one datagram: a reply to its waiting request, a
// one-way message or request to the handler queue. Whoever takes it owns
// its descriptors; a datagram nobody takes is rejected.
func (e *Endpoint) handleDatagram(b []byte, flags int, fds []int, from string, pid int32) {
	reject := func(reason string) { e.reject(reason, from, pid, len(b), fds) }
	if flags&unix.MSG_TRUNC != 0 {
		reject(fmt.Sprintf("datagram is larger than the %d-byte maximum (truncated)", maxDatagram))
		return
	}
	if flags&unix.MSG_CTRUNC != 0 {
		reject(fmt.Sprintf("ancillary data truncated: more than %d fds attached", MaxFDs))
		return
	}
	peer, err := e.peerName(from)
	if err != nil {
		reject(err.Error())
		return
	}
	h, action, payload, err := decode(b, len(fds))
	if err != nil {
		reject(err.Error())
		return
	}
	if h.kind == kindReply {
		if reason := e.deliverReply(peer, h, action, payload, fds); reason != "" {
			reject(reason)
		}
		return
	}
	c := &Call{From: peer, Message: Message{Action: action, Payload: clone(payload), FDs: fds}, e: e, kind: h.kind, id: h.id}
	select {
	case e.queue <- c:
		return
	default:
	}
	reason := fmt.Sprintf("%s %q dropped: handler queue full (%d calls waiting)", h.kind, action, queueLen)
	reject(reason)
	if h.kind == kindRequest {
		c.FDs = nil
		c.fail(statusBusy, reason, time.Now()) // one attempt: this loop must not block
	}
}

func clone(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return append([]byte(nil), b...)
}

// peerName checks that a datagram came from an endpoint bound in this
// group's runtime directory and returns its socket name.
func (e *Endpoint) peerName(from string) (string, error) {
	if from == "" || from[0] != '/' { // unbound, abstract or relative
		return "", fmt.Errorf("sender address %q is not a socket file; only endpoints in %s may send", from, e.dir)
	}
	dir, name := filepath.Split(from)
	if !validPeerName(name) {
		return "", fmt.Errorf("sender %s is not named like an endpoint (%s or %s_<pid>_<n>)", from, PrimarySocket, PrimarySocket)
	}
	dir = filepath.Clean(dir)
	if dir != e.dir {
		// The same directory may be spelt differently (/var/run vs /run).
		var st unix.Stat_t
		if unix.Stat(dir, &st) != nil || st.Dev != e.dirStat.Dev || st.Ino != e.dirStat.Ino {
			return "", fmt.Errorf("sender %s is outside the runtime directory %s", from, e.dir)
		}
	}
	return name, nil
}

func (e *Endpoint) reject(reason, from string, pid int32, size int, fds []int) {
	e.closeReceived(fds)
	e.log.Warn("ipc: rejected datagram", "reason", reason, "from", from, "pid", pid, "bytes", size, "fds", len(fds))
	e.rejected.Add(1) // after the log line, so a caller that sees the count sees the line
}

func (e *Endpoint) closeReceived(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
	e.fdsClosed.Add(uint64(len(fds)))
}
