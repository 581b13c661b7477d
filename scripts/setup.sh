#!/usr/bin/env bash
# Prepares a machine for gopmd: the Debian packages its tests and
# comparisons need (DPDK as the reference peer, a C compiler for the DPDK
# harness) and hugepages. Safe to run again; as non-root it only reports.
set -euo pipefail

HUGEPAGES=${GOPMD_HUGEPAGES:-1024}   # 2 MiB pages: 2 GiB for the group tests and the DPDK side
PACKAGES=(dpdk dpdk-dev libdpdk-dev pkg-config gcc make qemu-system-x86 linux-image-amd64 busybox-static xz-utils)

if [ "$(id -u)" != 0 ]; then
	echo "setup: not root: skipping package install and hugepage reservation" >&2
	exit 0
fi

missing=()
for p in "${PACKAGES[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	echo "setup: installing ${missing[*]}"
	apt-get update -qq
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

have=$(cat /proc/sys/vm/nr_hugepages)
if [ "$have" -lt "$HUGEPAGES" ]; then
	echo "$HUGEPAGES" > /proc/sys/vm/nr_hugepages
	have=$(cat /proc/sys/vm/nr_hugepages)
	echo "setup: $have hugepages of 2 MiB reserved"
fi
if ! grep -q ' hugetlbfs ' /proc/mounts; then
	mkdir -p /dev/hugepages
	mount -t hugetlbfs nodev /dev/hugepages
	echo "setup: hugetlbfs mounted at /dev/hugepages"
fi
