package vmtest

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gopmd/gopmd/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestCPIOArchiveListsWithTheCpioTool(t *testing.T) {
	cpio := testenv.RequireCommand(t, "cpio") // to cross-check the archive with
	var buf bytes.Buffer
	w := newCPIOWriter(&buf)
	w.file("/a/b/hello", 0o644, []byte("hello, world"))
	w.symlink("bin/sh", "busybox")
	w.charDev("dev/console", 0o600, 5, 1)
	w.fileFrom("odd", 0o755, 3, strings.NewReader("xyz"))
	require.NoError(t, w.close())
	assert.Zero(t, buf.Len()%4, "archive length %d is not 4-byte aligned", buf.Len())

	cmd := exec.Command(cpio, "-itv", "--quiet")
	cmd.Stdin = bytes.NewReader(buf.Bytes())
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	list := string(out)
	for _, want := range []string{"a\n", "a/b\n", "a/b/hello", "bin/sh -> busybox", "dev/console", "odd"} {
		assert.Contains(t, list, strings.TrimSuffix(want, "\n"))
	}
	assert.Equal(t, 1, strings.Count(list, " a/b\n"), "parent directory written once:\n%s", list)

	dir := t.TempDir()
	cmd = exec.Command(cpio, "-id", "--quiet", "a/b/hello", "odd")
	cmd.Dir, cmd.Stdin = dir, bytes.NewReader(buf.Bytes())
	out, err = cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	got, err := os.ReadFile(filepath.Join(dir, "a/b/hello"))
	require.NoError(t, err)
	assert.Equal(t, "hello, world", string(got))
	got, err = os.ReadFile(filepath.Join(dir, "odd"))
	require.NoError(t, err)
	assert.Equal(t, "xyz", string(got))
}

func TestVersionLessComparesNumbersNumerically(t *testing.T) {
	assert.True(t, versionLess("vmlinuz-6.1.0-9-amd64", "vmlinuz-6.1.0-56-amd64"))
	assert.True(t, versionLess("vmlinuz-5.10.0-30-amd64", "vmlinuz-6.1.0-1-amd64"))
	assert.False(t, versionLess("vmlinuz-6.1.0-56-amd64", "vmlinuz-6.1.0-56-amd64"))
	assert.False(t, versionLess("vmlinuz-6.10.0-1-amd64", "vmlinuz-6.9.0-1-amd64"))
}

func TestModuleLoadOrderPutsDependenciesFirst(t *testing.T) {
	dir := t.TempDir()
	dep := "kernel/a/vfio-pci.ko.xz: kernel/a/vfio-pci-core.ko.xz kernel/a/vfio.ko.xz kernel/b/irqbypass.ko.xz\n" +
		"kernel/a/vfio-pci-core.ko.xz: kernel/a/vfio.ko.xz kernel/b/irqbypass.ko.xz\n" +
		"kernel/a/vfio.ko.xz:\n" +
		"kernel/b/irqbypass.ko.xz:\n"
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.dep"), []byte(dep), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "modules.builtin"), []byte("kernel/c/hpet.ko\n"), 0o644))
	mt, err := readModuleTree(dir)
	require.NoError(t, err)

	order, err := mt.loadOrder([]string{"vfio", "vfio-pci", "hpet"})
	require.NoError(t, err)
	assert.Equal(t, []string{"vfio", "irqbypass", "vfio_pci_core", "vfio_pci"}, order,
		"each module once, after its dependencies; built-in hpet left out")

	_, err = mt.loadOrder([]string{"nope"})
	assert.ErrorContains(t, err, "kernel module nope not in")
}

func TestInstalledKernelModulesResolve(t *testing.T) {
	k, err := findKernel("")
	if err != nil {
		testenv.Missing(t, "kernel package: %v", err)
	}
	mt, err := readModuleTree(k.modDir)
	require.NoError(t, err)
	order, err := mt.loadOrder(append(append([]string(nil), DefaultModules...), VirtioNetModules...))
	require.NoError(t, err)
	assert.Subset(t, order, []string{"vfio", "vfio_iommu_type1", "vfio_pci", "virtio_net"})
	for _, m := range order {
		data, err := mt.readModule(m)
		require.NoError(t, err)
		assert.True(t, bytes.HasPrefix(data, []byte("\x7fELF")), "module %s is not an uncompressed ELF object", m)
	}
}

func TestPVHKernelIsExtractedFromTheBzImage(t *testing.T) {
	k, err := findKernel("")
	if err != nil {
		testenv.Missing(t, "kernel package: %v", err)
	}
	f, err := pvhKernel(k.image)
	require.NoError(t, err)
	again, err := pvhKernel(k.image)
	require.NoError(t, err)
	assert.Same(t, f, again, "extracted once per process")
	st, err := f.Stat()
	require.NoError(t, err)
	bz, err := os.Stat(k.image)
	require.NoError(t, err)
	assert.Greater(t, st.Size(), 2*bz.Size(), "vmlinux should be larger than the compressed image")

	_, err = bzImagePayload([]byte("not a kernel"))
	assert.ErrorContains(t, err, "not a bzImage")
}

func TestConfigValidationNamesTheProblem(t *testing.T) {
	udp := UDP{Local: "127.0.0.1:1", Remote: "127.0.0.1:2"}
	for _, tc := range []struct {
		name string
		cfg  Config
		want string
	}{
		{"no binary", Config{}, "Config.Binary is empty"},
		{"legacy with iommu platform", Config{Binary: "x", NICs: []NIC{{Backend: udp, IOMMUPlatform: true}}}, "IOMMUPlatform needs Modern"},
		{"no backend", Config{Binary: "x", NICs: []NIC{{}}}, "NIC 0: no Backend"},
		{"slot clash", Config{Binary: "x", NICs: []NIC{{Backend: udp, Slot: 0x11}, {Backend: udp}}}, "slot 0x11 already used by NIC 0"},
		{"slot of ICH9", Config{Binary: "x", NICs: []NIC{{Backend: udp, Slot: 0x1f}}}, "outside 0x01..0x1e"},
		{"too many hugepages", Config{Binary: "x", MemoryMiB: 256, HugePages: 100}, "exceeds half"},
		{"bad env", Config{Binary: "x", Env: []string{"NOEQUALS"}}, "not KEY=value"},
		{"bad prop", Config{Binary: "x", NICs: []NIC{{Backend: udp, Props: []string{"a=1,b=2"}}}}, "not one key=value"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			assert.ErrorContains(t, tc.cfg.validate(), tc.want)
		})
	}
	assert.NoError(t, (&Config{Binary: "x", NICs: []NIC{{Backend: udp}}}).validate())
}

func TestQEMUArgsForNICs(t *testing.T) {
	cfg := Config{Binary: "x", NICs: []NIC{
		{Backend: UDP{Local: "127.0.0.1:1", Remote: "127.0.0.1:2"}, Modern: true, IOMMUPlatform: true, MAC: "52:54:00:00:00:01"},
		{Backend: Tap{Name: "tap9"}, Queues: 4, Slot: 5},
		{Backend: VhostUser{Socket: "/tmp/s", Server: true}, Queues: 2},
	}}
	require.NoError(t, cfg.validate())
	args, err := qemuArgs(&cfg, "/k", "/i")
	require.NoError(t, err)
	line := strings.Join(args, " ")

	for _, want := range []string{
		"-accel tcg", "-machine q35,memory-backend=vmtest-ram",
		"-object memory-backend-memfd,id=vmtest-ram,size=1024M,share=on",
		"-device intel-iommu,intremap=on",
		"-netdev socket,id=nic0,udp=127.0.0.1:2,localaddr=127.0.0.1:1",
		"-device virtio-net-pci,netdev=nic0,id=nic0,addr=0x10,disable-legacy=on,iommu_platform=on,mac=52:54:00:00:00:01",
		"-netdev tap,id=nic1,ifname=tap9,script=no,downscript=no,queues=4",
		"-device virtio-net-pci,netdev=nic1,id=nic1,addr=0x5,mq=on,vectors=10",
		"-chardev socket,id=nic2-chr,path=/tmp/s,server=on",
		"-netdev vhost-user,id=nic2,chardev=nic2-chr,queues=2",
		"-device virtio-net-pci,netdev=nic2,id=nic2,addr=0x12,mq=on,vectors=0",
		"-kernel /k -initrd /i",
	} {
		assert.Contains(t, line, want)
	}
	assert.Less(t, strings.Index(line, "intel-iommu"), strings.Index(line, "virtio-net-pci"), "IOMMU before the devices behind it")
	assert.Equal(t, "0000:00:05.0", cfg.NICAddr(1))
	assert.Equal(t, "0000:00:12.0", cfg.NICAddr(2))

	_, err = qemuArgs(&Config{Binary: "x", NICs: []NIC{{Backend: UDP{Local: "a:1", Remote: "b:2"}, Queues: 2}}}, "/k", "/i")
	assert.ErrorContains(t, err, "UDP backend carries one queue pair")
}

func TestRunPatternSelectsExactlyOneTest(t *testing.T) {
	assert.Equal(t, `^TestA$`, runPattern("TestA"))
	assert.Equal(t, `^TestA$/^vhost-user$`, runPattern("TestA/vhost-user"))
	assert.Equal(t, `^TestA$/^x\.y\+$`, runPattern("TestA/x.y+"))
}

func TestInitScriptQuotesArgumentsAndBindsDevices(t *testing.T) {
	cfg := Config{Binary: "x", Args: []string{"-flag=it's"}, Env: []string{"A=b c"},
		NICs: []NIC{{Backend: UDP{}, VFIO: true}}, BindVFIO: []string{"0000:00:05.0"},
		Modules: []string{"vfio_iommu_type1 allow_unsafe_interrupts=1"}}
	s := initScript("N", &cfg, []string{"vfio", "vfio_iommu_type1"}, cfg.vfioDevices())
	assert.Contains(t, s, `/vmtest/prog '-flag=it'\''s' </dev/null`)
	assert.Contains(t, s, `export GOPMD_VMTEST=1 'A=b c'`)
	assert.Contains(t, s, "insmod /lib/modules/vmtest/vfio_iommu_type1.ko allow_unsafe_interrupts=1 ||")
	assert.Contains(t, s, "echo vfio-pci > $d/driver_override")
	assert.Contains(t, s, "d=/sys/bus/pci/devices/0000:00:10.0\n")
	assert.Contains(t, s, "d=/sys/bus/pci/devices/0000:00:05.0\n")
	assert.Contains(t, s, `echo "N exit $?"`)
}

// fatalRecorder stands in for the test given to Start, recording a fatal
// failure or skip instead of ending the test, to check the harness's own
// failure paths.
type fatalRecorder struct {
	*testing.T
	mu          sync.Mutex
	fatal, skip string
}

func (r *fatalRecorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.fatal = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *fatalRecorder) Skipf(format string, args ...any) {
	r.mu.Lock()
	r.skip = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

// runRecorded runs cfg, returning the harness's fatal message ("" if none).
func runRecorded(t *testing.T, cfg Config) string {
	r := &fatalRecorder{T: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		Run(r, cfg)
	}()
	<-done
	if r.skip != "" {
		t.Skip(r.skip)
	}
	return r.fatal
}

// busybox is a static program for runs that fail before it would start.
func busybox(t *testing.T) string {
	p, err := findBusybox()
	if err != nil {
		testenv.Missing(t, "%v", err)
	}
	return p
}

func TestTimeoutKillsQEMUAndShowsTheConsoleTail(t *testing.T) {
	start := time.Now()
	msg := runRecorded(t, Config{Binary: busybox(t), Timeout: 2 * time.Second}) // killed while booting
	assert.Less(t, time.Since(start), 15*time.Second, "QEMU should be killed soon after the timeout")
	assert.Contains(t, msg, "VM still running after 2s (Config.Timeout), QEMU killed")
	assert.Contains(t, msg, "console lines:")
}

func TestGuestSetupFailureIsReported(t *testing.T) {
	msg := runRecorded(t, Config{Binary: busybox(t), BindVFIO: []string{"0000:00:1e.0"}})
	assert.Contains(t, msg, "guest set-up failed: no PCI device 0000:00:1e.0 to bind to vfio-pci")
}

func TestSilentGuestIsBootedOnceMore(t *testing.T) {
	if InGuest() {
		t.Skip("host-side test")
	}
	saved := bootStall
	bootStall = time.Nanosecond // the first QEMU is killed before it prints anything
	defer func() { bootStall = saved }()
	res := Run(t, Config{Binary: BuildMain(t, "./internal/guestinfo")})
	assert.Equal(t, 2, res.Attempts, "QEMU starts")
	assert.Equal(t, 3, res.ExitStatus, "guestinfo exits 3 after printing")
	assert.NotEmpty(t, res.Output, "the second guest ran the program")
}
