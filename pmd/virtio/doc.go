// Package virtio is the virtio-net poll-mode driver: one virtqueue
// implementation (internal/virtqueue: split and packed rings) behind two
// transports. A program imports it for its side effect and creates ports
// with ethdev.Create:
//
//	--vdev virtio_user0,path=/run/vhost.sock[,queues=N][,queue_size=256][,mrg_rxbuf=1][,packed_vq=0][,server=0][,mac=...]
//	--vdev net_virtio0,pci=0000:00:10.0[,legacy=0][,queue_size=N][,mrg_rxbuf=1][,packed_vq=1]
//
// (ProbePCI does the second for a PCI address, under the first free
// net_virtio<n> name, which is what -a <address> should do.)
//
// # virtio_user: vhost-user
//
// The port is the front-end of a vhost-user back-end, such as DPDK's
// net_vhost, on a unix socket: as a client (server=0, the default; the
// back-end must listen when the port is created) or a server (server=1;
// the back-end connects when it likes). The session is SET_OWNER,
// GET_FEATURES, GET/SET_PROTOCOL_FEATURES (MQ, REPLY_ACK), GET_QUEUE_NUM,
// SET_VRING_CALL and SET_FEATURES; starting the port adds SET_MEM_TABLE,
// then per vring SET_VRING_NUM, _BASE, _ADDR, _KICK and SET_VRING_ENABLE;
// stopping it GET_VRING_BASE. The memory table is the group's hugemem
// segments, each passed by its file descriptor: a segment at group offset
// off is guest (and "user") address hugemem.IOVABase+off, the address the
// same byte has in VA-mode VFIO, and descriptors and ring addresses use
// the same numbers. A group may have at most 8 segments (vhost-user's
// limit); when it gains one while the port runs, the monitor sends the
// table again within 100 ms.
//
// The primary's monitor goroutine notices the back-end leaving (the link
// goes down, an ethdev event every process receives), then connects again
// every 100 ms (client) or accepts the next back-end (server), and sets it
// up where the last one stopped: pollers pause for a moment, each ring
// resumes at the device's last used position (split: the used index in
// memory; packed: found by walking the used descriptors), so frames queued
// meanwhile are sent and buffers posted stay posted.
//
// Negotiated with the back-end: VERSION_1, and as asked and offered
// MRG_RXBUF (mrg_rxbuf=1), RING_PACKED (packed_vq=1) and MQ (queues>1).
// As DPDK's virtio_user does, the port provides MAC (mac=, else a random
// local address), STATUS (the link is up while a back-end is connected),
// CTRL_VQ and CTRL_RX itself: queue pairs are the vrings it sets up, and
// receive filters are accepted but change nothing, a vhost-user back-end
// delivering every frame. Negotiated (ethdev xstat virtio_features, and
// Negotiated) and offered features are logged when the port is created.
//
// # net_virtio: PCI through VFIO
//
// The device must be bound to vfio-pci. A modern device is reached
// through its virtio capabilities (common configuration, notification,
// ISR and device configuration, in memory BARs mapped through VFIO); a
// transitional one through its legacy I/O BAR0 with legacy=1 (or when it
// has no capabilities). Probing resets the device, negotiates features
// (FEATURES_OK), reads MAC, link status and queue pairs; starting it
// resets it again, gives it the rings (address registers, or page frame
// numbers for legacy) with no interrupt vectors, sets DRIVER_OK and sends
// VIRTIO_NET_CTRL_MQ_VQ_PAIRS_SET through the control queue; stopping
// resets it. Negotiated, as offered: MAC, STATUS, MRG_RXBUF (mrg_rxbuf=1),
// CTRL_VQ, CTRL_RX (promiscuous mode and MAC filters: SetPromiscuous,
// SetMACFilter), MQ, VERSION_1, RING_PACKED (packed_vq=1) and
// ACCESS_PLATFORM. A device with ACCESS_PLATFORM translates our addresses
// with the IOMMU: the group must be in IOVA mode va, and its memory is
// mapped into the VFIO container at start. One without it (every legacy
// device) sees guest-physical addresses: IOVA mode pa. The primary polls
// the link status every 100 ms and publishes changes.
//
// # Queues and processes
//
// Rx queue q is virtqueue 2q, tx queue q virtqueue 2q+1, and the control
// queue comes after the device's last queue pair. Each virtqueue lives in
// the memzone "vio_<port>_<vq>" and the port's description in
// "vio_<port>", so a secondary attaches to the port by name and polls the
// queue pair it claimed: for virtio_user it asks the primary (mp IPC,
// action "virtio_user_kick_<port>") for the kick eventfds, for net_virtio
// it gets the VFIO descriptors through vfio.Attach and maps the
// notification BAR itself. The device, the socket and the link are the
// primary's. Rings have queue_size descriptors (the device's size for
// PCI); the descriptor counts of SetupRxQueue and SetupTxQueue are not
// used, as in DPDK's virtio driver.
//
// Bursts allocate nothing and take no lock. Kicks happen only when the
// device asks for them (vhost-user back-ends that poll never do; a kick is
// an eventfd write, or a doorbell write that is a system call only for a
// legacy I/O BAR). Interrupts are suppressed. Sent mbufs are freed lazily,
// when the tx ring runs short; a burst of no packets frees what was sent.
// Bound to the polling lcore (ethdev.BindLcore), an rx queue allocates
// from that lcore's cache of its pool, and a tx queue frees sent mbufs
// through that lcore's cache of each mbuf's own pool.
//
// # An untrusted device
//
// What the device returns is checked (see internal/virtqueue): used ids
// out of range or not in flight, lengths beyond the buffer, merged frames
// claiming too many buffers are dropped and counted (queue errors and
// xstats rx_q<n>_bad_id, _bad_len, _bad_merge) without disturbing the
// queue or losing a buffer; the driver keeps its own record of every
// chain, so a descriptor chain the device rewrote into a loop is never
// followed. vhost-user replies are checked for request, flags and size.
package virtio
