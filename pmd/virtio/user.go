package virtio

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/mp/ipc"
	"github.com/gopmd/gopmd/pmd/virtio/internal/virtqueue"
	"golang.org/x/sys/unix"
)

func init() { ethdev.Register("virtio_user", userDriver{}) }

// userFrontend are the features virtio_user provides itself rather than
// the back-end, as DPDK's virtio_user does: the MAC address (mac=), the
// link state (whether a back-end is connected), and the control queue,
// whose commands are carried out here.
const userFrontend Features = 1<<FeatMAC | 1<<FeatStatus | 1<<FeatCtrlVQ | 1<<FeatCtrlRx

// userBackend are the features virtio_user negotiates with the back-end.
const userBackend Features = 1<<FeatVersion1 | 1<<FeatMrgRxbuf | 1<<FeatMQ | 1<<FeatRingPacked

// userAddrBase is where the guest addresses we give the back-end start:
// the device address of group offset off is userAddrBase + off, the same
// number VFIO gets in VA mode.
const userAddrBase = hugemem.IOVABase

// userRetry is how often a client looks for its back-end again.
const userRetry = 100 * time.Millisecond

type userDriver struct{}

// userTransport is the vhost-user front-end. In the primary it holds the
// socket and a goroutine that notices a back-end leaving and sets up the
// next one; in a secondary it only fetches kick eventfds.
type userTransport struct {
	port    *ethdev.Port
	proc    *mp.Process
	args    userArgs
	primary bool

	mu       sync.Mutex // orders the monitor goroutine and the ethdev calls
	dev      *device
	conn     *vhostConn // nil while no back-end is connected
	listenFD int        // server mode
	protocol bool       // the back-end took PROTOCOL_FEATURES
	started  bool       // the rings are the device's
	sentSegs int        // segments in the memory table the back-end has
	kick     []int      // eventfd per vring; stays across reconnections
	call     []int
	stopCh   chan struct{}
	done     chan struct{} // closed when the monitor returns; nil if it never ran
	action   string        // IPC action serving kick fds to secondaries

	secondaryFDs []int // kick fds a secondary received
}

func (userDriver) Probe(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	args, err := parseUserArgs(dev)
	if err != nil {
		return nil, err
	}
	sh, err := newShared(p)
	if err != nil {
		return nil, err
	}
	u := &userTransport{port: p, proc: p.Process(), args: args, primary: true, listenFD: -1,
		stopCh: make(chan struct{})}
	d := &device{port: p, mem: p.Memory(), primary: true, sh: sh, t: u, name: "virtio_user"}
	u.dev = d

	want := userBackend
	if !args.mrgRxbuf {
		want &^= 1 << FeatMrgRxbuf
	}
	if !args.packed {
		want &^= 1 << FeatRingPacked
	}
	if args.queues == 1 {
		want &^= 1 << FeatMQ
	}
	sh.Transport = transportUser
	sh.Features = want
	sh.MaxPairs = uint32(args.queues)
	sh.RingSize = uint32(args.queueSize)
	sh.Linear, sh.AddrBase = 1, userAddrBase
	sh.Primary = int32(os.Getpid())
	for range 2 * args.queues {
		k, err1 := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		c, err2 := unix.Eventfd(0, unix.EFD_CLOEXEC|unix.EFD_NONBLOCK)
		if err := errors.Join(err1, err2); err != nil {
			u.close()
			return nil, fmt.Errorf("eventfd: %w", err)
		}
		u.kick, u.call = append(u.kick, k), append(u.call, c)
	}

	if args.server {
		if err := u.listen(); err != nil {
			u.close()
			return nil, err
		}
	} else {
		// The back-end must be there when the port is created, as for
		// DPDK's virtio_user: its features decide the ring format.
		c, err := dialVhost(args.path)
		if err != nil {
			u.close()
			return nil, err
		}
		offered, err := u.handshake(c, true)
		if err != nil {
			c.close()
			u.close()
			return nil, err
		}
		sh.Offered = offered
		u.conn = c
	}
	finishFeatures(sh)
	mac := args.mac
	if mac == nil {
		mac = randomMAC()
	}
	p.SetMAC(mac)
	u.action = "virtio_user_kick_" + p.Name()
	if err := u.proc.IPC().Register(u.action, u.serveKick); err != nil {
		u.close()
		return nil, err
	}
	publishShared(sh)
	logNegotiated(d)
	p.SetLink(ethdev.Link{Up: u.conn != nil, Mbps: 10000})
	u.done = make(chan struct{})
	go u.monitor()
	return d, nil
}

// finishFeatures settles what the port runs with once the back-end's
// features are known (or assumed, in server mode).
func finishFeatures(sh *portShared) {
	f := sh.Features | userFrontend
	sh.Features = f
	sh.Kind = virtqueue.Split
	if f.Has(FeatRingPacked) {
		sh.Kind = virtqueue.Packed
	}
	sh.HdrLen = uint32(netHdrLen(f))
}

func randomMAC() net.HardwareAddr {
	mac := make(net.HardwareAddr, 6)
	rand.Read(mac)
	mac[0] = mac[0]&^1 | 2 // unicast, locally administered
	return mac
}

func (userDriver) Attach(p *ethdev.Port, dev eal.VDev) (ethdev.Device, error) {
	sh, err := lookupShared(p)
	if err != nil {
		return nil, err
	}
	u := &userTransport{port: p, proc: p.Process(), listenFD: -1, action: "virtio_user_kick_" + p.Name()}
	d := &device{port: p, mem: p.Memory(), sh: sh, t: u, name: "virtio_user"}
	u.dev = d
	return d, nil
}

// handshake opens a session with a freshly connected back-end: ownership,
// features, protocol features, queue count, call eventfds. On the first
// connection (first) the back-end may lower what we asked for; later ones
// must offer everything the port already runs with. It returns the
// back-end's features.
func (u *userTransport) handshake(c *vhostConn, first bool) (Features, error) {
	sh := u.dev.sh
	if err := c.do(vhostSetOwner, nil); err != nil {
		return 0, err
	}
	f, err := c.getU64(vhostGetFeatures)
	if err != nil {
		return 0, err
	}
	offered := Features(f)
	wanted := sh.Features & userBackend
	if first {
		if !offered.Has(FeatVersion1) {
			return 0, fmt.Errorf("the vhost-user back-end offers features %v without VERSION_1; this driver needs a virtio 1 device", offered)
		}
		wanted &= offered
		if u.args.queues > 1 && !wanted.Has(FeatMQ) {
			return 0, fmt.Errorf("queues=%d needs the back-end to offer MQ; it offers %v", u.args.queues, offered)
		}
		sh.Features = wanted
	} else if missing := wanted &^ offered; missing != 0 {
		return 0, fmt.Errorf("the new vhost-user back-end lacks %v, which this port runs with (it offers %v)", missing, offered)
	}
	u.protocol = offered.Has(featProtocolFeatures)
	c.replyAck = false
	if u.protocol {
		pf, err := c.getU64(vhostGetProtocolFeatures)
		if err != nil {
			return 0, err
		}
		use := pf & (1<<protoMQ | 1<<protoReplyAck)
		if err := c.do(vhostSetProtocolFeatures, u64(use)); err != nil {
			return 0, err
		}
		c.replyAck = use&(1<<protoReplyAck) != 0
		if wanted.Has(FeatMQ) {
			if use&(1<<protoMQ) == 0 {
				return 0, fmt.Errorf("queues=%d needs the MQ protocol feature, which the back-end lacks", u.args.queues)
			}
			n, err := c.getU64(vhostGetQueueNum)
			if err != nil {
				return 0, err
			}
			if n < uint64(u.args.queues) {
				return 0, fmt.Errorf("queues=%d but the back-end has %d queue pairs", u.args.queues, n)
			}
		}
	} else if wanted.Has(FeatMQ) {
		return 0, fmt.Errorf("queues=%d needs vhost-user protocol features, which the back-end lacks", u.args.queues)
	}
	// The call eventfds go first: DPDK's back-end allocates a vring when it
	// first hears of it.
	for vq := range 2 * u.args.queues {
		if err := c.setVringFD(vhostSetVringCall, uint32(vq), u.call[vq]); err != nil {
			return 0, err
		}
	}
	backend := wanted
	if u.protocol {
		backend |= 1 << featProtocolFeatures
	}
	if err := c.do(vhostSetFeatures, u64(uint64(backend))); err != nil {
		return 0, err
	}
	return offered, nil
}

// setupRings gives the back-end our memory and the rings of the
// configured queue pairs, and enables them. fresh rings start at 0;
// otherwise each resumes where the device stopped (DeviceBase).
func (u *userTransport) setupRings(c *vhostConn, d *device, fresh bool) error {
	if err := u.sendMemTable(c, d); err != nil {
		return err
	}
	pairs := int(d.sh.Pairs)
	var vqs []*virtqueue.Queue
	for q := range pairs {
		vqs = append(vqs, d.rx[q])
	}
	for q := range pairs {
		vqs = append(vqs, d.tx[q])
	}
	for i, q := range vqs {
		vq := uint32(2 * (i % pairs))
		if i >= pairs {
			vq++
		}
		base := uint32(0)
		if d.sh.Kind == virtqueue.Packed {
			base = 1 << 15 // wrap counter set
		}
		if !fresh {
			base = q.DeviceBase()
		}
		desc, driver, device := q.Addrs()
		if err := errors.Join(
			// The call eventfd again: GET_VRING_BASE (stop) made the
			// back-end drop it.
			c.setVringFD(vhostSetVringCall, vq, u.call[vq]),
			c.do(vhostSetVringNum, vringState(vq, uint32(q.Size()))),
			c.do(vhostSetVringBase, vringState(vq, base)),
			c.setVringAddr(vq, desc, driver, device),
			c.setVringFD(vhostSetVringKick, vq, u.kick[vq]),
		); err != nil {
			return err
		}
	}
	if u.protocol {
		for vq := range 2 * pairs {
			if err := c.do(vhostSetVringEnable, vringState(uint32(vq), 1)); err != nil {
				return err
			}
		}
	}
	return nil
}

// sendMemTable gives the back-end every segment of the group.
func (u *userTransport) sendMemTable(c *vhostConn, d *device) error {
	syncSegments(d)
	segs := d.mem.Segments()
	var regions []region
	for _, s := range segs {
		a := userAddrBase + s.Off
		regions = append(regions, region{GuestAddr: a, Size: s.Len, UserAddr: a, FD: s.FD})
	}
	if err := c.setMemTable(regions); err != nil {
		return err
	}
	u.sentSegs = len(segs)
	return nil
}

// syncSegments maps the segments other processes of the group added (a
// secondary creating a pool, say), which this process's list of segments
// lacks until it takes the group lock: the back-end must be given them
// before any of their buffers is put on a ring. If some cannot be mapped,
// the back-end gets the others, and the failure is logged.
func syncSegments(d *device) {
	if err := d.mem.Sync(); err != nil {
		slog.Warn("virtio_user: cannot map every segment of the group; the vhost-user back-end will not reach buffers in those",
			"port", d.port.Name(), "err", err)
	}
}

func (u *userTransport) start(d *device) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil {
		if err := u.setupRings(u.conn, d, true); err != nil {
			if !errors.Is(err, errBackendGone) {
				return err
			}
			u.dropConn(err) // the monitor sets the rings up with the next back-end
		}
	}
	u.started = true
	return nil
}

func (u *userTransport) stop(d *device) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.started = false
	if u.conn == nil {
		return nil
	}
	var errs []error
	pairs := int(d.sh.Pairs)
	if u.protocol {
		for vq := range 2 * pairs {
			errs = append(errs, u.conn.do(vhostSetVringEnable, vringState(uint32(vq), 0)))
		}
	}
	for vq := range 2 * pairs {
		_, err := u.conn.getVringBase(uint32(vq))
		errs = append(errs, err)
	}
	if err := errors.Join(errs...); err != nil {
		u.dropConn(err)
		return nil // the device is stopped either way
	}
	return nil
}

// dropConn forgets a back-end that failed or left; the caller holds u.mu.
func (u *userTransport) dropConn(why error) {
	if u.conn == nil {
		return
	}
	slog.Warn("virtio_user: vhost-user back-end gone", "port", u.port.Name(), "path", u.args.path, "why", why)
	u.conn.close()
	u.conn = nil
	u.port.SetLink(ethdev.Link{Up: false})
}

// monitor watches the connection in the primary: it notices the back-end
// leaving, and connects (client) or accepts (server) the next one.
func (u *userTransport) monitor() {
	defer close(u.done)
	t := time.NewTicker(userRetry)
	defer t.Stop()
	for {
		select {
		case <-u.stopCh:
			return
		case <-t.C:
		}
		u.mu.Lock()
		if u.conn != nil {
			if u.conn.hungUp() {
				u.dropConn(errors.New("the socket was closed"))
			} else if u.started && u.segmentsAdded() {
				// The group grew (a new pool, say): tell the back-end, or it
				// cannot reach buffers in the new segment.
				if err := u.sendMemTable(u.conn, u.dev); err != nil {
					u.dropConn(err)
				}
			}
		} else {
			u.reconnect()
		}
		u.mu.Unlock()
	}
}

// segmentsAdded reports whether the group has segments the back-end was
// not given, whichever process added them.
func (u *userTransport) segmentsAdded() bool {
	syncSegments(u.dev)
	return len(u.dev.mem.Segments()) != u.sentSegs
}

// reconnect tries once to get a back-end and set it up; the caller holds
// u.mu.
func (u *userTransport) reconnect() {
	var c *vhostConn
	var err error
	if u.args.server {
		fd, _, aerr := unix.Accept4(u.listenFD, unix.SOCK_CLOEXEC)
		if aerr != nil {
			return // nobody yet
		}
		c, err = newVhostConn(fd)
	} else {
		c, err = dialVhost(u.args.path)
		if err != nil {
			return // not back yet
		}
	}
	if err == nil {
		err = u.resume(c)
	}
	if err != nil {
		slog.Warn("virtio_user: vhost-user back-end refused", "port", u.port.Name(), "path", u.args.path, "err", err)
		if c != nil {
			c.close()
		}
		return
	}
	u.conn = c
	slog.Info("virtio_user: vhost-user back-end connected", "port", u.port.Name(), "path", u.args.path)
	u.port.SetLink(ethdev.Link{Up: true, Mbps: 10000})
}

// resume sets a new back-end up the way the last one was: the session,
// and, if the port runs, the rings where the device left them. The pollers
// pause meanwhile, so that the positions stay put.
func (u *userTransport) resume(c *vhostConn) error {
	d := u.dev
	offered, err := u.handshake(c, false)
	if err != nil {
		return err
	}
	d.sh.Offered = offered
	if !u.started {
		return nil
	}
	pairs := int(d.sh.Pairs)
	var errs []error
	for q := range pairs {
		errs = append(errs, d.rx[q].Disable(disableTimeout), d.tx[q].Disable(disableTimeout))
	}
	if err := errors.Join(errs...); err != nil {
		slog.Warn("virtio_user: resuming with a poller still in a burst", "port", u.port.Name(), "err", err)
	}
	err = u.setupRings(c, d, false)
	for q := range pairs {
		d.rx[q].Enable()
		d.tx[q].Enable()
	}
	return err
}

func (u *userTransport) listen() error {
	path := u.args.path
	if st, err := os.Lstat(path); err == nil && st.Mode()&os.ModeSocket != 0 {
		// A socket file nobody listens on any more is left over.
		if c, err := dialVhost(path); err == nil {
			c.close()
			return fmt.Errorf("server=1: someone already listens on %s", path)
		}
		os.Remove(path)
	}
	fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		return fmt.Errorf("vhost-user socket: %w", err)
	}
	if err := unix.Bind(fd, &unix.SockaddrUnix{Name: path}); err != nil {
		unix.Close(fd)
		return fmt.Errorf("server=1: listen on %s: %w", path, err)
	}
	if err := unix.Listen(fd, 1); err != nil {
		unix.Close(fd)
		return fmt.Errorf("server=1: listen on %s: %w", path, err)
	}
	u.listenFD = fd
	return nil
}

// control carries out control commands locally: queue pairs are the
// vrings set up at start, and a vhost-user back-end has no receive filter
// (it delivers every frame), so filter commands have nothing to change.
func (u *userTransport) control(d *device, class, cmd byte, data []byte) (bool, error) {
	switch {
	case class == ctrlMQ && cmd == ctrlMQPairsSet:
		if len(data) != 2 || int(binary.LittleEndian.Uint16(data)) != int(d.sh.Pairs) {
			return true, fmt.Errorf("virtio_user sets up exactly the configured %d queue pairs", d.sh.Pairs)
		}
		return true, nil
	case class == ctrlRx, class == ctrlMAC:
		return true, nil
	}
	return true, fmt.Errorf("control command class %d command %d is not supported by virtio_user", class, cmd)
}

// serveKick hands a secondary the kick eventfd of a vring.
func (u *userTransport) serveKick(c *ipc.Call) error {
	vq, err := strconv.Atoi(string(c.Payload))
	if err != nil || vq < 0 || vq >= len(u.kick) {
		return fmt.Errorf("no vring %q on %s", c.Payload, u.port.Name())
	}
	return c.Reply(ipc.Message{FDs: []int{u.kick[vq]}})
}

func (u *userTransport) notifier(vq int) (virtqueue.Notifier, error) {
	if u.primary {
		if vq >= len(u.kick) {
			return nil, fmt.Errorf("no vring %d", vq)
		}
		return &eventfdNotifier{fd: u.kick[vq], one: [8]byte{1}}, nil
	}
	reply, err := u.proc.IPC().Request(ipc.PrimarySocket, ipc.Message{Action: u.action, Payload: []byte(strconv.Itoa(vq))},
		time.Now().Add(2*time.Second))
	if err != nil {
		return nil, fmt.Errorf("kick eventfd of vring %d from the primary: %w", vq, err)
	}
	if len(reply.FDs) != 1 {
		reply.CloseFDs()
		return nil, fmt.Errorf("the primary sent %d fds for vring %d's kick, want 1", len(reply.FDs), vq)
	}
	u.mu.Lock()
	u.secondaryFDs = append(u.secondaryFDs, reply.FDs[0])
	u.mu.Unlock()
	return &eventfdNotifier{fd: reply.FDs[0], one: [8]byte{1}}, nil
}

func (u *userTransport) close() error {
	if u.stopCh != nil {
		select {
		case <-u.stopCh:
		default:
			close(u.stopCh)
			if u.action != "" && u.primary {
				u.proc.IPC().Unregister(u.action)
			}
			if u.done != nil {
				<-u.done
			}
		}
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.conn != nil {
		u.conn.close()
		u.conn = nil
	}
	if u.listenFD >= 0 {
		unix.Close(u.listenFD)
		u.listenFD = -1
		os.Remove(u.args.path)
	}
	for _, fd := range append(append(u.kick, u.call...), u.secondaryFDs...) {
		unix.Close(fd)
	}
	u.kick, u.call, u.secondaryFDs = nil, nil, nil
	return nil
}

// eventfdNotifier kicks a vhost-user vring by writing its eventfd.
type eventfdNotifier struct {
	fd  int
	one [8]byte
}

func (n *eventfdNotifier) Notify() { unix.Write(n.fd, n.one[:]) }
