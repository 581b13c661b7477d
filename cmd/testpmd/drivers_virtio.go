package main

// virtio-net ports: --vdev virtio_user0,path=/run/vhost.sock[,queues=N]
// (vhost-user) and --vdev net_virtio0,pci=0000:00:10.0 (a device bound to
// vfio-pci).
import _ "github.com/gopmd/gopmd/pmd/virtio"
