// Package hugemem is the memory every gopmd process of a group shares: a few
// large files on hugetlbfs (memfd-backed memory when there are no
// hugepages), mapped into each process, and a registry of named memzones
// inside them.
//
// # Groups, segments and offsets
//
// A group is named by its file prefix (--file-prefix). Its memory is a list
// of segments, each one file named <prefix>map_<n> in the hugetlbfs
// directory. Every process of the group reserves one stretch of virtual
// address space and maps segment n at the same distance from the start of
// that stretch, so a byte of shared memory has one "group offset" that is
// the same in every process even though the addresses differ (ASLR is not
// a problem). Shared structures refer to each other by group offset, or by
// the distance between two objects, and never by address. Ptr and Off
// convert between a group offset and an address in this process. Offset 0
// is never valid and can stand for "none".
//
// # Memzones
//
// Reserve hands out a named, aligned, zeroed piece of a segment; Lookup finds
// it again by name in any process of the group. The registry lives in a
// small config file in the group's runtime directory, itself shared, so a
// process that attaches later sees every memzone the others reserved.
//
// # Lifetime
//
// Create makes a new group (the primary's job) and Attach joins one. Close
// unmaps everything; when the creator closes, it also removes the group's
// files, while processes still attached keep their mappings until they
// close. The last process to close removes the runtime directory, once
// nothing is left in it. Segment file descriptors stay open for the life
// of the Memory so they can be passed to other processes and to
// vhost-user backends.
//
// # DMA
//
// Devices see memory through IOVAs. In VA mode (the default, for VFIO)
// gopmd hands out IOVAs itself: IOVA = IOVABase + group offset. In PA mode
// the IOVA is the physical address read from /proc/self/pagemap, which only
// root can see. memfd-backed memory is not pinned in hugepages, so IOVA
// refuses it with an error.
package hugemem
