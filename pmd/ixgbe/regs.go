package ixgbe

// BAR0 registers and descriptor fields the driver uses, each beside the
// section of the Intel 82599 10 GbE Controller Datasheet (322429, revision
// 2.x) that defines it. The X540 and X550 datasheets keep these offsets and
// bits for the registers listed here.

// registers is access to a port's BAR0 registers: 32-bit reads and writes at
// byte offsets (8.1: "all registers are 32 bits wide"). An mmap'd BAR
// satisfies it on real hardware; model82599.Device satisfies it in tests.
type registers interface {
	Read32(off uint32) uint32
	Write32(off uint32, v uint32)
}

// General control and status, 8.2.3.1.
const (
	regCTRL    = 0x00000 // 8.2.3.1.1 Device Control
	regSTATUS  = 0x00008 // 8.2.3.1.2 Device Status
	regCTRLEXT = 0x00018 // 8.2.3.1.3 Extended Device Control

	ctrlMasterDisable = 1 << 2  // 8.2.3.1.1 PCIe Master Disable (5.2.5.3.2)
	ctrlRST           = 1 << 26 // 8.2.3.1.1 Device Reset, self-clearing

	statusMasterEnable = 1 << 19 // 8.2.3.1.2 PCIe Master Enable Status

	ctrlExtNSDis = 1 << 16 // 8.2.3.1.3 No Snoop Disable (set as the end of 4.6.7 asks)
)

// EEPROM, 8.2.3.2.
const (
	regEEC = 0x10010 // 8.2.3.2.1 EEPROM/Flash Control

	eecAutoRD = 1 << 9 // 8.2.3.2.1 Auto_RD: EEPROM auto-read done
)

// Interrupts, 8.2.3.5 (7.3 for their use).
const (
	regEICR     = 0x00800 // 8.2.3.5.1 Extended Interrupt Cause (clear on read)
	regEIAC     = 0x00810 // 8.2.3.5.5 Extended Interrupt Auto Clear
	regEIMS     = 0x00880 // 8.2.3.5.3 Extended Interrupt Mask Set
	regEIMC     = 0x00888 // 8.2.3.5.4 Extended Interrupt Mask Clear
	regEIAM     = 0x00890 // 8.2.3.5.6 Extended Interrupt Auto Mask Enable
	regGPIE     = 0x00898 // 8.2.3.5.18 General Purpose Interrupt Enable
	regIVARMisc = 0x00A00 // 8.2.3.5.17 Miscellaneous Interrupt Vector Allocation
	regEIMCEx0  = 0x00AB0 // 8.2.3.5.9 EIMC[1..2], queue causes of MSI-X vectors

	eimcAll   = 0x7FFFFFFF // 8.2.3.5.4: bits 30:0 mask every cause (4.6.3.1)
	eicrLSC   = 1 << 20    // 8.2.3.5.1 Link Status Change
	eicrOther = 1 << 31    // 8.2.3.5.1 Other: any non-queue cause (MSI-X mode)

	gpieMSIXMode   = 1 << 4  // 8.2.3.5.18 Multiple MSI-X mode
	gpieOCD        = 1 << 5  // 8.2.3.5.18 Other Clear Disable: EICR reads clear only bits 29:16
	gpieEIAME      = 1 << 30 // 8.2.3.5.18 Extended Interrupt Auto Mask Enable
	gpiePBASupport = 1 << 31 // 8.2.3.5.18 PBA support, required with MSI-X

	ivarOtherShift = 8    // 8.2.3.5.17 INT_Alloc[1], "other causes", bits 15:8
	ivarAllocVal   = 0x80 // 8.2.3.5.17 INT_Alloc_val: the entry is valid
	vectorOther    = 0    // the MSI-X vector the driver gives link and other causes
)

// Receive filtering and RSS, 8.2.3.7 (7.1.1 and 7.1.2 for the algorithms).
const (
	regRXCSUM   = 0x05000 // 8.2.3.7.5 Receive Checksum Control
	regFCTRL    = 0x05080 // 8.2.3.7.1 Filter Control
	regMCSTCTRL = 0x05090 // 8.2.3.7.3 Multicast Control
	regMTA0     = 0x05200 // 8.2.3.7.7 Multicast Table Array, 128 registers
	regRAL0     = 0x0A200 // 8.2.3.7.8 Receive Address Low
	regRAH0     = 0x0A204 // 8.2.3.7.9 Receive Address High
	regRETA0    = 0x0EB00 // 8.2.3.7 Redirection Table, 32 registers of 4 entries
	regRSSRK0   = 0x0EB80 // 8.2.3.7 RSS Random Key, 10 registers
	regMRQC     = 0x0EC80 // 8.2.3.7.12 Multiple Receive Queues Command

	numMTA   = 128 // 8.2.3.7.7: 4096 bits
	numRETA  = 32  // 8.2.3.7: 128 one-byte entries
	numRSSRK = 10  // 8.2.3.7: 40 key bytes

	rxcsumPCSD = 1 << 13 // 8.2.3.7.5 PCSD: the write-back carries the RSS hash

	fctrlMPE = 1 << 8  // 8.2.3.7.1 Multicast Promiscuous Enable
	fctrlUPE = 1 << 9  // 8.2.3.7.1 Unicast Promiscuous Enable
	fctrlBAM = 1 << 10 // 8.2.3.7.1 Broadcast Accept Mode

	mcstctrlMFE = 1 << 2 // 8.2.3.7.3 Multicast Filter Enable; MO (bits 1:0) = 00b: DA bits 47:36

	rahAV = 1 << 31 // 8.2.3.7.9 Address Valid

	mrqcRSS       = 0x1     // 8.2.3.7.12 MRQE 0001b: RSS only
	mrqcTCPIPv4   = 1 << 16 // 8.2.3.7.12 field enables (7.1.2.8.1 hash variants)
	mrqcIPv4      = 1 << 17
	mrqcIPv6      = 1 << 20
	mrqcTCPIPv6   = 1 << 21
	mrqcUDPIPv4   = 1 << 22
	mrqcUDPIPv6   = 1 << 23
	mrqcAllFields = mrqcTCPIPv4 | mrqcIPv4 | mrqcIPv6 | mrqcTCPIPv6 | mrqcUDPIPv4 | mrqcUDPIPv6
)

// Receive DMA, 8.2.3.8. Queues 0..63 have their registers at 0x01000 +
// 0x40*n, queues 64..127 at 0x0D000 + 0x40*(n-64); rxq gives the offset.
const (
	rqRDBAL     = 0x00 // 8.2.3.8.1 Receive Descriptor Base Address Low
	rqRDBAH     = 0x04 // 8.2.3.8.2 Receive Descriptor Base Address High
	rqRDLEN     = 0x08 // 8.2.3.8.3 Receive Descriptor Length (bytes)
	rqDCARXCTRL = 0x0C // 8.2.3.11.1 Rx DCA Control
	rqRDH       = 0x10 // 8.2.3.8.4 Receive Descriptor Head
	rqSRRCTL    = 0x14 // 8.2.3.8.7 Split Receive Control
	rqRDT       = 0x18 // 8.2.3.8.5 Receive Descriptor Tail
	rqRXDCTL    = 0x28 // 8.2.3.8.6 Receive Descriptor Control

	regRDRXCTL   = 0x02F00 // 8.2.3.8.8 Receive DMA Control
	regRQSMR0    = 0x02300 // 8.2.3.23 Receive Queue Statistic Mapping, 32 registers
	regRXCTRL    = 0x03000 // 8.2.3.8.10 Receive Control
	regRXPBSIZE0 = 0x03C00 // 8.2.3.8.9 Receive Packet Buffer Size, 8 registers

	dcaRxctrlBit12 = 1 << 12 // 8.2.3.11.1 reserved, reads 1b after reset; 4.6.7 says clear it

	srrctlBSizeShift = 10      // 8.2.3.8.7 BSIZEPACKET bits 4:0, in 1 KB units
	srrctlAdvOneBuf  = 1 << 25 // 8.2.3.8.7 DESCTYPE 001b: advanced, one buffer
	srrctlDropEn     = 1 << 28 // 8.2.3.8.7 Drop_En: drop, rather than block, without descriptors

	rxdctlEnable = 1 << 25 // 8.2.3.8.6 ENABLE

	rdrxctlCRCStrip    = 1 << 1     // 8.2.3.8.8 CRCStrip, as HLREG0.RXCRCSTRP
	rdrxctlDMAIDone    = 1 << 3     // 8.2.3.8.8 DMAIDONE: DMA initialization done
	rdrxctlRSCFrstSize = 0x1F << 17 // 8.2.3.8.8 RSCFRSTSIZE, 4.6.7 wants 0
	rdrxctlRSCACKC     = 1 << 25    // 8.2.3.8.8 RSCACKC, 4.6.7 wants 1
	rdrxctlFCoEWrFix   = 1 << 26    // 8.2.3.8.8 FCOE_WRFIX, 4.6.7 wants 1

	rxctrlRXEN = 1 << 0 // 8.2.3.8.10 Receive Enable

	rxpbsize512KB = 0x200 << 10 // 8.2.3.8.9 SIZE in KB at bits 19:10; 4.6.11.3.4 all to PB0
)

// Security block, 8.2.3.12: 4.6.7 halts it around setting RXCTRL.RXEN.
const (
	regSECRXCTRL = 0x08D00 // 8.2.3.12.5 Security Rx Control
	regSECRXSTAT = 0x08D04 // 8.2.3.12.6 Security Rx Status

	secrxRXDis = 1 << 1 // 8.2.3.12.5 RX_DIS
	secrxReady = 1 << 0 // 8.2.3.12.6 SECRX_RDY
)

// Transmit DMA, 8.2.3.9. Queue n has its registers at 0x06000 + 0x40*n.
const (
	tqTDBAL  = 0x00 // 8.2.3.9.5 Transmit Descriptor Base Address Low
	tqTDBAH  = 0x04 // 8.2.3.9.6 Transmit Descriptor Base Address High
	tqTDLEN  = 0x08 // 8.2.3.9.7 Transmit Descriptor Length (bytes)
	tqTDH    = 0x10 // 8.2.3.9.8 Transmit Descriptor Head
	tqTDT    = 0x18 // 8.2.3.9.9 Transmit Descriptor Tail
	tqTXDCTL = 0x28 // 8.2.3.9.10 Transmit Descriptor Control

	regDMATXCTL   = 0x04A80 // 8.2.3.9.2 DMA Tx Control
	regRTTDCS     = 0x04900 // 8.2.3.10.2 DCB Transmit Descriptor Plane Control and Status
	regTXPBTHRESH = 0x04950 // 8.2.3.9.16 Tx Packet Buffer Threshold, 8 registers
	regDTXMXSZRQ  = 0x08100 // 8.2.3.9.1 DMA Tx TCP Max Allow Size Requests
	regMTQC       = 0x08120 // 8.2.3.9.15 Multiple Transmit Queues Command
	regTQSM0      = 0x08600 // 8.2.3.23 Transmit Queue Statistic Mapping, 32 registers
	regTXPBSIZE0  = 0x0CC00 // 8.2.3.9.13 Transmit Packet Buffer Size, 8 registers

	dmatxctlTE = 1 << 0 // 8.2.3.9.2 Transmit Enable (also enables queue 0, 4.6.8)

	rttdcsARBDIS = 1 << 6 // 8.2.3.10.2 ARBDIS: hold the arbiter while buffers are sized (4.6.8)

	txdctlPTHRESH = 36      // 8.2.3.9.10 prefetch threshold, bits 6:0
	txdctlHTHRESH = 8 << 8  // 8.2.3.9.10 host threshold, bits 14:8 (non-zero with PTHRESH)
	txdctlEnable  = 1 << 25 // 8.2.3.9.10 ENABLE

	txpbsize160KB  = 0xA0 << 10 // 8.2.3.9.13 SIZE in KB at bits 19:10; 4.6.11.3.4 all to PB0
	txpbthresh     = 0xA0 - 10  // 8.2.3.9.16: packet buffer size minus 10 KB (4.6.11.3.4)
	dtxmxszrqLimit = 0xFFF      // 8.2.3.9.1 Max_byte_num_req: unlimited (4.6.11.3.4)
)

// MAC, 8.2.3.22.
const (
	regHLREG0 = 0x04240 // 8.2.3.22.8 MAC Core Control 0
	regAUTOC  = 0x042A0 // 8.2.3.22.19 Auto Negotiation Control
	regLINKS  = 0x042A4 // 8.2.3.22.20 Link Status

	hlreg0TXCRCEN   = 1 << 0  // 8.2.3.22.8 Tx CRC Enable
	hlreg0RXCRCSTRP = 1 << 1  // 8.2.3.22.8 Rx CRC Strip
	hlreg0TXPADEN   = 1 << 10 // 8.2.3.22.8 Tx Pad Frame Enable

	autocRestartAN = 1 << 12 // 8.2.3.22.19 Restart_AN, self-clearing

	linksUp         = 1 << 30 // 8.2.3.22.20 Link Up
	linksSpeedMask  = 3 << 28 // 8.2.3.22.20 LINK_SPEED
	linksSpeed10G   = 3 << 28 // 11b: 10 GbE
	linksSpeed1G    = 2 << 28 // 10b: 1 GbE
	linksSpeed100M  = 1 << 28 // 01b: 100 Mb/s
	linksSpeedShift = 28
)

// Statistics, 8.2.3.23: every counter clears when read. Byte counters are
// 36 bits, a Low register (bits 31:0) then a High register (bits 35:32);
// reading Low latches High, so Low is read first.
const (
	regCRCERRS  = 0x04000 // 8.2.3.23 CRC Error Count
	regRLEC     = 0x04040 // 8.2.3.23 Receive Length Error Count
	regPRC64    = 0x0405C // 8.2.3.23 Packets Received [64 Bytes] Count, then 127, 255, 511, 1023, 1522 at +4
	regGPRC     = 0x04074 // 8.2.3.23 Good Packets Received Count
	regBPRC     = 0x04078 // 8.2.3.23 Broadcast Packets Received Count
	regMPRC     = 0x0407C // 8.2.3.23 Multicast Packets Received Count
	regGPTC     = 0x04080 // 8.2.3.23 Good Packets Transmitted Count
	regGORCL    = 0x04088 // 8.2.3.23 Good Octets Received Count Low (GORCH at +4)
	regGOTCL    = 0x04090 // 8.2.3.23 Good Octets Transmitted Count Low (GOTCH at +4)
	regRUC      = 0x040A4 // 8.2.3.23 Receive Undersize Count
	regROC      = 0x040AC // 8.2.3.23 Receive Oversize Count
	regTORL     = 0x040C0 // 8.2.3.23 Total Octets Received Low (TORH at +4)
	regTPR      = 0x040D0 // 8.2.3.23 Total Packets Received
	regTPT      = 0x040D4 // 8.2.3.23 Total Packets Transmitted
	regPTC64    = 0x040D8 // 8.2.3.23 Packets Transmitted [64 Bytes] Count, then 127 ... 1522 at +4
	regMPTC     = 0x040F0 // 8.2.3.23 Multicast Packets Transmitted Count
	regBPTC     = 0x040F4 // 8.2.3.23 Broadcast Packets Transmitted Count
	regMPC0     = 0x03FA0 // 8.2.3.23 Missed Packets Count, one per packet buffer
	regRNBC0    = 0x03FC0 // 8.2.3.23 Receive No Buffers Count, one per packet buffer
	regQPRC0    = 0x01030 // 8.2.3.23 Queue Packets Received Count, per statistics index, +0x40
	regQPRDC0   = 0x01430 // 8.2.3.23 Queue Packets Received Drop Count, +0x40
	regQPTC0    = 0x08680 // 8.2.3.23 Queue Packets Transmitted Count, +4
	numQueueSet = 16      // 8.2.3.23: 16 statistics indexes (RQSMR/TQSM)
)

// Descriptors, 16 bytes each: advanced receive (7.1.6) and transmit (7.2.3.2.4).
const (
	descSize = 16

	// 7.1.6.2 advanced receive write-back, second quadword: status and
	// errors in bits 31:0 (extended status bits 19:0, extended errors
	// bits 31:20), packet length in bits 47:32, VLAN tag in bits 63:48.
	rxStatDD    = 1 << 0  // Descriptor Done
	rxStatEOP   = 1 << 1  // End of Packet
	rxStatL4CS  = 1 << 5  // L4 (TCP/UDP) checksum calculated
	rxStatIPCS  = 1 << 6  // IPv4 header checksum calculated
	rxErrTCPE   = 1 << 30 // TCP/UDP checksum error
	rxErrIPE    = 1 << 31 // IPv4 checksum error
	rxLenShift  = 32
	rxRSSTypeLo = 0xF // 7.1.6.2 first quadword bits 3:0: RSS type (0: no hash)

	// 7.2.3.2.4 advanced transmit data descriptor, second quadword:
	// DTALEN bits 15:0, DTYP bits 23:20, DCMD bits 31:24, then PAYLEN in
	// bits 63:46 (bit 14 of the upper dword).
	txdDTYPData = 0x3 << 20
	txdEOP      = 1 << 24 // DCMD.EOP: last descriptor of the packet
	txdIFCS     = 1 << 25 // DCMD.IFCS: the MAC appends the FCS
	txdRS       = 1 << 27 // DCMD.RS: report status (DD in the write-back)
	txdDEXT     = 1 << 29 // DCMD.DEXT: advanced descriptor
	txdPayShift = 46      // PAYLEN
	txStatDD    = 1 << 32 // 7.2.3.2.4 write-back STA.DD, bit 0 of the upper dword
)

func rxq(q int, r uint32) uint32 {
	if q < 64 {
		return 0x01000 + 0x40*uint32(q) + r
	}
	return 0x0D000 + 0x40*uint32(q-64) + r
}

func txq(q int, r uint32) uint32 { return 0x06000 + 0x40*uint32(q) + r }
