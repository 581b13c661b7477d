// Command devbind shows which driver each network device is on and moves
// devices between vfio-pci and kernel drivers, in the spirit of DPDK's
// dpdk-devbind.py.
//
//	devbind --status
//	devbind --bind=vfio-pci [--force] DEVICE...
//	devbind --bind=virtio-pci DEVICE...     (hand devices back to a kernel driver)
//	devbind --unbind [--force] DEVICE...
//
// A DEVICE is a PCI address (0000:00:10.0 or 00:10.0) or the name of a
// device's kernel network interface (eth0). Every device is checked before
// any is moved: devbind refuses, and exits with status 1, when the driver
// is not loaded, a device is in use (one of its network interfaces is up;
// --force moves it anyway), or binding to vfio-pci would leave an IOMMU
// group with a device on a kernel driver.
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/gopmd/gopmd/pci"
)

func main() {
	os.Exit(run(os.Args[1:], pci.Sysfs{}, os.Stdout, os.Stderr))
}

// run is devbind with its arguments, the sysfs tree to work on and its
// output, returning the exit status.
func run(args []string, sys pci.Sysfs, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("devbind", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var (
		status, unbind, force bool
		driver                string
	)
	fs.BoolVar(&status, "status", false, "show network devices and their drivers")
	fs.BoolVar(&status, "s", false, "short for --status")
	fs.StringVar(&driver, "bind", "", "bind the devices to this `driver` (vfio-pci, or a kernel driver)")
	fs.StringVar(&driver, "b", "", "short for --bind")
	fs.BoolVar(&unbind, "unbind", false, "unbind the devices from their driver")
	fs.BoolVar(&unbind, "u", false, "short for --unbind")
	fs.BoolVar(&force, "force", false, "move devices even if a network interface of theirs is up")
	fs.Usage = func() {
		fmt.Fprintln(stderr, "usage: devbind --status | --bind=DRIVER [--force] DEVICE... | --unbind [--force] DEVICE...")
		fs.PrintDefaults()
	}
	// Options may follow the devices, as with dpdk-devbind.py.
	var devices []string
	for {
		if err := fs.Parse(args); err != nil {
			return 2
		}
		if fs.NArg() == 0 {
			break
		}
		devices = append(devices, fs.Arg(0))
		args = fs.Args()[1:]
	}

	actions := 0
	for _, on := range []bool{status, driver != "", unbind} {
		if on {
			actions++
		}
	}
	switch {
	case actions == 0:
		fs.Usage()
		return 2
	case actions > 1:
		fmt.Fprintln(stderr, "devbind: give one of --status, --bind and --unbind")
		return 2
	case status && len(devices) > 0:
		fmt.Fprintln(stderr, "devbind: --status takes no devices")
		return 2
	case !status && len(devices) == 0:
		fmt.Fprintln(stderr, "devbind: no devices given")
		return 2
	}

	var err error
	switch {
	case status:
		err = printStatus(sys, stdout)
	default:
		var addrs []pci.Addr
		if addrs, err = resolve(sys, devices); err != nil {
			break
		}
		if driver != "" {
			err = sys.Bind(driver, addrs, pci.BindOptions{Force: force})
		} else {
			err = sys.Unbind(addrs, pci.BindOptions{Force: force})
		}
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	return 0
}

// resolve turns each argument, a PCI address or an interface name, into
// an address.
func resolve(sys pci.Sysfs, args []string) ([]pci.Addr, error) {
	var nets []*pci.Device
	var out []pci.Addr
	for _, a := range args {
		if addr, err := pci.ParseAddr(a); err == nil {
			out = append(out, addr)
			continue
		}
		if nets == nil {
			var err error
			if nets, err = sys.Scan(networkDevices); err != nil {
				return nil, err
			}
		}
		i := slices.IndexFunc(nets, func(d *pci.Device) bool { return slices.Contains(d.Interfaces, a) })
		if i < 0 {
			return nil, fmt.Errorf("devbind: %q is neither a PCI address (0000:00:10.0) nor the interface of a network device", a)
		}
		out = append(out, nets[i].Addr)
	}
	return out, nil
}

var networkDevices = pci.Filter{Class: pci.ClassNetwork, ClassMask: pci.ClassMaskBase}

// printStatus lists the network devices by kind of driver.
func printStatus(sys pci.Sysfs, w io.Writer) error {
	devs, err := sys.Scan(networkDevices)
	if err != nil {
		return err
	}
	sections := []struct {
		title string
		match func(*pci.Device) bool
	}{
		{"Network devices using vfio-pci", func(d *pci.Device) bool { return d.Driver == pci.VFIODriver }},
		{"Network devices using a kernel driver", func(d *pci.Device) bool { return d.Driver != "" && d.Driver != pci.VFIODriver }},
		{"Network devices without a driver", func(d *pci.Device) bool { return d.Driver == "" }},
	}
	var errs []error
	for i, s := range sections {
		if i > 0 {
			fmt.Fprintln(w)
		}
		fmt.Fprintf(w, "%s\n%s\n", s.title, strings.Repeat("=", len(s.title)))
		n := 0
		for _, d := range devs {
			if s.match(d) {
				_, err := fmt.Fprintln(w, statusLine(d))
				errs = append(errs, err)
				n++
			}
		}
		if n == 0 {
			fmt.Fprintln(w, "<none>")
		}
	}
	return errors.Join(errs...)
}

// statusLine describes one device the way dpdk-devbind.py does, plus its
// NUMA node and IOMMU group:
//
//	0000:00:10.0 'Virtio 1.0 network device 1041' if=eth0 numa_node=-1 iommu_group=1 drv=virtio-pci *Active*
func statusLine(d *pci.Device) string {
	_, name := d.Name()
	var b strings.Builder
	fmt.Fprintf(&b, "%s '%s %04x'", d.Addr, name, d.DeviceID)
	if len(d.Interfaces) > 0 {
		fmt.Fprintf(&b, " if=%s", strings.Join(d.Interfaces, ","))
	}
	fmt.Fprintf(&b, " numa_node=%d", d.NUMANode)
	if d.IOMMUGroup >= 0 {
		fmt.Fprintf(&b, " iommu_group=%d", d.IOMMUGroup)
	} else {
		b.WriteString(" iommu_group=none")
	}
	if d.Driver != "" {
		fmt.Fprintf(&b, " drv=%s", d.Driver)
	}
	if len(d.ActiveInterfaces()) > 0 {
		b.WriteString(" *Active*")
	}
	return b.String()
}
