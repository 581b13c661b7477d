package main

// The drivers testpmd can create ports with: --vdev names a virtual
// device's driver, -a finds a PCI device's driver by its ids.
import (
	_ "github.com/gopmd/gopmd/pmd/ixgbe"
	_ "github.com/gopmd/gopmd/pmd/memif"
	_ "github.com/gopmd/gopmd/pmd/ring"
)
