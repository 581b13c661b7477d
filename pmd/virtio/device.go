package virtio

import (
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/pmd/virtio/internal/virtqueue"
)

// transport is how one process reaches a port's virtio device: vhost-user
// (virtio_user) or PCI through VFIO (net_virtio). The device below is the
// same for both.
type transport interface {
	// start hands the device the rings of the configured queue pairs (and
	// the control queue) and makes it run. The rings are filled and the
	// queues disabled; start does not enable them.
	start(d *device) error
	// stop makes the device stop using the rings; the queues are disabled.
	stop(d *device) error
	// notifier returns how this process kicks virtqueue vq.
	notifier(vq int) (virtqueue.Notifier, error)
	// control carries out a control command the transport handles itself
	// (virtio_user emulates the control queue, as DPDK's does); handled is
	// false when the command must go to the device's control queue.
	control(d *device, class, cmd byte, data []byte) (handled bool, err error)
	// close releases what this process holds.
	close() error
}

// portShared is what every process needs to know about a port, in the
// memzone "vio_<port name>". Plain data only; TestSharedLayout checks it.
type portShared struct {
	Magic     uint64
	Version   uint32
	Transport uint32   // transportUser, transportModern, transportLegacy
	Features  Features // negotiated
	Offered   Features // what the device offered
	Kind      virtqueue.Kind
	RingSize  uint32
	HdrLen    uint32
	MaxPairs  uint32 // queue pairs the device has
	Pairs     uint32 // queue pairs configured
	CtrlSize  uint32 // descriptors of the control queue
	CtrlVQ    uint32 // index of the control queue: after the device's last queue pair
	Linear    uint32 // device addresses are AddrBase + group offset
	AddrBase  uint64
	Primary   int32     // pid of the primary, which holds the device
	PCI       pciShared // net_virtio only
}

const (
	portMagic   = 0x74726f706f697476 // "vtioport"
	portVersion = 1

	transportUser   = 1
	transportModern = 2
	transportLegacy = 3
)

// device is one process's driver object for a virtio-net port.
type device struct {
	port    *ethdev.Port
	mem     *hugemem.Memory
	primary bool
	sh      *portShared
	t       transport
	name    string // driver name for messages: virtio_user or net_virtio

	pools [ethdev.MaxQueues]*mbuf.Pool
	rx    [ethdev.MaxQueues]*virtqueue.Queue // the primary's own handles, for fill and reset
	tx    [ethdev.MaxQueues]*virtqueue.Queue
	ctrl  *virtqueue.Queue // the control queue, when the device has one
	// queue pairs set up with SetupRxQueue/SetupTxQueue
	haveRx, haveTx [ethdev.MaxQueues]bool
	started        bool
}

// disableTimeout bounds how long stopping a queue waits for a burst in
// progress.
const disableTimeout = time.Second

// ctrlTimeout bounds how long a control command waits for the device.
const ctrlTimeout = 2 * time.Second

func sharedZoneName(port string) string { return "vio_" + port }

// queueZoneName names the memzone of virtqueue vq of a port.
func queueZoneName(port string, vq int) string { return fmt.Sprintf("vio_%s_%d", port, vq) }

// newShared reserves (or reuses) the port's shared description.
func newShared(p *ethdev.Port) (*portShared, error) {
	mem := p.Memory()
	name := sharedZoneName(p.Name())
	if len(queueZoneName(p.Name(), 2*ethdev.MaxQueues)) > hugemem.NameLen {
		return nil, fmt.Errorf("port name %q is too long for its memzone names (%d bytes at most)", p.Name(), hugemem.NameLen-len("vio__32"))
	}
	z, err := mem.Lookup(name)
	if errors.Is(err, hugemem.ErrNotFound) {
		z, err = mem.Reserve(name, uint64(unsafe.Sizeof(portShared{})), 0)
	}
	if err != nil {
		return nil, err
	}
	if z.Len < uint64(unsafe.Sizeof(portShared{})) {
		return nil, fmt.Errorf("memzone %q is %d bytes, this build needs %d", name, z.Len, unsafe.Sizeof(portShared{}))
	}
	sh := (*portShared)(z.Ptr())
	*sh = portShared{Version: portVersion}
	return sh, nil
}

// lookupShared finds the port's description in a secondary.
func lookupShared(p *ethdev.Port) (*portShared, error) {
	z, err := p.Memory().Lookup(sharedZoneName(p.Name()))
	if err != nil {
		return nil, fmt.Errorf("the primary left no description of %s: %w", p.Name(), err)
	}
	sh := (*portShared)(z.Ptr())
	if z.Len < uint64(unsafe.Sizeof(portShared{})) || atomic.LoadUint64(&sh.Magic) != portMagic || sh.Version != portVersion {
		return nil, fmt.Errorf("memzone %q is not a virtio port description of this build", z.Name)
	}
	return sh, nil
}

func publishShared(sh *portShared) { atomic.StoreUint64(&sh.Magic, portMagic) }

func (d *device) Info() ethdev.Info {
	pairs := min(int(d.sh.MaxPairs), ethdev.MaxQueues)
	// Rings have the size the device or queue_size says; like DPDK's
	// virtio, descriptor counts given to queue setup are not used.
	return ethdev.Info{MaxRxQueues: pairs, MaxTxQueues: pairs, MinRxDesc: 1, MaxRxDesc: virtqueue.MaxSize,
		MinTxDesc: 1, MaxTxDesc: virtqueue.MaxSize}
}

// Configure sets the number of queue pairs: the larger of the two counts.
func (d *device) Configure(cfg ethdev.Config) error {
	pairs := max(cfg.RxQueues, cfg.TxQueues)
	if pairs > int(d.sh.MaxPairs) {
		return fmt.Errorf("%d queue pairs asked, the device has %d", pairs, d.sh.MaxPairs)
	}
	if pairs > 1 && !d.sh.Features.Has(FeatMQ) {
		return fmt.Errorf("%d queue pairs need VIRTIO_NET_F_MQ, which was not negotiated (features %v)", pairs, d.sh.Features)
	}
	d.sh.Pairs = uint32(pairs)
	return nil
}

// setupQueue lays out virtqueue vq in its memzone (reusing one left by an
// earlier setup) and returns the primary's handle on it.
func (d *device) setupQueue(vq int, role virtqueue.Role, pool *mbuf.Pool) (*virtqueue.Queue, error) {
	if d.started {
		return nil, fmt.Errorf("stop the port before setting up its queues")
	}
	mem := d.mem
	name := queueZoneName(d.port.Name(), vq)
	ring := int(d.sh.RingSize)
	if role == virtqueue.RoleCtrl {
		ring = int(d.sh.CtrlSize)
	}
	size := virtqueue.ZoneSize(d.sh.Kind, ring)
	z, err := mem.Lookup(name)
	if err == nil && z.Len < size {
		if err = mem.Free(name); err == nil {
			err = hugemem.ErrNotFound
		}
	}
	if errors.Is(err, hugemem.ErrNotFound) {
		align := uint64(virtqueue.ZoneAlign)
		if d.sh.Linear == 0 {
			// Physical addresses: keep the queue inside one hugepage, so
			// that the device sees it contiguous.
			for align < size && align < 2<<20 {
				align <<= 1
			}
		}
		z, err = mem.Reserve(name, size, align)
	}
	if err != nil {
		return nil, fmt.Errorf("virtqueue %d memory: %w", vq, err)
	}
	hdr := int(d.sh.HdrLen)
	if role == virtqueue.RoleCtrl {
		hdr = 0
	}
	cfg := virtqueue.Config{Kind: d.sh.Kind, Role: role, Size: ring, HdrLen: hdr,
		Mergeable: role == virtqueue.RoleRx && d.sh.Features.Has(FeatMrgRxbuf), Addressing: d.addressing()}
	if err := virtqueue.Init(mem, z, cfg); err != nil {
		return nil, err
	}
	a := virtqueue.Attachment{Pool: pool, Port: d.port.ID}
	if role == virtqueue.RoleCtrl {
		if a.Notifier, err = d.t.notifier(vq); err != nil {
			return nil, err
		}
	}
	return virtqueue.Attach(mem, z, a)
}

func (d *device) addressing() virtqueue.Addressing {
	return virtqueue.Addressing{Linear: d.sh.Linear != 0, Base: d.sh.AddrBase}
}

func (d *device) SetupRxQueue(q, desc int, pool *mbuf.Pool) error {
	vq, err := d.setupQueue(2*q, virtqueue.RoleRx, pool)
	if err != nil {
		return err
	}
	d.rx[q], d.pools[q], d.haveRx[q] = vq, pool, true
	return nil
}

func (d *device) SetupTxQueue(q, desc int) error {
	vq, err := d.setupQueue(2*q+1, virtqueue.RoleTx, nil)
	if err != nil {
		return err
	}
	d.tx[q], d.haveTx[q] = vq, true
	return nil
}

// ctrlVQ is the control queue's index: after every queue pair the device
// has (which may be more than a port uses).
func (d *device) ctrlVQ() int { return int(d.sh.CtrlVQ) }

// Start fills the rx rings, hands every ring to the device, enables the
// queues and sets the number of queue pairs.
func (d *device) Start() error {
	pairs := int(d.sh.Pairs)
	for q := range pairs {
		if !d.haveRx[q] {
			// A queue pair the application left without rx still needs
			// rings: the device owns both directions.
			return fmt.Errorf("rx queue %d of %d queue pairs was not set up", q, pairs)
		}
		if !d.haveTx[q] {
			if err := d.SetupTxQueue(q, 0); err != nil {
				return err
			}
		}
	}
	if d.sh.Features.Has(FeatCtrlVQ) && d.ctrl == nil {
		if _, emulated := d.t.(*userTransport); !emulated {
			c, err := d.setupQueue(d.ctrlVQ(), virtqueue.RoleCtrl, nil)
			if err != nil {
				return fmt.Errorf("control queue: %w", err)
			}
			d.ctrl = c
		}
	}
	for q := range pairs {
		if err := d.rx[q].Fill(); err != nil {
			d.resetQueues()
			return err
		}
	}
	if err := d.t.start(d); err != nil {
		d.resetQueues()
		return err
	}
	d.started = true
	for q := range pairs {
		d.rx[q].Enable()
		d.tx[q].Enable()
	}
	if d.sh.Features.Has(FeatMQ) {
		data := []byte{byte(pairs), byte(pairs >> 8)}
		if err := d.command(ctrlMQ, ctrlMQPairsSet, data); err != nil {
			d.Stop()
			return fmt.Errorf("set %d queue pairs: %w", pairs, err)
		}
	}
	return nil
}

// Stop disables the queues, stops the device and frees the mbufs it held.
func (d *device) Stop() error {
	if !d.started {
		return nil
	}
	var errs []error
	for q := range int(d.sh.Pairs) {
		errs = append(errs, d.rx[q].Disable(disableTimeout), d.tx[q].Disable(disableTimeout))
	}
	errs = append(errs, d.t.stop(d))
	d.resetQueues()
	d.started = false
	return errors.Join(errs...)
}

func (d *device) resetQueues() {
	for q := range int(d.sh.Pairs) {
		if d.rx[q] != nil {
			d.rx[q].Reset()
		}
		if d.tx[q] != nil {
			d.tx[q].Reset()
		}
	}
	if d.ctrl != nil {
		d.ctrl.Reset()
	}
}

// command carries out a control command, by the transport or through the
// control queue.
func (d *device) command(class, cmd byte, data []byte) error {
	if handled, err := d.t.control(d, class, cmd, data); handled {
		return err
	}
	if d.ctrl == nil {
		return fmt.Errorf("the device has no control queue (VIRTIO_NET_F_CTRL_VQ not negotiated)")
	}
	ack, err := d.ctrl.Command(append([]byte{class, cmd}, data...), ctrlTimeout)
	if err != nil {
		return err
	}
	if ack != ctrlOK {
		return fmt.Errorf("the device refused control command class %d command %d (answer %d)", class, cmd, ack)
	}
	return nil
}

// SetPromiscuous sends VIRTIO_NET_CTRL_RX_PROMISC.
func (d *device) SetPromiscuous(on bool) error {
	if !d.sh.Features.Has(FeatCtrlRx) {
		return fmt.Errorf("promiscuous mode needs VIRTIO_NET_F_CTRL_RX, which was not negotiated (features %v)", d.sh.Features)
	}
	v := byte(0)
	if on {
		v = 1
	}
	return d.command(ctrlRx, ctrlRxPromisc, []byte{v})
}

// SetMACFilter sets the device's unicast and multicast address filters
// (VIRTIO_NET_CTRL_MAC_TABLE_SET); frames to other addresses are dropped
// unless the port is promiscuous.
func (d *device) SetMACFilter(unicast, multicast [][6]byte) error {
	if !d.primary {
		return fmt.Errorf("only the primary may change the device")
	}
	if !d.sh.Features.Has(FeatCtrlRx) {
		return fmt.Errorf("MAC filters need VIRTIO_NET_F_CTRL_RX, which was not negotiated (features %v)", d.sh.Features)
	}
	if 8+6*(len(unicast)+len(multicast)) > virtqueue.MaxCommand-2 {
		return fmt.Errorf("%d addresses do not fit one control command", len(unicast)+len(multicast))
	}
	var b []byte
	for _, table := range [][][6]byte{unicast, multicast} {
		n := uint32(len(table))
		b = append(b, byte(n), byte(n>>8), byte(n>>16), byte(n>>24))
		for _, a := range table {
			b = append(b, a[:]...)
		}
	}
	return d.command(ctrlMAC, ctrlMACTableSet, b)
}

// RxQueue attaches this process to rx queue q.
func (d *device) RxQueue(q int, counters *ethdev.QueueCounters) (ethdev.RxQueue, error) {
	pool := d.pools[q]
	if pool == nil {
		var err error
		if pool, err = d.port.RxPool(q); err != nil {
			return nil, err
		}
	}
	vq, err := d.attachQueue(2*q, counters, pool)
	if err != nil {
		return nil, err
	}
	return &RxQueue{vq}, nil
}

// TxQueue attaches this process to tx queue q.
func (d *device) TxQueue(q int, counters *ethdev.QueueCounters) (ethdev.TxQueue, error) {
	vq, err := d.attachQueue(2*q+1, counters, nil)
	if err != nil {
		return nil, err
	}
	return &TxQueue{vq}, nil
}

func (d *device) attachQueue(vq int, counters *ethdev.QueueCounters, pool *mbuf.Pool) (*virtqueue.Queue, error) {
	z, err := d.mem.Lookup(queueZoneName(d.port.Name(), vq))
	if err != nil {
		return nil, fmt.Errorf("virtqueue %d was not set up: %w", vq, err)
	}
	n, err := d.t.notifier(vq)
	if err != nil {
		return nil, err
	}
	return virtqueue.Attach(d.mem, z, virtqueue.Attachment{Notifier: n, Counters: counters, Pool: pool, Port: d.port.ID})
}

// RxQueue is a virtio rx queue as a process polls it.
type RxQueue struct{ q *virtqueue.Queue }

// RxBurst receives frames; see ethdev.RxQueue.
func (r *RxQueue) RxBurst(pkts []*mbuf.Mbuf) int { return r.q.Rx(pkts) }

// BindLcore (ethdev.LcoreBinder) makes the queue allocate rx buffers
// through lcore's cache of its pool, and free dropped frames through it.
func (r *RxQueue) BindLcore(lcore int) { r.q.BindLcore(lcore) }

// TxQueue is a virtio tx queue as a process drives it.
type TxQueue struct{ q *virtqueue.Queue }

// TxBurst sends frames; see ethdev.TxQueue.
func (t *TxQueue) TxBurst(pkts []*mbuf.Mbuf) int { return t.q.Tx(pkts) }

// BindLcore (ethdev.LcoreBinder) makes the queue free sent mbufs through
// lcore's cache of each mbuf's own pool, instead of through the pools'
// rings.
func (t *TxQueue) BindLcore(lcore int) { t.q.BindLcore(lcore) }

var (
	_ ethdev.LcoreBinder = (*RxQueue)(nil)
	_ ethdev.LcoreBinder = (*TxQueue)(nil)
)

// XStats are the negotiated features and, per queue, what the device
// returned that had to be dropped.
func (d *device) XStats() []ethdev.XStat {
	out := []ethdev.XStat{{Name: "virtio_features", Value: uint64(d.sh.Features)}}
	for q := range int(d.sh.Pairs) {
		for _, dir := range []struct {
			name string
			vq   int
		}{{"rx", 2 * q}, {"tx", 2*q + 1}} {
			z, err := d.mem.Lookup(queueZoneName(d.port.Name(), dir.vq))
			if err != nil {
				continue
			}
			s, err := virtqueue.ReadStats(z)
			if err != nil {
				continue
			}
			p := fmt.Sprintf("%s_q%d_", dir.name, q)
			out = append(out,
				ethdev.XStat{Name: p + "bad_id", Value: s.BadID},
				ethdev.XStat{Name: p + "bad_len", Value: s.BadLen},
				ethdev.XStat{Name: p + "bad_merge", Value: s.BadMerge},
				ethdev.XStat{Name: p + "no_mbuf", Value: s.NoMbuf},
				ethdev.XStat{Name: p + "kicks", Value: s.Kicks},
				ethdev.XStat{Name: p + "completed", Value: s.Completed},
				ethdev.XStat{Name: p + "dropped_oversize", Value: s.Oversize},
				ethdev.XStat{Name: p + "dropped_no_dma", Value: s.NoDMA})
		}
	}
	return out
}

// Close releases this process's part; in the primary, the device too.
func (d *device) Close() error {
	var errs []error
	if d.primary {
		errs = append(errs, d.Stop())
	}
	errs = append(errs, d.t.close())
	return errors.Join(errs...)
}

// logNegotiated says what was negotiated, once per probe.
func logNegotiated(d *device) {
	slog.Info(d.name+": features negotiated", "port", d.port.Name(), "offered", d.sh.Offered, "negotiated", d.sh.Features,
		"ring", d.sh.Kind, "ring_size", d.sh.RingSize, "queue_pairs", d.sh.MaxPairs)
}

// Features returns what the driver negotiated with the device.
func (d *device) Features() Features { return d.sh.Features }

// Negotiated returns the features a virtio port runs with (for
// virtio_user, those it provides itself included), and false if the port
// is not a virtio one.
func Negotiated(p *ethdev.Port) (Features, bool) {
	d, ok := p.Device().(*device)
	if !ok {
		return 0, false
	}
	return d.sh.Features, true
}

// SetMACFilter sets the unicast and multicast address filters of a virtio
// port (VIRTIO_NET_CTRL_MAC_TABLE_SET), from the primary.
func SetMACFilter(p *ethdev.Port, unicast, multicast [][6]byte) error {
	d, ok := p.Device().(*device)
	if !ok {
		return fmt.Errorf("virtio: %s is not a virtio port", p.Name())
	}
	return d.SetMACFilter(unicast, multicast)
}
