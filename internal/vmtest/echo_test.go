package vmtest_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"golang.org/x/sys/unix"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/gopmd/gopmd/internal/vmtest"
)

// etherTypeProbe is the IEEE "local experimental" EtherType the probe
// frames carry, so nothing else on the wire is mistaken for them.
const etherTypeProbe = 0x88b5

var probePayload = []byte("vmtest probe frame")

// TestNICBackendsCarryFramesBothWays has the guest kernel's virtio-net
// driver send a probe frame and wait for it to come back from a host peer
// that reflects frames: a UDP socket, or DPDK's testpmd on vhost-user.
func TestNICBackendsCarryFramesBothWays(t *testing.T) {
	t.Run("udp", func(t *testing.T) {
		if vmtest.InGuest() {
			guestSendsProbeAndSeesItBack(t)
			return
		}
		peer, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
		require.NoError(t, err)
		t.Cleanup(func() { peer.Close() })
		var reflected atomic.Int64
		go func() {
			buf := make([]byte, 2048)
			for {
				n, from, err := peer.ReadFromUDP(buf)
				if err != nil {
					return
				}
				if n >= 14 && binary.BigEndian.Uint16(buf[12:]) == etherTypeProbe {
					peer.WriteToUDP(buf[:n], from)
					reflected.Add(1)
				}
			}
		}()
		cfg := vmtest.Config{
			NICs:    []vmtest.NIC{{Backend: vmtest.UDP{Local: vmtest.FreeUDPAddr(t), Remote: peer.LocalAddr().String()}}},
			Modules: vmtest.VirtioNetModules,
		}
		cfg.Env = []string{"VMTEST_NIC=" + cfg.NICAddr(0)}
		vmtest.RunInGuest(t, cfg)
		assert.Positive(t, reflected.Load(), "probe frames the host peer reflected")
	})

	t.Run("vhost-user", func(t *testing.T) {
		if vmtest.InGuest() {
			guestSendsProbeAndSeesItBack(t)
			return
		}
		sock := startTestpmdReflector(t)
		cfg := vmtest.Config{
			NICs:    []vmtest.NIC{{Backend: vmtest.VhostUser{Socket: sock}, Modern: true}},
			Modules: vmtest.VirtioNetModules,
			// The backend maps all guest RAM; with 1 GiB testpmd takes
			// about 2 s longer to accept the device under TCG.
			MemoryMiB: 512,
		}
		cfg.Env = []string{"VMTEST_NIC=" + cfg.NICAddr(0)}
		vmtest.RunInGuest(t, cfg)
	})
}

// startTestpmdReflector runs dpdk-testpmd with a vhost-user port listening
// on a socket, forwarding what it receives back out of the same port. It
// uses no hugepages; its runtime directory is removed afterwards.
func startTestpmdReflector(t *testing.T) string {
	testpmd := testenv.RequireCommand(t, "dpdk-testpmd")
	sock := filepath.Join(t.TempDir(), "vhost-user.sock")
	prefix := fmt.Sprintf("vmtest-%d", os.Getpid())
	t.Cleanup(func() { os.RemoveAll(filepath.Join("/var/run/dpdk", prefix)) })
	cmd := exec.Command(testpmd, "--no-huge", "-m", "256", "--no-pci", "--no-shconf", "--file-prefix="+prefix,
		"-l", "0,1", "--vdev", "net_vhost0,iface="+sock,
		"--", "--forward-mode=io", "--port-topology=loop", "--auto-start", "--nb-cores=1", "--total-num-mbufs=4096")
	stdin, err := cmd.StdinPipe() // testpmd runs until its stdin closes
	require.NoError(t, err)
	out, err := cmd.StdoutPipe()
	require.NoError(t, err)
	cmd.Stderr = cmd.Stdout
	require.NoError(t, cmd.Start())
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			t.Logf("testpmd| %s", sc.Text())
		}
		cmd.Wait()
	}()
	t.Cleanup(func() {
		stdin.Close()
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			cmd.Process.Kill()
			<-exited
		}
	})
	for start := time.Now(); ; time.Sleep(50 * time.Millisecond) {
		if _, err := os.Stat(sock); err == nil {
			return sock
		}
		select {
		case <-exited:
			t.Fatalf("testpmd exited (%v) before making its vhost-user socket; its output is above", cmd.ProcessState)
		default:
		}
		if time.Since(start) > 15*time.Second {
			t.Fatalf("testpmd made no vhost-user socket %s in 15 s", sock)
		}
	}
}

// guestSendsProbeAndSeesItBack runs in the guest: it raises the NIC given
// in VMTEST_NIC, sends probe frames on it through an AF_PACKET socket and
// waits for one to arrive from the wire.
func guestSendsProbeAndSeesItBack(t *testing.T) {
	dev := os.Getenv("VMTEST_NIC")
	nets, _ := filepath.Glob(filepath.Join("/sys/bus/pci/devices", dev, "virtio*/net/*"))
	require.Len(t, nets, 1, "network interfaces of %s (is virtio_net loaded?)", dev)
	name := filepath.Base(nets[0])
	mac, err := net.ParseMAC(strings.TrimSpace(readFile(t, filepath.Join(nets[0], "address"))))
	require.NoError(t, err)

	proto := int(htons(etherTypeProbe))
	fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, proto)
	require.NoError(t, err)
	defer unix.Close(fd)
	ifr, err := unix.NewIfreq(name)
	require.NoError(t, err)
	require.NoError(t, unix.IoctlIfreq(fd, unix.SIOCGIFFLAGS, ifr))
	ifr.SetUint16(ifr.Uint16() | unix.IFF_UP)
	require.NoError(t, unix.IoctlIfreq(fd, unix.SIOCSIFFLAGS, ifr), "bring %s up", name)
	require.NoError(t, unix.IoctlIfreq(fd, unix.SIOCGIFINDEX, ifr))
	ifindex := int(ifr.Uint32())
	require.NoError(t, unix.Bind(fd, &unix.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: ifindex}))
	require.NoError(t, unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &unix.Timeval{Usec: 200_000}))

	frame := make([]byte, 60)
	copy(frame, []byte{0xff, 0xff, 0xff, 0xff, 0xff, 0xff})
	copy(frame[6:], mac)
	binary.BigEndian.PutUint16(frame[12:], etherTypeProbe)
	copy(frame[14:], probePayload)
	buf := make([]byte, 2048)
	for sent := 0; sent < 50; sent++ { // the link may take a moment to come up
		_, err := unix.Write(fd, frame)
		require.NoError(t, err, "send probe on %s", name)
		for {
			n, from, err := unix.Recvfrom(fd, buf, 0)
			if err == unix.EAGAIN || err == unix.EINTR {
				break
			}
			require.NoError(t, err)
			if from.(*unix.SockaddrLinklayer).Pkttype == unix.PACKET_OUTGOING {
				continue // our own frame, looped back to packet sockets
			}
			if n >= 14+len(probePayload) && bytes.Equal(buf[14:14+len(probePayload)], probePayload) {
				t.Logf("probe came back on %s after %d sends", name, sent+1)
				return
			}
		}
	}
	t.Fatalf("no probe frame came back on %s (%s) after 50 sends", name, dev)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	return string(b)
}
