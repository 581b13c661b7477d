package memif

import (
	"crypto/rand"
	"fmt"
	"net"
	"strconv"

	"github.com/gopmd/gopmd/eal"
)

// Defaults, as DPDK 22.11's net_memif has them.
const (
	DefaultSocket   = "/run/memif.sock"
	DefaultLog2Ring = 10
	DefaultBufSize  = 2048
)

type role uint32

const (
	roleClient role = iota + 1
	roleServer
)

func (r role) String() string {
	if r == roleServer {
		return "server"
	}
	return "client"
}

// config is what the device string says.
type config struct {
	role     role
	id       uint32
	socket   string
	abstract bool // socket names an abstract unix address, not a file
	log2Ring uint8
	bufSize  uint32
	secret   string
	mac      net.HardwareAddr
}

const argNames = "id, role, socket, socket-abstract, rsize, bsize, secret, mac, zero-copy"

func parseArgs(dev eal.VDev) (config, error) {
	c := config{role: roleClient, socket: DefaultSocket, abstract: true, log2Ring: DefaultLog2Ring, bufSize: DefaultBufSize}
	for _, kv := range dev.Args {
		v := kv.Value
		switch kv.Key {
		case "role":
			switch v {
			case "server":
				c.role = roleServer
			case "client":
				c.role = roleClient
			default:
				return c, fmt.Errorf("role=%q: want server or client", v)
			}
		case "id":
			n, err := strconv.ParseUint(v, 10, 32)
			if err != nil {
				return c, fmt.Errorf("id=%q: want an integer from 0 to %d", v, uint32(1<<32-1))
			}
			c.id = uint32(n)
		case "socket":
			// sun_path holds 108 bytes; an abstract name also needs the leading NUL.
			if v == "" || len(v) > 106 {
				return c, fmt.Errorf("socket=%q: want a unix socket path of 1 to 106 bytes", v)
			}
			c.socket = v
		case "socket-abstract":
			switch v {
			case "yes":
				c.abstract = true
			case "no":
				c.abstract = false
			default:
				return c, fmt.Errorf("socket-abstract=%q: want yes or no", v)
			}
		case "rsize":
			n, err := strconv.ParseUint(v, 10, 8)
			if err != nil || n < 1 || n > maxLog2Ring {
				return c, fmt.Errorf("rsize=%q: want the log2 of the ring size, 1 to %d", v, maxLog2Ring)
			}
			c.log2Ring = uint8(n)
		case "bsize":
			n, err := strconv.ParseUint(v, 10, 16)
			if err != nil || n < 1 {
				return c, fmt.Errorf("bsize=%q: want a packet buffer size from 1 to 65535 bytes", v)
			}
			c.bufSize = uint32(n)
		case "secret":
			if len(v) >= secretSize {
				return c, fmt.Errorf("secret=%q: at most %d bytes", v, secretSize-1)
			}
			c.secret = v
		case "mac":
			mac, err := net.ParseMAC(v)
			if err != nil || len(mac) != 6 {
				return c, fmt.Errorf("mac=%q: want an Ethernet address such as 02:00:00:00:00:01", v)
			}
			c.mac = mac
		case "zero-copy":
			switch v {
			case "no":
			case "yes":
				return c, fmt.Errorf("zero-copy=yes: not supported; net_memif copies between mbufs and memif buffers")
			default:
				return c, fmt.Errorf("zero-copy=%q: want no", v)
			}
		default:
			return c, fmt.Errorf("unknown argument %q (net_memif takes %s)", kv.Key, argNames)
		}
	}
	if c.mac == nil {
		c.mac = make(net.HardwareAddr, 6)
		rand.Read(c.mac)
		c.mac[0] = c.mac[0]&^1 | 2 // unicast, locally administered
	}
	return c, nil
}

// addr is the socket address of the control channel.
func (c config) addr() *net.UnixAddr {
	name := c.socket
	if c.abstract {
		name = "@" + name
	}
	return &net.UnixAddr{Name: name, Net: "unixpacket"}
}
