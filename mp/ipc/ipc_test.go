package ipc

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testproc"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// Tests run the helper roles in separate processes: the test binary
// re-executes itself with IPC_HELPER naming the role (see TestHelperProcess).

// waitLimit only guards against a hang; nothing is timed.
const waitLimit = 20 * time.Second

// runDir is a short runtime directory (socket paths are limited to 107 bytes).
func runDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "ipc")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(d) })
	return d
}

// logBuffer collects an endpoint's log lines.
type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// receive waits for a value from ch.
func receive[T any](t *testing.T, ch <-chan T) T {
	t.Helper()
	select {
	case v := <-ch:
		return v
	case <-time.After(waitLimit):
		t.Fatalf("nothing received within %v", waitLimit)
		panic("unreachable")
	}
}

func listen(t *testing.T, dir string, primary bool) (*Endpoint, *logBuffer) {
	t.Helper()
	logs := &logBuffer{}
	e, err := Listen(Options{Dir: dir, Primary: primary, Logger: slog.New(slog.NewTextHandler(logs, nil))})
	require.NoError(t, err)
	t.Cleanup(func() { e.Close() })
	return e, logs
}

// child is a helper process. It prints "ready <socket name>" once its
// endpoint listens, then event lines, and exits when its stdin closes.
type child struct {
	*testproc.Child
	name string // its endpoint's socket name
}

func startChild(t *testing.T, role, dir string) *child {
	t.Helper()
	c := testproc.Start(t, testproc.Config{
		Name:    role,
		Run:     "^TestHelperProcess$",
		Env:     []string{"IPC_HELPER=" + role, "IPC_DIR=" + dir},
		Timeout: waitLimit,
		Grace:   waitLimit,
	})
	return &child{Child: c, name: strings.TrimPrefix(c.Expect("ready "), "ready ")}
}

func TestRequestAndReplyBetweenProcesses(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	require.NoError(t, p.Register("whoami", func(c *Call) error {
		return c.Reply(Message{Payload: []byte("primary answering " + c.From)})
	}))
	s := startChild(t, "secondary", dir)

	rep, err := p.Request(s.name, Message{Action: "echo", Payload: []byte("ping")}, time.Now().Add(waitLimit))
	require.NoError(t, err)
	require.Equal(t, "echo", rep.Action)
	require.Equal(t, s.name+":ping", string(rep.Payload), "the secondary's echo handler prefixes its name")

	// The secondary's handler asks the primary in turn before it answers.
	rep, err = p.Request(s.name, Message{Action: "ask-primary"}, time.Now().Add(waitLimit))
	require.NoError(t, err)
	require.Equal(t, "primary answering "+s.name, string(rep.Payload))

	rep, err = p.Request(s.name, Message{Action: "ack"}, time.Now().Add(waitLimit))
	require.NoError(t, err, "a handler that returns nil without replying acknowledges with an empty reply")
	require.Empty(t, rep.Payload)
	require.NoError(t, s.Wait())
	require.Zero(t, p.Stats().Rejected, "nothing was rejected")
}

func TestBroadcastReachesEverySecondaryAndSkipsStaleSockets(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	a := startChild(t, "secondary", dir)
	b := startChild(t, "secondary", dir)
	stale := filepath.Join(dir, "mp_socket_999999_0")
	orphanSocket(t, stale)

	n, err := p.Broadcast(Message{Action: "note", Payload: []byte("to all")})
	require.NoError(t, err)
	require.Equal(t, 2, n, "both live secondaries, not the stale socket, got the message")
	require.Equal(t, "note to all", a.Expect("note "))
	require.Equal(t, "note to all", b.Expect("note "))
	require.NoFileExists(t, stale, "the stale socket file is removed")

	orphanSocket(t, stale)
	replies, err := p.RequestAll(Message{Action: "echo", Payload: []byte("roll call")}, time.Now().Add(waitLimit))
	require.NoError(t, err)
	require.Len(t, replies, 2, "one reply per live secondary: %+v", replies)
	got := []string{string(replies[0].Payload), string(replies[1].Payload)}
	require.ElementsMatch(t, []string{a.name + ":roll call", b.name + ":roll call"}, got)
	for _, r := range replies {
		require.Equal(t, r.Payload, []byte(r.Peer+":roll call"), "a reply is attributed to the peer that sent it")
	}
	require.NoFileExists(t, stale, "the stale socket file is removed")

	replies, err = p.RequestAll(Message{Action: "fail"}, time.Now().Add(waitLimit))
	require.Len(t, replies, 2)
	require.ErrorIs(t, err, ErrRemote)
	for _, r := range replies {
		require.ErrorIs(t, r.Err, ErrRemote)
		require.ErrorContains(t, r.Err, r.Peer)
	}
	require.NoError(t, a.Wait())
	require.NoError(t, b.Wait())
}

// orphanSocket leaves a socket file that no process has bound, as a
// process that died without cleaning up does.
func orphanSocket(t *testing.T, path string) {
	t.Helper()
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM, 0)
	require.NoError(t, err)
	require.NoError(t, unix.Bind(fd, &unix.SockaddrUnix{Name: path}))
	require.NoError(t, unix.Close(fd))
}

func TestDescriptorsPassBetweenProcesses(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	s := startChild(t, "secondary", dir)

	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	_, err = p.Request(s.name, Message{Action: "write-fd", FDs: []int{int(w.Fd())}}, time.Now().Add(waitLimit))
	require.NoError(t, err)
	require.NoError(t, w.Close(), "the sender keeps its own descriptor")
	r.SetReadDeadline(time.Now().Add(waitLimit))
	got, err := io.ReadAll(r)
	require.NoError(t, err, "the pipe reaches EOF once both processes closed the write end")
	require.Equal(t, fmt.Sprintf("written by %s", s.name), string(got))

	rep, err := p.Request(s.name, Message{Action: "make-memfd", Payload: []byte("contents from the secondary")}, time.Now().Add(waitLimit))
	require.NoError(t, err)
	require.Len(t, rep.FDs, 1, "the reply carries the memfd")
	buf := make([]byte, 64)
	n, err := unix.Pread(rep.FDs[0], buf, 0)
	require.NoError(t, err)
	require.Equal(t, "contents from the secondary", string(buf[:n]))
	require.NoError(t, rep.CloseFDs())
	require.NoError(t, s.Wait())
}

func TestRequestDeadlineExpiresAndTheLateReplyIsRejected(t *testing.T) {
	dir := runDir(t)
	p, logs := listen(t, dir, true)
	s := startChild(t, "secondary", dir)

	_, err := p.Request(s.name, Message{Action: "sleep", Payload: []byte("500ms")}, time.Now().Add(50*time.Millisecond))
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorContains(t, err, `request "sleep" to `+s.name)

	require.Eventually(t, func() bool { return p.Stats().Rejected == 1 }, waitLimit, 10*time.Millisecond,
		"the reply that came after the deadline is rejected")
	require.Contains(t, logs.String(), "unknown request id")
	rep, err := p.Request(s.name, Message{Action: "echo", Payload: []byte("still there")}, time.Now().Add(waitLimit))
	require.NoError(t, err, "the endpoint works on after a timeout")
	require.Equal(t, s.name+":still there", string(rep.Payload))
	require.NoError(t, s.Wait())
}

func TestRequestToAGonePeerFailsWithoutWaitingForTheDeadline(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	far := time.Now().Add(waitLimit) // a timeout here would fail the ErrPeerGone checks

	_, err := p.Request("mp_socket_999999_1", Message{Action: "echo"}, far)
	require.ErrorIs(t, err, ErrPeerGone)
	require.ErrorIs(t, err, unix.ENOENT, "no socket file")
	require.ErrorContains(t, err, `request "echo" to mp_socket_999999_1: peer is gone`)

	orphanSocket(t, filepath.Join(dir, "mp_socket_999999_2"))
	_, err = p.Request("mp_socket_999999_2", Message{Action: "echo"}, far)
	require.ErrorIs(t, err, ErrPeerGone)
	require.ErrorIs(t, err, unix.ECONNREFUSED, "a socket file nobody has bound")

	s := startChild(t, "secondary", dir)
	_, err = p.Request(s.name, Message{Action: "exit"}, far)
	require.ErrorIs(t, err, ErrPeerGone, "the peer exited while the request was outstanding")
	require.ErrorContains(t, err, "exited before replying")
	var exit *exec.ExitError
	require.ErrorAs(t, s.Wait(), &exit)
	require.Equal(t, 3, exit.ExitCode())
	require.ErrorIs(t, p.Send(s.name, Message{Action: "note"}), ErrPeerGone)
}

func TestUnknownActionIsAnsweredAsUnknown(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	s := startChild(t, "secondary", dir)

	_, err := p.Request(s.name, Message{Action: "no-such-action"}, time.Now().Add(waitLimit))
	require.ErrorIs(t, err, ErrUnknownAction)
	require.EqualError(t, err, fmt.Sprintf(`ipc: request "no-such-action" to %s: peer has no handler for the action`, s.name))

	_, err = p.Request(s.name, Message{Action: "fail"}, time.Now().Add(waitLimit))
	require.ErrorIs(t, err, ErrRemote)
	require.ErrorContains(t, err, "disk on fire", "the handler's error text reaches the requester")
	require.NoError(t, s.Wait())
}

func TestGarbageIsRejectedAndReceivingGoesOn(t *testing.T) {
	dir := runDir(t)
	p, logs := listen(t, dir, true)
	notes := make(chan string, 1)
	require.NoError(t, p.Register("note", func(c *Call) error {
		notes <- string(c.Payload)
		return c.CloseFDs()
	}))
	// The helper sends garbage of every kind, waits until the descriptors
	// it attached have all been closed here, then sends a valid message.
	g := startChild(t, "garbage", dir)
	g.Expect("fds closed")
	select {
	case n := <-notes:
		require.Equal(t, "valid after garbage", n)
	case <-time.After(waitLimit):
		t.Fatalf("the valid message after the garbage was not handled; log:\n%s", logs)
	}
	require.NoError(t, g.Wait())

	st := p.Stats()
	require.Equal(t, Stats{Received: 9, Rejected: 8, FDsClosed: 11}, st, "log:\n%s", logs)
	for _, reason := range []string{
		"is not a socket file; only endpoints in",
		"datagram is 3 bytes, shorter than the 24-byte header",
		"bad magic",
		"header declares 2 fds but 1 arrived",
		"datagram is larger than the 4184-byte maximum (truncated)",
		"ancillary data truncated: more than 8 fds attached",
		`reply \"note\" to unknown request id 12345`,
		`no handler for action \"no-such-action\"`,
	} {
		require.Contains(t, logs.String(), reason)
	}
	require.Contains(t, logs.String(), fmt.Sprintf("pid=%d", g.Pid()), "rejections name the sending process")
}

func TestSendRefusesOversizedMessages(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	s, _ := listen(t, dir, false)
	cases := []struct {
		name  string
		m     Message
		error string
	}{
		{"payload", Message{Action: "a", Payload: make([]byte, MaxPayload+1)}, "payload is 4097 bytes, more than the 4096-byte limit"},
		{"action", Message{Action: strings.Repeat("a", MaxActionLen+1)}, "is 65 bytes, must be 1..64"},
		{"no action", Message{}, `action name "" is 0 bytes`},
		{"spaces", Message{Action: "a b"}, "only printable ASCII without spaces"},
		{"fds", Message{Action: "a", FDs: make([]int, MaxFDs+1)}, "9 fds attached, more than the limit of 8"},
		{"negative fd", Message{Action: "a", FDs: []int{-1}}, "fd -1 at index 0 is negative"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := p.Send(s.Name(), c.m)
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, c.error)
			_, err = p.Request(s.Name(), c.m, time.Now().Add(waitLimit))
			require.ErrorIs(t, err, ErrInvalid)
			require.ErrorContains(t, err, c.error)
			_, err = p.Broadcast(c.m)
			require.ErrorIs(t, err, ErrInvalid)
			_, err = p.RequestAll(c.m, time.Now().Add(waitLimit))
			require.ErrorIs(t, err, ErrInvalid)
		})
	}
	err := p.Send("../etc/passwd", Message{Action: "a"})
	require.ErrorIs(t, err, ErrInvalid)
	require.ErrorContains(t, err, `peer "../etc/passwd" is not an endpoint name`)
	require.Zero(t, s.Stats().Received, "nothing invalid was sent")
}

func TestSocketFilesAreMode0600AndNamedByRole(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	s, _ := listen(t, dir, false)
	require.Equal(t, PrimarySocket, p.Name())
	require.Equal(t, fmt.Sprintf("mp_socket_%d_", os.Getpid()), s.Name()[:len(s.Name())-len(s.Name()[strings.LastIndexByte(s.Name(), '_')+1:])])
	for _, name := range []string{p.Name(), s.Name()} {
		fi, err := os.Lstat(filepath.Join(dir, name))
		require.NoError(t, err)
		require.Equal(t, os.ModeSocket|0o600, fi.Mode(), "mode of %s", name)
	}
	peers, err := p.Peers()
	require.NoError(t, err)
	require.Equal(t, []string{s.Name()}, peers)
}

func TestPrimaryRefusesALivePrimaryAndReplacesAStaleOne(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	_, err := Listen(Options{Dir: dir, Primary: true})
	require.ErrorContains(t, err, "is in use by a live endpoint")
	require.NoError(t, p.Close())
	require.NoFileExists(t, filepath.Join(dir, PrimarySocket), "Close removes the socket file")

	orphanSocket(t, filepath.Join(dir, PrimarySocket))
	p2, _ := listen(t, dir, true)
	s, _ := listen(t, dir, false)
	require.NoError(t, p2.Register("hi", func(c *Call) error { return nil }))
	_, err = s.Request(PrimarySocket, Message{Action: "hi"}, time.Now().Add(waitLimit))
	require.NoError(t, err, "the new primary took over the stale socket name")

	_, err = Listen(Options{Dir: filepath.Join(dir, "missing")})
	require.ErrorContains(t, err, "runtime directory")
}

func TestCloseFailsPendingRequests(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	s, _ := listen(t, dir, false)
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before Close, which waits for the handler
	started := make(chan struct{})
	require.NoError(t, s.Register("block", func(c *Call) error {
		close(started)
		<-release
		return nil
	}))
	done := make(chan error, 1)
	go func() {
		_, err := p.Request(s.Name(), Message{Action: "block"}, time.Now().Add(waitLimit))
		done <- err
	}()
	receive(t, started)
	require.NoError(t, p.Close())
	select {
	case err := <-done:
		require.ErrorIs(t, err, ErrClosed)
		require.ErrorContains(t, err, `request "block" to `+s.Name())
	case <-time.After(waitLimit):
		t.Fatal("Close did not fail the pending request")
	}
	require.ErrorIs(t, p.Send(s.Name(), Message{Action: "x"}), ErrClosed)
	unblock()
	require.NoError(t, s.Close())
	require.NoFileExists(t, filepath.Join(dir, s.Name()))
	require.NoError(t, s.Close(), "Close twice is harmless")
}

func TestSendersOutsideTheRuntimeDirectoryAreRejected(t *testing.T) {
	dir := runDir(t)
	p, logs := listen(t, dir, true)
	require.NoError(t, p.Register("note", func(c *Call) error { return nil }))
	other, _ := listen(t, runDir(t), false)
	// Addressed by path by hand: the API only names peers in its own directory.
	b := appendDatagram(nil, kindMessage, statusOK, 0, "note", nil, 0)
	require.NoError(t, other.send("../"+filepath.Base(dir)+"/"+PrimarySocket, b, nil, time.Now().Add(waitLimit)))
	require.Eventually(t, func() bool { return p.Stats().Rejected == 1 }, waitLimit, 10*time.Millisecond)
	require.Contains(t, logs.String(), "is outside the runtime directory")
}

func TestADirectorySpeltTwoWaysIsOneGroup(t *testing.T) {
	dir := runDir(t)
	link := filepath.Join(runDir(t), "link")
	require.NoError(t, os.Symlink(dir, link))
	p, _ := listen(t, dir, true)
	s, _ := listen(t, link, false)
	require.NoError(t, p.Register("hi", func(c *Call) error { return c.Reply(Message{Payload: []byte(c.From)}) }))
	rep, err := s.Request(PrimarySocket, Message{Action: "hi"}, time.Now().Add(waitLimit))
	require.NoError(t, err)
	require.Equal(t, s.Name(), string(rep.Payload))
}

func TestRegisterChecksItsArguments(t *testing.T) {
	p, _ := listen(t, runDir(t), true)
	h := func(c *Call) error { return nil }
	require.NoError(t, p.Register("a", h))
	require.ErrorContains(t, p.Register("a", h), `register "a": the action already has a handler`)
	require.ErrorContains(t, p.Register("", h), "0 bytes, must be 1..64")
	require.ErrorContains(t, p.Register("b", nil), "handler is nil")
	p.Unregister("a")
	require.NoError(t, p.Register("a", h), "an unregistered action can be registered again")
}

func TestReplyIsOnlyForRequestsAndOnlyOnce(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	s, _ := listen(t, dir, false)
	errs := make(chan error, 2)
	require.NoError(t, s.Register("twice", func(c *Call) error {
		if !c.IsRequest() {
			errs <- c.Reply(Message{})
			return nil
		}
		if err := c.Reply(Message{Payload: []byte("first")}); err != nil {
			return err
		}
		errs <- c.Reply(Message{Payload: []byte("second")})
		return nil
	}))
	rep, err := p.Request(s.Name(), Message{Action: "twice"}, time.Now().Add(waitLimit))
	require.NoError(t, err)
	require.Equal(t, "first", string(rep.Payload))
	require.ErrorContains(t, receive(t, errs), "already answered")
	require.NoError(t, p.Send(s.Name(), Message{Action: "twice"}))
	require.ErrorContains(t, receive(t, errs), "it is a one-way message, not a request")
}

// TestHelperProcess is the body of the helper processes, selected by
// IPC_HELPER; in a normal run it skips.
func TestHelperProcess(t *testing.T) {
	role := os.Getenv("IPC_HELPER")
	if role == "" {
		t.Skip("helper process only")
	}
	dir := os.Getenv("IPC_DIR")
	var err error
	switch role {
	case "secondary":
		err = secondaryRole(dir)
	case "garbage":
		err = garbageRole(dir)
	default:
		err = fmt.Errorf("unknown helper role %q", role)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "helper:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

var printMu sync.Mutex

func say(format string, args ...any) {
	printMu.Lock()
	defer printMu.Unlock()
	fmt.Printf(format+"\n", args...)
}

func secondaryRole(dir string) error {
	e, err := Listen(Options{Dir: dir})
	if err != nil {
		return err
	}
	defer e.Close()
	handlers := map[string]Handler{
		"echo": func(c *Call) error {
			return c.Reply(Message{Payload: append([]byte(e.Name()+":"), c.Payload...)})
		},
		"ack": func(c *Call) error { return nil },
		"note": func(c *Call) error {
			say("note %s", c.Payload)
			return nil
		},
		"ask-primary": func(c *Call) error {
			rep, err := e.Request(PrimarySocket, Message{Action: "whoami"}, time.Now().Add(waitLimit))
			if err != nil {
				return err
			}
			return c.Reply(rep)
		},
		"sleep": func(c *Call) error {
			d, err := time.ParseDuration(string(c.Payload))
			time.Sleep(d)
			return err
		},
		"write-fd": func(c *Call) error {
			if len(c.FDs) != 1 {
				return fmt.Errorf("want 1 fd, got %d", len(c.FDs))
			}
			_, err := unix.Write(c.FDs[0], []byte("written by "+e.Name()))
			return errors.Join(err, c.CloseFDs())
		},
		"make-memfd": func(c *Call) error {
			fd, err := unix.MemfdCreate("ipc-test", unix.MFD_CLOEXEC)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			if _, err := unix.Write(fd, c.Payload); err != nil {
				return err
			}
			return c.Reply(Message{FDs: []int{fd}})
		},
		"exit": func(c *Call) error {
			os.Exit(3)
			return nil
		},
		"fail": func(c *Call) error { return errors.New("disk on fire") },
	}
	for action, h := range handlers {
		if err := e.Register(action, h); err != nil {
			return err
		}
	}
	say("ready %s", e.Name())
	io.Copy(io.Discard, os.Stdin)
	return e.Close()
}

// garbageRole sends the primary eight datagrams it must reject, waits
// until every descriptor it attached to them is closed (the read end of
// the pipe sees EOF), then sends one valid message.
func garbageRole(dir string) error {
	say("ready garbage")
	primary := &unix.SockaddrUnix{Name: filepath.Join(dir, PrimarySocket)}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	wfd := int(w.Fd())

	unbound, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(unbound)
	if err := unix.Sendto(unbound, []byte("not a gopmd message"), 0, primary); err != nil {
		return fmt.Errorf("send from an unbound socket: %w", err)
	}

	raw, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(raw)
	rawPath := filepath.Join(dir, fmt.Sprintf("mp_socket_%d_900", os.Getpid()))
	if err := unix.Bind(raw, &unix.SockaddrUnix{Name: rawPath}); err != nil {
		return err
	}
	defer os.Remove(rawPath)
	badMagic := appendDatagram(nil, kindMessage, statusOK, 0, "note", nil, 0)
	badMagic[0] = 'X'
	huge := appendDatagram(nil, kindMessage, statusOK, 0, "note", make([]byte, MaxPayload), 0)
	huge = append(huge, make([]byte, 100)...)
	nine := []int{wfd, wfd, wfd, wfd, wfd, wfd, wfd, wfd, wfd}
	for i, d := range []struct {
		b   []byte
		fds []int
	}{
		{[]byte{1, 2, 3}, nil},
		{badMagic, nil},
		{appendDatagram(nil, kindMessage, statusOK, 0, "note", nil, 2), []int{wfd}},
		{huge, nil},
		{appendDatagram(nil, kindMessage, statusOK, 0, "note", nil, 8), nine},
		{appendDatagram(nil, kindReply, statusOK, 12345, "note", nil, 1), []int{wfd}},
	} {
		if err := unix.Sendmsg(raw, d.b, rights(d.fds), primary, 0); err != nil {
			return fmt.Errorf("garbage datagram %d: %w", i, err)
		}
	}

	e, err := Listen(Options{Dir: dir})
	if err != nil {
		return err
	}
	defer e.Close()
	if err := e.Send(PrimarySocket, Message{Action: "no-such-action", FDs: []int{wfd}}); err != nil {
		return err
	}
	w.Close()
	r.SetReadDeadline(time.Now().Add(waitLimit))
	if n, err := r.Read(make([]byte, 1)); err != io.EOF {
		return fmt.Errorf("pipe read returned %d, %v; want EOF once the primary closed every received copy", n, err)
	}
	say("fds closed")
	return e.Send(PrimarySocket, Message{Action: "note", Payload: []byte("valid after garbage")})
}

func TestAFullHandlerQueueDropsMessagesAndAnswersRequestsAsBusy(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	s, logs := listen(t, dir, false)
	release := make(chan struct{})
	unblock := sync.OnceFunc(func() { close(release) })
	t.Cleanup(unblock) // before Close, which waits for the handler
	var handled atomic.Int64
	require.NoError(t, s.Register("slow", func(c *Call) error {
		<-release
		handled.Add(1)
		return nil
	}))
	const sent = queueLen + 50
	for i := 0; i < sent; i++ {
		require.NoError(t, p.Send(s.Name(), Message{Action: "slow"}))
	}
	require.Eventually(t, func() bool { return s.Stats().Received == sent }, waitLimit, time.Millisecond)
	_, err := p.Request(s.Name(), Message{Action: "slow"}, time.Now().Add(waitLimit))
	require.ErrorIs(t, err, ErrRemote)
	require.ErrorContains(t, err, "peer is busy")
	require.Contains(t, logs.String(), "handler queue full")

	dropped := s.Stats().Rejected // final: nothing more arrives
	require.Positive(t, dropped)
	unblock()
	require.Eventually(t, func() bool { return handled.Load() == int64(sent+1-dropped) }, waitLimit, time.Millisecond,
		"every message that was not dropped is handled")
}

func TestSendWaitsForRoomInAFullPeerQueue(t *testing.T) {
	dir := runDir(t)
	p, _ := listen(t, dir, true)
	// A peer that does not read: its receive queue fills up.
	deaf, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	require.NoError(t, err)
	defer unix.Close(deaf)
	name := fmt.Sprintf("mp_socket_%d_800", os.Getpid())
	require.NoError(t, unix.Bind(deaf, &unix.SockaddrUnix{Name: filepath.Join(dir, name)}))
	b := appendDatagram(nil, kindMessage, statusOK, 0, "note", nil, 0)
	queued := 0
	for ; queued < 10000; queued++ {
		if err := p.send(name, b, nil, time.Now()); err != nil {
			require.ErrorIs(t, err, ErrTimeout)
			break
		}
	}
	require.Less(t, queued, 10000, "the peer's queue never filled")

	_, err = p.Request(name, Message{Action: "note"}, time.Now().Add(50*time.Millisecond))
	require.ErrorIs(t, err, ErrTimeout)
	require.ErrorContains(t, err, "the peer's receive queue stayed full")

	go func() {
		time.Sleep(50 * time.Millisecond)
		for i := 0; i < queued; i++ {
			unix.Read(deaf, make([]byte, maxDatagram))
		}
	}()
	require.NoError(t, p.Send(name, Message{Action: "note"}), "the send goes through once the peer reads")
}
