package ixgbe_test

import (
	"fmt"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"github.com/gopmd/gopmd/mp"
	_ "github.com/gopmd/gopmd/pmd/ixgbe"
)

// A port on an 82599 bound to vfio-pci, forwarding what it receives back
// out, from lcore 1.
func Example() {
	var proc *mp.Process // from eal.Init
	port, err := ethdev.Create(proc, "net_ixgbe0,pci=0000:03:00.0")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer port.Close()
	pool, _ := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 4095, CacheSize: 256})
	port.Configure(ethdev.Config{RxQueues: 1, TxQueues: 1})
	port.SetupRxQueue(0, 512, pool)
	port.SetupTxQueue(0, 512)
	port.Start()
	rx, _ := port.RxQueue(0)
	tx, _ := port.TxQueue(0)
	// This loop runs on lcore 1: mbufs come from and go to its cache.
	cache := pool.Cache(1)
	ethdev.BindLcore(rx, 1)
	ethdev.BindLcore(tx, 1)
	pkts := make([]*mbuf.Mbuf, 32)
	for {
		n := rx.RxBurst(pkts)
		sent := tx.TxBurst(pkts[:n])
		mbuf.FreeBulk(cache, pkts[sent:n])
	}
}
