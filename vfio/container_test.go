package vfio

import (
	"fmt"
	"os"
	"testing"
	"unsafe"

	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testenv"
)

// fakeIOMMU stands in for the type1 IOMMU behind a container: it keeps the
// mappings the MAP_DMA and UNMAP_DMA ioctls make, by IOVA.
type fakeIOMMU struct {
	maps map[uint64]dmaMap
}

func newFakeContainer() (*Container, *fakeIOMMU) {
	f := &fakeIOMMU{maps: map[uint64]dmaMap{}}
	c := newContainer(-1, iommuType1)
	c.dmaIoctl = func(_ int, req uintptr, arg unsafe.Pointer) (uintptr, unix.Errno) {
		switch req {
		case ioctlIOMMUMapDMA:
			m := *(*dmaMap)(arg)
			for iova, old := range f.maps {
				if iova < m.IOVA+m.Size && m.IOVA < iova+old.Size {
					return 0, unix.EEXIST
				}
			}
			f.maps[m.IOVA] = m
		case ioctlIOMMUUnmapDMA:
			u := (*dmaUnmap)(arg)
			var done uint64
			for iova, m := range f.maps {
				if iova >= u.IOVA && iova+m.Size <= u.IOVA+u.Size {
					done += m.Size
					delete(f.maps, iova)
				}
			}
			u.Size = done
		default:
			return 0, unix.ENOTTY
		}
		return 0, 0
	}
	return c, f
}

// hugeMemory creates a hugepage-backed group (DMA refuses memfd memory).
func hugeMemory(t *testing.T, n int) *hugemem.Memory {
	t.Helper()
	testenv.RequireRoot(t)
	m, err := hugemem.Create(hugemem.Options{Prefix: fmt.Sprintf("vc%d-%d", os.Getpid(), n), Limit: 16 << 20, SegmentSize: 4 << 20, RuntimeDir: t.TempDir()})
	require.NoError(t, err)
	t.Cleanup(func() { m.Close() })
	if !m.HugePages() {
		testenv.Missing(t, "free hugepages (the group fell back to memfd memory)")
	}
	return m
}

func TestClosingAGroupsMemoryRemovesItsDMAMappings(t *testing.T) {
	c, iommu := newFakeContainer()
	a := hugeMemory(t, 1)
	require.NoError(t, c.MapMemory(a))
	seg := a.Segments()[0]
	iova, err := a.IOVA(seg.Off)
	require.NoError(t, err)
	require.Equal(t, uint64(uintptr(a.Ptr(seg.Off))), iommu.maps[iova].Vaddr, "the IOMMU maps the group's segment")

	require.NoError(t, a.Close())
	require.Empty(t, iommu.maps, "after the memory closed, the device can reach none of it")
	require.False(t, c.Mapped(iova))
	require.Empty(t, c.mems, "the container forgot the closed memory")

	b := hugeMemory(t, 2) // same offsets, so the same IOVAs, at other addresses
	require.NoError(t, c.MapMemory(b))
	seg = b.Segments()[0]
	require.Equal(t, uint64(uintptr(b.Ptr(seg.Off))), iommu.maps[iova].Vaddr, "the IOVA now leads to the live group's memory")
}

func TestMapMemoryReplacesAMappingOfOtherAddressesAtTheSameIOVA(t *testing.T) {
	c, iommu := newFakeContainer()
	m := hugeMemory(t, 3)
	seg := m.Segments()[0]
	iova, err := m.IOVA(seg.Off)
	require.NoError(t, err)
	stale := uintptr(m.Ptr(seg.Off)) + 1<<30 // any other address
	require.NoError(t, c.MapDMA(stale, iova, seg.Len))

	require.NoError(t, c.MapMemory(m))
	require.Equal(t, uint64(uintptr(m.Ptr(seg.Off))), iommu.maps[iova].Vaddr, "the IOVA was remapped to the segment's address; got the stale one")
	n := len(iommu.maps)
	require.NoError(t, c.MapMemory(m), "mapping again is a no-op")
	require.Len(t, iommu.maps, n)
}

func TestMapMemoryOfASecondOpenGroupIsAnError(t *testing.T) {
	c, iommu := newFakeContainer()
	a := hugeMemory(t, 4)
	b := hugeMemory(t, 5)
	require.NoError(t, c.MapMemory(a))
	err := c.MapMemory(b)
	require.ErrorContains(t, err, "still open")
	seg := a.Segments()[0]
	iova, _ := a.IOVA(seg.Off)
	require.Equal(t, uint64(uintptr(a.Ptr(seg.Off))), iommu.maps[iova].Vaddr, "the first group's mapping is untouched")
}
