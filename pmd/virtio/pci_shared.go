package virtio

import "github.com/gopmd/gopmd/ethdev"

// pciShared is what a secondary needs to reach a net_virtio device: its
// address, and where each queue's notification goes.
type pciShared struct {
	Addr        [16]byte                     // "0000:00:10.0"
	NotifyBar   uint32                       // modern: BAR of the notification structure
	NotifyMult  uint32                       // modern: notify_off_multiplier
	NotifyOff   uint64                       // modern: offset of the structure in the BAR
	QueueNotify [2 * ethdev.MaxQueues]uint16 // modern: queue_notify_off of each rx and tx virtqueue
	CtrlNotify  uint16                       // modern: queue_notify_off of the control queue
	_           [6]byte
}
