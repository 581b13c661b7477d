package ixgbe

import (
	"testing"

	"github.com/gopmd/gopmd/eal"
)

// FuzzDeviceString feeds device strings, outside input, through the parse
// a Probe does: an address or a clear error, never a panic.
func FuzzDeviceString(f *testing.F) {
	for _, s := range []string{"net_ixgbe0,pci=0000:03:00.0", "net_ixgbe1,pci=03:00.1", "net_ixgbe0", "net_ixgbe0,pci=", "net_ixgbe0,pci=0000:03:00.0,x=1", "net_ixgbe0,pci=ffffffff:ff:1f.7"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		dev, err := eal.ParseVDev(s)
		if err != nil {
			return
		}
		addr, err := parseArgs(dev)
		if err != nil {
			if err.Error() == "" {
				t.Fatalf("%q: empty error", s)
			}
			return
		}
		if back, err := eal.ParsePCIAddr(addr.String()); err != nil || back != addr {
			t.Fatalf("%q: address %v does not survive a round trip (%v, %v)", s, addr, back, err)
		}
	})
}
