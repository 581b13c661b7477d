package virtio

import (
	"testing"
	"unsafe"

	"github.com/stretchr/testify/assert"
)

// TestSharedLayout pins the port description every process reads: a
// change must change portVersion.
func TestSharedLayout(t *testing.T) {
	var s portShared
	assert.Equal(t, uintptr(184), unsafe.Sizeof(s), "portShared size")
	assert.Equal(t, uintptr(16), unsafe.Offsetof(s.Features))
	assert.Equal(t, uintptr(32), unsafe.Offsetof(s.Kind))
	assert.Equal(t, uintptr(60), unsafe.Offsetof(s.Linear))
	assert.Equal(t, uintptr(64), unsafe.Offsetof(s.AddrBase))
	assert.Equal(t, uintptr(80), unsafe.Offsetof(s.PCI))
	assert.Equal(t, uintptr(104), unsafe.Sizeof(pciShared{}), "pciShared size")
	assert.Equal(t, uintptr(32), unsafe.Offsetof(pciShared{}.QueueNotify))
	assert.Zero(t, unsafe.Offsetof(s.PCI)%8)
}
