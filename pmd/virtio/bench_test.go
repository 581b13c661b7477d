package virtio_test

import (
	"fmt"
	"runtime"
	"testing"

	"github.com/gopmd/gopmd/ethdev"
	"github.com/gopmd/gopmd/mbuf"
	"golang.org/x/sys/unix"
)

// The benchmarks run a forwarding loop against DPDK's net_vhost back-end
// (its forwarding lcore on CPU 0, ours pinned to CPU 1): ns/op is per
// packet. bench/cmd/vsdpdk virtio compares the same loops with DPDK's
// virtio_user.

func BenchmarkTxOnly64B(b *testing.B) { benchVhost(b, "rxonly", "txonly") }
func BenchmarkRxOnly64B(b *testing.B) { benchVhost(b, "txonly", "rxonly") }

func benchVhost(b *testing.B, backend, mode string) {
	for _, packed := range []int{0, 1} {
		b.Run(map[int]string{0: "split", 1: "packed"}[packed], func(b *testing.B) {
			sock := sockPath(b)
			peer := startVhost(b, sock, 1, "")
			peer.run("set fwd "+backend, "Set "+backend+" packet forwarding mode")
			peer.run("start", "packets/burst=")
			proc := primary(b, group(b))
			pool, err := mbuf.CreatePool(proc.Mem, "pkts", mbuf.PoolConfig{N: 8191, CacheSize: 256})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(pool.Close)
			port := startPort(b, proc, fmt.Sprintf("virtio_user0,path=%s,packed_vq=%d", sock, packed), 1, pool)
			waitLink(b, port, true)
			rx, _ := port.RxQueue(0)
			tx, _ := port.TxQueue(0)
			cache := pool.Cache(1)
			ethdev.BindLcore(rx, 1)
			ethdev.BindLcore(tx, 1)
			runtime.LockOSThread()
			defer runtime.UnlockOSThread()
			var set unix.CPUSet
			set.Set(1)
			unix.SchedSetaffinity(0, &set)
			pkts := make([]*mbuf.Mbuf, 32)
			b.ResetTimer()
			done := 0
			for done < b.N {
				switch mode {
				case "txonly":
					if pool.AllocBulk(cache, pkts) != nil {
						continue
					}
					for _, m := range pkts {
						d, _ := m.Append(64)
						d[12] = 8
					}
					n := tx.TxBurst(pkts)
					mbuf.FreeBulk(cache, pkts[n:])
					done += n
				case "rxonly":
					n := rx.RxBurst(pkts)
					mbuf.FreeBulk(cache, pkts[:n])
					done += n
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(done)/b.Elapsed().Seconds()/1e6, "Mpps")
		})
	}
}
