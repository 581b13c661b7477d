package ethdev

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"golang.org/x/sys/unix"
)

// Port is this process's handle on a port of the group.
type Port struct {
	ID   uint16
	proc *mp.Process
	sh   *sharedPort
	dev  Device
	vdev eal.VDev

	primary bool
	rx      [MaxQueues]RxQueue // queues this process claimed
	tx      [MaxQueues]TxQueue
	closed  bool

	poolsMu  sync.Mutex
	rxPools  [MaxQueues]*mbuf.Pool // RxPool's handles, by queue; closed by Close
	oldPools []*mbuf.Pool          // handles of pools a queue had before it was set up again
}

// errNameTaken is wrapped when a port's name is in use.
var errNameTaken = errors.New("port name taken")

// ErrQueueTaken is wrapped when another live process polls a queue.
var ErrQueueTaken = errors.New("queue is claimed by another process")

// table finds or creates the group's port registry.
func table(proc *mp.Process) (*portTable, error) {
	mem := proc.Mem
	z, err := mem.Lookup(portsZone)
	if errors.Is(err, hugemem.ErrNotFound) {
		z, err = mem.Reserve(portsZone, uint64(unsafe.Sizeof(portTable{})), 0)
		if errors.Is(err, hugemem.ErrExists) { // another process was quicker
			z, err = mem.Lookup(portsZone)
		} else if err == nil {
			t := (*portTable)(z.Ptr())
			t.Version = portsVersion
			atomic.StoreUint64(&t.Magic, portsMagic)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("ethdev: port registry: %w", err)
	}
	if z.Len < uint64(unsafe.Sizeof(portTable{})) {
		return nil, fmt.Errorf("ethdev: port registry is %d bytes, this build needs %d: incompatible build", z.Len, unsafe.Sizeof(portTable{}))
	}
	t := (*portTable)(z.Ptr())
	if atomic.LoadUint64(&t.Magic) != portsMagic || t.Version != portsVersion {
		return nil, fmt.Errorf("ethdev: port registry has magic %#x version %d, this build needs %#x version %d", t.Magic, t.Version, uint64(portsMagic), portsVersion)
	}
	return t, nil
}

// Create makes a new port from a device string such as
// "net_memif0,role=server,socket=/run/m.sock". Only the primary creates
// ports; the name must be unique in the group.
func Create(proc *mp.Process, device string) (*Port, error) {
	if proc.Type() != mp.Primary {
		return nil, fmt.Errorf("ethdev: create %q: only the primary creates ports; a %s attaches with Attach", device, proc.Type())
	}
	vdev, err := eal.ParseVDev(device)
	if err != nil {
		return nil, fmt.Errorf("ethdev: %w", err)
	}
	if len(vdev.Name) >= nameLen || len(device) >= argsLen {
		return nil, fmt.Errorf("ethdev: device %q: name is limited to %d bytes and the whole string to %d", device, nameLen-1, argsLen-1)
	}
	drvName, drv, err := driverFor(vdev.Name)
	if err != nil {
		return nil, err
	}
	t, err := table(proc)
	if err != nil {
		return nil, err
	}
	p := &Port{proc: proc, vdev: vdev, primary: true}
	err = proc.Mem.WithLock(func() error {
		free := -1
		for i := range t.Ports {
			sp := &t.Ports[i]
			if sp.State == stateFree {
				if free < 0 {
					free = i
				}
				continue
			}
			if cstr(sp.Name[:]) == vdev.Name {
				if sp.Owner.Alive() {
					return fmt.Errorf("ethdev: a port named %q already exists (port %d): %w", vdev.Name, i, errNameTaken)
				}
				free = i // left by a dead primary of an earlier group incarnation
				break
			}
		}
		if free < 0 {
			return fmt.Errorf("ethdev: all %d ports of the group are in use", MaxPorts)
		}
		sp := &t.Ports[free]
		*sp = sharedPort{Owner: mp.Self()}
		copy(sp.Name[:], vdev.Name)
		copy(sp.Driver[:], drvName)
		copy(sp.Args[:], device)
		atomic.StoreUint32(&sp.State, stateProbed)
		p.ID, p.sh = uint16(free), sp
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.dev, err = drv.Probe(p, vdev); err != nil {
		atomic.StoreUint32(&p.sh.State, stateFree)
		return nil, fmt.Errorf("ethdev: %s: %w", vdev.Name, err)
	}
	return p, nil
}

// Attach opens, in any process, a port the primary created, by name.
func Attach(proc *mp.Process, name string) (*Port, error) {
	t, err := table(proc)
	if err != nil {
		return nil, err
	}
	for i := range t.Ports {
		sp := &t.Ports[i]
		if atomic.LoadUint32(&sp.State) == stateFree || cstr(sp.Name[:]) != name {
			continue
		}
		vdev, err := eal.ParseVDev(cstr(sp.Args[:]))
		if err != nil {
			return nil, fmt.Errorf("ethdev: port %q: shared device string is corrupted: %w", name, err)
		}
		_, drv, err := driverFor(vdev.Name)
		if err != nil {
			return nil, err
		}
		p := &Port{ID: uint16(i), proc: proc, sh: sp, vdev: vdev}
		if p.dev, err = drv.Attach(p, vdev); err != nil {
			return nil, fmt.Errorf("ethdev: attach %s: %w", name, err)
		}
		return p, nil
	}
	return nil, fmt.Errorf("ethdev: no port named %q in group %q: %w", name, proc.Mem.Prefix(), hugemem.ErrNotFound)
}

// Name returns the port's device name, such as "net_memif0".
func (p *Port) Name() string { return cstr(p.sh.Name[:]) }

// Process returns the group membership the port was opened through.
func (p *Port) Process() *mp.Process { return p.proc }

// Memory returns the group's shared memory.
func (p *Port) Memory() *hugemem.Memory { return p.proc.Mem }

// Primary reports whether this process created the port.
func (p *Port) Primary() bool { return p.primary }

// Info returns the device's limits.
func (p *Port) Info() Info { return p.dev.Info() }

// Device returns the driver object, for driver-specific calls.
func (p *Port) Device() Device { return p.dev }

func (p *Port) mustBePrimary(op string) error {
	if !p.primary {
		return fmt.Errorf("ethdev: %s %s: only the primary may change the device", op, p.Name())
	}
	return nil
}

// Configure sets the number of rx and tx queues. The port must be stopped.
func (p *Port) Configure(cfg Config) error {
	if err := p.mustBePrimary("configure"); err != nil {
		return err
	}
	if s := atomic.LoadUint32(&p.sh.State); s == stateStarted {
		return fmt.Errorf("ethdev: configure %s: stop the port first", p.Name())
	}
	info := p.dev.Info()
	if cfg.RxQueues < 1 || cfg.RxQueues > min(info.MaxRxQueues, MaxQueues) {
		return fmt.Errorf("ethdev: configure %s: %d rx queues; the device takes 1 to %d", p.Name(), cfg.RxQueues, min(info.MaxRxQueues, MaxQueues))
	}
	if cfg.TxQueues < 1 || cfg.TxQueues > min(info.MaxTxQueues, MaxQueues) {
		return fmt.Errorf("ethdev: configure %s: %d tx queues; the device takes 1 to %d", p.Name(), cfg.TxQueues, min(info.MaxTxQueues, MaxQueues))
	}
	if err := p.dev.Configure(cfg); err != nil {
		return fmt.Errorf("ethdev: configure %s: %w", p.Name(), err)
	}
	// The driver may have rebuilt the queues: this process's pollers of
	// the old ones must not be handed out again.
	p.rx, p.tx = [MaxQueues]RxQueue{}, [MaxQueues]TxQueue{}
	p.releaseClaims()
	p.sh.NbRxq, p.sh.NbTxq = uint16(cfg.RxQueues), uint16(cfg.TxQueues)
	atomic.StoreUint32(&p.sh.State, stateConfigured)
	return nil
}

// SetupRxQueue prepares rx queue q with desc descriptors filled from pool.
func (p *Port) SetupRxQueue(q, desc int, pool *mbuf.Pool) error {
	if err := p.mustBePrimary("set up rx queue of"); err != nil {
		return err
	}
	if q < 0 || q >= int(p.sh.NbRxq) {
		return fmt.Errorf("ethdev: %s: rx queue %d does not exist; the port has %d", p.Name(), q, p.sh.NbRxq)
	}
	info := p.dev.Info()
	if desc < info.MinRxDesc || desc > info.MaxRxDesc {
		return fmt.Errorf("ethdev: %s: %d rx descriptors; the device takes %d to %d", p.Name(), desc, info.MinRxDesc, info.MaxRxDesc)
	}
	if pool == nil {
		return fmt.Errorf("ethdev: %s: rx queue %d needs a packet pool", p.Name(), q)
	}
	if err := p.dev.SetupRxQueue(q, desc, pool); err != nil {
		return fmt.Errorf("ethdev: %s rx queue %d: %w", p.Name(), q, err)
	}
	p.sh.RxPool[q] = [nameLen]byte{}
	copy(p.sh.RxPool[q][:], pool.Name())
	p.sh.RxDesc = uint16(desc)
	return nil
}

// SetupTxQueue prepares tx queue q with desc descriptors.
func (p *Port) SetupTxQueue(q, desc int) error {
	if err := p.mustBePrimary("set up tx queue of"); err != nil {
		return err
	}
	if q < 0 || q >= int(p.sh.NbTxq) {
		return fmt.Errorf("ethdev: %s: tx queue %d does not exist; the port has %d", p.Name(), q, p.sh.NbTxq)
	}
	info := p.dev.Info()
	if desc < info.MinTxDesc || desc > info.MaxTxDesc {
		return fmt.Errorf("ethdev: %s: %d tx descriptors; the device takes %d to %d", p.Name(), desc, info.MinTxDesc, info.MaxTxDesc)
	}
	if err := p.dev.SetupTxQueue(q, desc); err != nil {
		return fmt.Errorf("ethdev: %s tx queue %d: %w", p.Name(), q, err)
	}
	p.sh.TxDesc = uint16(desc)
	return nil
}

// RxPool returns the packet pool of rx queue q, for drivers attaching in a
// secondary. The handle belongs to the Port: it is opened in this process
// on the first call for q (and again only if q was set up with another
// pool since) and closed by Close, after the driver's Close. Callers must
// not Close it, nor use it once the Port is closed.
func (p *Port) RxPool(q int) (*mbuf.Pool, error) {
	if q < 0 || q >= MaxQueues {
		return nil, fmt.Errorf("ethdev: %s: rx queue %d out of range", p.Name(), q)
	}
	name := cstr(p.sh.RxPool[q][:])
	p.poolsMu.Lock()
	defer p.poolsMu.Unlock()
	if pool := p.rxPools[q]; pool != nil && pool.Name() == name {
		return pool, nil
	}
	pool, err := mbuf.LookupPool(p.proc.Mem, name)
	if err != nil {
		return nil, err
	}
	if old := p.rxPools[q]; old != nil {
		p.oldPools = append(p.oldPools, old) // a poller may still use it
	}
	p.rxPools[q] = pool
	return pool, nil
}

// closePools closes the handles RxPool opened.
func (p *Port) closePools() {
	p.poolsMu.Lock()
	defer p.poolsMu.Unlock()
	for q, pool := range p.rxPools {
		if pool != nil {
			pool.Close()
			p.rxPools[q] = nil
		}
	}
	for _, pool := range p.oldPools {
		pool.Close()
	}
	p.oldPools = nil
}

// Start makes the port move packets.
func (p *Port) Start() error {
	if err := p.mustBePrimary("start"); err != nil {
		return err
	}
	switch atomic.LoadUint32(&p.sh.State) {
	case stateProbed:
		return fmt.Errorf("ethdev: start %s: configure it first", p.Name())
	case stateStarted:
		return nil
	}
	if err := p.dev.Start(); err != nil {
		return fmt.Errorf("ethdev: start %s: %w", p.Name(), err)
	}
	atomic.StoreUint32(&p.sh.State, stateStarted)
	return nil
}

// Stop halts the port; queues keep their configuration. It refuses
// (ErrQueueTaken) while another live process polls one of the queues: the
// driver takes the rings' buffers back on stop, under that poller's feet.
// Secondaries release their queues with Port.Close, or by dying.
func (p *Port) Stop() error {
	if err := p.mustBePrimary("stop"); err != nil {
		return err
	}
	stopping := false
	err := p.proc.Mem.WithLock(func() error {
		if atomic.LoadUint32(&p.sh.State) != stateStarted {
			return nil
		}
		if err := p.queuesPolledElsewhere("stop"); err != nil {
			return err
		}
		// Under the lock, so that no claim slips in between the check
		// and the stop: claim sees the port stopped.
		atomic.StoreUint32(&p.sh.State, stateStopped)
		stopping = true
		return nil
	})
	if err != nil || !stopping {
		return err
	}
	if err := p.dev.Stop(); err != nil {
		atomic.StoreUint32(&p.sh.State, stateStarted)
		return fmt.Errorf("ethdev: stop %s: %w", p.Name(), err)
	}
	return nil
}

// queuesPolledElsewhere names the first queue that another live process
// polls; callers hold the group lock.
func (p *Port) queuesPolledElsewhere(op string) error {
	me := mp.Self()
	for _, d := range []struct {
		dir    string
		owners *[MaxQueues]mp.Owner
	}{{"rx", &p.sh.RxOwner}, {"tx", &p.sh.TxOwner}} {
		for q, o := range d.owners {
			if o != (mp.Owner{}) && o != me && o.Alive() {
				return fmt.Errorf("ethdev: %s %s: %s queue %d is polled by pid %d, which must close the port or exit first: %w",
					op, p.Name(), d.dir, q, o.PID, ErrQueueTaken)
			}
		}
	}
	return nil
}

// Started reports whether the port is started.
func (p *Port) Started() bool { return atomic.LoadUint32(&p.sh.State) == stateStarted }

// NumQueues returns the configured numbers of rx and tx queues.
func (p *Port) NumQueues() (rx, tx int) { return int(p.sh.NbRxq), int(p.sh.NbTxq) }

// RxQueue claims rx queue q for this process and returns its poller. A
// queue polled by another live process is refused (ErrQueueTaken).
func (p *Port) RxQueue(q int) (RxQueue, error) {
	if q < 0 || q >= int(p.sh.NbRxq) {
		return nil, fmt.Errorf("ethdev: %s: rx queue %d does not exist; the port has %d", p.Name(), q, p.sh.NbRxq)
	}
	if p.rx[q] != nil {
		return p.rx[q], nil
	}
	if err := p.claim(&p.sh.RxOwner[q], "rx", q); err != nil {
		return nil, err
	}
	rq, err := p.dev.RxQueue(q, &p.sh.RxStats[q])
	if err != nil {
		p.unclaim(&p.sh.RxOwner[q])
		return nil, fmt.Errorf("ethdev: %s rx queue %d: %w", p.Name(), q, err)
	}
	p.rx[q] = rq
	return rq, nil
}

// TxQueue claims tx queue q for this process and returns its sender.
func (p *Port) TxQueue(q int) (TxQueue, error) {
	if q < 0 || q >= int(p.sh.NbTxq) {
		return nil, fmt.Errorf("ethdev: %s: tx queue %d does not exist; the port has %d", p.Name(), q, p.sh.NbTxq)
	}
	if p.tx[q] != nil {
		return p.tx[q], nil
	}
	if err := p.claim(&p.sh.TxOwner[q], "tx", q); err != nil {
		return nil, err
	}
	tq, err := p.dev.TxQueue(q, &p.sh.TxStats[q])
	if err != nil {
		p.unclaim(&p.sh.TxOwner[q])
		return nil, fmt.Errorf("ethdev: %s tx queue %d: %w", p.Name(), q, err)
	}
	p.tx[q] = tq
	return tq, nil
}

func (p *Port) claim(owner *mp.Owner, dir string, q int) error {
	if !p.Started() {
		return fmt.Errorf("ethdev: %s: %s queue %d: the port is not started", p.Name(), dir, q)
	}
	me := mp.Self()
	return p.proc.Mem.WithLock(func() error {
		if !p.Started() { // stopped meanwhile: Stop decides under this lock
			return fmt.Errorf("ethdev: %s: %s queue %d: the port is not started", p.Name(), dir, q)
		}
		if cur := *owner; cur != (mp.Owner{}) && cur != me && cur.Alive() {
			return fmt.Errorf("ethdev: %s %s queue %d is polled by pid %d: %w", p.Name(), dir, q, cur.PID, ErrQueueTaken)
		}
		*owner = me
		return nil
	})
}

func (p *Port) unclaim(owner *mp.Owner) {
	me := mp.Self()
	p.proc.Mem.WithLock(func() error {
		if *owner == me {
			*owner = mp.Owner{}
		}
		return nil
	})
}

// MAC returns the port's Ethernet address.
func (p *Port) MAC() net.HardwareAddr { return append(net.HardwareAddr(nil), p.sh.MAC[:]...) }

// SetMAC records the port's Ethernet address; drivers call it when probing,
// in the primary. In a secondary it changes nothing and logs a warning.
func (p *Port) SetMAC(mac net.HardwareAddr) {
	if !p.primary {
		slog.Warn("ethdev: SetMAC in a secondary ignored: only the primary's driver records the address", "port", p.Name(), "mac", mac)
		return
	}
	copy(p.sh.MAC[:], mac)
}

// Link is a port's link state.
type Link struct {
	Up   bool
	Mbps uint32
}

func (l Link) String() string {
	if !l.Up {
		return "down"
	}
	return fmt.Sprintf("up %d Mbps", l.Mbps)
}

// Link returns the link state the primary's driver last recorded.
func (p *Port) Link() Link {
	return Link{Up: atomic.LoadUint32(&p.sh.LinkUp) != 0, Mbps: atomic.LoadUint32(&p.sh.LinkMbps)}
}

// SetLink records a new link state; drivers call it in the primary. In a
// secondary it changes nothing and logs a warning.
func (p *Port) SetLink(l Link) {
	if !p.primary {
		slog.Warn("ethdev: SetLink in a secondary ignored: only the primary's driver records the link", "port", p.Name(), "link", l)
		return
	}
	up := uint32(0)
	if l.Up {
		up = 1
	}
	atomic.StoreUint32(&p.sh.LinkMbps, l.Mbps)
	old := atomic.SwapUint32(&p.sh.LinkUp, up)
	if old != up {
		p.publishLink(l)
	}
}

// SetPromiscuous turns promiscuous mode on or off.
func (p *Port) SetPromiscuous(on bool) error {
	if err := p.mustBePrimary("set promiscuous mode of"); err != nil {
		return err
	}
	if err := p.dev.SetPromiscuous(on); err != nil {
		return fmt.Errorf("ethdev: %s promiscuous: %w", p.Name(), err)
	}
	v := uint32(0)
	if on {
		v = 1
	}
	atomic.StoreUint32(&p.sh.Promisc, v)
	return nil
}

// Promiscuous reports whether promiscuous mode is on.
func (p *Port) Promiscuous() bool { return atomic.LoadUint32(&p.sh.Promisc) != 0 }

// Close releases this process's queues, driver object and the pool handles
// RxPool opened. In the primary it also stops the port and removes it from
// the group, and so, as Stop, it refuses (ErrQueueTaken) while another
// live process polls a queue: the port stays open then.
func (p *Port) Close() error {
	if p.closed {
		return nil
	}
	var errs []error
	if p.primary {
		if err := p.proc.Mem.WithLock(func() error { return p.queuesPolledElsewhere("close") }); err != nil {
			return err
		}
		err := p.Stop()
		if errors.Is(err, ErrQueueTaken) {
			return err // claimed since the check
		}
		errs = append(errs, err)
	}
	p.closed = true
	errs = append(errs, p.dev.Close())
	p.closePools()
	p.releaseClaims()
	if p.primary {
		atomic.StoreUint32(&p.sh.State, stateFree)
	}
	return errors.Join(errs...)
}

// releaseClaims gives up every queue this process claimed.
func (p *Port) releaseClaims() {
	me := mp.Self()
	p.proc.Mem.WithLock(func() error {
		for q := range MaxQueues {
			if p.sh.RxOwner[q] == me {
				p.sh.RxOwner[q] = mp.Owner{}
			}
			if p.sh.TxOwner[q] == me {
				p.sh.TxOwner[q] = mp.Owner{}
			}
		}
		return nil
	})
}

func cstr(b []byte) string { return unix.ByteSliceToString(b) }
