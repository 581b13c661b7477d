package virtio

import (
	"fmt"
	"math/bits"
	"strings"
)

// Feature bits (virtio 1.2 sections 5.1.3 and 6).
const (
	FeatMAC           = 5  // VIRTIO_NET_F_MAC: the device has an address in its config
	FeatMrgRxbuf      = 15 // VIRTIO_NET_F_MRG_RXBUF: a frame may span several rx buffers
	FeatStatus        = 16 // VIRTIO_NET_F_STATUS: link state in the config
	FeatCtrlVQ        = 17 // VIRTIO_NET_F_CTRL_VQ: a control queue
	FeatCtrlRx        = 18 // VIRTIO_NET_F_CTRL_RX: promiscuous and MAC filter commands
	FeatMQ            = 22 // VIRTIO_NET_F_MQ: several queue pairs
	FeatVersion1      = 32 // VIRTIO_F_VERSION_1
	FeatAccessPlatfrm = 33 // VIRTIO_F_ACCESS_PLATFORM: the device's DMA goes through the IOMMU
	FeatRingPacked    = 34 // VIRTIO_F_RING_PACKED
)

// Features is a set of virtio feature bits.
type Features uint64

// Has reports whether bit is set.
func (f Features) Has(bit int) bool { return f&(1<<bit) != 0 }

var featureNames = map[int]string{
	0: "CSUM", 1: "GUEST_CSUM", 2: "CTRL_GUEST_OFFLOADS", 3: "MTU", 6: "GSO", 7: "GUEST_TSO4", 8: "GUEST_TSO6",
	9: "GUEST_ECN", 10: "GUEST_UFO", 11: "HOST_TSO4", 12: "HOST_TSO6", 13: "HOST_ECN", 14: "HOST_UFO",
	19: "CTRL_VLAN", 20: "CTRL_RX_EXTRA", 21: "GUEST_ANNOUNCE", 23: "CTRL_MAC_ADDR", 24: "NOTIFY_ON_EMPTY",
	26: "LOG_ALL", 27: "ANY_LAYOUT", 28: "INDIRECT_DESC", 29: "EVENT_IDX", 35: "IN_ORDER",
	FeatMAC: "MAC", FeatMrgRxbuf: "MRG_RXBUF", FeatStatus: "STATUS", FeatCtrlVQ: "CTRL_VQ", FeatCtrlRx: "CTRL_RX",
	FeatMQ: "MQ", FeatVersion1: "VERSION_1", FeatAccessPlatfrm: "ACCESS_PLATFORM", FeatRingPacked: "RING_PACKED",
	featProtocolFeatures: "PROTOCOL_FEATURES",
}

// String names the bits: "VERSION_1|MRG_RXBUF|...", unknown ones by number.
func (f Features) String() string {
	if f == 0 {
		return "none"
	}
	var names []string
	for v := uint64(f); v != 0; v &= v - 1 {
		bit := bits.TrailingZeros64(v)
		if n, ok := featureNames[bit]; ok {
			names = append(names, n)
		} else {
			names = append(names, fmt.Sprintf("bit%d", bit))
		}
	}
	return strings.Join(names, "|")
}

// driverFeatures is everything this driver implements; it negotiates no
// more, whatever the device offers.
const driverFeatures Features = 1<<FeatMAC | 1<<FeatMrgRxbuf | 1<<FeatStatus | 1<<FeatCtrlVQ | 1<<FeatCtrlRx |
	1<<FeatMQ | 1<<FeatVersion1 | 1<<FeatAccessPlatfrm | 1<<FeatRingPacked

// netHdrLen is the size of struct virtio_net_hdr as the features make it.
func netHdrLen(f Features) int {
	if f.Has(FeatVersion1) || f.Has(FeatMrgRxbuf) {
		return 12
	}
	return 10
}

// Control queue classes and commands (section 5.1.6.5).
const (
	ctrlRx          = 0
	ctrlRxPromisc   = 0
	ctrlMAC         = 1
	ctrlMACTableSet = 0
	ctrlMQ          = 4
	ctrlMQPairsSet  = 0
	ctrlOK          = 0
)
