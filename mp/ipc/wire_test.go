package ipc

import (
	"bytes"
	"encoding/binary"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestDecodeAcceptsWhatAppendDatagramWrites(t *testing.T) {
	b := appendDatagram(nil, kindRequest, statusOK, 7, "eal_dev_attach", []byte("0000:00:04.0"), 2)
	h, action, payload, err := decode(b, 2)
	require.NoError(t, err)
	require.Equal(t, header{kind: kindRequest, nfds: 2, id: 7, nameLen: 14, payLen: 12}, h)
	require.Equal(t, "eal_dev_attach", action)
	require.Equal(t, "0000:00:04.0", string(payload))
}

func TestDecodeRejectsEachMalformedField(t *testing.T) {
	valid := func() []byte { return appendDatagram(nil, kindMessage, statusOK, 0, "act", []byte("pay"), 0) }
	with := func(edit func(b []byte) []byte) []byte { return edit(valid()) }
	cases := []struct {
		name  string
		b     []byte
		nfds  int
		error string
	}{
		{"empty", nil, 0, "datagram is 0 bytes, shorter than the 24-byte header"},
		{"short", valid()[:23], 0, "datagram is 23 bytes, shorter than the 24-byte header"},
		{"magic", with(func(b []byte) []byte { b[0] ^= 0xff; return b }), 0, "bad magic"},
		{"version", with(func(b []byte) []byte { b[4] = 2; return b }), 0, "unsupported version 2, want 1"},
		{"kind zero", with(func(b []byte) []byte { b[5] = 0; return b }), 0, "unknown message kind 0"},
		{"kind four", with(func(b []byte) []byte { b[5] = 4; return b }), 0, "unknown message kind 4"},
		{"one-way with id", with(func(b []byte) []byte { b[8] = 1; return b }), 0, "one-way message carries request id 1, must be 0"},
		{"request without id", with(func(b []byte) []byte { b[5] = byte(kindRequest); return b }), 0, "request carries request id 0"},
		{"status on request", appendDatagram(nil, kindRequest, statusBusy, 1, "act", nil, 0), 0, "request carries reply status 3, must be 0"},
		{"unknown status", appendDatagram(nil, kindReply, statusMax+1, 1, "act", nil, 0), 0, "unknown reply status 5"},
		{"fds on failure", appendDatagram(nil, kindReply, statusNoHandler, 1, "act", nil, 1), 1, "failure reply (status 1) declares 1 fds, must be 0"},
		{"too many fds", appendDatagram(nil, kindMessage, statusOK, 0, "act", nil, 9), 9, "header declares 9 fds, more than the limit of 8"},
		{"fewer fds arrived", appendDatagram(nil, kindMessage, statusOK, 0, "act", nil, 2), 1, "header declares 2 fds but 1 arrived"},
		{"unannounced fds", valid(), 3, "header declares 0 fds but 3 arrived"},
		{"empty name", with(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[16:], 0); return b }), 0, "action name length 0 is outside 1..64"},
		{"long name", with(func(b []byte) []byte { binary.LittleEndian.PutUint16(b[16:], 65); return b }), 0, "action name length 65 is outside 1..64"},
		{"reserved", with(func(b []byte) []byte { b[19] = 1; return b }), 0, "reserved header bytes are 0x0100, must be 0"},
		{"huge payload", with(func(b []byte) []byte { binary.LittleEndian.PutUint32(b[20:], MaxPayload+1); return b }), 0, "payload length 4097 exceeds the 4096-byte limit"},
		{"trailing bytes", append(valid(), 0), 0, "datagram is 31 bytes but its header declares 30 (24 header + 3 name + 3 payload)"},
		{"truncated body", valid()[:29], 0, "datagram is 29 bytes but its header declares 30"},
		{"space in name", appendDatagram(nil, kindMessage, statusOK, 0, "a b", nil, 0), 0, `action name "a b" has byte 0x20 at 1`},
		{"control byte in name", appendDatagram(nil, kindMessage, statusOK, 0, "a\x00", nil, 0), 0, "has byte 0x00 at 1"},
		{"non-ASCII name", appendDatagram(nil, kindMessage, statusOK, 0, "é", nil, 0), 0, "has byte 0xc3 at 0"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, _, _, err := decode(c.b, c.nfds)
			require.Error(t, err, "decode must reject %x", c.b)
			require.Contains(t, err.Error(), c.error)
		})
	}
}

func TestDecodeAcceptsTheLimits(t *testing.T) {
	name := strings.Repeat("n", MaxActionLen)
	payload := bytes.Repeat([]byte{0xab}, MaxPayload)
	b := appendDatagram(nil, kindReply, statusOK, ^uint64(0), name, payload, MaxFDs)
	require.Len(t, b, maxDatagram)
	_, action, got, err := decode(b, MaxFDs)
	require.NoError(t, err)
	require.Equal(t, name, action)
	require.Equal(t, payload, got)
}

// FuzzDecode checks that no input panics the decoder and that whatever it
// accepts is exactly what the encoder would write for the decoded fields.
func FuzzDecode(f *testing.F) {
	f.Add(appendDatagram(nil, kindMessage, statusOK, 0, "note", []byte("hello"), 0), 0)
	f.Add(appendDatagram(nil, kindRequest, statusOK, 9, "attach", []byte{1, 2, 3}, 2), 2)
	f.Add(appendDatagram(nil, kindReply, statusHandlerError, 9, "attach", []byte("boom"), 0), 0)
	f.Add([]byte("GMPC"), 0)
	f.Add([]byte{}, 1)
	f.Fuzz(func(t *testing.T, b []byte, nfds int) {
		h, action, payload, err := decode(b, nfds)
		if err != nil {
			return
		}
		if checkAction(action) != nil || len(payload) > MaxPayload || int(h.nfds) != nfds || nfds > MaxFDs {
			t.Fatalf("decode accepted out-of-limit fields: action %q, %d-byte payload, %d fds", action, len(payload), nfds)
		}
		again := appendDatagram(nil, h.kind, h.status, h.id, action, payload, int(h.nfds))
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded %+v %q %x, which encodes to\n%x\nnot the input\n%x", h, action, payload, again, b)
		}
	})
}
