// Package vmtest runs a Go program, usually a package's own test, inside a
// throwaway QEMU virtual machine, for tests that need what the host lacks:
// VFIO behind an IOMMU, virtio-net devices, an HPET.
//
// # Using it
//
// The common case runs one test of the calling package in the guest:
//
//	func TestVFIOMapsHugepages(t *testing.T) {
//		if !vmtest.InGuest() {
//			cfg := vmtest.Config{NICs: []vmtest.NIC{{
//				Backend: vmtest.UDP{Local: vmtest.FreeUDPAddr(t), Remote: vmtest.FreeUDPAddr(t)},
//				Modern:  true, IOMMUPlatform: true, VFIO: true,
//			}}}
//			cfg.Env = []string{"NIC=" + cfg.NICAddr(0)}
//			vmtest.RunInGuest(t, cfg)
//			return
//		}
//		// Here the test runs in the guest, as root.
//	}
//
// RunInGuest reruns the test binary in the guest with -test.run selecting
// t and passes, fails or skips t with the guest's verdict. For any other
// static program, build it with BuildMain or BuildTest and call Run (boot,
// wait, return the exit status) or Start and VM.Wait (to talk to the guest
// from the host while it runs, e.g. through a UDP backend).
//
// # The guest
//
// The guest is a q35 machine under TCG (KVM is not assumed) with 2 vCPUs,
// 1 GiB RAM and an emulated Intel IOMMU with interrupt remapping. It boots
// the Debian kernel from /boot (the newest with modules, or
// $GOPMD_VMTEST_KERNEL) into an initramfs with busybox, the kernel modules
// (DefaultModules plus Config.Modules, dependencies included) and the
// program. Its /init mounts proc, sysfs, devtmpfs and hugetlbfs at
// /dev/hugepages, reserves 64 hugepages of 2 MiB, loads the modules, binds
// the chosen PCI devices to vfio-pci, runs the program in /vmtest with
// GOPMD_VMTEST=1 set, prints its exit status on a marker line and powers
// off. NICs sit at fixed addresses on the root bus (Config.NICAddr). The
// guest has /dev/hpet (3 comparators) and uses the TSC as clocksource.
//
// # Lifetime
//
// A VM lives within the test that started it: its files are in the test's
// temporary directories, and the test's cleanup kills QEMU if it still
// runs. QEMU is also killed when Config.Timeout passes (2 minutes by
// default, shortened to fit the go test deadline); the failure then shows
// the console's last lines. A guest that prints nothing at all for a
// minute (it never reached /init: a rare TCG stall on a loaded host) is
// killed and booted once more, when the timeout leaves room; Result.Attempts
// says so. The console streams into the test log line by
// line, prefixed with the time since QEMU started.
//
// Per test process the harness keeps, in memory, the uncompressed kernel
// (booted through its PVH entry, which saves the 3 s the bzImage spends
// decompressing itself under TCG) and the busybox-and-modules part of the
// initramfs. On a 2-core host shared with other work, a boot to the
// guest's /init takes 2 to 3 s and a small VM test 2.5 to 4 s in all
// (about 1 s more for the first VM of a process, which extracts the kernel).
//
// # Prerequisites
//
// qemu-system-x86, linux-image-amd64, busybox-static and xz-utils, all
// installed by scripts/setup.sh. Without them tests skip, and fail under
// CI=true. Root is needed only for Tap backends (QEMU creates the tap).
//
// # Running one VM test by hand
//
//	go test ./internal/vmtest/ -run 'TestGuestBindsNICToVFIOAndHasHPET$' -v -count=1
//
// -v shows the guest console as it happens; add CI=true in front to turn
// a missing prerequisite into a failure, GOPMD_VMTEST_KERNEL=/boot/vmlinuz-…
// to pick the kernel.
package vmtest
