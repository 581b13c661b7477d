package memif

import (
	"fmt"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// serverHandshake: HELLO, then INIT, ADD_REGION..., ADD_RING..., CONNECT
// from the client, each acknowledged, then CONNECTED.
func (s *session) serverHandshake() error {
	d := s.c.d
	nrx, ntx := d.queueCounts()
	h := hello{name: appName, minVersion: version, maxVersion: version, maxRegion: maxRegions - 1,
		maxS2C: uint16(ntx - 1), maxC2S: uint16(nrx - 1), maxLog2Ring: maxLog2Ring}
	if err := s.send(h.encode(), -1); err != nil {
		return err
	}
	m, err := s.expect(msgInit)
	if err != nil {
		return err
	}
	in := decodeInit(m)
	s.peerApp = in.name
	switch {
	case in.version != version:
		return refuse("Incompatible memif version %d.%d (we speak 2.0)", in.version>>8, in.version&0xff)
	case in.id != d.cfg.id:
		return refuse("ID %d not found (this interface is id %d)", in.id, d.cfg.id)
	case in.mode != modeEthernet:
		return refuse("Only ethernet mode supported (got mode %d)", in.mode)
	case d.cfg.secret != "" && in.secret == "":
		return refuse("Secret required")
	case d.cfg.secret != in.secret && d.cfg.secret != "":
		return refuse("Incorrect secret")
	}
	if err := s.send(newMsg(msgAck), -1); err != nil {
		return err
	}
	s.c2s = make([]ringSpec, nrx)
	s.s2c = make([]ringSpec, ntx)
	for {
		m, fd, err := s.recv()
		if err != nil {
			return err
		}
		switch t := m.typ(); t {
		case msgAddRegion:
			err = s.addRegion(decodeAddRegion(m), fd)
		case msgAddRing:
			closeFD(fd) // the ring's interrupt eventfd: we poll, and mask interrupts
			err = s.addRing(decodeAddRing(m))
		case msgConnect:
			closeFD(fd)
			s.peerIf = decodeName(m)
			if err := s.serverConnect(); err != nil {
				return err
			}
			return s.send(encodeName(msgConnected, d.port.Name()), -1)
		case msgDisconnect:
			closeFD(fd)
			_, reason := decodeDisconnect(m)
			return &peerDisconnect{reason}
		default:
			closeFD(fd)
			return refuse("unexpected %v while the client sets up its regions and rings", t)
		}
		if err != nil {
			return err
		}
		if err := s.send(newMsg(msgAck), -1); err != nil {
			return err
		}
	}
}

func (s *session) addRegion(a addRegion, fd int) error {
	if fd < 0 {
		return refuse("Missing region fd (ADD_REGION %d)", a.index)
	}
	switch {
	case len(s.regions) >= maxRegions:
		closeFD(fd)
		return refuse("Too many regions: at most %d", maxRegions)
	case int(a.index) != len(s.regions):
		closeFD(fd)
		return refuse("Invalid region index %d: want %d (regions come in order)", a.index, len(s.regions))
	case a.size == 0 || a.size > maxRegionSize:
		closeFD(fd)
		return refuse("Region %d size %d: want 1 to %d bytes", a.index, a.size, uint64(maxRegionSize))
	}
	if err := sealShrink(fd); err != nil {
		closeFD(fd)
		return refuse("Region %d: %v", a.index, err)
	}
	m, err := mmapFD(fd, a.size)
	if err != nil {
		closeFD(fd)
		return refuse("Region %d: %v", a.index, err)
	}
	s.regions = append(s.regions, region{fd: fd, m: m})
	return nil
}

func (s *session) addRing(a addRing) error {
	list, dir, queues := s.s2c, "s2c", "tx"
	if a.flags&addRingC2S != 0 {
		list, dir, queues = s.c2s, "c2s", "rx"
	}
	switch {
	case a.flags&^addRingC2S != 0:
		return refuse("ADD_RING flags %#x: unknown bits", a.flags)
	case int(a.index) >= len(list):
		return refuse("Invalid ring index: %s ring %d, but this interface has %d %s queues", dir, a.index, len(list), queues)
	case list[a.index].present:
		return refuse("%s ring %d added twice", dir, a.index)
	case a.log2Size > maxLog2Ring:
		return refuse("%s ring %d: log2 size %d, at most %d", dir, a.index, a.log2Size, maxLog2Ring)
	case a.privateHdr != 0:
		return refuse("%s ring %d: private header size %d is not supported", dir, a.index, a.privateHdr)
	case int(a.region) >= len(s.regions):
		return refuse("%s ring %d is in region %d, but %d regions were added", dir, a.index, a.region, len(s.regions))
	case a.offset%8 != 0:
		return refuse("%s ring %d at offset %#x: not 8-byte aligned", dir, a.index, a.offset)
	case uint64(a.offset)+ringBytes(a.log2Size) > s.regions[a.region].m.size:
		return refuse("%s ring %d (%#x..%#x) lies outside region %d of %d bytes", dir, a.index,
			a.offset, uint64(a.offset)+ringBytes(a.log2Size), a.region, s.regions[a.region].m.size)
	}
	list[a.index] = ringSpec{present: true, region: a.region, log2: a.log2Size, offset: a.offset}
	return nil
}

// serverConnect checks the rings the client set up and resets them; we
// consume c2s rings by polling, so we mask the client's interrupts there.
func (s *session) serverConnect() error {
	any := false
	for dir, list := range [][]ringSpec{s.c2s, s.s2c} {
		for i, r := range list {
			if !r.present {
				continue
			}
			any = true
			if c := loadCookie(r.ptr(s)); c != cookie {
				return refuse("Wrong ring: %s ring %d has cookie %#x, want %#x", [2]string{"c2s", "s2c"}[dir], i, c, cookie)
			}
		}
	}
	if !any {
		return refuse("CONNECT without any ring")
	}
	for _, r := range s.c2s {
		if r.present {
			resetRing(r.ptr(s), ringFlagMaskInt)
		}
	}
	for _, r := range s.s2c {
		if r.present {
			p := r.ptr(s)
			resetRing(p, loadFlags(p))
		}
	}
	return nil
}

// clientHandshake: HELLO from the server, then our region (made here,
// one memfd holding rings and buffers) and rings, each acknowledged, then
// CONNECT and CONNECTED.
func (s *session) clientHandshake() error {
	d := s.c.d
	m, err := s.expect(msgHello)
	if err != nil {
		return err
	}
	h := decodeHello(m)
	s.peerApp = h.name
	if h.minVersion > version || h.maxVersion < version {
		return refuse("Incompatible memif version: the server speaks %d.%d to %d.%d, we speak 2.0",
			h.minVersion>>8, h.minVersion&0xff, h.maxVersion>>8, h.maxVersion&0xff)
	}
	nrx, ntx := d.queueCounts()
	nc2s := min(int(h.maxC2S)+1, ntx)
	ns2c := min(int(h.maxS2C)+1, nrx)
	log2 := min(h.maxLog2Ring, d.cfg.log2Ring)
	if err := s.makeRegion(nc2s, ns2c, log2); err != nil {
		return err
	}
	in := initMsg{version: version, id: d.cfg.id, mode: modeEthernet, secret: d.cfg.secret, name: appName}
	if err := s.call(in.encode(), -1); err != nil {
		return err
	}
	if err := s.call(addRegion{index: 0, size: s.regions[0].m.size}.encode(), s.regions[0].fd); err != nil {
		return err
	}
	for dir, list := range [][]ringSpec{s.c2s, s.s2c} {
		for i, r := range list {
			a := addRing{index: uint16(i), region: r.region, offset: r.offset, log2Size: r.log2}
			if dir == 0 {
				a.flags = addRingC2S
			}
			// Some servers (DPDK's) insist on an interrupt eventfd per
			// ring even though we poll and mask interrupts.
			efd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
			if err != nil {
				return fmt.Errorf("eventfd: %w", err)
			}
			err = s.call(a.encode(), efd)
			unix.Close(efd)
			if err != nil {
				return err
			}
		}
	}
	if err := s.send(encodeName(msgConnect, d.port.Name()), -1); err != nil {
		return err
	}
	if m, err = s.expect(msgConnected); err != nil {
		return err
	}
	s.peerIf = decodeName(m)
	// The server reset the rings before answering; now we do, keeping the
	// flags it set on the rings it consumes, masking interrupts on ours,
	// and giving it every s2c buffer.
	for _, r := range s.c2s {
		p := r.ptr(s)
		resetRing(p, loadFlags(p))
	}
	for _, r := range s.s2c {
		p := r.ptr(s)
		resetRing(p, ringFlagMaskInt)
		storeHead(p, uint16(1)<<r.log2)
	}
	return nil
}

// call sends a message and waits for its ACK.
func (s *session) call(m *msg, fd int) error {
	if err := s.send(m, fd); err != nil {
		return err
	}
	_, err := s.expect(msgAck)
	return err
}

// makeRegion creates region 0 in DPDK's copy-mode layout: the c2s rings,
// the s2c rings, then each ring's buffers in the same order. Every
// descriptor starts pointing at its own buffer, with the buffer's size.
func (s *session) makeRegion(nc2s, ns2c int, log2 uint8) error {
	bsize := uint64(s.c.d.cfg.bufSize)
	nrings := uint64(nc2s + ns2c)
	rb := ringBytes(log2)
	bufBase := nrings * rb
	size := bufBase + nrings*bsize<<log2
	if size > maxRegionSize {
		return refuse("Region of %d bytes needed, memif offsets reach %d", size, uint64(maxRegionSize))
	}
	fd, err := newRegionFD(size)
	if err != nil {
		return err
	}
	m, err := mmapFD(fd, size)
	if err != nil {
		unix.Close(fd)
		return err
	}
	s.regions = []region{{fd: fd, m: m}}
	s.c2s = make([]ringSpec, nc2s)
	s.s2c = make([]ringSpec, ns2c)
	for i := range nrings {
		r := ringSpec{present: true, log2: log2, offset: uint32(i * rb), bufOff: uint32(bufBase + i*bsize<<log2)}
		flags := uint16(0)
		if int(i) < nc2s {
			s.c2s[i] = r
		} else {
			s.s2c[int(i)-nc2s] = r
			flags = ringFlagMaskInt
		}
		p := r.ptr(s)
		atomic.StoreUint32(ringWord(p, ringCookie), cookie)
		resetRing(p, flags)
		for j := range uint32(1) << log2 {
			writeDesc(descAt(p, j), desc{length: uint32(bsize), offset: r.bufOff + j*uint32(bsize)})
		}
	}
	return nil
}
