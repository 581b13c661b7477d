// Package virtqueue is the driver side of a virtio virtqueue, split or
// packed (virtio 1.2, sections 2.7 and 2.8), moving mbufs. It knows nothing
// of the transport: the virtio package hands it memory, a way to turn
// memory into device addresses, and a Notifier that kicks the device.
//
// # Where a queue lives
//
// Everything about a queue is in one memzone of the group: a header with
// the queue's geometry and the driver's cursors, the ring the device
// reads and writes, the driver's own record of each buffer id in flight
// (its mbuf as a group offset, its descriptor count, its chain), and, for
// transmit, a slot per id for a virtio-net header that cannot go into an
// mbuf's headroom. The primary lays a queue out with Init; any process
// builds its own Queue over the memzone with Attach, and the one process
// that claimed the queue polls it. The cursors are written back at the end
// of every burst, so another process can take over the queue later.
//
// # What the device may do
//
// The device is not trusted to be correct. The driver never reads back a
// descriptor it wrote: its record of every id is kept apart from the ring.
// A used entry whose id is out of range or not in flight, whose length is
// larger than the buffer posted or smaller than the net header, or a
// merged frame that claims more buffers than the ring holds, is dropped
// and counted (Stats and the queue's ethdev error counter); its buffer, if
// it had one, goes back to the pool; the queue keeps working. A used index
// that runs ahead of what is in flight only produces such drops. A burst
// looks at most one ring's worth of entries.
//
// The device may only write what virtio lets it write: the used ring (or,
// packed, descriptors it marks used) and the buffers posted to it. A
// backend that maps the group's memory (vhost-user) or a device with DMA
// to all of it could write anywhere else too; nothing here can defend
// against that, as in any userspace driver.
//
// # Interrupts and kicks
//
// Queues are polled: Init tells the device not to interrupt (split:
// VRING_AVAIL_F_NO_INTERRUPT; packed: driver event flags DISABLE). After
// making buffers available a burst kicks the device through its Notifier
// only when the device asks for it (split: no VRING_USED_F_NO_NOTIFY;
// packed: device event flags not DISABLE). EVENT_IDX is not used.
//
// # Pausing
//
// The primary stops a queue's pollers with Disable before it moves the
// ring under them (device stop, reconnection): a burst on a disabled queue
// does nothing, and Disable waits until a burst in progress is over.
// Enable lets them go on.
package virtqueue
