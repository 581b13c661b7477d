package virtio_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/vmtest"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/pmd/virtio"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// The PCI tests run in a vmtest guest whose virtio-net-pci devices are
// bound to vfio-pci; QEMU carries their frames to a peer in the host test,
// which sends each test frame back with its addresses swapped.

// udpReflector is the host peer of a NIC with a UDP backend.
type udpReflector struct {
	conn      *net.UDPConn
	reflected atomic.Int64
}

func startUDPReflector(t *testing.T) *udpReflector {
	conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	require.NoError(t, err)
	require.NoError(t, conn.SetReadBuffer(4<<20))
	r := &udpReflector{conn: conn}
	t.Cleanup(func() { conn.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := conn.ReadFromUDP(buf)
			if err != nil {
				return
			}
			if _, _, ok := frameID(buf[:n]); !ok {
				continue // the guest's own traffic, if any
			}
			swapMACs(buf[:n])
			conn.WriteToUDP(buf[:n], from)
			r.reflected.Add(1)
		}
	}()
	return r
}

func (r *udpReflector) backend(t *testing.T) vmtest.UDP {
	return vmtest.UDP{Local: vmtest.FreeUDPAddr(t), Remote: r.conn.LocalAddr().String()}
}

func swapMACs(b []byte) {
	var dst [6]byte
	copy(dst[:], b[0:6])
	copy(b[0:6], b[6:12])
	copy(b[6:12], dst[:])
}

// guestGroup is a group of guest memory in the IOVA mode the device needs.
func guestGroup(t *testing.T, mode hugemem.IOVAMode) hugemem.Options {
	return hugemem.Options{Prefix: fmt.Sprintf("gvm%d", seq.Add(1)), RuntimeDir: t.TempDir(), Limit: 48 << 20,
		SegmentSize: 16 << 20, IOVAMode: mode}
}

func guestFrames(t *testing.T) int {
	n, err := strconv.Atoi(os.Getenv("FRAMES"))
	require.NoError(t, err, "the host passes FRAMES")
	return n
}

// guestEcho runs in the guest: a port on the device, n frames out, each
// back once and intact.
func guestEcho(t *testing.T, device string, mode hugemem.IOVAMode, n int) *virtio.Features {
	proc := primary(t, guestGroup(t, mode))
	require.True(t, proc.Mem.HugePages())
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 4095, CacheSize: 64})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	port := startPort(t, proc, device, 1, pool)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s xstats: %v", port.Name(), port.XStats())
		}
	})
	waitLink(t, port, true)
	f, ok := virtio.Negotiated(port)
	require.True(t, ok)
	t.Logf("%s negotiated %v", port.Name(), f)
	size := func(i int) int { return 60 + (i*53)%1455 }
	echo(t, port, pool, 1, n, size, true)
	st := port.Stats()
	assert.Equal(t, uint64(n), st.TxPackets, "frames sent")
	assert.Equal(t, uint64(n), st.RxPackets, "frames received")
	assert.Zero(t, st.RxErrors+st.TxErrors)
	// Stop resets the device; Start sets it up again on fresh rings.
	require.NoError(t, port.Stop())
	require.NoError(t, port.Start())
	waitLink(t, port, true)
	port.ResetStats()
	echo(t, port, pool, 1, n, size, true)
	assert.Equal(t, uint64(n), port.Stats().RxPackets, "frames received after a restart")
	return &f
}

// TestPCIModernDeviceEchoesThroughQEMU drives modern virtio-net-pci
// devices (virtio 1.x capabilities, ACCESS_PLATFORM: DMA through the
// guest's IOMMU with VA-mode IOVAs) bound to vfio-pci: one with split
// rings, one with packed rings (packed=on).
func TestPCIModernDeviceEchoesThroughQEMU(t *testing.T) {
	const n = 2000
	if !vmtest.InGuest() {
		r := startUDPReflector(t)
		cfg := vmtest.Config{NICs: []vmtest.NIC{
			{Backend: r.backend(t), Modern: true, IOMMUPlatform: true, VFIO: true},
			{Backend: r.backend(t), Modern: true, IOMMUPlatform: true, VFIO: true, Props: []string{"packed=on"}},
		}}
		cfg.Env = []string{"NIC0=" + cfg.NICAddr(0), "NIC1=" + cfg.NICAddr(1), "FRAMES=" + strconv.Itoa(n)}
		t.Cleanup(func() { t.Logf("the host reflected %d frames", r.reflected.Load()) })
		vmtest.RunInGuest(t, cfg)
		assert.Equal(t, int64(4*n), r.reflected.Load(), "frames the host reflected")
		return
	}
	for i, ring := range []string{"split", "packed"} {
		t.Run(ring, func(t *testing.T) {
			f := guestEcho(t, fmt.Sprintf("net_virtio%d,pci=%s", i, os.Getenv(fmt.Sprintf("NIC%d", i))), hugemem.IOVAModeVA, guestFrames(t))
			assert.True(t, f.Has(virtio.FeatVersion1) && f.Has(virtio.FeatAccessPlatfrm), "negotiated %v", f)
			assert.Equal(t, ring == "packed", f.Has(virtio.FeatRingPacked), "negotiated %v", f)
		})
	}
}

// TestPCILegacyInterfaceEchoesThroughQEMU drives a transitional
// virtio-net-pci device through its legacy interface (I/O BAR0). Its DMA
// bypasses the IOMMU, so the memory runs in PA mode.
func TestPCILegacyInterfaceEchoesThroughQEMU(t *testing.T) {
	const n = 2000
	if !vmtest.InGuest() {
		r := startUDPReflector(t)
		cfg := vmtest.Config{NICs: []vmtest.NIC{{Backend: r.backend(t), VFIO: true}}}
		cfg.Env = []string{"NIC=" + cfg.NICAddr(0), "FRAMES=" + strconv.Itoa(n)}
		vmtest.RunInGuest(t, cfg)
		assert.Equal(t, int64(2*n), r.reflected.Load(), "frames the host reflected")
		return
	}
	f := guestEcho(t, "net_virtio0,pci="+os.Getenv("NIC")+",legacy=1", hugemem.IOVAModePA, guestFrames(t))
	assert.False(t, f.Has(virtio.FeatVersion1), "a legacy interface negotiates no VERSION_1: %v", f)
}

// tapReflector is the host peer of a NIC with a tap backend: a packet
// socket on the tap that sends every test frame back with its addresses
// swapped. The multi-queue tap hands a reply to the queue its flow came
// from.
type tapReflector struct {
	name      string
	reflected atomic.Int64
	ready     chan error
}

func startTapReflector(t *testing.T, name string) *tapReflector {
	r := &tapReflector{name: name, ready: make(chan error, 1)}
	stop := make(chan struct{})
	var fd atomic.Int64
	fd.Store(-1)
	t.Cleanup(func() {
		close(stop)
		if f := fd.Load(); f >= 0 {
			unix.Close(int(f))
		}
	})
	go func() {
		var ifc *net.Interface
		for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(20 * time.Millisecond) {
			var err error
			if ifc, err = net.InterfaceByName(name); err == nil {
				break
			}
			select {
			case <-stop:
				return
			default:
			}
			if time.Now().After(deadline) {
				r.ready <- fmt.Errorf("QEMU made no tap %s in 60 s", name)
				return
			}
		}
		// No IPv6 chatter from the host on the guest's wire.
		os.WriteFile("/proc/sys/net/ipv6/conf/"+name+"/disable_ipv6", []byte("1"), 0)
		proto := int(htons(unix.ETH_P_ALL))
		s, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
		if err != nil {
			r.ready <- err
			return
		}
		fd.Store(int64(s))
		ifr, _ := unix.NewIfreq(name)
		if err := unix.IoctlIfreq(s, unix.SIOCGIFFLAGS, ifr); err != nil {
			r.ready <- err
			return
		}
		ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
		if err := unix.IoctlIfreq(s, unix.SIOCSIFFLAGS, ifr); err != nil {
			r.ready <- err
			return
		}
		// Bound after the interface is up: a packet socket bound to a
		// down interface reports ENETDOWN.
		if err := unix.Bind(s, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifc.Index}); err != nil {
			r.ready <- err
			return
		}
		r.ready <- nil
		buf := make([]byte, 65536)
		for {
			n, from, err := unix.Recvfrom(s, buf, 0)
			if err != nil {
				return
			}
			if ll, ok := from.(*unix.SockaddrLinklayer); ok && ll.Pkttype == unix.PACKET_OUTGOING {
				continue // our own reflection
			}
			if _, _, ok := frameID(buf[:n]); !ok {
				continue
			}
			swapMACs(buf[:n])
			if _, err := unix.Write(s, buf[:n]); err == nil {
				r.reflected.Add(1)
			}
		}
	}()
	return r
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// TestPCIPrimaryAndSecondaryEachPollAQueuePair runs a modern device with
// two queue pairs on a multi-queue tap: the guest's primary sets the
// pairs up (through the control queue) and polls pair 0, a secondary
// process polls pair 1 (with the VFIO descriptors the primary passes it).
// Each sends its frames; every frame comes back to its sender once.
func TestPCIPrimaryAndSecondaryEachPollAQueuePair(t *testing.T) {
	const n = 1000
	if !vmtest.InGuest() {
		testenv.RequireRoot(t) // QEMU creates the tap
		tap := fmt.Sprintf("gvio%d", os.Getpid()%100000)
		r := startTapReflector(t, tap)
		cfg := vmtest.Config{NICs: []vmtest.NIC{{Backend: vmtest.Tap{Name: tap}, Modern: true, IOMMUPlatform: true, VFIO: true, Queues: 2}}}
		cfg.Env = []string{"NIC=" + cfg.NICAddr(0), "FRAMES=" + strconv.Itoa(n)}
		go func() {
			if err := <-r.ready; err != nil {
				t.Errorf("tap reflector: %v", err)
			} else {
				t.Logf("tap reflector on %s ready", tap)
			}
		}()
		t.Cleanup(func() { t.Logf("the host reflected %d frames", r.reflected.Load()) })
		vmtest.RunInGuest(t, cfg)
		assert.Equal(t, int64(2*n), r.reflected.Load(), "frames the host reflected")
		return
	}
	g := guestGroup(t, hugemem.IOVAModeVA)
	proc := primary(t, g)
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 4095, CacheSize: 64})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	port := startPort(t, proc, "net_virtio0,pci="+os.Getenv("NIC"), 2, pool)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s xstats: %v", port.Name(), port.XStats())
		}
	})
	f, _ := virtio.Negotiated(port)
	require.True(t, f.Has(virtio.FeatMQ) && f.Has(virtio.FeatCtrlVQ), "negotiated %v", f)
	require.NoError(t, port.SetPromiscuous(true), "CTRL_RX through the control queue")
	require.NoError(t, virtio.SetMACFilter(port, [][6]byte{[6]byte(port.MAC())}, nil))
	waitLink(t, port, true)

	sec := startChild(t, childSpec{Mem: g, Port: port.Name(), Queue: 1, Frames: n, Prime: true})
	tx0, err := port.TxQueue(0)
	require.NoError(t, err)
	primed, err := primeTapFlows(tx0, pool, port.MAC(), 0)
	require.NoError(t, err)
	sec.Expect("polling")
	echo(t, port, pool, 1, n, func(i int) int { return 60 + i%1000 }, true)
	assert.Equal(t, fmt.Sprintf("echoed %d", n), sec.Expect("echoed"))
	st := port.Stats()
	for q := range 2 {
		assert.Equal(t, uint64(n), st.RxQueues[q].Packets, "frames received on queue %d", q)
		assert.Equal(t, uint64(n+primed), st.TxQueues[q].Packets, "frames sent on queue %d (test frames and flow primers)", q)
	}
}

// linkTrigger is the frame number by which the guest asks the host to
// take its link down and up again (on queue linkTriggerQueue).
const (
	linkTriggerQueue = 99
	linkTrigger      = 0
)

// monitorCommand sends one command to QEMU's human monitor on sock.
func monitorCommand(t *testing.T, sock, cmd string) {
	c, err := net.Dial("unix", sock)
	if err != nil {
		t.Errorf("QEMU monitor %s: %v", sock, err)
		return
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write([]byte(cmd + "\n")); err != nil {
		t.Errorf("QEMU monitor: %v", err)
	}
	buf := make([]byte, 4096)
	time.Sleep(100 * time.Millisecond)
	c.Read(buf) // the banner and the echo; what matters is that the command ran
}

// TestPCILinkChangeReachesEveryProcess has the host take the device's
// link down and up (QEMU's set_link): the primary sees the link status
// field change and publishes it, and a secondary receives both events.
func TestPCILinkChangeReachesEveryProcess(t *testing.T) {
	if !vmtest.InGuest() {
		mon := filepath.Join(t.TempDir(), "qemu-monitor.sock")
		conn, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { conn.Close() })
		var toggled atomic.Bool
		go func() {
			buf := make([]byte, 2048)
			for {
				n, _, err := conn.ReadFromUDP(buf)
				if err != nil {
					return
				}
				if q, i, ok := frameID(buf[:n]); ok && q == linkTriggerQueue && i == linkTrigger && !toggled.Swap(true) {
					monitorCommand(t, mon, "set_link nic0 off")
					time.Sleep(500 * time.Millisecond)
					monitorCommand(t, mon, "set_link nic0 on")
				}
			}
		}()
		cfg := vmtest.Config{
			NICs:     []vmtest.NIC{{Backend: vmtest.UDP{Local: vmtest.FreeUDPAddr(t), Remote: conn.LocalAddr().String()}, Modern: true, IOMMUPlatform: true, VFIO: true}},
			QEMUArgs: []string{"-monitor", "unix:" + mon + ",server=on,wait=off"},
		}
		cfg.Env = []string{"NIC=" + cfg.NICAddr(0)}
		vmtest.RunInGuest(t, cfg)
		assert.True(t, toggled.Load(), "the guest asked for the link change")
		return
	}
	g := guestGroup(t, hugemem.IOVAModeVA)
	proc := primary(t, g)
	events, err := proc.Subscribe()
	require.NoError(t, err)
	pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 1023, CacheSize: 32})
	require.NoError(t, err)
	t.Cleanup(pool.Close)
	port := startPort(t, proc, "net_virtio0,pci="+os.Getenv("NIC"), 1, pool)
	waitLink(t, port, true)
	sec := startChild(t, childSpec{Mem: g, Port: port.Name(), Queue: 0, Frames: 0})
	sec.Expect("echoed 0") // attached and subscribed

	tx, err := port.TxQueue(0)
	require.NoError(t, err)
	require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{frame(t, pool, port.MAC(), linkTriggerQueue, linkTrigger, 64)}))
	expectLinkEvent(t, events, port, false)
	assert.Equal(t, "link up=false", sec.Expect("link"), "the secondary's event")
	expectLinkEvent(t, events, port, true)
	assert.Equal(t, "link up=true", sec.Expect("link"), "the secondary's event")
}
