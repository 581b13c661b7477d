package vmtest

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"debug/elf"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// kernel is an installed kernel image and its module tree.
type kernel struct {
	image   string // /boot/vmlinuz-<release>
	release string // 6.1.0-56-amd64
	modDir  string // /lib/modules/<release>
}

// errNoKernel marks a missing prerequisite (no kernel image or modules)
// as opposed to a broken one.
var errNoKernel = errors.New("no usable kernel")

// findKernel resolves the kernel to boot: image if given, else
// $GOPMD_VMTEST_KERNEL, else the newest /boot/vmlinuz-* that has modules.
func findKernel(image string) (kernel, error) {
	if image == "" {
		image = os.Getenv("GOPMD_VMTEST_KERNEL")
	}
	if image == "" {
		found, _ := filepath.Glob("/boot/vmlinuz-*")
		sort.Slice(found, func(i, j int) bool { return versionLess(found[j], found[i]) })
		for _, f := range found {
			if _, err := os.Stat(filepath.Join("/lib/modules", releaseOf(f), "modules.dep")); err == nil {
				image = f
				break
			}
		}
		if image == "" {
			return kernel{}, fmt.Errorf("%w: no /boot/vmlinuz-* with a matching /lib/modules/<release>/modules.dep (install linux-image-amd64 with scripts/setup.sh, or set GOPMD_VMTEST_KERNEL)", errNoKernel)
		}
	}
	if _, err := os.Stat(image); err != nil {
		return kernel{}, fmt.Errorf("%w: kernel image: %v", errNoKernel, err)
	}
	k := kernel{image: image, release: releaseOf(image)}
	k.modDir = filepath.Join("/lib/modules", k.release)
	if _, err := os.Stat(filepath.Join(k.modDir, "modules.dep")); err != nil {
		return kernel{}, fmt.Errorf("%w: modules of kernel %s (release %q taken from the image name vmlinuz-<release>): %v", errNoKernel, image, k.release, err)
	}
	return k, nil
}

func releaseOf(image string) string {
	return strings.TrimPrefix(filepath.Base(image), "vmlinuz-")
}

// versionLess orders strings by their runs of digits numerically, so that
// 6.1.0-56 sorts after 6.1.0-9.
func versionLess(a, b string) bool {
	for a != "" && b != "" {
		da, ra := leadingDigits(a)
		db, rb := leadingDigits(b)
		if da != "" && db != "" {
			na, _ := strconv.Atoi(da)
			nb, _ := strconv.Atoi(db)
			if na != nb {
				return na < nb
			}
			a, b = ra, rb
			continue
		}
		if a[0] != b[0] {
			return a[0] < b[0]
		}
		a, b = a[1:], b[1:]
	}
	return len(a) < len(b)
}

func leadingDigits(s string) (digits, rest string) {
	i := 0
	for i < len(s) && s[i] >= '0' && s[i] <= '9' {
		i++
	}
	return s[:i], s[i:]
}

// moduleName normalizes a module file or name: "vfio-pci.ko.xz" -> "vfio_pci".
func moduleName(s string) string {
	s = filepath.Base(s)
	if i := strings.Index(s, ".ko"); i >= 0 {
		s = s[:i]
	}
	return strings.ReplaceAll(s, "-", "_")
}

// moduleTree is a kernel's modules.dep and modules.builtin.
type moduleTree struct {
	dir     string
	path    map[string]string   // name -> path relative to dir
	deps    map[string][]string // name -> names it needs loaded first
	builtin map[string]bool
}

func readModuleTree(dir string) (*moduleTree, error) {
	mt := &moduleTree{dir: dir, path: map[string]string{}, deps: map[string][]string{}, builtin: map[string]bool{}}
	dep, err := os.Open(filepath.Join(dir, "modules.dep"))
	if err != nil {
		return nil, err
	}
	defer dep.Close()
	sc := bufio.NewScanner(dep)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		mod, deps, ok := strings.Cut(sc.Text(), ":")
		if !ok {
			continue
		}
		name := moduleName(mod)
		mt.path[name] = mod
		for _, d := range strings.Fields(deps) {
			mt.deps[name] = append(mt.deps[name], moduleName(d))
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading %s/modules.dep: %w", dir, err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "modules.builtin")); err == nil {
		for _, l := range strings.Fields(string(b)) {
			mt.builtin[moduleName(l)] = true
		}
	}
	return mt, nil
}

// loadOrder returns the modules to insert, dependencies first, each once.
// Built-in modules are satisfied already and left out.
func (mt *moduleTree) loadOrder(names []string) ([]string, error) {
	var order []string
	state := map[string]int{} // 1 visiting, 2 done
	var visit func(n, from string) error
	visit = func(n, from string) error {
		switch state[n] {
		case 1:
			return fmt.Errorf("kernel module %s: dependency cycle through %s", n, from)
		case 2:
			return nil
		}
		if _, ok := mt.path[n]; !ok {
			if mt.builtin[n] {
				state[n] = 2
				return nil
			}
			if from != "" {
				return fmt.Errorf("kernel module %s (needed by %s) not in %s/modules.dep", n, from, mt.dir)
			}
			return fmt.Errorf("kernel module %s not in %s/modules.dep nor modules.builtin", n, mt.dir)
		}
		state[n] = 1
		for _, d := range mt.deps[n] {
			if err := visit(d, n); err != nil {
				return err
			}
		}
		state[n] = 2
		order = append(order, n)
		return nil
	}
	for _, n := range names {
		if err := visit(moduleName(n), ""); err != nil {
			return nil, err
		}
	}
	return order, nil
}

// readModule returns the module's ELF object, decompressing .ko.gz, .ko.xz
// and .ko.zst on the host: busybox insmod passes the bytes to init_module,
// which takes only uncompressed objects.
func (mt *moduleTree) readModule(name string) ([]byte, error) {
	p := filepath.Join(mt.dir, mt.path[name])
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	switch {
	case strings.HasSuffix(p, ".ko"):
		return data, nil
	case strings.HasSuffix(p, ".ko.gz"):
		return gunzip(data)
	case strings.HasSuffix(p, ".ko.xz"):
		return decompressWith("xz", data)
	case strings.HasSuffix(p, ".ko.zst"):
		return decompressWith("zstd", data)
	}
	return nil, fmt.Errorf("kernel module %s: unknown compression of %s (want .ko, .ko.gz, .ko.xz or .ko.zst)", name, p)
}

func gunzip(data []byte) ([]byte, error) {
	zr, err := gzip.NewReader(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	zr.Multistream(false)
	return io.ReadAll(zr)
}

// decompressWith runs the xz or zstd tool. Trailing bytes after the first
// stream (padding in a bzImage) are ignored.
func decompressWith(tool string, data []byte) ([]byte, error) {
	args := map[string][]string{"xz": {"-dc", "--single-stream"}, "zstd": {"-dcq"}}[tool]
	if _, err := exec.LookPath(tool); err != nil {
		return nil, fmt.Errorf("decompressing needs the %s command: %w", tool, err)
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(tool, args...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = bytes.NewReader(data), &out, &stderr
	if err := cmd.Run(); err != nil && out.Len() == 0 {
		return nil, fmt.Errorf("%s %s: %v: %s", tool, strings.Join(args, " "), err, bytes.TrimSpace(stderr.Bytes()))
	}
	return out.Bytes(), nil
}

// PVH boot: QEMU enters an uncompressed vmlinux at its PVH entry point
// directly, skipping the real-mode setup and the in-guest decompression of
// the bzImage, which under TCG costs about 3 s per boot.
var (
	pvhMu    sync.Mutex
	pvhCache = map[string]*pvhImage{} // bzImage path -> extracted vmlinux
)

type pvhImage struct {
	f   *os.File // memfd holding the ELF; lives as long as the test process
	err error
}

// pvhKernel returns a memfd with the uncompressed, PVH-capable vmlinux
// inside the bzImage, extracted once per test process. The error says why
// PVH boot is unavailable; the caller then boots the bzImage.
func pvhKernel(image string) (*os.File, error) {
	pvhMu.Lock()
	defer pvhMu.Unlock()
	if c, ok := pvhCache[image]; ok {
		return c.f, c.err
	}
	f, err := extractPVH(image)
	pvhCache[image] = &pvhImage{f, err}
	return f, err
}

func extractPVH(image string) (*os.File, error) {
	bz, err := os.ReadFile(image)
	if err != nil {
		return nil, err
	}
	vmlinux, err := bzImagePayload(bz)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	if err := hasPVHEntry(vmlinux); err != nil {
		return nil, fmt.Errorf("%s: %w", image, err)
	}
	fd, err := unix.MemfdCreate("vmtest-vmlinux", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("memfd for vmlinux: %w", err)
	}
	f := os.NewFile(uintptr(fd), "vmtest-vmlinux")
	if _, err := f.Write(vmlinux); err != nil {
		f.Close()
		return nil, fmt.Errorf("writing vmlinux to memfd: %w", err)
	}
	return f, nil
}

// bzImagePayload decompresses the kernel ELF inside an x86 bzImage, using
// the payload offset and length from its boot protocol header (>= 2.08).
func bzImagePayload(bz []byte) ([]byte, error) {
	if len(bz) < 0x250 || string(bz[0x202:0x206]) != "HdrS" {
		return nil, errors.New("not a bzImage (no HdrS boot header)")
	}
	if v := binary.LittleEndian.Uint16(bz[0x206:]); v < 0x208 {
		return nil, fmt.Errorf("boot protocol %#x has no payload fields (need >= 0x208)", v)
	}
	setupSects := int(bz[0x1f1])
	if setupSects == 0 {
		setupSects = 4
	}
	start := (setupSects+1)*512 + int(binary.LittleEndian.Uint32(bz[0x248:]))
	end := start + int(binary.LittleEndian.Uint32(bz[0x24c:]))
	if start >= end || end > len(bz) {
		return nil, fmt.Errorf("payload [%d, %d) outside the %d-byte image", start, end, len(bz))
	}
	p := bz[start:end]
	switch {
	case bytes.HasPrefix(p, []byte{0x1f, 0x8b}):
		return gunzip(p)
	case bytes.HasPrefix(p, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return decompressWith("xz", p)
	case bytes.HasPrefix(p, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return decompressWith("zstd", p)
	}
	return nil, fmt.Errorf("payload compression with magic % x not handled (gzip, xz, zstd are)", p[:min(len(p), 6)])
}

// hasPVHEntry checks for the XEN_ELFNOTE_PHYS32_ENTRY note QEMU needs to
// boot an ELF kernel.
func hasPVHEntry(vmlinux []byte) error {
	const xenElfnotePhys32Entry = 18
	f, err := elf.NewFile(bytes.NewReader(vmlinux))
	if err != nil {
		return fmt.Errorf("payload is not an ELF kernel: %w", err)
	}
	for _, p := range f.Progs {
		if p.Type != elf.PT_NOTE {
			continue
		}
		notes, err := io.ReadAll(p.Open())
		if err != nil {
			return err
		}
		for len(notes) >= 12 {
			nameSz := int(binary.LittleEndian.Uint32(notes))
			descSz := int(binary.LittleEndian.Uint32(notes[4:]))
			typ := binary.LittleEndian.Uint32(notes[8:])
			name := notes[12:min(len(notes), 12+nameSz)]
			if typ == xenElfnotePhys32Entry && bytes.HasPrefix(name, []byte("Xen")) {
				return nil
			}
			next := 12 + align4(nameSz) + align4(descSz)
			if next > len(notes) {
				break
			}
			notes = notes[next:]
		}
	}
	return errors.New("kernel has no PVH entry note (CONFIG_PVH unset)")
}

func align4(n int) int { return (n + 3) &^ 3 }
