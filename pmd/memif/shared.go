package memif

import (
	"errors"
	"fmt"
	"sync/atomic"
	"unsafe"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/hugemem"
)

// What the primary records for the other processes of the group, in the
// memzone "memif_<port name>". Plain data only.
const (
	sharedMagic   = 0x6d656d69665f7368 // "memif_sh"
	sharedVersion = 1

	// maxRegions is how many regions a connection may have; a server says
	// so in HELLO (max_region = maxRegions-1).
	maxRegions = 16
)

type sharedState struct {
	Magic   uint64
	Version uint32
	Role    uint32

	// Gen counts connection changes: odd while connected. The primary
	// writes everything below, then increments Gen to publish a
	// connection; it increments Gen again on disconnection before it
	// closes the region fds. A poller that sees a new Gen maps the
	// connection anew, and checks Gen again after mapping (seqlock).
	Gen uint32
	// Corrupt is set by any poller that finds the peer's ring indices
	// impossible; the primary's control goroutine then disconnects.
	Corrupt uint32

	// PrimaryPID holds the region fds: /proc/<PrimaryPID>/fd/<FD>.
	PrimaryPID int32
	// BufSize is the size of the buffers in our own region (client
	// role); 0 when the peer owns the regions (server role).
	BufSize    uint32
	NumRegions uint32
	_          uint32
	Regions    [maxRegions]sharedRegion
	Rx, Tx     [ethdev.MaxQueues]sharedRing // the ring behind our rx/tx queue q

	// Counters for XStats.
	Connects, Disconnects, Refused, RingErrors uint64
}

type sharedRegion struct {
	FD   int32
	_    uint32
	Size uint64
}

type sharedRing struct {
	Present   uint32
	Region    uint16
	Log2      uint8
	_         uint8
	Offset    uint32 // of the ring header in its region
	BufOffset uint32 // client role: our first buffer for this ring, in region 0
}

var _ [16 - unsafe.Sizeof(sharedRing{})]byte
var _ [16 - unsafe.Sizeof(sharedRegion{})]byte

func zoneName(port string) (string, error) {
	n := "memif_" + port
	if len(n) > hugemem.NameLen {
		return "", fmt.Errorf("port name %q is too long for its memzone %q (at most %d bytes)", port, n, hugemem.NameLen)
	}
	return n, nil
}

// createShared reserves the port's shared state in the primary. A zone
// left by an earlier port of the same name (whose primary died) is reused.
func createShared(mem *hugemem.Memory, port string, r role) (*sharedState, error) {
	name, err := zoneName(port)
	if err != nil {
		return nil, err
	}
	z, err := mem.Reserve(name, uint64(unsafe.Sizeof(sharedState{})), 0)
	if errors.Is(err, hugemem.ErrExists) {
		z, err = mem.Lookup(name)
	}
	if err != nil {
		return nil, fmt.Errorf("memif state of %s: %w", port, err)
	}
	if z.Len < uint64(unsafe.Sizeof(sharedState{})) {
		return nil, fmt.Errorf("memif state zone %q is %d bytes, this build needs %d", name, z.Len, unsafe.Sizeof(sharedState{}))
	}
	sh := (*sharedState)(z.Ptr())
	*sh = sharedState{Version: sharedVersion, Role: uint32(r)}
	atomic.StoreUint64(&sh.Magic, sharedMagic)
	return sh, nil
}

func lookupShared(mem *hugemem.Memory, port string) (*sharedState, error) {
	name, err := zoneName(port)
	if err != nil {
		return nil, err
	}
	z, err := mem.Lookup(name)
	if err != nil {
		return nil, fmt.Errorf("memif state of %s: %w", port, err)
	}
	if z.Len < uint64(unsafe.Sizeof(sharedState{})) {
		return nil, fmt.Errorf("memif state zone %q is %d bytes, this build needs %d", name, z.Len, unsafe.Sizeof(sharedState{}))
	}
	sh := (*sharedState)(z.Ptr())
	if atomic.LoadUint64(&sh.Magic) != sharedMagic || sh.Version != sharedVersion {
		return nil, fmt.Errorf("memif state zone %q has magic %#x version %d, this build needs %#x version %d",
			name, sh.Magic, sh.Version, uint64(sharedMagic), sharedVersion)
	}
	return sh, nil
}

func freeShared(mem *hugemem.Memory, port string) error {
	name, err := zoneName(port)
	if err != nil {
		return err
	}
	return mem.Free(name)
}

func (sh *sharedState) connected() bool { return atomic.LoadUint32(&sh.Gen)&1 == 1 }

func (sh *sharedState) add(c *uint64, n uint64) { atomic.AddUint64(c, n) }
