package vmtest

import (
	"fmt"
	"strings"
)

const qemuBinary = "qemu-system-x86_64"

// qemuArgs builds QEMU's command line for cfg, booting kernel (a path QEMU
// can open) with initrd.
func qemuArgs(cfg *Config, kernel, initrd string) ([]string, error) {
	machine := "q35"
	var args []string
	shared := false
	for _, n := range cfg.NICs {
		shared = shared || n.Backend.sharedMemory()
	}
	if shared {
		// vhost-user backends map guest RAM, so it must be a shared file.
		args = append(args, "-object", fmt.Sprintf("memory-backend-memfd,id=vmtest-ram,size=%dM,share=on", cfg.memoryMiB()))
		machine += ",memory-backend=vmtest-ram"
	}
	args = append([]string{
		// KVM is not available on the hosts this runs on; TCG also makes
		// runs alike wherever they happen.
		"-accel", "tcg",
		"-machine", machine,
		// "max" gives the guest every instruction TCG emulates (SSE4.2,
		// AVX2, ...), which Go and packet code may pick at run time.
		"-cpu", "max",
		"-smp", fmt.Sprint(cfg.cpus()),
		"-m", fmt.Sprintf("%dM", cfg.memoryMiB()),
		// No default NIC, VGA, monitor or serial: only what is asked for.
		"-nodefaults", "-no-user-config",
		"-display", "none",
		"-serial", "stdio",
		// A guest reboot (kernel panic with panic=-1) ends QEMU.
		"-no-reboot",
	}, args...)
	cmdline := []string{
		"console=ttyS0", "quiet", "panic=-1", "rdinit=/init",
		// Debian zeroes every page on allocation; under TCG reserving
		// 64 hugepages alone then takes half a second.
		"init_on_alloc=0",
		// TCG derives the guest TSC from the host's invariant one, but the
		// kernel's watchdog distrusts it and falls back to the HPET, which
		// makes each clock read (Go's time.Now) about 8 times slower.
		"tsc=reliable",
	}
	if !cfg.NoIOMMU {
		// The IOMMU must be created before the PCI devices behind it.
		// intremap=on: vfio_iommu_type1 refuses a container unless MSIs
		// are isolated by interrupt remapping (or allow_unsafe_interrupts).
		args = append(args, "-device", "intel-iommu,intremap=on")
		// The Debian kernel leaves the Intel IOMMU off by default.
		// iommu=pt: devices kept by kernel drivers use identity mappings,
		// so only vfio domains pay for emulated translation.
		// no_timer_check: on a loaded host a TCG guest may miss the
		// kernel's check that the timer works through the
		// interrupt-remapped IO-APIC, and panic at boot.
		cmdline = append(cmdline, "intel_iommu=on", "iommu=pt", "no_timer_check")
	}
	for i, n := range cfg.NICs {
		id := fmt.Sprintf("nic%d", i)
		nd, err := n.Backend.qemuArgs(id, n.Queues)
		if err != nil {
			return nil, fmt.Errorf("NIC %d: %w", i, err)
		}
		args = append(args, nd...)
		dev := []string{"virtio-net-pci", "netdev=" + id, "id=" + id, fmt.Sprintf("addr=%#x", cfg.nicSlot(i))}
		if n.Modern {
			dev = append(dev, "disable-legacy=on")
		}
		if n.IOMMUPlatform {
			dev = append(dev, "iommu_platform=on")
		}
		if n.Queues > 1 {
			dev = append(dev, "mq=on")
		}
		if v := n.vectors(); v >= 0 {
			dev = append(dev, fmt.Sprintf("vectors=%d", v))
		}
		if n.MAC != "" {
			dev = append(dev, "mac="+n.MAC)
		}
		dev = append(dev, n.Props...)
		args = append(args, "-device", strings.Join(dev, ","))
	}
	cmdline = append(cmdline, cfg.KernelArgs...)
	args = append(args, "-kernel", kernel, "-initrd", initrd, "-append", strings.Join(cmdline, " "))
	return append(args, cfg.QEMUArgs...), nil
}
