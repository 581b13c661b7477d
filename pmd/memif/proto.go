package memif

import (
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"
)

// Wire facts of memif 2.0, as DPDK, VPP and libmemif speak it. Every
// control message is one 128-byte SOCK_SEQPACKET record: a 16-bit type,
// then the packed body of that type. Numbers are in host byte order
// (little-endian on every platform gopmd runs on).
const (
	version     = 2<<8 | 0 // 2.0
	cookie      = 0x3e31f20
	msgSize     = 128
	nameSize    = 32 // app and interface names in messages
	secretSize  = 24 // INIT's secret field, NUL-terminated
	reasonSize  = 96 // DISCONNECT's reason string
	maxLog2Ring = 14 // largest ring: 16384 slots

	ringHeaderSize = 128 // cookie/flags/head on line 0, tail on line 1
	descSize       = 16

	// Offsets in the ring header. head is written by the client, tail by
	// the server, in both directions.
	ringCookie = 0
	ringFlags  = 4 // uint16, shares a 32-bit word with head
	ringHead   = 6
	ringTail   = 64

	ringFlagMaskInt = 1 // set by a ring's consumer: the producer must not signal its eventfd
	descFlagNext    = 1 // the packet continues in the next slot
	addRingC2S      = 1 // ADD_RING flag: the ring carries client-to-server packets
	modeEthernet    = 0
)

type msgType uint16

const (
	msgNone msgType = iota
	msgAck
	msgHello
	msgInit
	msgAddRegion
	msgAddRing
	msgConnect
	msgConnected
	msgDisconnect
)

func (t msgType) String() string {
	names := [...]string{"NONE", "ACK", "HELLO", "INIT", "ADD_REGION", "ADD_RING", "CONNECT", "CONNECTED", "DISCONNECT"}
	if int(t) < len(names) {
		return names[t]
	}
	return "type " + strconv.Itoa(int(t))
}

// msg is one control message as it travels.
type msg [msgSize]byte

var le = binary.LittleEndian

func (m *msg) typ() msgType { return msgType(le.Uint16(m[0:])) }

func newMsg(t msgType) *msg {
	m := new(msg)
	le.PutUint16(m[0:], uint16(t))
	return m
}

// The body layouts below start at byte 2 (the bodies are packed structs
// in a packed union after the 16-bit type).

type hello struct {
	name                   string
	minVersion, maxVersion uint16
	maxRegion              uint16 // highest region index the server takes
	maxS2C, maxC2S         uint16 // highest ring index in each direction
	maxLog2Ring            uint8
}

func (h hello) encode() *msg {
	m := newMsg(msgHello)
	putString(m[2:34], h.name)
	le.PutUint16(m[34:], h.minVersion)
	le.PutUint16(m[36:], h.maxVersion)
	le.PutUint16(m[38:], h.maxRegion)
	le.PutUint16(m[40:], h.maxS2C)
	le.PutUint16(m[42:], h.maxC2S)
	m[44] = h.maxLog2Ring
	return m
}

func decodeHello(m *msg) hello {
	return hello{name: getString(m[2:34]), minVersion: le.Uint16(m[34:]), maxVersion: le.Uint16(m[36:]),
		maxRegion: le.Uint16(m[38:]), maxS2C: le.Uint16(m[40:]), maxC2S: le.Uint16(m[42:]), maxLog2Ring: m[44]}
}

type initMsg struct {
	version uint16
	id      uint32
	mode    uint8
	secret  string
	name    string
}

func (i initMsg) encode() *msg {
	m := newMsg(msgInit)
	le.PutUint16(m[2:], i.version)
	le.PutUint32(m[4:], i.id)
	m[8] = i.mode
	putString(m[9:33], i.secret)
	putString(m[33:65], i.name)
	return m
}

func decodeInit(m *msg) initMsg {
	return initMsg{version: le.Uint16(m[2:]), id: le.Uint32(m[4:]), mode: m[8],
		secret: getString(m[9:33]), name: getString(m[33:65])}
}

type addRegion struct {
	index uint16
	size  uint64
}

func (a addRegion) encode() *msg {
	m := newMsg(msgAddRegion)
	le.PutUint16(m[2:], a.index)
	le.PutUint64(m[4:], a.size)
	return m
}

func decodeAddRegion(m *msg) addRegion {
	return addRegion{index: le.Uint16(m[2:]), size: le.Uint64(m[4:])}
}

type addRing struct {
	flags      uint16
	index      uint16
	region     uint16
	offset     uint32
	log2Size   uint8
	privateHdr uint16
}

func (a addRing) encode() *msg {
	m := newMsg(msgAddRing)
	le.PutUint16(m[2:], a.flags)
	le.PutUint16(m[4:], a.index)
	le.PutUint16(m[6:], a.region)
	le.PutUint32(m[8:], a.offset)
	m[12] = a.log2Size
	le.PutUint16(m[13:], a.privateHdr)
	return m
}

func decodeAddRing(m *msg) addRing {
	return addRing{flags: le.Uint16(m[2:]), index: le.Uint16(m[4:]), region: le.Uint16(m[6:]),
		offset: le.Uint32(m[8:]), log2Size: m[12], privateHdr: le.Uint16(m[13:])}
}

// CONNECT and CONNECTED carry the sender's interface name.
func encodeName(t msgType, name string) *msg {
	m := newMsg(t)
	putString(m[2:34], name)
	return m
}

func decodeName(m *msg) string { return getString(m[2:34]) }

func encodeDisconnect(code uint32, reason string) *msg {
	m := newMsg(msgDisconnect)
	le.PutUint32(m[2:], code)
	putString(m[6:6+reasonSize], reason)
	return m
}

func decodeDisconnect(m *msg) (code uint32, reason string) {
	return le.Uint32(m[2:]), getString(m[6 : 6+reasonSize])
}

// putString stores s NUL-terminated, cut to fit.
func putString(dst []byte, s string) {
	n := copy(dst[:len(dst)-1], s)
	clear(dst[n:])
}

// getString reads a NUL-terminated field a peer filled: up to the first
// NUL (or the whole field), with anything unprintable escaped so that it is
// safe to log.
func getString(b []byte) string {
	if i := strings.IndexByte(string(b), 0); i >= 0 {
		b = b[:i]
	}
	s := string(b)
	for _, r := range s {
		if r < 0x20 || r > 0x7e {
			q := strconv.QuoteToASCII(s)
			return q[1 : len(q)-1]
		}
	}
	return s
}

// ringBytes is the size of a ring of 1<<log2 descriptors with its header.
func ringBytes(log2 uint8) uint64 { return ringHeaderSize + descSize<<log2 }

// refusal is a reason to refuse a peer: it goes into the DISCONNECT we
// send and into our log.
type refusal struct{ reason string }

func (r *refusal) Error() string { return r.reason }

func refuse(format string, args ...any) error { return &refusal{fmt.Sprintf(format, args...)} }
