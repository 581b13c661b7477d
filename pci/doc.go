// Package pci finds PCI devices through sysfs, reads what a driver needs
// to know about them (IDs, class, BARs, capabilities, IOMMU group, NUMA
// node, kernel network interfaces) and moves them between kernel drivers,
// vfio-pci above all.
//
// # Finding devices
//
// Scan lists the devices a Filter selects: vendor:device pairs, a class,
// and the EAL's -a/--allow and -b/--block lists (FromEAL). Each Device is a
// snapshot taken when it was read; nothing is kept open, and a Device is
// stale as soon as a driver changes. Reading sysfs is done with
// github.com/u-root/u-root/pkg/pci; a Sysfs with another Root reads a tree
// laid out like /sys, which the tests use.
//
// # Config space
//
// Config is a copy of a device's configuration space with accessors for
// the capability list, MSI-X and the virtio vendor capabilities. It parses
// bytes from anywhere: the sysfs config file (Device.Config), or the config
// region of a VFIO device.
//
// # Binding
//
// Bind moves devices to a driver with driver_override, unbind and bind, and
// Unbind detaches them. Before changing anything both check every device
// and refuse, naming the device, when the driver is not loaded, a device
// is in use (a kernel network interface of it is up), or binding to
// vfio-pci would leave an IOMMU group that VFIO cannot use because another
// member is bound to a kernel driver.
package pci
