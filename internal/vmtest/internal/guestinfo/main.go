// Command guestinfo is the guest program of vmtest's own boot test. It
// prints the kernel release and the PCI devices the guest sees, then exits
// with status 3, so the host can tell its status from a default 0.
//
// Output lines, parsed by the test:
//
//	release <uname -r>
//	pci <address> <vendor>:<device> driver=<name or none>
//	clocksource <current clocksource>
package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

func main() {
	var u unix.Utsname
	if err := unix.Uname(&u); err != nil {
		fmt.Println("uname:", err)
		os.Exit(1)
	}
	fmt.Println("release", unix.ByteSliceToString(u.Release[:]))

	devs, err := filepath.Glob("/sys/bus/pci/devices/*")
	if err != nil || len(devs) == 0 {
		fmt.Println("no PCI devices in /sys/bus/pci/devices:", err)
		os.Exit(1)
	}
	for _, d := range devs {
		driver := "none"
		if l, err := os.Readlink(filepath.Join(d, "driver")); err == nil {
			driver = filepath.Base(l)
		}
		fmt.Printf("pci %s %s:%s driver=%s\n", filepath.Base(d), hexID(d, "vendor"), hexID(d, "device"), driver)
	}
	if cs, err := os.ReadFile("/sys/devices/system/clocksource/clocksource0/current_clocksource"); err == nil {
		fmt.Println("clocksource", strings.TrimSpace(string(cs)))
	}
	os.Exit(3)
}

// hexID reads a sysfs ID file ("0x1af4") as bare hex ("1af4").
func hexID(dev, file string) string {
	b, err := os.ReadFile(filepath.Join(dev, file))
	if err != nil {
		return "?"
	}
	return strings.TrimPrefix(strings.TrimSpace(string(b)), "0x")
}
