package mempool

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDebugRefusesADoubleFreeAndKeepsTheCountRight(t *testing.T) {
	for _, cache := range []uint32{0, 16} {
		mem := newMemory(t)
		p := newPool(t, mem, "dbl", Config{N: 64, EltSize: 40, CacheSize: cache, Flags: Debug})
		c := p.Cache(0)
		objs := getN(t, p, c, 3)
		require.NoError(t, p.Put(c, objs[1]))
		err := p.PutBulk(c, objs)
		require.Error(t, err)
		assert.Contains(t, err.Error(), "put refused 1 of 3 objects")
		assert.Contains(t, err.Error(), "already free: double free")
		assert.Contains(t, err.Error(), hexHandle(objs[1]), "the error names the object")
		assert.Equal(t, uint32(64), p.Avail(), "cache %d: the double-freed object is not in the pool twice", cache)

		all := getN(t, p, c, 64)
		seen := map[uint64]bool{}
		for _, h := range all {
			require.False(t, seen[h], "object %#x handed out twice", h)
			seen[h] = true
		}
		require.NoError(t, p.PutBulk(c, all))
		require.ErrorContains(t, p.PutBulk(c, all[:1]), "double free", "a whole bulk freed twice")
	}
}

func TestDebugRefusesTheSameObjectTwiceInOneBulk(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "twice", Config{N: 8, EltSize: 8, Flags: Debug})
	h, err := p.Get(nil)
	require.NoError(t, err)
	require.ErrorContains(t, p.PutBulk(nil, []uint64{h, h}), "double free")
	assert.Equal(t, uint32(8), p.Avail())
}

func TestDebugReportsCorruptedObjects(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "corrupt", Config{N: 8, EltSize: 20, Flags: Debug})
	objs := getN(t, p, nil, 3)

	p.objHeader(objs[0]).cookie = 42
	err := p.Put(nil, objs[0])
	require.ErrorContains(t, err, "header cookie is 0x2a, neither free")
	require.ErrorContains(t, err, hexHandle(objs[0]))

	b := (*[32]byte)(p.Ptr(objs[1]))
	b[24] = 0xff // element is 20 bytes; the trailer starts at 24
	require.ErrorContains(t, p.Put(nil, objs[1]), "written past its 20 bytes")

	require.ErrorContains(t, p.Put(nil, objs[2]+8), "is not an object of pool \"corrupt\"")
	require.NoError(t, p.Put(nil, objs[2]))
	assert.Equal(t, uint32(6), p.Avail(), "the two damaged objects stay out of the pool")
}

func TestDebugGetRefusesDamagedFreeObjects(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "dget", Config{N: 4, EltSize: 8, Flags: Debug})
	objs := getN(t, p, nil, 4)
	require.NoError(t, p.PutBulk(nil, objs))
	*p.trailer(objs[2]) = 7 // written after free

	err := p.GetBulk(nil, make([]uint64, 4))
	require.ErrorContains(t, err, "get found 1 of 4 objects damaged")
	require.ErrorContains(t, err, hexHandle(objs[2]))
	assert.Equal(t, uint32(3), p.Avail(), "the good objects went back, the damaged one stays out")
	getN(t, p, nil, 3)
}

func TestNonDebugPoolRefusesOverfillingTheRing(t *testing.T) {
	mem := newMemory(t)
	p := newPool(t, mem, "over", Config{N: 4, EltSize: 8})
	h, err := p.Get(nil)
	require.NoError(t, err)
	require.NoError(t, p.Put(nil, h))
	require.ErrorContains(t, p.Put(nil, h), "more objects came back than the pool holds")
	assert.Equal(t, uint32(4), p.Avail())
}

func hexHandle(h uint64) string { return "0x" + uintToHex(h) }

func uintToHex(v uint64) string {
	const digits = "0123456789abcdef"
	if v == 0 {
		return "0"
	}
	var b []byte
	for ; v > 0; v >>= 4 {
		b = append([]byte{digits[v&15]}, b...)
	}
	return string(b)
}
