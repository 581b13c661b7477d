package model82599

import (
	"encoding/binary"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// ruleCase breaks one rule with a minimal register sequence.
type ruleCase struct {
	name     string
	opts     []harnessOpt
	init     bool // run resetAndInit first
	do       func(h *harness)
	expected []string
}

var ruleCases = []ruleCase{
	{name: "access outside BAR0 or unaligned", do: func(h *harness) {
		require.Equal(h.t, uint32(0xFFFFFFFF), h.r(0x20000))
		h.w(0x00003, 1)
	}, expected: []string{"bar-access", "bar-access"}},
	{name: "register read right after CTRL.RST", do: func(h *harness) {
		h.w(oCTRL, bitRST)
		h.r(oSTATUS)
	}, expected: []string{"reset-access"}},
	{name: "initialization resumed 2 ms after reset", opts: []harnessOpt{pedantic}, do: func(h *harness) {
		h.w(oCTRL, bitRST)
		h.clock.advance(2 * time.Millisecond)
		h.r(oEEC)
		h.r(oEEC)
	}, expected: []string{"reset-settle"}},
	{name: "Rx queue enabled with no ring", init: true, do: func(h *harness) {
		h.set(oRXDCTL(0), bitENABLE)
		require.Zero(h.t, h.r(oRXDCTL(0))&bitENABLE, "the queue stays disabled")
		require.Zero(h.t, h.r(oRXDCTL(0))&bitENABLE)
	}, expected: []string{"rx-ring-unset"}},
	{name: "RDBAL not 128-byte aligned", do: func(h *harness) {
		h.w(oRDBAL(0), 0x1040)
	}, expected: []string{"rx-ring-align"}},
	{name: "RDLEN not a multiple of 128", do: func(h *harness) {
		h.w(oRDLEN(0), 1000)
	}, expected: []string{"rx-ring-len"}},
	{name: "Rx ring outside DMA memory", init: true, do: func(h *harness) {
		h.w(oRDBAL(2), 0x1000)
		h.w(oRDBAH(2), 0)
		h.w(oRDLEN(2), 1024)
		h.w(oSRRCTL(2), 2|1<<25)
		h.set(oRXDCTL(2), bitENABLE)
	}, expected: []string{"rx-ring-dma"}},
	{name: "RDLEN changed on an enabled queue", init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8})
		h.w(oRDLEN(0), 256)
	}, expected: []string{"rx-reprogram-enabled"}},
	{name: "RDT bumped without polling RXDCTL.ENABLE", init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8, noStart: true})
		h.set(oRXDCTL(0), bitENABLE)
		h.w(oRDT(0), 7)
	}, expected: []string{"rx-tail-before-enable"}},
	{name: "RDT beyond the ring", init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8})
		h.w(oRDT(0), 8)
	}, expected: []string{"rx-tail-range"}},
	{name: "RDH written on an enabled queue", init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8})
		h.w(oRDH(0), 3)
	}, expected: []string{"rx-head-write"}},
	{name: "SRRCTL.BSIZEPACKET zero", init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8, noStart: true})
		h.w(oSRRCTL(0), 1<<25)
		h.set(oRXDCTL(0), bitENABLE)
	}, expected: []string{"rx-bsize"}},
	{name: "header split descriptors", init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8, noStart: true})
		h.w(oSRRCTL(0), 2|2<<25)
		h.set(oRXDCTL(0), bitENABLE)
	}, expected: []string{"rx-desctype"}},
	{name: "Rx descriptor pointing outside DMA memory", init: true, do: func(h *harness) {
		r := h.setupRx(0, rxOpts{n: 8})
		h.enableRx()
		binary.LittleEndian.PutUint64(r.ring[0:8], 0x10)
		require.False(h.t, h.dev.Receive(udpFrame(macDev, 20)))
	}, expected: []string{"rx-buffer-dma"}},
	{name: "CRC strip settings disagree", init: true, do: func(h *harness) {
		h.clr(oRDRXCTL, 1<<1)
		h.enableRx()
	}, expected: []string{"rx-crcstrip"}},
	{name: "RDRXCTL left at its defaults", opts: []harnessOpt{pedantic}, do: func(h *harness) {
		h.set(oRDRXCTL, 1<<1)
		h.set(oRXCTRL, bitRXEN)
	}, expected: []string{"rx-rdrxctl"}},
	{name: "DCA_RXCTRL bit 12 left set", opts: []harnessOpt{pedantic}, init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8, noStart: true})
		h.set(oDCARXCTRL(0), 1<<12)
		h.set(oRXDCTL(0), bitENABLE)
	}, expected: []string{"rx-dca-bit12"}},
	{name: "FCTRL changed while receiving", opts: []harnessOpt{pedantic}, init: true, do: func(h *harness) {
		h.enableRx()
		h.set(oFCTRL, 1<<9)
	}, expected: []string{"rx-filter-while-enabled"}},
	{name: "Tx queue enabled with no ring", init: true, do: func(h *harness) {
		h.set(oTXDCTL(1), bitENABLE)
	}, expected: []string{"tx-ring-unset"}},
	{name: "TDBAL not 128-byte aligned", do: func(h *harness) {
		h.w(oTDBAL(0), 0x1010)
	}, expected: []string{"tx-ring-align"}},
	{name: "TDLEN not a multiple of 128", do: func(h *harness) {
		h.w(oTDLEN(0), 100)
	}, expected: []string{"tx-ring-len"}},
	{name: "Tx ring outside DMA memory", init: true, do: func(h *harness) {
		h.w(oTDBAL(1), 0x1000)
		h.w(oTDBAH(1), 0)
		h.w(oTDLEN(1), 1024)
		h.set(oTXDCTL(1), bitENABLE)
	}, expected: []string{"tx-ring-dma"}},
	{name: "TDLEN changed on an enabled queue", init: true, do: func(h *harness) {
		h.setupTx(0, 32, true)
		h.w(oTDLEN(0), 256)
	}, expected: []string{"tx-reprogram-enabled"}},
	{name: "queue 0 programmed after DMATXCTL.TE enabled it", init: true, do: func(h *harness) {
		h.set(oDMATXCTL, bitTE)
		h.setupTx(0, 32, false)
	}, expected: []string{"tx-reprogram-enabled", "tx-reprogram-enabled", "tx-reprogram-enabled"}},
	{name: "TDT bumped before the queue is enabled", init: true, do: func(h *harness) {
		h.setupTx(1, 32, false)
		h.w(oTDT(1), 1)
	}, expected: []string{"tx-tail-before-enable"}},
	{name: "TDT beyond the ring", init: true, do: func(h *harness) {
		h.setupTx(0, 32, true)
		h.w(oTDT(0), 32)
	}, expected: []string{"tx-tail-range"}},
	{name: "TDH written on an enabled queue", init: true, do: func(h *harness) {
		h.setupTx(0, 32, true)
		h.w(oTDH(0), 4)
	}, expected: []string{"tx-head-write"}},
	{name: "Tx descriptor pointing outside DMA memory", init: true, do: func(h *harness) {
		tx := h.setupTx(0, 32, true)
		i := tx.put(udpFrame(macPeer, 20), txEOP|txIFCS|txRS, 76)
		binary.LittleEndian.PutUint64(tx.ring[i*16:], 0x10)
		h.w(oTDT(0), uint32(tx.tail))
		require.Empty(h.t, h.sent)
		require.True(h.t, tx.done(i), "the descriptor completes even though the frame is dropped")
	}, expected: []string{"tx-buffer-dma"}},
	{name: "reserved DTYP", init: true, do: func(h *harness) {
		tx := h.setupTx(0, 32, true)
		f := udpFrame(macPeer, 20)
		i := tx.put(f, txEOP|txIFCS|txRS, len(f))
		c := binary.LittleEndian.Uint32(tx.ring[i*16+8:])
		binary.LittleEndian.PutUint32(tx.ring[i*16+8:], c&^(0xF<<20)|5<<20)
		h.w(oTDT(0), uint32(tx.tail))
		require.Empty(h.t, h.sent)
	}, expected: []string{"tx-dtyp"}},
	{name: "PAYLEN one short", init: true, do: func(h *harness) {
		tx := h.setupTx(0, 32, true)
		f := udpFrame(macPeer, 20)
		tx.put(f, txEOP|txIFCS|txRS, len(f)-1)
		h.w(oTDT(0), uint32(tx.tail))
	}, expected: []string{"tx-paylen"}},
	{name: "short frame padded without IFCS", init: true, do: func(h *harness) {
		tx := h.setupTx(0, 32, true)
		f := udpFrame(macPeer, 0)[:42]
		tx.put(f, txEOP|txRS, len(f))
		h.w(oTDT(0), uint32(tx.tail))
	}, expected: []string{"tx-pad-ifcs"}},
	{name: "descriptor longer than a jumbo frame", init: true, do: func(h *harness) {
		tx := h.setupTx(0, 32, true)
		d := tx.ring[0:16]
		binary.LittleEndian.PutUint64(d[0:8], tx.bufIOVA[0])
		binary.LittleEndian.PutUint32(d[8:12], 0xFFFF|txData|txDEXT|txEOP|txIFCS|txRS)
		binary.LittleEndian.PutUint32(d[12:16], 0xFFFF<<14)
		h.w(oTDT(0), 1)
		require.Empty(h.t, h.sent)
	}, expected: []string{"tx-too-long"}},
	{name: "head write-back outside DMA memory", init: true, do: func(h *harness) {
		tx := h.setupTx(0, 32, false)
		h.w(oTDWBAL(0), 0x1000|1)
		h.w(oTDWBAH(0), 0)
		h.set(oDMATXCTL, bitTE)
		h.set(oTXDCTL(0), bitENABLE)
		h.poll(oTXDCTL(0), bitENABLE)
		tx.send(udpFrame(macPeer, 20))
	}, expected: []string{"tx-head-wb-dma"}},
	{name: "PTHRESH without HTHRESH", opts: []harnessOpt{pedantic}, init: true, do: func(h *harness) {
		h.w(oTXDCTL(0), 32)
	}, expected: []string{"tx-hthresh"}},
	{name: "TXPBSIZE without RTTDCS.ARBDIS", opts: []harnessOpt{pedantic}, do: func(h *harness) {
		h.w(oTXPBSIZE0, 0x10<<10)
	}, expected: []string{"tx-arbdis"}},
	{name: "VMDq queue assignment", do: func(h *harness) {
		h.w(oMRQC, 0x8)
	}, expected: []string{"unsupported-mrqe"}},
	{name: "receive side coalescing", init: true, do: func(h *harness) {
		h.setupRx(0, rxOpts{n: 8, noStart: true})
		h.w(oRSCCTL(0), 1)
		h.set(oRXDCTL(0), bitENABLE)
	}, expected: []string{"unsupported-rsc"}},
	{name: "TCP segmentation offload", init: true, do: func(h *harness) {
		tx := h.setupTx(0, 32, true)
		f := udpFrame(macPeer, 20)
		tx.put(f, txEOP|txIFCS|txRS|1<<31, len(f))
		h.w(oTDT(0), uint32(tx.tail))
	}, expected: []string{"unsupported-tx-offload"}},
}

func TestEveryRuleIsReportedWhenBroken(t *testing.T) {
	for _, c := range ruleCases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, c.opts...)
			if c.init {
				h.resetAndInit()
				h.requireNoViolations()
			}
			c.do(h)
			h.requireViolation(c.expected...)
		})
	}
}

func TestEveryRuleHasACase(t *testing.T) {
	covered := map[string]bool{}
	for _, c := range ruleCases {
		for _, id := range c.expected {
			covered[id] = true
		}
	}
	for _, r := range Rules() {
		require.Truef(t, covered[r.ID], "rule %s has no test case", r.ID)
	}
}

func TestViolationMessagesCiteTheDatasheet(t *testing.T) {
	h := newHarness(t)
	h.w(oRDBAL(0), 0x1040)
	require.Len(t, h.viol, 1)
	msg := h.viol[0]
	require.True(t, strings.HasPrefix(msg, "[rx-ring-align] 82599 datasheet §8.2.3.8.1 (must): "), "got %q", msg)
	require.Contains(t, msg, "queue 0: RDBAL written 0x1040")
	require.Equal(t, h.viol, h.dev.Violations())
}

func TestShouldRulesNeedPedantic(t *testing.T) {
	h := newHarness(t)
	h.w(oTXPBSIZE0, 0x10<<10)
	h.requireNoViolations()
}

func TestResettingATailToTheHeadIsNotABump(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	h.setupRx(0, rxOpts{n: 8})
	h.setupTx(0, 32, true)
	h.clr(oRXDCTL(0), bitENABLE)
	h.clr(oTXDCTL(0), bitENABLE)
	h.w(oRDH(0), 0) // a driver reinitializing the rings, as Linux does
	h.w(oRDT(0), 0)
	h.w(oTDH(0), 0)
	h.w(oTDT(0), 0)
	h.requireNoViolations()
}
