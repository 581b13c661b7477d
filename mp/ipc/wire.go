package ipc

import (
	"encoding/binary"
	"fmt"
)

// Limits of one message. With its 24-byte header a datagram is at most
// 24+64+4096 bytes.
const (
	MaxActionLen = 64   // bytes in an action name
	MaxPayload   = 4096 // bytes of payload
	MaxFDs       = 8    // file descriptors passed with one message
)

// The wire format of a datagram, all integers little-endian:
//
//	off size field
//	0   4    magic     wireMagic
//	4   1    version   wireVersion
//	5   1    kind      kindMessage, kindRequest or kindReply
//	6   1    status    reply status (statusOK...); 0 unless kind is kindReply
//	7   1    nfds      descriptors attached with SCM_RIGHTS, 0..MaxFDs
//	8   8    id        request id; 0 for one-way messages, non-zero otherwise
//	16  2    nameLen   1..MaxActionLen
//	18  2    reserved  0
//	20  4    payLen    0..MaxPayload
//	24       name, then payload; nothing after them
//
// A reply carries the request's id and action name.
const (
	wireMagic    = 0x43504d47 // "GMPC" in memory order
	wireVersion  = 1
	headerLen    = 24
	maxDatagram  = headerLen + MaxActionLen + MaxPayload
	maxStatusLen = MaxPayload // a failure reply's text fits the payload
)

type kind uint8

const (
	kindMessage kind = 1 // one-way
	kindRequest kind = 2
	kindReply   kind = 3
)

func (k kind) String() string {
	switch k {
	case kindMessage:
		return "one-way message"
	case kindRequest:
		return "request"
	case kindReply:
		return "reply"
	}
	return fmt.Sprintf("kind %d", uint8(k))
}

// status says how a request went; a reply that is not statusOK carries a
// human-readable reason as its payload and no descriptors.
type status uint8

const (
	statusOK           status = 0
	statusNoHandler    status = 1 // no handler registered for the action
	statusHandlerError status = 2 // the handler returned an error
	statusBusy         status = 3 // the peer's handler queue was full
	statusRejected     status = 4 // the request was malformed
	statusMax                 = statusRejected
)

type header struct {
	kind    kind
	status  status
	nfds    uint8
	id      uint64
	nameLen uint16
	payLen  uint32
}

// appendDatagram encodes a datagram after b. The caller has validated
// action, payload and nfds against the limits.
func appendDatagram(b []byte, k kind, st status, id uint64, action string, payload []byte, nfds int) []byte {
	var h [headerLen]byte
	binary.LittleEndian.PutUint32(h[0:], wireMagic)
	h[4] = wireVersion
	h[5] = byte(k)
	h[6] = byte(st)
	h[7] = byte(nfds)
	binary.LittleEndian.PutUint64(h[8:], id)
	binary.LittleEndian.PutUint16(h[16:], uint16(len(action)))
	binary.LittleEndian.PutUint32(h[20:], uint32(len(payload)))
	b = append(b, h[:]...)
	b = append(b, action...)
	return append(b, payload...)
}

// decode parses a received datagram that arrived with nfds descriptors.
// Every field is checked; the first violation is returned as an error that
// names the field, its value and the rule. payload aliases b.
func decode(b []byte, nfds int) (h header, action string, payload []byte, err error) {
	if len(b) < headerLen {
		return h, "", nil, fmt.Errorf("datagram is %d bytes, shorter than the %d-byte header", len(b), headerLen)
	}
	if m := binary.LittleEndian.Uint32(b[0:]); m != wireMagic {
		return h, "", nil, fmt.Errorf("bad magic %#08x, want %#08x", m, wireMagic)
	}
	if v := b[4]; v != wireVersion {
		return h, "", nil, fmt.Errorf("unsupported version %d, want %d", v, wireVersion)
	}
	h = header{
		kind:    kind(b[5]),
		status:  status(b[6]),
		nfds:    b[7],
		id:      binary.LittleEndian.Uint64(b[8:]),
		nameLen: binary.LittleEndian.Uint16(b[16:]),
		payLen:  binary.LittleEndian.Uint32(b[20:]),
	}
	switch {
	case h.kind < kindMessage || h.kind > kindReply:
		return h, "", nil, fmt.Errorf("unknown message kind %d, want 1 (one-way), 2 (request) or 3 (reply)", uint8(h.kind))
	case h.kind == kindMessage && h.id != 0:
		return h, "", nil, fmt.Errorf("one-way message carries request id %d, must be 0", h.id)
	case h.kind != kindMessage && h.id == 0:
		return h, "", nil, fmt.Errorf("%s carries request id 0, must be non-zero", h.kind)
	case h.kind != kindReply && h.status != statusOK:
		return h, "", nil, fmt.Errorf("%s carries reply status %d, must be 0", h.kind, h.status)
	case h.status > statusMax:
		return h, "", nil, fmt.Errorf("unknown reply status %d, want 0..%d", h.status, statusMax)
	case h.status != statusOK && h.nfds != 0:
		return h, "", nil, fmt.Errorf("failure reply (status %d) declares %d fds, must be 0", h.status, h.nfds)
	case int(h.nfds) > MaxFDs:
		return h, "", nil, fmt.Errorf("header declares %d fds, more than the limit of %d", h.nfds, MaxFDs)
	case int(h.nfds) != nfds:
		return h, "", nil, fmt.Errorf("header declares %d fds but %d arrived with the datagram", h.nfds, nfds)
	case h.nameLen == 0 || h.nameLen > MaxActionLen:
		return h, "", nil, fmt.Errorf("action name length %d is outside 1..%d", h.nameLen, MaxActionLen)
	case binary.LittleEndian.Uint16(b[18:]) != 0:
		return h, "", nil, fmt.Errorf("reserved header bytes are %#04x, must be 0", binary.LittleEndian.Uint16(b[18:]))
	case h.payLen > MaxPayload:
		return h, "", nil, fmt.Errorf("payload length %d exceeds the %d-byte limit", h.payLen, MaxPayload)
	}
	if want := headerLen + int(h.nameLen) + int(h.payLen); len(b) != want {
		return h, "", nil, fmt.Errorf("datagram is %d bytes but its header declares %d (%d header + %d name + %d payload)",
			len(b), want, headerLen, h.nameLen, h.payLen)
	}
	name := b[headerLen : headerLen+int(h.nameLen)]
	if err := checkActionBytes(name); err != nil {
		return h, "", nil, err
	}
	return h, string(name), b[headerLen+int(h.nameLen):], nil
}

// checkAction enforces the rules for action names: 1..MaxActionLen bytes of
// printable ASCII without spaces, so that names are safe to log.
func checkAction(action string) error {
	if len(action) == 0 || len(action) > MaxActionLen {
		return fmt.Errorf("action name %q is %d bytes, must be 1..%d", truncate(action, MaxActionLen), len(action), MaxActionLen)
	}
	return checkActionBytes([]byte(action))
}

func checkActionBytes(name []byte) error {
	for i, c := range name {
		if c <= ' ' || c > '~' {
			return fmt.Errorf("action name %q has byte %#02x at %d; only printable ASCII without spaces is allowed", name, c, i)
		}
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
