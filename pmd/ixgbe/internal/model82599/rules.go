package model82599

import "fmt"

// Kind says how binding a Rule is.
type Kind int

const (
	// Must rules are things the datasheet forbids or requires; breaking one
	// leaves a real 82599 in an undefined state. Always reported.
	Must Kind = iota
	// Should rules are the datasheet's advice ("should", "recommended");
	// production drivers sometimes ignore them. Reported with Config.Pedantic.
	Should
	// Unsupported marks programming the model cannot honour (a feature it
	// does not implement), so a test relying on it would prove nothing.
	Unsupported
)

func (k Kind) String() string {
	switch k {
	case Must:
		return "must"
	case Should:
		return "should"
	}
	return "unsupported"
}

// Rule is one check the model makes on the driver's programming.
type Rule struct {
	ID      string // short name; every report starts with it in brackets
	Section string // datasheet section that states the rule
	Kind    Kind
	Text    string
}

// The rules, in the order a driver meets them.
var (
	ruleBAR = Rule{"bar-access", "8.1", Must,
		"BAR0 registers are 32-bit, 4-byte aligned, inside the 128 KB register region"}
	ruleResetAccess = Rule{"reset-access", "8.2.3.1.1", Must,
		"after setting CTRL.RST wait approximately 1 ms before checking the bit or accessing any other register"}
	ruleResetSettle = Rule{"reset-settle", "4.6.3.2", Should,
		"following a global reset the driver should wait at least 10 ms before continuing initialization"}
	ruleRxRingUnset = Rule{"rx-ring-unset", "4.6.7", Must,
		"program RDBAL/RDBAH and RDLEN before setting RXDCTL.ENABLE"}
	ruleRxRingAlign = Rule{"rx-ring-align", "8.2.3.8.1", Must,
		"the receive descriptor base address must point to a 128-byte aligned block"}
	ruleRxRingLen = Rule{"rx-ring-len", "8.2.3.8.3", Must,
		"RDLEN is a byte count of descriptors that must be a non-zero multiple of 128 within LEN bits 19:0"}
	ruleRxRingDMA = Rule{"rx-ring-dma", "7.1.9", Must,
		"the receive descriptor ring must be memory the device can reach (its IOVA range must translate)"}
	ruleRxProgEnabled = Rule{"rx-reprogram-enabled", "4.6.7.1", Must,
		"RDBAL, RDBAH, RDLEN and SRRCTL are programmed while the queue is disabled (RXDCTL.ENABLE = 0)"}
	ruleRxTailEarly = Rule{"rx-tail-before-enable", "4.6.7", Must,
		"the tail (RDT) should not be bumped (moved off the head, handing descriptors over) before RXDCTL.ENABLE was read as 1b"}
	ruleRxTailRange = Rule{"rx-tail-range", "8.2.3.8.5", Must,
		"RDT indexes a descriptor of the ring: it must be below RDLEN/16"}
	ruleRxHeadWrite = Rule{"rx-head-write", "8.2.3.8.4", Must,
		"software writes RDH only while the queue is disabled; hardware owns it afterwards"}
	ruleRxBufSize = Rule{"rx-bsize", "8.2.3.8.7", Must,
		"SRRCTL.BSIZEPACKET is the receive buffer size in 1 KB units; value can be from 1 KB to 16 KB"}
	ruleRxDescType = Rule{"rx-desctype", "8.2.3.8.7, 7.1.10", Must,
		"SRRCTL.DESCTYPE must be 000b (legacy) or 001b (advanced one buffer); header split must not be used with the 82599"}
	ruleRxBufDMA = Rule{"rx-buffer-dma", "7.1.6.1", Must,
		"every receive descriptor must point at a buffer of SRRCTL.BSIZEPACKET bytes the device can reach"}
	ruleRxCRCStrip = Rule{"rx-crcstrip", "4.6.7, 8.2.3.8.8", Must,
		"RDRXCTL.CRCStrip and HLREG0.RXCRCSTRP must be set to the same value"}
	ruleRxRDRXCTL = Rule{"rx-rdrxctl", "4.6.7, 8.2.3.8.8", Should,
		"RDRXCTL.RSCFRSTSIZE should be 0 and RSCACKC and FCOE_WRFIX should be set before receive is enabled"}
	ruleRxDCABit12 = Rule{"rx-dca-bit12", "4.6.7, 8.2.3.11.1", Should,
		"clear bit 12 of DCA_RXCTRL[n] (reserved, default 1b) before enabling the queue"}
	ruleRxFilterWhileOn = Rule{"rx-filter-while-enabled", "8.2.3.7.1", Should,
		"before receive filters (FCTRL) are modified RXCTRL.RXEN should be 0b"}
	ruleTxRingUnset = Rule{"tx-ring-unset", "4.6.8", Must,
		"program TDBAL/TDBAH and TDLEN before setting TXDCTL.ENABLE"}
	ruleTxRingAlign = Rule{"tx-ring-align", "8.2.3.9.5", Must,
		"the transmit descriptor base address must point to a 128-byte aligned block"}
	ruleTxRingLen = Rule{"tx-ring-len", "7.2.3.3, 8.2.3.9.7", Must,
		"TDLEN must be a non-zero multiple of 128 within LEN bits 19:0"}
	ruleTxRingDMA = Rule{"tx-ring-dma", "7.2.3.3", Must,
		"the transmit descriptor ring must be memory the device can reach (its IOVA range must translate)"}
	ruleTxProgEnabled = Rule{"tx-reprogram-enabled", "4.6.8", Must,
		"TDBAL, TDBAH, TDLEN and TDWBAL/TDWBAH are programmed while the queue is disabled (setting DMATXCTL.TE enables queue 0)"}
	ruleTxTailEarly = Rule{"tx-tail-before-enable", "4.6.8", Must,
		"the tail register of the queue (TDT) should not be bumped (moved off the head) until the queue is enabled (TXDCTL.ENABLE read as 1b)"}
	ruleTxTailRange = Rule{"tx-tail-range", "8.2.3.9.9", Must,
		"TDT indexes a descriptor of the ring: it must be below TDLEN/16"}
	ruleTxHeadWrite = Rule{"tx-head-write", "8.2.3.9.8", Must,
		"software writes TDH only while the queue is disabled; hardware owns it afterwards"}
	ruleTxBufDMA = Rule{"tx-buffer-dma", "7.2.3.2.4", Must,
		"every transmit data descriptor must point at DTALEN bytes the device can reach"}
	ruleTxDTYP = Rule{"tx-dtyp", "7.2.3.2", Must,
		"an advanced (DEXT=1) descriptor has DTYP 0010b (context) or 0011b (data)"}
	ruleTxPaylen = Rule{"tx-paylen", "7.2.3.2.4", Must,
		"without TSE, PAYLEN in the first data descriptor is the entire packet size fetched from host memory"}
	ruleTxPad = Rule{"tx-pad-ifcs", "7.2.3.2.2, 8.2.3.22.8", Must,
		"software must set IFCS when transmitting a short packet while HLREG0.TXPADEN pads it"}
	ruleTxTooLong = Rule{"tx-too-long", "7.2.3.2.2", Must,
		"a packet is at most 15.5 KB (jumbo) and must end with an EOP descriptor"}
	ruleTxHeadWB = Rule{"tx-head-wb-dma", "7.2.3.5.2", Must,
		"the head write-back address (TDWBAH:TDWBAL) must be memory the device can reach"}
	ruleTxThresh = Rule{"tx-hthresh", "8.2.3.9.10", Should,
		"HTHRESH should be given a non-zero value each time PTHRESH is used"}
	ruleTxArb = Rule{"tx-arbdis", "4.6.8", Should,
		"set RTTDCS.ARBDIS before programming TXPBSIZE, TXPBTHRESH and MTQC, and clear it afterwards"}
	ruleUnsupMRQ = Rule{"unsupported-mrqe", "8.2.3.7.12", Unsupported,
		"the model routes packets with MRQC.MRQE 0000b (one queue) and 0001b (RSS) only; DCB and VMDq pools are not modelled"}
	ruleUnsupRSC = Rule{"unsupported-rsc", "4.6.7.2", Unsupported,
		"the model does not coalesce receives (RSCCTL.RSCEN)"}
	ruleUnsupTxOffload = Rule{"unsupported-tx-offload", "7.2.3.2.4", Unsupported,
		"the model does not implement TSO, checksum insertion (POPTS), LinkSec or timestamp requests"}
)

var allRules = []Rule{
	ruleBAR, ruleResetAccess, ruleResetSettle,
	ruleRxRingUnset, ruleRxRingAlign, ruleRxRingLen, ruleRxRingDMA, ruleRxProgEnabled,
	ruleRxTailEarly, ruleRxTailRange, ruleRxHeadWrite, ruleRxBufSize, ruleRxDescType,
	ruleRxBufDMA, ruleRxCRCStrip, ruleRxRDRXCTL, ruleRxDCABit12, ruleRxFilterWhileOn,
	ruleTxRingUnset, ruleTxRingAlign, ruleTxRingLen, ruleTxRingDMA, ruleTxProgEnabled,
	ruleTxTailEarly, ruleTxTailRange, ruleTxHeadWrite, ruleTxBufDMA, ruleTxDTYP,
	ruleTxPaylen, ruleTxPad, ruleTxTooLong, ruleTxHeadWB, ruleTxThresh, ruleTxArb,
	ruleUnsupMRQ, ruleUnsupRSC, ruleUnsupTxOffload,
}

// Rules lists every check the model makes.
func Rules() []Rule { return append([]Rule(nil), allRules...) }

// String formats the rule the way reports begin.
func (r Rule) String() string {
	if r.Kind == Unsupported {
		return fmt.Sprintf("[%s] model82599 cannot honour this (datasheet §%s): %s", r.ID, r.Section, r.Text)
	}
	return fmt.Sprintf("[%s] 82599 datasheet §%s (%s): %s", r.ID, r.Section, r.Kind, r.Text)
}

// violate reports a broken rule with what the driver did. Callers hold d.mu.
func (d *Device) violate(r Rule, format string, args ...any) {
	if r.Kind == Should && !d.cfg.Pedantic {
		return
	}
	msg := r.String() + ": " + fmt.Sprintf(format, args...)
	d.violations = append(d.violations, msg)
	if d.cfg.Violation != nil {
		d.cfg.Violation(msg)
	}
}
