package vfio

import "unsafe"

// Device registers need every load and store to happen, once, in program
// order. Go has no volatile; the compiler may merge, reorder or drop plain
// accesses it can see through, but it cannot see through a call it does
// not inline, so each register access is one such call. sync/atomic would
// not do: its stores are locked XCHGs, which are bus locks on uncached
// MMIO. On amd64, stores are not reordered with older stores, so a
// doorbell written after descriptors reaches the device after them.

//go:noinline
func mmioRead8(p unsafe.Pointer) uint8 { return *(*uint8)(p) }

//go:noinline
func mmioRead16(p unsafe.Pointer) uint16 { return *(*uint16)(p) }

//go:noinline
func mmioRead32(p unsafe.Pointer) uint32 { return *(*uint32)(p) }

//go:noinline
func mmioRead64(p unsafe.Pointer) uint64 { return *(*uint64)(p) }

//go:noinline
func mmioWrite8(p unsafe.Pointer, v uint8) { *(*uint8)(p) = v }

//go:noinline
func mmioWrite16(p unsafe.Pointer, v uint16) { *(*uint16)(p) = v }

//go:noinline
func mmioWrite32(p unsafe.Pointer, v uint32) { *(*uint32)(p) = v }

//go:noinline
func mmioWrite64(p unsafe.Pointer, v uint64) { *(*uint64)(p) = v }
