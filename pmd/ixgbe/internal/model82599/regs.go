package model82599

// Register offsets and fields of BAR0, each next to the section of the Intel
// 82599 10 GbE Controller Datasheet (322429, revision 2.x) that defines it.
// Offsets and bit positions agree with public headers (ixy's and Linux's
// ixgbe_type.h, Snabb's intel10g register tables); where those headers list
// an 82598-compatible address, the datasheet's alias table makes it reach the
// same register and the model accepts both.

// bar0Size is the register part of the memory BAR: 8.1 "Address Regions"
// gives the region as 128 KB + flash size; the flash window is not modelled.
const bar0Size = 128 << 10

// numQueues is the number of Rx and of Tx queues: 1.3 "Features Summary",
// "Number of Rx Queues (per port): 128", "Number of Tx Queues (per port): 128".
const numQueues = 128

// General control and status, 8.2.3.1.
const (
	regCTRL      = 0x00000 // 8.2.3.1.1 Device Control (RW)
	regCTRLAlias = 0x00004 // 8.2.3.1.1 alias of CTRL
	regSTATUS    = 0x00008 // 8.2.3.1.2 Device Status (RO)
	regCTRLEXT   = 0x00018 // 8.2.3.1.3 Extended Device Control (RW)

	ctrlMasterDisable = 1 << 2  // 8.2.3.1.1 PCIe Master Disable
	ctrlLRST          = 1 << 3  // 8.2.3.1.1 Link Reset, self-clearing
	ctrlRST           = 1 << 26 // 8.2.3.1.1 Device Reset, self-clearing

	statusGIOMasterEnable = 1 << 19 // 8.2.3.1.2 PCIe Master Enable Status
)

// EEPROM/flash, firmware and PCIe control, 8.2.3.2 and 8.2.3.4.
const (
	regEEC  = 0x10010 // 8.2.3.2.1 EEPROM/Flash Control
	regFWSM = 0x10148 // 8.2.3.4.10 Firmware Semaphore

	eecPresent  = 1 << 8 // 8.2.3.2.1 EE_PRES, read-only
	eecAutoRead = 1 << 9 // 8.2.3.2.1 Auto_RD (EEPROM Auto-Read Done), read-only
)

// Interrupts, 8.2.3.5 (and 7.3 for their meaning).
const (
	regEICR    = 0x00800 // 8.2.3.5.1 Extended Interrupt Cause (RW1C; clear-on-read, see GPIE.OCD)
	regEICS    = 0x00808 // 8.2.3.5.2 Extended Interrupt Cause Set (WO)
	regEIMS    = 0x00880 // 8.2.3.5.3 Extended Interrupt Mask Set/Read (RWS)
	regEIMC    = 0x00888 // 8.2.3.5.4 Extended Interrupt Mask Clear (WO)
	regGPIE    = 0x00898 // 8.2.3.5.18 General Purpose Interrupt Enable (RW)
	regIVAR0   = 0x00900 // 8.2.3.5 Interrupt Vector Allocation, 64 registers
	regEIMSEx0 = 0x00AA0 // 8.2.3.5 EIMS[1..2], causes of MSI-X vectors 0..63
	regEIMCEx0 = 0x00AB0 // 8.2.3.5 EIMC[1..2]

	eicrLSC = 1 << 20 // 8.2.3.5.1 Link Status Change

	gpieOCD = 1 << 5 // 8.2.3.5.18 Other Clear Disable: EICR read clears only bits 29:16

	ivarAllocVal = 0x80 // 8.2.3.5 IVAR entry valid bit (per 8-bit entry)
	ivarVector   = 0x3F // 8.2.3.5 IVAR entry vector bits 5:0
)

// Receive filtering, 8.2.3.7 (and 7.1.1 for the algorithm).
const (
	regRXCSUM   = 0x05000 // 8.2.3.7.5 Receive Checksum Control
	regFCTRL    = 0x05080 // 8.2.3.7.1 Filter Control
	regVLNCTRL  = 0x05088 // 8.2.3.7.2 VLAN Control
	regMCSTCTRL = 0x05090 // 8.2.3.7 Multicast Control
	regMTA0     = 0x05200 // 8.2.3.7.7 Multicast Table Array, 128 registers
	regRAL0Old  = 0x05400 // 8.2.3.7.8/9 alias of RAL/RAH[0..15] (82598 location)
	regMRQCOld  = 0x05818 // 8.2.3.7.12 alias of MRQC (82598 location)
	regRETAOld  = 0x05C00 // 8.2.3.7 alias of RETA (82598 location)
	regRSSRKOld = 0x05C80 // 8.2.3.7 alias of RSSRK (82598 location)
	regVFTA0    = 0x0A000 // 8.2.3.7 VLAN Filter Table Array, 128 registers
	regRAL0     = 0x0A200 // 8.2.3.7.8 Receive Address Low, RAL[n] at +8n, n=0..127
	regRAH0     = 0x0A204 // 8.2.3.7.9 Receive Address High
	regRETA0    = 0x0EB00 // 8.2.3.7 Redirection Table, 32 registers of 4 entries
	regRSSRK0   = 0x0EB80 // 8.2.3.7 RSS Random Key, 10 registers
	regMRQC     = 0x0EC80 // 8.2.3.7.12 Multiple Receive Queues Command
	numRAR      = 128
	numRETA     = 32
	numRSSRK    = 10

	rxcsumPCSD = 1 << 13 // 8.2.3.7.5 PCSD: report the RSS hash instead of IP id / fragment checksum

	fctrlMPE = 1 << 8  // 8.2.3.7.1 Multicast Promiscuous Enable
	fctrlUPE = 1 << 9  // 8.2.3.7.1 Unicast Promiscuous Enable
	fctrlBAM = 1 << 10 // 8.2.3.7.1 Broadcast Accept Mode

	vlnctrlVETMask = 0xFFFF  // 8.2.3.7.2 VLAN EtherType
	vlnctrlVFE     = 1 << 30 // 8.2.3.7.2 VLAN Filter Enable

	mcstctrlMO  = 3      // 8.2.3.7 Multicast Offset: which 12 DA bits index the MTA
	mcstctrlMFE = 1 << 2 // 8.2.3.7 Multicast Filter Enable

	rahAV = 1 << 31 // 8.2.3.7.9 Address Valid

	mrqcMRQE        = 0xF     // 8.2.3.7.12 MRQE, multiple receive queues enable (0000b off, 0001b RSS)
	mrqcTCPIPv4     = 1 << 16 // 8.2.3.7.12 RSS field enables, 7.1.2.8.1 hash function variations
	mrqcIPv4        = 1 << 17
	mrqcTCPIPv6Ex   = 1 << 18
	mrqcIPv6Ex      = 1 << 19
	mrqcIPv6        = 1 << 20
	mrqcTCPIPv6     = 1 << 21
	mrqcUDPIPv4     = 1 << 22
	mrqcUDPIPv6     = 1 << 23
	mrqcUDPIPv6Ex   = 1 << 24
	mrqeRSSDisabled = 0
	mrqeRSS         = 1
)

// Receive DMA, 8.2.3.8. Per-queue registers sit at 0x01000 + 0x40*n for
// queues 0..63 and 0x0D000 + 0x40*(n-64) for queues 64..127; the offsets
// below are relative to the queue's block.
const (
	rxBlockLow  = 0x01000
	rxBlockHigh = 0x0D000

	rqRDBAL     = 0x00 // 8.2.3.8.1 Receive Descriptor Base Address Low
	rqRDBAH     = 0x04 // 8.2.3.8.2 Receive Descriptor Base Address High
	rqRDLEN     = 0x08 // 8.2.3.8.3 Receive Descriptor Length
	rqDCARXCTRL = 0x0C // 8.2.3.11.1 Rx DCA Control
	rqRDH       = 0x10 // 8.2.3.8.4 Receive Descriptor Head
	rqSRRCTL    = 0x14 // 8.2.3.8.7 Split Receive Control
	rqRDT       = 0x18 // 8.2.3.8.5 Receive Descriptor Tail
	rqRXDCTL    = 0x28 // 8.2.3.8.6 Receive Descriptor Control
	rqRSCCTL    = 0x2C // 8.2.3.8 RSC Control

	regSRRCTLOld    = 0x02100 // 8.2.3.8.7 alias of SRRCTL[0..15] (82598 location)
	regDCARXCTRLOld = 0x02200 // 8.2.3.11.1 alias of DCA_RXCTRL[0..15]
	regRDRXCTL      = 0x02F00 // 8.2.3.8.8 Receive DMA Control
	regRXCTRL       = 0x03000 // 8.2.3.8.10 Receive Control
	regRXPBSIZE0    = 0x03C00 // 8.2.3.8.9 Receive Packet Buffer Size, 8 registers
	regRQSMR0       = 0x02300 // 8.2.3.23 Receive Queue Statistic Mapping, 32 registers

	rdlenMask = 0xFFF80 // 8.2.3.8.3 LEN bits 19:0; bits 6:0 must be zero (128-byte multiple)

	dcaRxctrlBit12 = 1 << 12 // 8.2.3.11.1 reserved bit, default 1b, 4.6.7 says clear it

	srrctlBSIZEPKT   = 0x1F        // 8.2.3.8.7 BSIZEPACKET, 1 KB units, 1..16
	srrctlDescType   = 7 << 25     // 8.2.3.8.7 DESCTYPE
	srrctlDescShift  = 25          //
	srrctlDropEn     = 1 << 28     // 8.2.3.8.7 Drop_En
	descTypeLegacy   = 0           // 8.2.3.8.7 000b legacy
	descTypeAdvOne   = 1           // 8.2.3.8.7 001b advanced, one buffer
	srrctlResetValue = 0x00000402  // BSIZEPACKET 2 KB, BSIZEHEADER 256 B, legacy descriptors
	rxpbsizeReset    = 0x200 << 10 // 8.2.3.8.9 512 KB each

	rxdctlEnable = 1 << 25 // 8.2.3.8.6 ENABLE
	rxdctlSWFLSH = 1 << 26 // 8.2.3.8.6 self-clearing flush
	rxdctlVME    = 1 << 30 // 8.2.3.8.6 VLAN Mode Enable (strip the tag)

	rscctlRSCEN = 1 << 0 // 8.2.3.8 RSC enable

	rdrxctlCRCStrip    = 1 << 1     // 8.2.3.8.8 CRCStrip
	rdrxctlDMAIDone    = 1 << 3     // 8.2.3.8.8 DMAIDONE, read-only
	rdrxctlRSCFrstSize = 0x1F << 17 // 8.2.3.8.8 RSCFRSTSIZE (4.6.7: set to 0)
	rdrxctlRSCACKC     = 1 << 25    // 8.2.3.8.8 RSCACKC (software should set)
	rdrxctlFCoEWrFix   = 1 << 26    // 8.2.3.8.8 FCOE_WRFIX (software should set)
	rdrxctlResetValue  = 0x8 << 17  // a non-zero RSCFRSTSIZE, as 4.6.7 implies
	rxctrlRXEN         = 1 << 0     // 8.2.3.8.10 RXEN
)

// Security block, 8.2.3.12: 4.6.7 halts the receive path around setting RXEN.
const (
	regSECRXCTRL = 0x08D00 // 8.2.3.12.5 Security Rx Control
	regSECRXSTAT = 0x08D04 // 8.2.3.12.6 Security Rx Status (RO)
	secRxRXDis   = 1 << 1  // 8.2.3.12.5 RX_DIS
	secRxReady   = 1 << 0  // 8.2.3.12.6 SECRX_RDY
)

// Frame sizes, 8.2.3.22 MAXFRS and the statistics definitions of 8.2.3.23.
const (
	regMAXFRS        = 0x04268     // 8.2.3.22 Max Frame Size
	maxfrsMFSShift   = 16          // MFS bits 31:16, used with HLREG0.JUMBOEN
	maxfrsReset      = 0x5EE << 16 // 1518
	standardMaxFrame = 1518        // bytes DA..FCS without a VLAN tag
	minFrameWithFCS  = 64          // bytes DA..FCS: shorter frames are undersize (RUC)

	regVLNCTRLDefault  = 0x8100       // 8.2.3.7.2 VET 0x8100, VFE off
	regDMATXCTLDefault = 0x8100 << 16 // 8.2.3.9.2 VT 0x8100, TE off
)

// Transmit DMA, 8.2.3.9. Per-queue registers at 0x06000 + 0x40*n, n=0..127.
const (
	txBlock = 0x06000

	tqTDBAL     = 0x00 // 8.2.3.9.5 Transmit Descriptor Base Address Low
	tqTDBAH     = 0x04 // 8.2.3.9.6 Transmit Descriptor Base Address High
	tqTDLEN     = 0x08 // 8.2.3.9.7 Transmit Descriptor Length
	tqDCATXCTRL = 0x0C // 8.2.3.11.2 Tx DCA Control
	tqTDH       = 0x10 // 8.2.3.9.8 Transmit Descriptor Head
	tqTDT       = 0x18 // 8.2.3.9.9 Transmit Descriptor Tail
	tqTXDCTL    = 0x28 // 8.2.3.9.10 Transmit Descriptor Control
	tqQPTCOld   = 0x30 // 8.2.3.23 QPTC[0..15] at the 82598 location (0x06030 + 0x40*n)
	tqTDWBAL    = 0x38 // 8.2.3.9.11 Tx Descriptor Completion Write Back Address Low
	tqTDWBAH    = 0x3C // 8.2.3.9.11 Tx Descriptor Completion Write Back Address High

	regDMATXCTL   = 0x04A80 // 8.2.3.9.2 DMA Tx Control
	regMTQC       = 0x08120 // 8.2.3.9.15 Multiple Transmit Queues Command
	regTXPBTHRESH = 0x04950 // 8.2.3.9.16 Tx Packet Buffer Threshold, 8 registers
	regTXPBSIZE0  = 0x0CC00 // 8.2.3.9.13 Transmit Packet Buffer Size, 8 registers
	regRTTDCS     = 0x04900 // 8.2.3.10.2 DCB Transmit Descriptor Plane Control and Status
	regTQSM0      = 0x08600 // 8.2.3.23 Transmit Queue Statistic Mapping, 32 registers

	dmatxctlTE = 1 << 0 // 8.2.3.9.2 Transmit Enable

	txdctlPTHRESH = 0x7F      // 8.2.3.9.10 PTHRESH bits 6:0
	txdctlHTHRESH = 0x7F << 8 // 8.2.3.9.10 HTHRESH bits 14:8
	txdctlEnable  = 1 << 25   // 8.2.3.9.10 ENABLE
	txdctlSWFLSH  = 1 << 26   // 8.2.3.9.10 self-clearing flush

	tdwbalHeadWBEn = 1 << 0 // 8.2.3.9.11 Head_WB_En; the address is bits 31:2

	rttdcsARBDIS = 1 << 6 // 8.2.3.10.2 ARBDIS

	txpbsizeReset   = 0xA0 << 10 // 8.2.3.9.13 SIZE init 0xA0 (160 KB)
	txpbthreshReset = 0x96       // 8.2.3.9.16 default for TC0
	rttdcsReset     = 3 << 22    // 8.2.3.10.2 BDPM and BPBFSM set by default (4.6.11.3.1)
)

// MAC, 8.2.3.22.
const (
	regHLREG0 = 0x04240 // 8.2.3.22.8 MAC Core Control 0
	regAUTOC  = 0x042A0 // 8.2.3.22.19 Auto Negotiation Control
	regLINKS  = 0x042A4 // 8.2.3.22 Link Status (RO)
	regAUTOC2 = 0x042A8 // 8.2.3.22 Auto Negotiation Control 2

	hlreg0RXCRCSTRP = 1 << 1  // 8.2.3.22.8 Rx CRC Strip, init 1b
	hlreg0JUMBOEN   = 1 << 2  // 8.2.3.22.8 Jumbo Frame Enable
	hlreg0TXPADEN   = 1 << 10 // 8.2.3.22.8 Tx Pad Frame Enable, init 1b
	hlreg0LPBK      = 1 << 15 // 8.2.3.22.8 Loopback
	// hlreg0Reset has TXCRCEN, RXCRCSTRP, TXPADEN, MDCSPD and RXLNGTHERREN set
	// as 8.2.3.22.8 gives, plus the reserved bits 3, 11 and 13 that read as 1.
	hlreg0Reset = 0x08012C0B

	autocRestartAN  = 1 << 12 // 8.2.3.22.19 Restart_AN, self-clearing
	autocResetValue = 3 << 13 // LMS = 011b, 10 GbE serial (loaded from the EEPROM on real boards)
	linksUp         = 1 << 30 // 8.2.3.22 LINKS Link Up
	linksSpeed10G   = 3 << 28 // 8.2.3.22 LINK_SPEED 11b = 10 GbE
	autoc2Reset     = 2 << 16 // 10G_PMA_PMD_SERIAL = SFI
	eecResetValue   = eecPresent | eecAutoRead
	statusResetGIO  = statusGIOMasterEnable
	rxdgpcReg       = 0x02F50
	rxdgbclReg      = 0x02F54
	rxdgbchReg      = 0x02F58
	txdgpcReg       = 0x087A0
	txdgbclReg      = 0x087A4
	txdgbchReg      = 0x087A8
	rxnfgpcReg      = 0x041B0
	rxnfgbclReg     = 0x041B4
	rxnfgbchReg     = 0x041B8
	qptc0Reg        = 0x08680 // 8.2.3.23 QPTC[n] at 0x08680 + 4n
	qbtc0Reg        = 0x08700 // 8.2.3.23 QBTC_L[n] at 0x08700 + 8n, QBTC_H at +4
	mpc0Reg         = 0x03FA0 // 8.2.3.23 MPC[n], 8 registers
	rnbc0Reg        = 0x03FC0 // 8.2.3.23 RNBC[n], 8 registers
	numPB           = 8       // packet buffers (traffic classes), 7.1.2
)

// Receive descriptor fields, 7.1.5 (legacy) and 7.1.6 (advanced).
const (
	descSize = 16

	rxStatDD    = 1 << 0 // 7.1.6.2 / 7.1.5 Descriptor Done
	rxStatEOP   = 1 << 1 // End of Packet
	rxStatVP    = 1 << 3 // VLAN packet (tag stripped)
	rxStatUDPCS = 1 << 4 // UDP checksum calculated
	rxStatL4CS  = 1 << 5 // L4 (TCP/UDP) checksum calculated
	rxStatIPCS  = 1 << 6 // IPv4 header checksum calculated
	rxStatPIF   = 1 << 7 // Passed only an inexact filter

	rxErrTCPE    = 1 << 30 // 7.1.6.2 TCP/UDP checksum error (extended error bit 30)
	rxErrIPE     = 1 << 31 // 7.1.6.2 IPv4 checksum error (extended error bit 31)
	rxLegErrTCPE = 1 << 6  // 7.1.5 errors byte: TCPE
	rxLegErrIPE  = 1 << 7  // 7.1.5 errors byte: IPE

	// 7.1.6.2 packet type field (bits 16:4 of the first write-back dword)
	ptIPv4   = 1 << 4
	ptIPv4Ex = 1 << 5
	ptIPv6   = 1 << 6
	ptIPv6Ex = 1 << 7
	ptTCP    = 1 << 8
	ptUDP    = 1 << 9
	ptSCTP   = 1 << 10

	// 7.1.6.2 RSS type (bits 3:0 of the first write-back dword)
	rssTypeNone    = 0
	rssTypeTCPIPv4 = 1
	rssTypeIPv4    = 2
	rssTypeTCPIPv6 = 3
	rssTypeIPv6    = 5
	rssTypeUDPIPv4 = 7
	rssTypeUDPIPv6 = 8
)

// Transmit descriptor fields, 7.2.3.2.
const (
	txdLenMask  = 0xFFFF // 7.2.3.2.4 DTALEN / 7.2.3.2.2 Length
	txdDTYPMask = 0xF << 20
	txdDTYPCtx  = 0x2 << 20 // 7.2.3.2.3 advanced context descriptor
	txdDTYPData = 0x3 << 20 // 7.2.3.2.4 advanced data descriptor
	txdMACMask  = 3 << 18   // 7.2.3.2.4 MAC field: LinkSec (bit 18), 1588 timestamp (bit 19)
	txdEOP      = 1 << 24   // DCMD.EOP
	txdIFCS     = 1 << 25   // DCMD.IFCS
	txdIC       = 1 << 26   // legacy CMD.IC
	txdRS       = 1 << 27   // DCMD.RS
	txdDEXT     = 1 << 29   // DCMD.DEXT (advanced)
	txdVLE      = 1 << 30   // DCMD.VLE
	txdTSE      = 1 << 31   // DCMD.TSE
	txdPAYShift = 14        // 7.2.3.2.4 PAYLEN bits 31:14 of the second dword
	txdIDXShift = 4         // 7.2.3.2.4 IDX bits 6:4
	txdPOPTS    = 0x3F << 8 // 7.2.3.2.4 POPTS bits 13:8 (IXSM, TXSM, IPSEC)
	txStatDD    = 1 << 0    // 7.2.3.2.4 write-back STA.DD
	minTxFrame  = 60        // HLREG0.TXPADEN pads to 64 bytes with the FCS
	maxTxFrame  = 16 << 10  // 7.2.3.2.2 max 15.5 KB per descriptor; jumbo limit
)
