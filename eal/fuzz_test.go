package eal

import (
	"slices"
	"strings"
	"testing"
)

// FuzzParseArgs feeds argument vectors (NUL-separated) to the parser. It must
// never panic, and whatever it accepts must be consistent.
func FuzzParseArgs(f *testing.F) {
	for _, seed := range []string{
		"",
		"-l\x000-3",
		"--lcores=1,2@(3-5),(3-4)@(0,2),(0,5),6-7@0",
		"--lcores\x00(0-2)@(0,1)\x00--main-lcore\x002",
		"-a\x000000:03:00.1,rxq=4,representor=[0-3,7]\x00-a\x0004:00.0",
		"-b\x0003:00.0\x00--no-pci",
		"--vdev=net_pcap0,rx_pcap=in.pcap\x00--vdev\x00net_ring0",
		"-m512\x00--socket-mem=1,2",
		"--no-huge\x00--iova-mode\x00pa\x00--huge-dir\x00/x",
		"--file-prefix=..\x00--proc-type=auto\x00--log-level=debug\x00--\x00-p",
		"-h",
		"app\x00-l\x009",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, joined string) {
		args := strings.Split(joined, "\x00")
		o, rest, err := parseArgs(args, testEnv())
		if err != nil {
			if o.Lcores != nil || rest != nil {
				t.Fatalf("parseArgs(%q) failed (%v) but returned options or arguments", args, err)
			}
			return
		}
		if len(o.Lcores) == 0 {
			t.Fatalf("parseArgs(%q) accepted no lcores", args)
		}
		env := testEnv()
		for i, l := range o.Lcores {
			if l.ID < 0 || l.ID >= MaxLcores || (i > 0 && o.Lcores[i-1].ID >= l.ID) {
				t.Fatalf("parseArgs(%q): lcore IDs not unique, sorted and below %d: %+v", args, MaxLcores, o.Lcores)
			}
			if len(l.CPUs) == 0 || !slices.IsSorted(l.CPUs) || env.check(l.CPUs) != nil {
				t.Fatalf("parseArgs(%q): lcore %d has unusable CPUs %v", args, l.ID, l.CPUs)
			}
		}
		if !containsLcore(o.Lcores, o.MainLcore) {
			t.Fatalf("parseArgs(%q): main lcore %d is not among %+v", args, o.MainLcore, o.Lcores)
		}
		if checkFilePrefix(o.FilePrefix) != nil {
			t.Fatalf("parseArgs(%q): accepted file prefix %q", args, o.FilePrefix)
		}
		if o.MemLimit() < 0 || (o.MemMB != 0 && o.SocketMemMB != nil) {
			t.Fatalf("parseArgs(%q): memory %d MB / %v MB per node", args, o.MemMB, o.SocketMemMB)
		}
		if len(o.Allow) > 0 && (len(o.Block) > 0 || o.NoPCI) {
			t.Fatalf("parseArgs(%q): allow list together with block list or --no-pci", args)
		}
		if len(rest) > len(args) {
			t.Fatalf("parseArgs(%q): more application arguments (%d) than arguments", args, len(rest))
		}
	})
}
