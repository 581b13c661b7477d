package model82599

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestResetSelfClearsAndRestoresInitialValues(t *testing.T) {
	h := newHarness(t)
	h.w(oFCTRL, 1<<9)
	h.w(oSRRCTL(3), 4|1<<25)
	h.w(oRAL0+8, 0x11223344)
	h.w(oRAH0+8, 0x5566|1<<31)
	h.w(oEIMS, 0xFFFF)

	h.set(oCTRL, bitRST)
	require.Equal(t, uint32(bitRST), h.r(oCTRL)&bitRST, "CTRL.RST reads set while the reset runs")
	h.requireViolation("reset-access")

	h.clock.advance(time.Millisecond)
	require.Zero(t, h.r(oCTRL)&bitRST, "CTRL.RST self-clears after ~1 ms")
	require.Equal(t, uint32(bitARD), h.r(oEEC)&bitARD, "EEC.Auto_RD")
	require.Equal(t, uint32(bitDMAIDN), h.r(oRDRXCTL)&bitDMAIDN, "RDRXCTL.DMAIDONE")
	require.Zero(t, h.r(oFCTRL), "FCTRL back to 0")
	require.Equal(t, uint32(0x402), h.r(oSRRCTL(3)), "SRRCTL back to 2 KB buffers, legacy descriptors")
	require.Zero(t, h.r(oRAH0+8), "RAR[1] invalid again")
	require.Zero(t, h.r(oEIMS), "interrupts masked")
	require.Equal(t, uint32(0x105e0002), h.r(oRAL0), "RAL[0] from the EEPROM MAC")
	require.Equal(t, uint32(0x0100|1<<31), h.r(oRAH0), "RAH[0] from the EEPROM MAC, valid")
	require.Equal(t, uint32(0x8100), h.r(oVLNCTRL)&0xFFFF, "VLNCTRL.VET")
	require.Equal(t, uint32(1|1<<1|1<<10), h.r(oHLREG0)&(1|1<<1|1<<10), "HLREG0 TXCRCEN, RXCRCSTRP, TXPADEN")
	h.requireNoViolations()
}

func TestAccessDuringResetIsReportedOncePerReset(t *testing.T) {
	h := newHarness(t)
	h.set(oCTRL, bitRST)
	h.w(oRDT(0), 5)
	h.r(oCTRL)
	h.requireViolation("reset-access")
	h.clock.advance(time.Millisecond)
	require.Zero(t, h.r(oRDT(0)), "the write during reset was ignored")
	h.requireNoViolations()
}

func TestLinkComesUpAtTenGigabitAfterAutonegotiationRestart(t *testing.T) {
	h := newHarness(t, linkDelay(5*time.Millisecond))
	h.clock.advance(5 * time.Millisecond)
	require.Equal(t, uint32(bitLinkUp|3<<28), h.r(oLINKS), "link up at 10 GbE after power-on")

	h.set(oCTRL, bitRST)
	h.clock.advance(time.Millisecond)
	require.Zero(t, h.r(oLINKS)&bitLinkUp, "reset takes the link down")
	h.r(oEICR)
	h.set(oAUTOC, 1<<12)
	require.Zero(t, h.r(oAUTOC)&(1<<12), "Restart_AN self-clears")
	h.clock.advance(4 * time.Millisecond)
	require.Zero(t, h.r(oLINKS)&bitLinkUp, "still negotiating")
	h.clock.advance(time.Millisecond)
	links := h.r(oLINKS)
	require.Equal(t, uint32(bitLinkUp), links&bitLinkUp, "link up")
	require.Equal(t, uint32(3<<28), links&(3<<28), "LINK_SPEED 11b = 10 GbE")
	require.Equal(t, uint32(1<<20), h.r(oEICR)&(1<<20), "EICR.LSC")
	h.requireNoViolations()
}

func TestStatisticsAreReadToClear(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	r := h.setupRx(0, rxOpts{})
	h.enableRx()
	f := udpFrame(macDev, 100)
	for range 3 {
		require.True(t, h.dev.Receive(f))
		_, ok := r.take()
		require.True(t, ok)
	}
	require.Equal(t, uint32(3), h.r(oGPRC))
	require.Zero(t, h.r(oGPRC), "GPRC clears on read")
	require.Equal(t, uint32(3*(len(f)+4)), h.r(oGORCL), "GORC counts DA through CRC")
	require.Zero(t, h.r(oGORCH))
	require.Zero(t, h.r(oGORCL), "GORCL clears on read")
	require.Equal(t, uint32(3), h.r(oQPRC(0)))
	require.Zero(t, h.r(oQPRC(0)))
	require.Equal(t, uint32(3), h.r(oTPR))
	h.requireNoViolations()
}

func TestByteCounterLowReadLatchesHigh(t *testing.T) {
	var c counters
	c.add(cGORC, 0x5_0000_0010)
	require.Equal(t, uint32(0x10), c.read(statRegs[oGORCL]))
	c.add(cGORC, 0x7)
	require.Equal(t, uint32(0x5), c.read(statRegs[oGORCH]), "High gives the latched bits 35:32")
	require.Equal(t, uint32(0x7), c.read(statRegs[oGORCL]), "counting restarted at the Low read")
}

func TestInterruptCausesFollowIVARAndMasks(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	r := h.setupRx(0, rxOpts{})
	h.enableRx()
	h.w(oIVAR(0), 0x80|5) // queue 0 Rx -> vector 5 (IVAR[0] bits 7:0)
	h.r(oEICR)

	require.True(t, h.dev.Receive(udpFrame(macDev, 20)))
	_, ok := r.take()
	require.True(t, ok)
	require.False(t, h.dev.InterruptPending(), "cause 5 is masked")
	require.Equal(t, uint32(1<<5), h.r(oEICS)&(1<<5), "EICS reads the causes without clearing")
	h.w(oEIMS, 1<<5)
	require.Equal(t, uint32(1<<5), h.r(oEIMS))
	require.True(t, h.dev.InterruptPending())
	h.w(oEIMC, 1<<5)
	require.Zero(t, h.r(oEIMS), "EIMC clears the mask bit")
	require.Zero(t, h.r(oEIMC), "EIMC is write-only")
	require.Equal(t, uint32(1<<5), h.r(oEICR)&(1<<5), "EICR shows the cause")
	require.Zero(t, h.r(oEICR), "EICR cleared by the read")

	h.w(oEICS, 1<<3|1<<20)
	h.w(oEICR, 1<<3) // write 1 to clear
	require.Equal(t, uint32(1<<20), h.r(oEICS))
	h.w(oGPIE, 1<<5) // OCD: a read clears only bits 29:16
	h.w(oEICS, 1<<2)
	require.Equal(t, uint32(1<<2|1<<20), h.r(oEICR))
	require.Equal(t, uint32(1<<2), h.r(oEICR))
	h.requireNoViolations()
}

func TestQueueEnableMustBePolled(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	r := h.setupRx(0, rxOpts{noStart: true})
	h.set(oRXDCTL(0), bitENABLE)
	require.Zero(t, h.r(oRXDCTL(0))&bitENABLE, "first read: not enabled yet")
	require.Equal(t, uint32(bitENABLE), h.r(oRXDCTL(0))&bitENABLE, "second read: enabled")
	h.w(oRDT(0), uint32(r.n-1))
	h.requireNoViolations()
}

func TestPolledModeWorksOnlyInStep(t *testing.T) {
	h := newHarness(t, polled)
	h.resetAndInit()
	r := h.setupRx(0, rxOpts{noStart: true})
	tx := h.setupTx(0, 32, false)
	h.set(oRXDCTL(0), bitENABLE)
	for range 5 {
		require.Zero(t, h.r(oRXDCTL(0))&bitENABLE, "enable waits for the device")
	}
	h.set(oDMATXCTL, bitTE)
	h.set(oTXDCTL(0), bitENABLE)
	require.True(t, h.dev.Step())
	h.poll(oRXDCTL(0), bitENABLE)
	h.poll(oTXDCTL(0), bitENABLE)
	h.w(oRDT(0), uint32(r.n-1))
	h.enableRx()

	require.True(t, h.dev.Receive(udpFrame(macDev, 30)))
	_, ok := r.take()
	require.False(t, ok, "nothing written before Step")
	i := tx.send(udpFrame(macPeer, 30))
	require.Empty(t, h.sent, "nothing sent before Step")
	require.True(t, h.dev.Step())
	_, ok = r.take()
	require.True(t, ok, "Step delivered the frame")
	require.Len(t, h.sent, 1, "Step sent the frame")
	require.True(t, tx.done(i))
	require.False(t, h.dev.Step(), "nothing left to do")
	h.requireNoViolations()
}

func TestRunProcessesInTheBackground(t *testing.T) {
	var mu sync.Mutex
	var sent int
	h := newHarness(t, polled, func(c *Config) {
		c.OnTransmit = func([]byte) { mu.Lock(); sent++; mu.Unlock() }
	})
	h.dev.now = time.Now // Run sees a real clock
	h.w(oCTRL, bitRST)
	time.Sleep(2 * time.Millisecond)
	h.viol = nil
	h.w(oRTTDCS, 1<<6)
	tx := h.setupTx(0, 32, false)
	h.set(oDMATXCTL, bitTE)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- h.dev.Run(ctx) }()
	h.set(oTXDCTL(0), bitENABLE)
	for h.r(oTXDCTL(0))&bitENABLE == 0 {
		time.Sleep(10 * time.Microsecond)
	}
	for range 10 {
		tx.send(udpFrame(macPeer, 30))
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		mu.Lock()
		n := sent
		mu.Unlock()
		if n == 10 {
			break
		}
		time.Sleep(100 * time.Microsecond)
	}
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	mu.Lock()
	require.Equal(t, 10, sent, "frames sent by the background device")
	mu.Unlock()
}

func TestAliasAddressesReachTheSameRegisters(t *testing.T) {
	h := newHarness(t)
	h.w(0x02100+4*3, 7|1<<25) // SRRCTL[3] at its 82598 address
	require.Equal(t, uint32(7|1<<25), h.r(oSRRCTL(3)))
	h.w(0x05818, 1) // MRQC alias
	require.Equal(t, uint32(1), h.r(oMRQC))
	h.w(0x05C00+4*2, 0x03020100) // RETA[2] alias
	require.Equal(t, uint32(0x03020100), h.r(oRETA0+8))
	h.w(0x05C80, 0xdeadbeef) // RSSRK[0] alias
	require.Equal(t, uint32(0xdeadbeef), h.r(oRSSRK0))
	require.Equal(t, h.r(oRAL0), h.r(0x05400), "RAL[0] alias")
	require.Equal(t, h.r(oCTRL), h.r(0x00004), "CTRL alias")
	h.requireNoViolations()
}

func TestSettingTransmitEnableAlsoEnablesQueueZero(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	h.setupTx(0, 32, false)
	h.set(oDMATXCTL, bitTE)
	require.Equal(t, uint32(bitENABLE), h.r(oTXDCTL(0))&bitENABLE, "4.6.8: TE enables queue 0")
	require.Zero(t, h.r(oTXDCTL(1))&bitENABLE)
	h.requireNoViolations()
}

func TestStatusShowsMasterDisableCompleted(t *testing.T) {
	h := newHarness(t)
	require.Equal(t, uint32(1<<19), h.r(oSTATUS)&(1<<19), "PCIe Master Enable Status")
	h.set(oCTRL, 1<<2)
	require.Zero(t, h.r(oSTATUS)&(1<<19), "no requests pending after Master Disable")
	h.requireNoViolations()
}

func TestReadOnlyBitsIgnoreWrites(t *testing.T) {
	h := newHarness(t)
	links, status := h.r(oLINKS), h.r(oSTATUS)
	h.w(oLINKS, 0)
	h.w(oSTATUS, 0)
	h.w(oEEC, 0)
	require.Equal(t, links, h.r(oLINKS))
	require.Equal(t, status, h.r(oSTATUS))
	require.Equal(t, uint32(bitARD|1<<8), h.r(oEEC)&(bitARD|1<<8), "EEC.Auto_RD and EE_PRES are read-only")
	h.w(oRDRXCTL, 0)
	require.Equal(t, uint32(bitDMAIDN), h.r(oRDRXCTL)&bitDMAIDN, "RDRXCTL.DMAIDONE is read-only")
	h.requireNoViolations()
}

func TestQueuesAbove63UseTheSecondRegisterBlock(t *testing.T) {
	h := newHarness(t)
	h.resetAndInit()
	require.Equal(t, uint32(0x0D000+0x40*36), oRDBAL(100))
	r := h.setupRx(100, rxOpts{n: 8})
	require.Equal(t, uint32(7), h.r(0x0D018+0x40*36), "RDT[100]")
	require.Equal(t, uint32(bitENABLE), h.r(0x0D028+0x40*36)&bitENABLE, "RXDCTL[100]")
	_ = r
	tx := h.setupTx(100, 32, true)
	tx.send(udpFrame(macPeer, 20))
	require.Len(t, h.sent, 1, "Tx queue 100 sends")
	h.requireNoViolations()
}

func TestPolledModeRetriesAQueueThatWaitedForTheLink(t *testing.T) {
	h := newHarness(t, polled)
	h.resetAndInit()
	tx := h.setupTx(0, 32, false)
	h.set(oDMATXCTL, bitTE)
	h.poll(oTXDCTL(0), bitENABLE)
	h.dev.SetLink(false)
	tx.send(udpFrame(macPeer, 20))
	require.False(t, h.dev.Step())
	require.Empty(t, h.sent)
	h.dev.SetLink(true)
	require.True(t, h.dev.Step())
	require.Len(t, h.sent, 1)
	h.requireNoViolations()
}
