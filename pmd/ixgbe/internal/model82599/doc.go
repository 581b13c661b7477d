// Package model82599 is a register-level model of one port of the Intel
// 82599 10 GbE controller, written from the Intel 82599 10 GbE Controller
// Datasheet (322429, revision 2.x), so that the gopmd ixgbe poll-mode driver
// can be proven without the hardware. It is independent of the driver: it
// does what the datasheet says the device does and reports programming the
// datasheet forbids.
//
// # Use
//
// New builds a Device just out of power-on reset. The driver talks to it
// through Read32/Write32 at BAR0 offsets; the device reaches descriptor
// rings and buffers through Config.DMA, which translates device addresses
// (IOVAs) into memory — in tests, hugemem group memory at
// IOVA = hugemem.IOVABase + group offset. A test plays the link partner:
// Receive injects a frame from the wire, Config.OnTransmit (or OnTransmit)
// sees every frame the device sends, SetLink pulls the cable.
//
// In NoLatency mode the device works synchronously inside the calls that
// trigger it (Receive, a tail write, the second read of a queue's enable
// bit), so a benchmark measures the driver's own cost; receive and transmit
// allocate nothing per frame. In Polled mode the work happens in Step, or in
// Run on a goroutine of its own, like a device running beside the CPU.
//
// Every broken rule is passed to Config.Violation (for instance t.Errorf;
// t.Fatalf only in NoLatency mode, where the device runs on the test's
// goroutine) as a message that starts with the rule ID in brackets and cites
// the datasheet section; Rules lists them. The device then carries on as
// best it can (it ignores the write, keeps the queue disabled, or drops the
// frame). Config.Pedantic adds the datasheet's "should" advice.
//
// A Device lives until it is dropped; it holds no OS resources. A write of
// CTRL.RST resets it as the hardware does.
//
// # Datasheet sections implemented
//
//   - 4.2.1.6.1 Software reset and 8.2.3.1.1 CTRL: CTRL.RST and CTRL.LRST
//     self-clear; a reset restores every register's initial value, disables
//     all queues, clears statistics and interrupt state, empties the packet
//     buffer and drops the link; the device answers no access for ~1 ms.
//   - 4.6.3 Initialization sequence: EEC.Auto_RD and EE_PRES (8.2.3.2.1) and
//     RDRXCTL.DMAIDONE (8.2.3.8.8) read as set once the reset is over; STATUS
//     PCIe Master Enable Status follows CTRL's Master Disable (5.2.5.3.2).
//   - 4.6.4 Link setup: the link comes up Config.LinkDelay after a reset, a
//     link reset or AUTOC.Restart_AN (8.2.3.22.19, self-clearing); LINKS
//     (8.2.3.22) then shows Link Up at 10 GbE and EICR.LSC is set.
//   - 4.6.5 and 8.2.3.23 Statistics: read-to-clear GPRC, GPTC, GORCL/H,
//     GOTCL/H, TORL/H, TPR, TPT, BPRC, MPRC, BPTC, MPTC, PRC64..PRC1522,
//     PTC64..PTC1522, RUC, ROC, RXNFGPC/BC, RXDGPC/BC, TXDGPC/BC, MPC[8],
//     RNBC[8], and per statistics index (RQSMR/TQSM) QPRC, QPRDC, QBRC_L/H,
//     QPTC (also at its 82598 address 0x06030 + 0x40*n), QBTC_L/H; byte
//     counters are 36 bits and reading Low latches High.
//   - 7.3 and 8.2.3.5 Interrupts: EICR (write 1 to clear; clear on read, or
//     only bits 29:16 with GPIE.OCD), EICS, EIMS, EIMC, EIMS[1..2], EIMC[1..2];
//     IVAR maps each queue's Rx and Tx completion to a cause bit. Interrupts
//     are not delivered; InterruptPending reports EICR & EIMS.
//   - 4.6.7 Receive initialization and 4.6.7.1 queue enable/disable:
//     RDBAL/RDBAH/RDLEN/SRRCTL/RXDCTL/RDH/RDT for 128 queues (0x01000 and
//     0x0D000 blocks; SRRCTL and DCA_RXCTRL also at their 82598 aliases);
//     RXDCTL.ENABLE reads back as set only after the device acknowledges it,
//     so the driver has to poll; RXCTRL.RXEN; SECRXCTRL.RX_DIS halts the path
//     and SECRXSTAT.SECRX_RDY reads as ready.
//   - 7.1.1.1 L2 filtering: exact match against the 128 RAL/RAH (8.2.3.7.8/9),
//     FCTRL.UPE/MPE/BAM (8.2.3.7.1), the 4 Kb multicast table indexed as
//     MCSTCTRL.MO selects (8.2.3.7.7); 7.1.1.2 VLAN filtering with VLNCTRL.VFE
//     and VFTA; frames shorter than 64 bytes with FCS count as RUC, longer
//     than 1518 (1522 tagged; MAXFRS with HLREG0.JUMBOEN) as ROC.
//   - 7.1.2 and 7.1.2.8 Queue assignment and RSS: MRQC.MRQE 0000b (queue 0)
//     and 0001b (RSS); the Toeplitz hash of 7.1.2.8.1 over IPv4/IPv6 with
//     TCP/UDP ports as MRQC's field enables select, in the datasheet's
//     priority; RSSRK key (byte 4n in bits 7:0 of RSSRK[n]); RETA 128 entries,
//     RSS output index in bits 3:0 of each byte, indexed by hash bits 6:0;
//     fragments and unparsed packets get RSS type 0 and queue 0. The 7.1.2.8.3
//     RSS verification suite is a test of this package.
//   - 7.1.3 Rx packet buffer: frames wait in arrival order (RXPBSIZE[0] bytes)
//     for descriptors; a queue without descriptors blocks the buffer unless
//     SRRCTL.Drop_En drops its frames (RNBC, QPRDC); a full buffer drops (MPC).
//   - 7.1.5 Legacy and 7.1.6 advanced one-buffer receive descriptors: read
//     format (packet buffer address), write-back with length, DD, EOP, RSS
//     type and hash (RXCSUM.PCSD; otherwise the IP identification), packet
//     type, VLAN tag and VP when RXDCTL.VME strips it, IPCS/L4CS/UDPCS with
//     IPE/TCPE from verifying the IPv4 header and TCP/UDP checksums, PIF;
//     frames larger than a buffer span descriptors; DD is stored last and
//     atomically. The FCS is kept when HLREG0.RXCRCSTRP is clear.
//   - 4.6.8 Transmit initialization: TDBAL/TDBAH/TDLEN/TXDCTL/TDH/TDT for 128
//     queues, TXDCTL.ENABLE acknowledged like RXDCTL's, DMATXCTL.TE (which
//     also enables queue 0, as 4.6.8 says), TDWBAL/TDWBAH head write-back.
//   - 7.2.3.2 Transmit descriptors: legacy (7.2.3.2.2), advanced context
//     (7.2.3.2.3, its VLAN field) and data (7.2.3.2.4: DTALEN, DTYP, DCMD
//     EOP/IFCS/RS/DEXT/VLE, PAYLEN); multi-descriptor packets; VLAN insertion
//     with DMATXCTL.VT; HLREG0.TXPADEN padding to 64 bytes; HLREG0.LPBK loops
//     frames back into the receiver.
//   - 7.2.3.5 Write-back: DD in every descriptor with RS, or with
//     TDWBAL.Head_WB_En the head index written to TDWBAH:TDWBAL instead.
//
// # Rules checked
//
// Must (always reported): bar-access (8.1), reset-access (8.2.3.1.1),
// rx-ring-unset (4.6.7), rx-ring-align (8.2.3.8.1), rx-ring-len (8.2.3.8.3),
// rx-ring-dma (7.1.9), rx-reprogram-enabled (4.6.7.1), rx-tail-before-enable
// (4.6.7), rx-tail-range (8.2.3.8.5), rx-head-write (8.2.3.8.4), rx-bsize
// (8.2.3.8.7), rx-desctype (8.2.3.8.7, 7.1.10), rx-buffer-dma (7.1.6.1),
// rx-crcstrip (4.6.7, 8.2.3.8.8), tx-ring-unset (4.6.8), tx-ring-align
// (8.2.3.9.5), tx-ring-len (7.2.3.3), tx-ring-dma (7.2.3.3),
// tx-reprogram-enabled (4.6.8), tx-tail-before-enable (4.6.8), tx-tail-range
// (8.2.3.9.9), tx-head-write (8.2.3.9.8), tx-buffer-dma (7.2.3.2.4), tx-dtyp
// (7.2.3.2), tx-paylen (7.2.3.2.4), tx-pad-ifcs (7.2.3.2.2), tx-too-long
// (7.2.3.2.2), tx-head-wb-dma (7.2.3.5.2).
//
// Should (with Config.Pedantic): reset-settle (4.6.3.2), rx-rdrxctl (4.6.7),
// rx-dca-bit12 (4.6.7), rx-filter-while-enabled (8.2.3.7.1), tx-hthresh
// (8.2.3.9.10), tx-arbdis (4.6.8).
//
// Unsupported (the model cannot honour the programming, so a test relying
// on it would prove nothing): unsupported-mrqe (DCB/VMDq queue assignment),
// unsupported-rsc (receive coalescing), unsupported-tx-offload (TSO,
// checksum insertion, LinkSec, timestamps).
//
// # Not modelled
//
// Flow Director, 5-tuple/EtherType/SYN filters, DCB and virtualization
// (pools, mailboxes, VFs), header split, RSC, flow control frames, LinkSec
// and IPsec, manageability, the PHY/SFP (I2C, MDIO), EEPROM contents beyond
// the MAC address, interrupt delivery and throttling (EITR), descriptor
// prefetch and write-back thresholds (write-back is immediate, which is one
// of the orders the hardware may produce), the IPv6 "Ex" RSS variants'
// home-address substitution (they hash like the plain ones), and the
// fragment checksum of the receive write-back.
package model82599
