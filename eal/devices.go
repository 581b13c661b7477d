package eal

import (
	"fmt"
	"strconv"
	"strings"
)

// PCIAddr is a PCI device's location: domain, bus, device and function.
type PCIAddr struct {
	Domain   uint32
	Bus      uint8
	Device   uint8 // 0-31
	Function uint8 // 0-7
}

// String formats the address the way sysfs names devices: 0000:03:00.1.
func (a PCIAddr) String() string {
	return fmt.Sprintf("%04x:%02x:%02x.%x", a.Domain, a.Bus, a.Device, a.Function)
}

// ParsePCIAddr reads DDDD:BB:DD.F or BB:DD.F (domain 0) in hexadecimal, as
// lspci and sysfs print them. The domain has 4 to 8 digits (VMD domains need
// more than 4), the bus and device 2, the function 1.
func ParsePCIAddr(s string) (PCIAddr, error) {
	fail := func(why string) (PCIAddr, error) {
		return PCIAddr{}, fmt.Errorf("PCI address %q %s; want DDDD:BB:DD.F or BB:DD.F in hexadecimal, e.g. 0000:03:00.1", s, why)
	}
	rest, fn, ok := strings.Cut(s, ".")
	if !ok {
		return fail("has no '.' before the function")
	}
	parts := strings.Split(rest, ":")
	var domain string
	switch len(parts) {
	case 2:
		domain = "0"
	case 3:
		domain = parts[0]
		if len(domain) < 4 || len(domain) > 8 {
			return fail("has a domain of " + strconv.Itoa(len(domain)) + " digits, not 4 to 8")
		}
		parts = parts[1:]
	default:
		return fail("has " + strconv.Itoa(len(parts)-1) + " ':', not 1 or 2")
	}
	if len(parts[0]) != 2 || len(parts[1]) != 2 || len(fn) != 1 {
		return fail("needs 2 digits of bus, 2 of device and 1 of function")
	}
	d, err1 := parseHex(domain, 32)
	b, err2 := parseHex(parts[0], 8)
	dev, err3 := parseHex(parts[1], 8)
	f, err4 := parseHex(fn, 8)
	switch {
	case err1 != nil || err2 != nil || err3 != nil || err4 != nil:
		return fail("is not hexadecimal")
	case dev > 0x1f:
		return fail("has device " + parts[1] + ", above 1f")
	case f > 7:
		return fail("has function " + fn + ", above 7")
	}
	return PCIAddr{Domain: uint32(d), Bus: uint8(b), Device: uint8(dev), Function: uint8(f)}, nil
}

func parseHex(s string, bits int) (uint64, error) {
	if strings.HasPrefix(s, "+") || strings.HasPrefix(s, "-") {
		return 0, strconv.ErrSyntax
	}
	return strconv.ParseUint(s, 16, bits)
}

func parseAllow(opt, v string) (Device, error) {
	addr, args, hasArgs := strings.Cut(v, ",")
	a, err := ParsePCIAddr(addr)
	if err != nil {
		return Device{}, fmt.Errorf("eal: %s %q: %w", opt, v, err)
	}
	kvs, err := parseDevArgs(args, hasArgs)
	if err != nil {
		return Device{}, fmt.Errorf("eal: %s %q: device arguments: %w", opt, v, err)
	}
	return Device{Addr: a, Args: kvs}, nil
}

// maxDevName is DPDK's RTE_DEV_NAME_MAX_LEN less the terminating NUL.
const maxDevName = 63

func parseVDev(v string) (VDev, error) {
	name, args, hasArgs := strings.Cut(v, ",")
	if name == "" || len(name) > maxDevName || strings.TrimLeft(name, nameChars) != "" {
		return VDev{}, fmt.Errorf("eal: --vdev %q: device name %q: want 1 to %d letters, digits, '_' or '-', a driver name and instance number like net_ring0", v, name, maxDevName)
	}
	kvs, err := parseDevArgs(args, hasArgs)
	if err != nil {
		return VDev{}, fmt.Errorf("eal: --vdev %q: device arguments: %w", v, err)
	}
	return VDev{Name: name, Args: kvs}, nil
}

const nameChars = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-"

// parseDevArgs splits key=value,key=value. Commas inside square brackets
// belong to the value (representor=[0-3,7]). present says a comma preceded
// s, so an empty s is an error rather than "no arguments".
func parseDevArgs(s string, present bool) ([]KeyValue, error) {
	if !present {
		return nil, nil
	}
	var items []string
	depth, start := 0, 0
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '[':
			depth++
		case ']':
			if depth == 0 {
				return nil, fmt.Errorf("']' at offset %d closes no '['", i)
			}
			depth--
		case ',':
			if depth == 0 {
				items = append(items, s[start:i])
				start = i + 1
			}
		}
	}
	if depth > 0 {
		return nil, fmt.Errorf("%d '[' not closed", depth)
	}
	items = append(items, s[start:])
	kvs := make([]KeyValue, 0, len(items))
	for _, item := range items {
		key, value, _ := strings.Cut(item, "=")
		if key == "" || strings.TrimLeft(key, nameChars+".") != "" {
			return nil, fmt.Errorf("argument %q: want key=value or key, with a key of letters, digits, '_', '-' or '.'", item)
		}
		kvs = append(kvs, KeyValue{Key: key, Value: value})
	}
	return kvs, nil
}
