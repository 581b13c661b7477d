package testmem

import (
	"testing"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/stretchr/testify/require"
)

func TestAttachMapsTheCreatedGroupAgainElsewhere(t *testing.T) {
	o := Options(t, "tm")
	mem, other := Create(t, o), Attach(t, o)
	require.NotEqual(t, mem.Ptr(0), other.Ptr(0), "the two mappings are at different addresses")
	z, err := mem.Reserve("shared", 64, 0)
	require.NoError(t, err)
	copy(z.Bytes(), "hello")
	oz, err := other.Lookup("shared")
	require.NoError(t, err)
	require.Equal(t, "hello", string(oz.Bytes()[:5]))
}

func TestEachCallGetsAGroupOfItsOwn(t *testing.T) {
	a, b := Options(t, "tm"), Options(t, "tm")
	require.NotEqual(t, a.Prefix, b.Prefix)
	require.True(t, a.NoHuge, "memfd-backed")
	New(t, "tm")
	New(t, "tm")
}

func TestCleanupClosesTheGroup(t *testing.T) {
	o := Options(t, "tm")
	o.RuntimeDir = t.TempDir() // outlives the subtest
	t.Run("create", func(t *testing.T) {
		Create(t, o)
		_, err := hugemem.Create(o)
		require.ErrorIs(t, err, hugemem.ErrInUse, "the group is open during the test")
	})
	mem, err := hugemem.Create(o)
	require.NoError(t, err, "the group is closed after the test")
	mem.Close()
}
