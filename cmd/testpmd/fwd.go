package main

import (
	"encoding/binary"
	"fmt"

	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mempool"
)

// engineFunc forwards one burst of one stream. pkts is the lcore's scratch
// array; cache is the lcore's mbuf cache.
type engineFunc func(s *stream, pkts []*mbuf.Mbuf, cache *mempool.Cache, pool *mbuf.Pool, tmpl *template)

func validMode(mode string) bool {
	_, err := engine(mode)
	return err == nil
}

func engine(mode string) (engineFunc, error) {
	switch mode {
	case "io":
		return fwdIO, nil
	case "mac":
		return fwdMAC, nil
	case "macswap":
		return fwdMACSwap, nil
	case "rxonly":
		return fwdRxOnly, nil
	case "txonly":
		return fwdTxOnly, nil
	}
	return nil, fmt.Errorf("unknown forward mode %q", mode)
}

// send transmits pkts and frees what the queue did not take.
func send(s *stream, pkts []*mbuf.Mbuf, cache *mempool.Cache) {
	sent := s.tx.TxBurst(pkts)
	if sent < len(pkts) {
		mbuf.FreeBulk(cache, pkts[sent:])
	}
}

// fwdIO forwards packets untouched.
func fwdIO(s *stream, pkts []*mbuf.Mbuf, cache *mempool.Cache, _ *mbuf.Pool, _ *template) {
	if n := s.rx.RxBurst(pkts); n > 0 {
		send(s, pkts[:n], cache)
	}
}

// fwdMAC rewrites the Ethernet addresses: source is the tx port, destination its peer.
func fwdMAC(s *stream, pkts []*mbuf.Mbuf, cache *mempool.Cache, _ *mbuf.Pool, _ *template) {
	n := s.rx.RxBurst(pkts)
	for _, m := range pkts[:n] {
		if d := m.Data(); len(d) >= 12 {
			copy(d[0:6], s.peerMAC[:])
			copy(d[6:12], s.srcMAC[:])
		}
	}
	if n > 0 {
		send(s, pkts[:n], cache)
	}
}

// fwdMACSwap swaps the source and destination Ethernet addresses.
func fwdMACSwap(s *stream, pkts []*mbuf.Mbuf, cache *mempool.Cache, _ *mbuf.Pool, _ *template) {
	n := s.rx.RxBurst(pkts)
	for _, m := range pkts[:n] {
		if d := m.Data(); len(d) >= 12 {
			var dst [6]byte
			copy(dst[:], d[0:6])
			copy(d[0:6], d[6:12])
			copy(d[6:12], dst[:])
		}
	}
	if n > 0 {
		send(s, pkts[:n], cache)
	}
}

// fwdRxOnly receives and frees.
func fwdRxOnly(s *stream, pkts []*mbuf.Mbuf, cache *mempool.Cache, _ *mbuf.Pool, _ *template) {
	if n := s.rx.RxBurst(pkts); n > 0 {
		mbuf.FreeBulk(cache, pkts[:n])
	}
}

// fwdTxOnly sends a burst of fresh UDP packets built from the template.
func fwdTxOnly(s *stream, pkts []*mbuf.Mbuf, cache *mempool.Cache, pool *mbuf.Pool, tmpl *template) {
	if pool.AllocBulk(cache, pkts) != nil {
		return
	}
	for _, m := range pkts {
		tmpl.write(m, s.srcMAC, s.peerMAC)
	}
	send(s, pkts, cache)
}

// template is the UDP/IPv4 packet txonly sends, built once: Ethernet,
// IPv4 198.18.0.1 -> 198.18.0.2, UDP 9 -> 9, zero payload, like
// dpdk-testpmd's txonly defaults.
type template struct {
	frame []byte
}

func newTemplate(length int) template {
	f := make([]byte, length)
	binary.BigEndian.PutUint16(f[12:], 0x0800)
	ip := f[14:34]
	ip[0] = 0x45
	binary.BigEndian.PutUint16(ip[2:], uint16(length-14))
	ip[8] = 64 // TTL
	ip[9] = 17 // UDP
	copy(ip[12:16], []byte{198, 18, 0, 1})
	copy(ip[16:20], []byte{198, 18, 0, 2})
	binary.BigEndian.PutUint16(ip[10:], ipChecksum(ip))
	udp := f[34:42]
	binary.BigEndian.PutUint16(udp[0:], 9)
	binary.BigEndian.PutUint16(udp[2:], 9)
	binary.BigEndian.PutUint16(udp[4:], uint16(length-34))
	return template{frame: f}
}

// write fills m with the template and the stream's addresses.
func (t *template) write(m *mbuf.Mbuf, src, dst [6]byte) {
	m.Reset()
	d, err := m.Append(len(t.frame))
	if err != nil {
		return
	}
	copy(d, t.frame)
	copy(d[0:6], dst[:])
	copy(d[6:12], src[:])
}

func ipChecksum(h []byte) uint16 {
	var sum uint32
	for i := 0; i < len(h); i += 2 {
		sum += uint32(binary.BigEndian.Uint16(h[i:]))
	}
	for sum > 0xffff {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}
