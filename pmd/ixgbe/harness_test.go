package ixgbe

import (
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/pmd/ixgbe/internal/model82599"
	"github.com/stretchr/testify/require"
)

// The tests run the driver, through ethdev, against model82599 boards put
// behind openPCI at made-up PCI addresses.

func TestMain(m *testing.M) {
	openPCI = openBoard
	os.Exit(m.Run())
}

var (
	boardsMu sync.Mutex
	boards   = map[eal.PCIAddr]*board{}
	groupSeq atomic.Int64
)

// board is one modelled port on the PCI bus.
type board struct {
	dev      *model82599.Device
	deviceID uint16
	regs     registers                    // what the driver gets: the model, or a wrapper of it
	iova     func(uint64) (uint64, error) // set when the group memory has no hugepages
	sent     chan []byte                  // frames the device put on the wire
	sentN    atomic.Int64
	noIRQ    bool // no MSI-X vector: the driver polls the link
}

func openBoard(_ *ethdev.Port, addr eal.PCIAddr, primary bool) (*pciDevice, error) {
	boardsMu.Lock()
	b := boards[addr]
	boardsMu.Unlock()
	if b == nil {
		return nil, fmt.Errorf("no board at %s", addr)
	}
	pd := &pciDevice{vendor: intelVendorID, device: b.deviceID, regs: b.regs, iova: b.iova, close: func() error { return nil }}
	if primary && !b.noIRQ {
		pd.irq = newModelIRQ(b.dev)
	}
	return pd, nil
}

// modelIRQ plays MSI-X vector 0: the model raises no interrupts, so this
// polls InterruptPending (EICR & EIMS) as the vector would fire.
type modelIRQ struct {
	c    chan struct{}
	stop chan struct{}
	once sync.Once
}

func newModelIRQ(dev *model82599.Device) *modelIRQ {
	irq := &modelIRQ{c: make(chan struct{}, 1), stop: make(chan struct{})}
	go func() {
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-irq.stop:
				return
			case <-tick.C:
				if dev.InterruptPending() {
					select {
					case irq.c <- struct{}{}:
					default:
					}
				}
			}
		}
	}()
	return irq
}

func (i *modelIRQ) C() <-chan struct{} { return i.c }
func (i *modelIRQ) Close() error {
	i.once.Do(func() { close(i.stop) })
	return nil
}

// rig is a primary process with one packet pool and the boards of a test.
type rig struct {
	t    testing.TB
	opts hugemem.Options
	proc *mp.Process
	pool *mbuf.Pool
	next int // next board's bus number
}

type rigOpt func(*hugemem.Options)

func noHuge(o *hugemem.Options) { o.NoHuge = true }

// newRig starts a primary on hugepages when it can (then the device sees
// real VA-mode IOVAs from hugemem), on memfd memory otherwise (then the
// boards translate IOVAs the VA-mode way themselves).
func newRig(t testing.TB, opts ...rigOpt) *rig {
	t.Helper()
	o := hugemem.Options{
		Prefix:      fmt.Sprintf("ixgbe%d-%d", os.Getpid(), groupSeq.Add(1)),
		Limit:       96 << 20,
		SegmentSize: 32 << 20,
		RuntimeDir:  t.TempDir(),
	}
	for _, f := range opts {
		f(&o)
	}
	proc, err := mp.Start(mp.Config{Type: mp.Primary, Memory: o, Lcores: []mp.Lcore{{ID: 0, CPUs: []int{0}}}})
	require.NoError(t, err)
	t.Cleanup(func() { proc.Close() })
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 4095, CacheSize: 256})
	require.NoError(t, err)
	return &rig{t: t, opts: o, proc: proc, pool: pool, next: 1}
}

type boardOpt func(*model82599.Config, *board)

func pedantic(c *model82599.Config, _ *board) { c.Pedantic = true }
func polled(c *model82599.Config, _ *board)   { c.Mode = model82599.Polled }
func deviceID(id uint16) boardOpt             { return func(_ *model82599.Config, b *board) { b.deviceID = id } }

func noIRQ(_ *model82599.Config, b *board) { b.noIRQ = true }

// countOnly keeps no copy of what the device sends, so sending allocates nothing.
func countOnly(c *model82599.Config, b *board) {
	c.OnTransmit = func([]byte) { b.sentN.Add(1) }
}

var (
	macDev  = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x01}
	macPeer = [6]byte{0x02, 0x00, 0x5e, 0x10, 0x00, 0x02}
)

// board puts a modelled 82599 SFP+ on the bus: every rule it sees broken
// fails the test, every frame it sends is kept (the last 4096).
func (r *rig) board(opts ...boardOpt) (*board, string) {
	r.t.Helper()
	mem := r.proc.Mem
	b := &board{deviceID: 0x10FB, sent: make(chan []byte, 4096)}
	cfg := model82599.Config{
		DMA: func(iova uint64, n int) ([]byte, error) {
			if iova < hugemem.IOVABase {
				return nil, fmt.Errorf("IOVA %#x is below the VA-mode base", iova)
			}
			off := iova - hugemem.IOVABase
			if n < 0 || !mem.Contains(off, uint64(n)) {
				return nil, fmt.Errorf("IOVA range %#x+%d is outside group memory", iova, n)
			}
			return unsafe.Slice((*byte)(mem.Ptr(off)), n), nil
		},
		MAC:       macDev,
		Violation: func(msg string) { r.t.Errorf("model82599: %s", msg) },
		OnTransmit: func(f []byte) {
			b.sentN.Add(1)
			select {
			case b.sent <- append([]byte(nil), f...):
			default:
			}
		},
	}
	for _, o := range opts {
		o(&cfg, b)
	}
	b.dev = model82599.New(cfg)
	b.regs = b.dev
	if !mem.HugePages() {
		b.iova = func(off uint64) (uint64, error) { return hugemem.IOVABase + off, nil }
	}
	addr := eal.PCIAddr{Bus: uint8(r.next)}
	r.next++
	boardsMu.Lock()
	boards[addr] = b
	boardsMu.Unlock()
	r.t.Cleanup(func() {
		boardsMu.Lock()
		delete(boards, addr)
		boardsMu.Unlock()
	})
	return b, addr.String()
}

// port creates net_ixgbe<n> on a board and starts it with nq queue pairs
// of desc descriptors.
func (r *rig) port(n int, addr string, nq, desc int) *ethdev.Port {
	r.t.Helper()
	p, err := ethdev.Create(r.proc, fmt.Sprintf("net_ixgbe%d,pci=%s", n, addr))
	require.NoError(r.t, err)
	r.t.Cleanup(func() { p.Close() })
	require.NoError(r.t, p.Configure(ethdev.Config{RxQueues: nq, TxQueues: nq}))
	for q := range nq {
		require.NoError(r.t, p.SetupRxQueue(q, desc, r.pool))
		require.NoError(r.t, p.SetupTxQueue(q, desc))
	}
	require.NoError(r.t, p.Start())
	return p
}

func dev(p *ethdev.Port) *Device { return p.Device().(*Device) }

// rxDescAt is descriptor i of rx queue q, as the device sees it.
func rxDescAt(p *ethdev.Port, q int, i uint32) *rxDesc {
	d := dev(p)
	return (*rxDesc)(d.mem.Ptr(d.sh.Rx[q].Zone + uint64(i)*descSize))
}

// receiveAll polls rx queue q until it has n frames or a second passed.
func receiveAll(t testing.TB, rx ethdev.RxQueue, n int) []*mbuf.Mbuf {
	t.Helper()
	var out []*mbuf.Mbuf
	pkts := make([]*mbuf.Mbuf, 32)
	deadline := time.Now().Add(time.Second)
	for len(out) < n && time.Now().Before(deadline) {
		k := rx.RxBurst(pkts)
		out = append(out, pkts[:k]...)
		if k == 0 {
			time.Sleep(50 * time.Microsecond)
		}
	}
	require.Len(t, out, n, "frames received")
	return out
}

// packet makes an mbuf holding frame, split into segments of at most seg
// bytes (0: one segment).
func (r *rig) packet(frame []byte, seg int) *mbuf.Mbuf {
	r.t.Helper()
	if seg == 0 {
		seg = len(frame)
	}
	var head *mbuf.Mbuf
	for len(frame) > 0 || head == nil {
		m, err := r.pool.Alloc(nil)
		require.NoError(r.t, err)
		k := min(seg, len(frame))
		b, err := m.Append(k)
		require.NoError(r.t, err)
		copy(b, frame[:k])
		frame = frame[k:]
		if head == nil {
			head = m
		} else {
			require.NoError(r.t, head.Chain(m))
		}
	}
	return head
}

// waitSent takes the next frame the board put on the wire.
func (b *board) waitSent(t testing.TB) []byte {
	t.Helper()
	select {
	case f := <-b.sent:
		return f
	case <-time.After(time.Second):
		t.Fatalf("the device sent nothing within a second")
		return nil
	}
}

// Frame builders, with checksums computed here independently of the model.

func csum(b []byte, s uint32) uint16 {
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		s += uint32(b[len(b)-1]) << 8
	}
	for s > 0xFFFF {
		s = s>>16 + s&0xFFFF
	}
	return ^uint16(s)
}

func ether(dst, src [6]byte, etherType uint16, payload []byte) []byte {
	f := append(append(append([]byte{}, dst[:]...), src[:]...), byte(etherType>>8), byte(etherType))
	f = append(f, payload...)
	for len(f) < 60 {
		f = append(f, 0)
	}
	return f
}

// l4 builds a TCP (20-byte header) or UDP segment, or for any other
// protocol just the payload, with its checksum over the pseudo-header sum.
func l4(proto byte, sport, dport uint16, payload []byte, pseudo uint32) []byte {
	var s []byte
	switch proto {
	case 6:
		s = make([]byte, 20, 20+len(payload))
		s[12] = 5 << 4
		s[13] = 0x10
	case 17:
		s = make([]byte, 8, 8+len(payload))
		binary.BigEndian.PutUint16(s[4:], uint16(8+len(payload)))
	default:
		return payload
	}
	binary.BigEndian.PutUint16(s[0:], sport)
	binary.BigEndian.PutUint16(s[2:], dport)
	s = append(s, payload...)
	c := csum(s, pseudo+uint32(proto)+uint32(len(s)))
	if proto == 6 {
		binary.BigEndian.PutUint16(s[16:], c)
	} else {
		if c == 0 {
			c = 0xFFFF
		}
		binary.BigEndian.PutUint16(s[6:], c)
	}
	return s
}

func sumAddrs(b []byte) uint32 {
	var s uint32
	for i := 0; i+1 < len(b); i += 2 {
		s += uint32(b[i])<<8 | uint32(b[i+1])
	}
	return s
}

func ipv4(src, dst net.IP, proto byte, sport, dport uint16, payload []byte) []byte {
	s4, d4 := src.To4(), dst.To4()
	seg := l4(proto, sport, dport, payload, sumAddrs(s4)+sumAddrs(d4))
	ip := make([]byte, 20, 20+len(seg))
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(20+len(seg)))
	binary.BigEndian.PutUint16(ip[4:], 0x1234)
	ip[8], ip[9] = 64, proto
	copy(ip[12:16], s4)
	copy(ip[16:20], d4)
	binary.BigEndian.PutUint16(ip[10:], csum(ip, 0))
	return ether(macDev, macPeer, 0x0800, append(ip, seg...))
}

func ipv6(src, dst net.IP, proto byte, sport, dport uint16, payload []byte) []byte {
	s6, d6 := src.To16(), dst.To16()
	seg := l4(proto, sport, dport, payload, sumAddrs(s6)+sumAddrs(d6))
	ip := make([]byte, 40, 40+len(seg))
	ip[0] = 0x60
	binary.BigEndian.PutUint16(ip[4:], uint16(len(seg)))
	ip[6], ip[7] = proto, 64
	copy(ip[8:24], s6)
	copy(ip[24:40], d6)
	return ether(macDev, macPeer, 0x86DD, append(ip, seg...))
}

// udpFrame is an IPv4/UDP frame to dst of n bytes (at least 60).
func udpFrame(dst [6]byte, sport uint16, n int) []byte {
	f := ipv4(net.IPv4(10, 0, 0, 2), net.IPv4(10, 0, 0, 1), 17, sport, 53, make([]byte, max(n-42, 0)))
	copy(f[0:6], dst[:])
	return f
}

func xstat(t testing.TB, p *ethdev.Port, name string) uint64 {
	t.Helper()
	for _, x := range p.XStats() {
		if x.Name == name {
			return x.Value
		}
	}
	t.Fatalf("no xstat %q", name)
	return 0
}
