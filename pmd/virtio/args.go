package virtio

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/gopmd/gopmd/eal"
	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/pmd/virtio/internal/virtqueue"
)

// userArgs are the device arguments of virtio_user, with DPDK's names and
// defaults.
type userArgs struct {
	path      string
	queues    int  // queue pairs
	queueSize int  // descriptors per ring
	mrgRxbuf  bool // offer VIRTIO_NET_F_MRG_RXBUF
	packed    bool // use a packed ring if the back-end has one
	server    bool // we listen, the back-end connects
	mac       net.HardwareAddr
}

func parseUserArgs(dev eal.VDev) (userArgs, error) {
	a := userArgs{queues: 1, queueSize: 256, mrgRxbuf: true}
	for _, kv := range dev.Args {
		var err error
		switch kv.Key {
		case "path":
			a.path = kv.Value
		case "queues":
			a.queues, err = intArg(kv, 1, ethdev.MaxQueues)
		case "queue_size":
			a.queueSize, err = intArg(kv, 2, virtqueue.MaxSize)
			if err == nil && a.queueSize&(a.queueSize-1) != 0 {
				err = fmt.Errorf("queue_size=%s: want a power of two", kv.Value)
			}
		case "mrg_rxbuf":
			a.mrgRxbuf, err = boolArg(kv)
		case "packed_vq":
			a.packed, err = boolArg(kv)
		case "server":
			a.server, err = boolArg(kv)
		case "mac":
			a.mac, err = net.ParseMAC(kv.Value)
			if err == nil && (len(a.mac) != 6 || a.mac[0]&1 != 0) {
				err = fmt.Errorf("mac=%s: want a 6-byte unicast address", kv.Value)
			}
		default:
			return a, fmt.Errorf("unknown argument %q (virtio_user takes path, queues, queue_size, mrg_rxbuf, packed_vq, server, mac)", kv.Key)
		}
		if err != nil {
			return a, err
		}
	}
	if a.path == "" {
		return a, fmt.Errorf("path= is required: the vhost-user socket")
	}
	return a, nil
}

func intArg(kv eal.KeyValue, lo, hi int) (int, error) {
	n, err := strconv.Atoi(kv.Value)
	if err != nil || n < lo || n > hi {
		return 0, fmt.Errorf("%s=%q: want a number from %d to %d", kv.Key, kv.Value, lo, hi)
	}
	return n, nil
}

func boolArg(kv eal.KeyValue) (bool, error) {
	switch strings.ToLower(kv.Value) {
	case "1", "yes", "on", "true":
		return true, nil
	case "0", "no", "off", "false":
		return false, nil
	}
	return false, fmt.Errorf("%s=%q: want 0 or 1", kv.Key, kv.Value)
}
