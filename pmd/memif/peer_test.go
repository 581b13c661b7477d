package memif

// These tests play a hostile or broken memif peer over a raw socket and
// raw shared memory, to check what the driver refuses and what it
// survives.

import (
	"errors"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testport"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"
)

// testPort starts a net_memif port with one queue pair in a fresh group.
func testPort(t *testing.T, args string) (*ethdev.Port, *mbuf.Pool) {
	g := testmem.Options(t, "mifp")
	g.Limit, g.SegmentSize = 128<<20, 32<<20
	proc := testport.Primary(t, g)
	pool := testport.Pool(t, proc, "pkts", mbuf.PoolConfig{N: 1023})
	return testport.Start(t, proc, "net_memif0,"+args, 1, 64, pool), pool
}

func xstat(port *ethdev.Port, name string) uint64 {
	for _, x := range port.XStats() {
		if x.Name == name {
			return x.Value
		}
	}
	return ^uint64(0)
}

// rawPeer speaks memif by hand.
type rawPeer struct {
	t    *testing.T
	conn *net.UnixConn
}

func dialRaw(t *testing.T, sock string) *rawPeer {
	conn, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
	require.NoError(t, err)
	t.Cleanup(func() { conn.Close() })
	return &rawPeer{t: t, conn: conn}
}

func (p *rawPeer) sendBytes(b []byte, fds ...int) {
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	_, _, err := p.conn.WriteMsgUnix(b, oob, nil)
	require.NoError(p.t, err)
}

func (p *rawPeer) send(m *msg, fds ...int) { p.sendBytes(m[:], fds...) }

// recv returns the next message and its fd (-1 if none), or nil at EOF.
func (p *rawPeer) recv() (*msg, int) {
	p.t.Helper()
	var m msg
	oob := make([]byte, unix.CmsgSpace(4))
	p.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := p.conn.ReadMsgUnix(m[:], oob)
	if n == 0 && (err == nil || errors.Is(err, io.EOF) || errors.Is(err, unix.ECONNRESET)) {
		return nil, -1
	}
	require.NoError(p.t, err)
	require.Equal(p.t, msgSize, n)
	fds := parseFDs(oob[:oobn])
	if len(fds) == 1 {
		return &m, fds[0]
	}
	return &m, -1
}

func (p *rawPeer) expect(t msgType) *msg {
	p.t.Helper()
	m, fd := p.recv()
	require.NotNil(p.t, m, "connection closed while expecting %v", t)
	closeFD(fd)
	if m.typ() == msgDisconnect && t != msgDisconnect {
		_, reason := decodeDisconnect(m)
		p.t.Fatalf("expected %v, got DISCONNECT %q", t, reason)
	}
	require.Equal(p.t, t, m.typ())
	return m
}

// refused expects a DISCONNECT whose reason contains want, then the end
// of the connection.
func (p *rawPeer) refused(want string) {
	p.t.Helper()
	m := p.expect(msgDisconnect)
	_, reason := decodeDisconnect(m)
	require.Contains(p.t, reason, want)
	m, _ = p.recv()
	require.Nil(p.t, m, "the connection stays open after DISCONNECT")
}

// sealedMemfd is a region file as DPDK makes it.
func sealedMemfd(t *testing.T, size int) int {
	fd, err := unix.MemfdCreate("peer", unix.MFD_ALLOW_SEALING|unix.MFD_CLOEXEC)
	require.NoError(t, err)
	require.NoError(t, unix.Ftruncate(fd, int64(size)))
	_, err = unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Close(fd) })
	return fd
}

func goodInit(id uint32) *msg {
	return initMsg{version: version, id: id, mode: modeEthernet, name: "raw"}.encode()
}

func TestServerRefusesMalformedOrOutOfRangeMessagesAndStaysHealthy(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	port, _ := testPort(t, "role=server,id=5,secret=s3,socket-abstract=no,socket="+sock)

	init := func(p *rawPeer) {
		m := goodInit(5)
		putString(m[9:33], "s3")
		p.send(m)
		p.expect(msgAck)
	}
	region := func(p *rawPeer, size int) {
		p.send(addRegion{index: 0, size: uint64(size)}.encode(), sealedMemfd(p.t, size))
		p.expect(msgAck)
	}
	cases := []struct {
		name  string
		steps func(p *rawPeer)
		want  string
	}{
		{"short message", func(p *rawPeer) { p.sendBytes([]byte("hello")) }, "message is 5 bytes, want 128"},
		{"long message", func(p *rawPeer) { p.sendBytes(make([]byte, 200)) }, "longer than 128 bytes"},
		{"unknown type", func(p *rawPeer) { p.send(newMsg(99)) }, "expected INIT, got type 99"},
		{"wrong version", func(p *rawPeer) {
			m := goodInit(5)
			le.PutUint16(m[2:], 1<<8)
			p.send(m)
		}, "Incompatible memif version 1.0"},
		{"unknown id", func(p *rawPeer) { p.send(goodInit(7)) }, "ID 7 not found"},
		{"missing secret", func(p *rawPeer) { p.send(goodInit(5)) }, "Secret required"},
		{"wrong secret", func(p *rawPeer) {
			m := goodInit(5)
			putString(m[9:33], "guess")
			p.send(m)
		}, "Incorrect secret"},
		{"IP mode", func(p *rawPeer) {
			m := goodInit(5)
			m[8] = 1
			p.send(m)
		}, "Only ethernet mode supported"},
		{"region without fd", func(p *rawPeer) {
			init(p)
			p.send(addRegion{size: 4096}.encode())
		}, "Missing region fd"},
		{"region index out of order", func(p *rawPeer) {
			init(p)
			p.send(addRegion{index: 3, size: 4096}.encode(), sealedMemfd(t, 4096))
		}, "Invalid region index 3: want 0"},
		{"too many regions", func(p *rawPeer) {
			init(p)
			for i := range maxRegions {
				p.send(addRegion{index: uint16(i), size: 4096}.encode(), sealedMemfd(t, 4096))
				p.expect(msgAck)
			}
			p.send(addRegion{index: maxRegions, size: 4096}.encode(), sealedMemfd(t, 4096))
		}, "Too many regions: at most 16"},
		{"region larger than its file", func(p *rawPeer) {
			init(p)
			p.send(addRegion{size: 1 << 20}.encode(), sealedMemfd(t, 4096))
		}, "region file holds 4096 bytes, less than the region's 1048576"},
		{"region that could shrink", func(p *rawPeer) {
			init(p)
			fd, err := unix.MemfdCreate("unsealable", unix.MFD_CLOEXEC) // born with F_SEAL_SEAL
			require.NoError(t, err)
			defer unix.Close(fd)
			unix.Ftruncate(fd, 4096)
			p.send(addRegion{size: 4096}.encode(), fd)
		}, "not sealed against shrinking"},
		{"two fds", func(p *rawPeer) {
			init(p)
			p.send(addRegion{size: 4096}.encode(), sealedMemfd(t, 4096), sealedMemfd(t, 4096))
		}, "carries 2 file descriptors"},
		{"ring beyond the queues", func(p *rawPeer) {
			init(p)
			region(p, 1<<16)
			p.send(addRing{flags: addRingC2S, index: 1, log2Size: 4}.encode())
		}, "Invalid ring index: c2s ring 1, but this interface has 1 rx queues"},
		{"ring in an unknown region", func(p *rawPeer) {
			init(p)
			region(p, 1<<16)
			p.send(addRing{region: 3, log2Size: 4}.encode())
		}, "s2c ring 0 is in region 3, but 1 regions were added"},
		{"ring outside its region", func(p *rawPeer) {
			init(p)
			region(p, 1<<16)
			p.send(addRing{offset: 1<<16 - 256, log2Size: 4}.encode())
		}, "lies outside region 0 of 65536 bytes"},
		{"ring too large", func(p *rawPeer) {
			init(p)
			region(p, 1<<16)
			p.send(addRing{log2Size: 15}.encode())
		}, "log2 size 15, at most 14"},
		{"ring added twice", func(p *rawPeer) {
			init(p)
			region(p, 1<<16)
			p.send(addRing{log2Size: 4}.encode())
			p.expect(msgAck)
			p.send(addRing{log2Size: 4}.encode())
		}, "s2c ring 0 added twice"},
		{"ring without cookie", func(p *rawPeer) {
			init(p)
			region(p, 1<<16)
			p.send(addRing{flags: addRingC2S, log2Size: 4}.encode())
			p.expect(msgAck)
			p.send(encodeName(msgConnect, "raw"))
		}, "Wrong ring: c2s ring 0 has cookie 0"},
		{"connect without rings", func(p *rawPeer) {
			init(p)
			p.send(encodeName(msgConnect, "raw"))
		}, "CONNECT without any ring"},
		{"hello from a client", func(p *rawPeer) {
			init(p)
			p.send(hello{}.encode())
		}, "unexpected HELLO while the client sets up"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := dialRaw(t, sock)
			h := decodeHello(p.expect(msgHello))
			require.Equal(t, hello{name: "gopmd", minVersion: version, maxVersion: version, maxRegion: maxRegions - 1,
				maxLog2Ring: maxLog2Ring}, h, "HELLO of a port with one queue pair")
			p.t = t
			c.steps(p)
			p.refused(c.want)
			require.False(t, port.Link().Up)
		})
	}
	require.Equal(t, uint64(len(cases)), xstat(port, "memif_refused_peers"))

	// Still listening, and a proper client gets through.
	client, pool := testPort(t, "role=client,id=5,secret=s3,socket-abstract=no,socket="+sock)
	testport.WaitLink(t, port, true)
	testport.WaitLink(t, client, true)
	tx, _ := client.TxQueue(0)
	rx, _ := port.RxQueue(0)
	m, _ := pool.Alloc(nil)
	m.Append(64)
	require.Equal(t, 1, tx.TxBurst([]*mbuf.Mbuf{m}))
	pkts := make([]*mbuf.Mbuf, 4)
	deadline := time.Now().Add(5 * time.Second)
	n := 0
	for n == 0 && time.Now().Before(deadline) {
		n = rx.RxBurst(pkts)
	}
	require.Equal(t, 1, n)
}

func TestAServerServesOneClientAtATime(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	port, _ := testPort(t, "role=server,socket="+sock)
	connectRawClient(t, port, "@"+sock)
	second := dialRaw(t, "@"+sock)
	second.refused("Already connected")
	require.True(t, port.Link().Up, "the first connection is untouched")
}

// rawClient is a connected hand-made client: one region holding a c2s and
// an s2c ring of 16 slots and 256-byte buffers, mapped here too.
type rawClient struct {
	*rawPeer
	mem      []byte
	c2s, s2c unsafe.Pointer
}

const (
	rawLog2  = 4
	rawSlots = 1 << rawLog2
	rawBuf   = 256
)

func rawBufOff(ring, slot int) uint32 {
	return uint32(2*ringBytes(rawLog2)) + uint32((ring*rawSlots+slot)*rawBuf)
}

func connectRawClient(t *testing.T, port *ethdev.Port, sock string) *rawClient {
	size := int(2*ringBytes(rawLog2)) + 2*rawSlots*rawBuf
	fd := sealedMemfd(t, size)
	mem, err := unix.Mmap(fd, 0, size, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	require.NoError(t, err)
	t.Cleanup(func() { unix.Munmap(mem) })
	c := &rawClient{rawPeer: dialRaw(t, sock), mem: mem,
		c2s: unsafe.Pointer(&mem[0]), s2c: unsafe.Pointer(&mem[ringBytes(rawLog2)])}
	for r, ring := range []unsafe.Pointer{c.c2s, c.s2c} {
		*(*uint32)(ring) = cookie
		for s := range rawSlots {
			writeDesc(descAt(ring, uint32(s)), desc{length: rawBuf, offset: rawBufOff(r, s)})
		}
	}
	c.expect(msgHello)
	for _, m := range []*msg{goodInit(0), addRegion{size: uint64(size)}.encode(),
		addRing{flags: addRingC2S, log2Size: rawLog2}.encode(),
		addRing{offset: uint32(ringBytes(rawLog2)), log2Size: rawLog2}.encode()} {
		if m.typ() == msgAddRegion {
			c.send(m, fd)
		} else {
			c.send(m)
		}
		c.expect(msgAck)
	}
	c.send(encodeName(msgConnect, "raw0"))
	c.expect(msgConnected)
	testport.WaitLink(t, port, true)
	return c
}

func TestServerDropsAndCountsDescriptorsOutsideTheRegion(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	port, _ := testPort(t, "role=server,socket="+sock)
	c := connectRawClient(t, port, "@"+sock)
	rx, err := port.RxQueue(0)
	require.NoError(t, err)

	good := func(slot, length int) desc {
		off := rawBufOff(0, slot)
		for i := range length {
			c.mem[int(off)+i] = byte(slot + i)
		}
		return desc{length: uint32(length), offset: off}
	}
	descs := []desc{
		good(0, 60),
		{length: 60, offset: uint32(len(c.mem) - 10)},    // runs past the region's end
		{region: 3, length: 60, offset: rawBufOff(0, 2)}, // no such region
		good(3, 100),
		{length: 1 << 31, offset: rawBufOff(0, 4)}, // longer than the region
		func() desc { d := good(5, 50); d.flags = descFlagNext; return d }(),
		{length: 60, offset: 1 << 30}, // second half of that chain is out of bounds
		good(7, 70),
		{length: 0, offset: rawBufOff(0, 8)}, // an empty frame
	}
	for s, d := range descs {
		writeDesc(descAt(c.c2s, uint32(s)), d)
	}
	storeHead(c.c2s, uint16(len(descs)))

	pkts := make([]*mbuf.Mbuf, 32)
	n := rx.RxBurst(pkts)
	require.Equal(t, 3, n, "good frames received")
	for i, want := range []struct{ slot, length int }{{0, 60}, {3, 100}, {7, 70}} {
		require.Len(t, pkts[i].Data(), want.length)
		require.Equal(t, byte(want.slot+5), pkts[i].Data()[5])
	}
	mbuf.FreeBulk(nil, pkts[:n])
	s := port.Stats()
	require.Equal(t, uint64(5), s.RxErrors, "bad frames dropped and counted")
	require.Equal(t, uint64(3), s.RxPackets)
	require.Equal(t, uint16(len(descs)), loadTail(c.c2s), "every slot, bad ones too, is given back")
	require.True(t, port.Link().Up, "bad descriptors alone do not end the connection")

	// A head that jumps more than a ring ahead is corruption: counted,
	// and the peer is disconnected.
	storeHead(c.c2s, loadTail(c.c2s)+rawSlots+1)
	require.Zero(t, rx.RxBurst(pkts))
	require.Zero(t, rx.RxBurst(pkts), "the queue stays idle")
	require.Equal(t, uint64(6), port.Stats().RxErrors)
	c.refused("Ring corrupted")
	testport.WaitLink(t, port, false)
	require.Equal(t, uint64(1), xstat(port, "memif_ring_errors"))

	// The server keeps listening: a new client connects and is served.
	c = connectRawClient(t, port, "@"+sock)
	writeDesc(descAt(c.c2s, 0), good(0, 64))
	storeHead(c.c2s, 1)
	deadline := time.Now().Add(5 * time.Second)
	for n = 0; n == 0 && time.Now().Before(deadline); {
		n = rx.RxBurst(pkts)
	}
	require.Equal(t, 1, n, "the queue follows the new connection")
	mbuf.FreeBulk(nil, pkts[:n])
}

func TestServerTxChecksTheClientsDescriptors(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	port, pool := testPort(t, "role=server,socket="+sock)
	c := connectRawClient(t, port, "@"+sock)
	tx, err := port.TxQueue(0)
	require.NoError(t, err)

	// The client offers two buffers; the second lies outside the region.
	writeDesc(descAt(c.s2c, 1), desc{length: rawBuf, offset: uint32(len(c.mem))})
	storeHead(c.s2c, 2)
	pkts := make([]*mbuf.Mbuf, 2)
	require.NoError(t, pool.AllocBulk(nil, pkts))
	for i, m := range pkts {
		b, _ := m.Append(64)
		for j := range b {
			b[j] = byte(i + j)
		}
	}
	require.Equal(t, 1, tx.TxBurst(pkts), "only the frame with a good buffer is sent")
	mbuf.FreeBulk(nil, pkts[1:])
	require.Equal(t, uint16(1), loadTail(c.s2c))
	d := readDesc(descAt(c.s2c, 0))
	require.Equal(t, uint32(64), d.length)
	require.Equal(t, byte(7), c.mem[d.offset+7])
	require.Equal(t, uint64(1), port.Stats().TxErrors)
	c.refused("Ring corrupted")
	testport.WaitLink(t, port, false)
}

// rawServer accepts our client port's connections by hand.
type rawServer struct {
	t  *testing.T
	ln *net.UnixListener
}

func listenRaw(t *testing.T, sock string) *rawServer {
	ln, err := net.ListenUnix("unixpacket", &net.UnixAddr{Name: sock, Net: "unixpacket"})
	require.NoError(t, err)
	t.Cleanup(func() { ln.Close() })
	return &rawServer{t: t, ln: ln}
}

func (s *rawServer) accept() *rawPeer {
	s.ln.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := s.ln.AcceptUnix()
	require.NoError(s.t, err)
	s.t.Cleanup(func() { conn.Close() })
	return &rawPeer{t: s.t, conn: conn}
}

func TestClientRefusesABrokenServerAndRetries(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	srv := listenRaw(t, "@"+sock)
	testPort(t, "role=client,socket="+sock)

	p := srv.accept()
	p.send(hello{minVersion: 3 << 8, maxVersion: 3 << 8}.encode())
	p.refused("Incompatible memif version: the server speaks 3.0 to 3.0")

	p = srv.accept()
	p.sendBytes(make([]byte, 10))
	p.refused("message is 10 bytes, want 128")

	p = srv.accept()
	p.send(hello{minVersion: version, maxVersion: version, maxLog2Ring: 4}.encode())
	p.expect(msgInit)
	p.send(newMsg(msgConnected))
	p.refused("expected ACK, got CONNECTED")
}

func TestClientDropsDescriptorsLongerThanItsBuffers(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "m.sock")
	srv := listenRaw(t, "@"+sock)
	port, _ := testPort(t, "role=client,bsize=256,rsize=4,socket="+sock)

	p := srv.accept()
	p.send(hello{minVersion: version, maxVersion: version, maxLog2Ring: 14}.encode())
	p.expect(msgInit)
	p.send(newMsg(msgAck))
	m, fd := p.recv()
	require.Equal(t, msgAddRegion, m.typ())
	require.GreaterOrEqual(t, fd, 0, "ADD_REGION carries the region's fd")
	defer unix.Close(fd)
	ar := decodeAddRegion(m)
	mem, err := unix.Mmap(fd, 0, int(ar.size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED)
	require.NoError(t, err)
	defer unix.Munmap(mem)
	p.send(newMsg(msgAck))
	var s2c addRing
	for range 2 {
		m, fd := p.recv()
		closeFD(fd)
		require.Equal(t, msgAddRing, m.typ())
		if r := decodeAddRing(m); r.flags&addRingC2S == 0 {
			s2c = r
		}
		p.send(newMsg(msgAck))
	}
	require.Equal(t, uint8(4), s2c.log2Size)
	require.Equal(t, "net_memif0", decodeName(p.expect(msgConnect)))
	p.send(encodeName(msgConnected, "raw"))
	testport.WaitLink(t, port, true)

	ring := unsafe.Pointer(&mem[s2c.offset])
	require.Equal(t, uint16(16), loadHead(ring), "the client hands every s2c buffer over")
	require.Equal(t, uint16(ringFlagMaskInt), loadFlags(ring), "the client polls: no interrupts please")
	d0, d1 := readDesc(descAt(ring, 0)), readDesc(descAt(ring, 1))
	require.Equal(t, uint32(256), d0.length)
	setDescLen(descAt(ring, 0), 0, 0, 257) // longer than the client's buffers
	copy(mem[d1.offset:], "frame one")
	setDescLen(descAt(ring, 1), 0, 0, 9)
	writeDesc(descAt(ring, 2), desc{length: 9, offset: uint32(ar.size) - 4}) // past the region
	storeTail(ring, 3)

	rx, err := port.RxQueue(0)
	require.NoError(t, err)
	pkts := make([]*mbuf.Mbuf, 8)
	n := rx.RxBurst(pkts)
	require.Equal(t, 1, n)
	require.Equal(t, "frame one", string(pkts[0].Data()))
	mbuf.FreeBulk(nil, pkts[:n])
	require.Equal(t, uint64(2), port.Stats().RxErrors)
	require.Equal(t, uint16(3+16), loadHead(ring), "consumed slots, bad ones too, are handed back")
	require.Equal(t, desc{length: 256, offset: d1.offset + 256}, readDesc(descAt(ring, 2)),
		"a refilled descriptor points at our own buffer again")
}
