// Package ixgbe is the net_ixgbe poll-mode driver for Intel's 10 GbE
// controllers of the 82599 family (and the X540 and X550 copper parts that
// share its registers), written from the Intel 82599 10 GbE Controller
// Datasheet. Every register and bit it uses is defined in regs.go beside
// the datasheet section that defines it; the initialization reads like
// sections 4.6.3 to 4.6.8, one step per call, each with its number.
//
// # Use
//
// Bind the device to vfio-pci, import the package for its side effect and
// create a port with the device's PCI address:
//
//	--vdev net_ixgbe0,pci=0000:03:00.0
//
// Probe checks the PCI ids (IDs lists them) and the binding, opens the
// device through package vfio (BAR0 mmap'd, the group memory mapped for
// DMA at VA-mode IOVAs, MSI-X vector 0 on an eventfd), resets it (4.6.3),
// sets up the link (4.6.4), clears the counters (4.6.5), enables the
// link-change interrupt and reads the MAC the EEPROM loaded. Configure,
// SetupRxQueue and SetupTxQueue reserve one memzone per queue (the
// descriptor ring, then its mbuf table); Start initializes receive and
// transmit (4.6.7, 4.6.8), arms every receive descriptor with an mbuf,
// enables each queue and polls until the device shows it enabled, then
// enables reception. Stop disables it all and frees the mbufs the rings
// held; Close also frees the memzones and the device. The port's MAC and
// link go to ethdev; a link change becomes ethdev's "link" event.
//
// Up to 16 queues each way: with more than one rx queue, RSS (7.1.2.8)
// spreads flows with the Toeplitz hash over IPv4/IPv6 addresses and
// TCP/UDP ports, key = the Microsoft verification key, redirection table
// entry i = queue i mod n. The device's promiscuous, all-multicast and
// multicast-list filters are the Device's SetPromiscuous, SetAllMulticast
// and SetMulticastAddrs (ethdev's Port.Device gives the *Device).
//
// # The fast path
//
// RxBurst reads only descriptors it handed to the device, so the device
// can never make it deliver a stale buffer; each frame's descriptor is
// armed again with a fresh mbuf at once, and RDT moves once per burst. A
// write-back it cannot trust (no EOP, length 0 or beyond the buffer, DD on
// the descriptor RDT points at) is dropped and counted in the queue's
// Errors. TxBurst writes one advanced data descriptor per segment, asks
// for status (RS) on every 32nd descriptor, moves TDT once per burst, and
// frees sent mbufs 32 at a time when the device reports the batch done.
// Neither allocates, locks or makes a system call. A caller polling from
// an eal lcore should bind both queues to it (ethdev.BindLcore), so that
// mbufs come from and go back to that lcore's cache rather than the pool's
// ring: DPDK drivers do the same through rte_lcore_id().
//
// # Counters
//
// Each queue's packets, bytes and errors are counted by whoever polls it,
// in ethdev's shared counters. The device's own counters (8.2.3.23, read to
// clear) are read by the primary every second and on XStats, accumulated
// in shared memory, and listed by XStats under DPDK's ixgbe names; the
// frames the device dropped for want of descriptors (QPRDC) also reach the
// queue's Dropped, through its poller.
//
// # Processes
//
// The primary owns the device: reset, link, filters, RSS, counters. The
// port's state (queue rings, cursors, counters) lives in group shared
// memory as offsets and numbers, so a secondary attaches by name and polls
// the queue pair it claims through ethdev, continuing from the cursors the
// last owner left. The secondary gets the device's VFIO descriptors from
// the primary (vfio.Attach) and maps BAR0 itself for its tail registers.
// ethdev refuses to stop or close the port in the primary while a
// secondary polls one of its queues (the rings' buffers go back to the
// pool on stop), and the Device refuses every device-global change in a
// secondary, even when reached past ethdev through Port.Device.
//
// # Proof
//
// No 82599 is needed to test the driver: internal/model82599 is a model
// of the device written from the datasheet, which reports every rule the
// driver breaks. The tests run the driver against it, in ethdev, including
// the datasheet's RSS verification vectors; BenchmarkForward measures the
// driver's cost per forwarded packet with the model's cost taken out.
package ixgbe
