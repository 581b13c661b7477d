package eal

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// testEnv has CPUs 0-7 online, of which 0-5 are in the affinity mask.
func testEnv() cpuEnv {
	var e cpuEnv
	for c := range 8 {
		e.online.Set(c)
		if c < 6 {
			e.allowed.Set(c)
		}
	}
	return e
}

func lc(id int, cpus ...int) Lcore { return Lcore{ID: id, CPUs: cpus} }

// defaults is what parseArgs returns under testEnv when nothing is given.
func defaults() Options {
	return Options{
		Lcores:     []Lcore{lc(0, 0), lc(1, 1), lc(2, 2), lc(3, 3), lc(4, 4), lc(5, 5)},
		MainLcore:  0,
		ProcType:   ProcPrimary,
		FilePrefix: "gopmd",
		LogLevel:   LogInfo,
	}
}

func pci(domain uint32, bus, dev, fn uint8) PCIAddr {
	return PCIAddr{Domain: domain, Bus: bus, Device: dev, Function: fn}
}

func TestParseArgsAcceptsEveryOption(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		want     func(o *Options) // applied to defaults()
		wantRest []string
	}{
		{name: "nothing gives the defaults", args: nil},
		{name: "-l attached", args: []string{"-l0-3"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(0, 0), lc(1, 1), lc(2, 2), lc(3, 3)}
		}},
		{name: "-l separate, ranges and singles", args: []string{"-l", "4,0-1,3"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(0, 0), lc(1, 1), lc(3, 3), lc(4, 4)}
		}},
		{name: "--lcores swaps lcores and CPUs", args: []string{"--lcores=0@1,1@0"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(0, 1), lc(1, 0)}
		}},
		{name: "--lcores group to group", args: []string{"--lcores", "(0-2)@(0,1)"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(0, 0, 1), lc(1, 0, 1), lc(2, 0, 1)}
		}},
		{name: "--lcores without @ runs each lcore on its own CPU", args: []string{"--lcores", "4,5"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(4, 4), lc(5, 5)}
			o.MainLcore = 4
		}},
		{name: "--lcores range without @ is one CPU each, group without @ shares the group",
			args: []string{"--lcores", "1,2@(3-5),(3-4)@(0,2),(0,5),6-7@0,10-11@(4,1-2)"},
			want: func(o *Options) {
				o.Lcores = []Lcore{lc(0, 0, 5), lc(1, 1), lc(2, 3, 4, 5), lc(3, 0, 2), lc(4, 0, 2), lc(5, 0, 5),
					lc(6, 0), lc(7, 0), lc(10, 1, 2, 4), lc(11, 1, 2, 4)}
			}},
		{name: "--lcores maps a high lcore ID", args: []string{"--lcores=127@5"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(127, 5)}
			o.MainLcore = 127
		}},
		{name: "--main-lcore", args: []string{"-l", "0-3", "--main-lcore", "2"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(0, 0), lc(1, 1), lc(2, 2), lc(3, 3)}
			o.MainLcore = 2
		}},
		{name: "--main-lcore before -l", args: []string{"--main-lcore=3", "-l3-4"}, want: func(o *Options) {
			o.Lcores = []Lcore{lc(3, 3), lc(4, 4)}
			o.MainLcore = 3
		}},
		{name: "--proc-type primary", args: []string{"--proc-type=primary"}},
		{name: "--proc-type secondary", args: []string{"--proc-type", "secondary"}, want: func(o *Options) { o.ProcType = ProcSecondary }},
		{name: "--proc-type auto", args: []string{"--proc-type=auto"}, want: func(o *Options) { o.ProcType = ProcAuto }},
		{name: "--file-prefix", args: []string{"--file-prefix", "app-1"}, want: func(o *Options) { o.FilePrefix = "app-1" }},
		{name: "--file-prefix of 32 characters", args: []string{"--file-prefix=" + strings.Repeat("p", 32)}, want: func(o *Options) {
			o.FilePrefix = strings.Repeat("p", 32)
		}},
		{name: "-m", args: []string{"-m", "512"}, want: func(o *Options) { o.MemMB = 512 }},
		{name: "-m attached", args: []string{"-m1024"}, want: func(o *Options) { o.MemMB = 1024 }},
		{name: "--socket-mem", args: []string{"--socket-mem=1024,0,512"}, want: func(o *Options) { o.SocketMemMB = []int64{1024, 0, 512} }},
		{name: "-a and --allow with device arguments", args: []string{"-a", "0000:03:00.1", "--allow=04:1F.7,rxq=4,flag,path=/a=b", "-a10000:00:02.0"},
			want: func(o *Options) {
				o.Allow = []Device{
					{Addr: pci(0, 3, 0, 1)},
					{Addr: pci(0, 4, 0x1f, 7), Args: []KeyValue{{"rxq", "4"}, {"flag", ""}, {"path", "/a=b"}}},
					{Addr: pci(0x10000, 0, 2, 0)},
				}
			}},
		{name: "-b and --block", args: []string{"-b", "0000:81:00.0", "--block", "82:00.1"}, want: func(o *Options) {
			o.Block = []PCIAddr{pci(0, 0x81, 0, 0), pci(0, 0x82, 0, 1)}
		}},
		{name: "--no-pci", args: []string{"--no-pci"}, want: func(o *Options) { o.NoPCI = true }},
		{name: "--vdev without and with arguments, brackets keep commas",
			args: []string{"--vdev", "net_ring0", "--vdev=net_pcap0,rx_pcap=in.pcap,tx_pcap=out.pcap", "--vdev", "net_x-1,representor=[0-3,7],k=[a,[b,c]]"},
			want: func(o *Options) {
				o.VDevs = []VDev{
					{Name: "net_ring0"},
					{Name: "net_pcap0", Args: []KeyValue{{"rx_pcap", "in.pcap"}, {"tx_pcap", "out.pcap"}}},
					{Name: "net_x-1", Args: []KeyValue{{"representor", "[0-3,7]"}, {"k", "[a,[b,c]]"}}},
				}
			}},
		{name: "--huge-dir", args: []string{"--huge-dir", "/dev/hugepages"}, want: func(o *Options) { o.HugeDir = "/dev/hugepages" }},
		{name: "--no-huge", args: []string{"--no-huge"}, want: func(o *Options) { o.NoHuge = true }},
		{name: "--no-huge with -m and --iova-mode va", args: []string{"--no-huge", "-m", "64", "--iova-mode=va"}, want: func(o *Options) {
			o.NoHuge, o.MemMB, o.IOVAMode = true, 64, IOVAVA
		}},
		{name: "--iova-mode pa", args: []string{"--iova-mode", "pa"}, want: func(o *Options) { o.IOVAMode = IOVAPA }},
		{name: "--log-level by name", args: []string{"--log-level", "debug"}, want: func(o *Options) { o.LogLevel = LogDebug }},
		{name: "--log-level error", args: []string{"--log-level=error"}, want: func(o *Options) { o.LogLevel = LogError }},
		{name: "--log-level warning", args: []string{"--log-level=warning"}, want: func(o *Options) { o.LogLevel = LogWarning }},
		{name: "--log-level by number", args: []string{"--log-level=1"}, want: func(o *Options) { o.LogLevel = LogEmergency }},
		{name: "application arguments after --", args: []string{"-l", "1", "--", "-p", "0x3", "--", "x"},
			want:     func(o *Options) { o.Lcores = []Lcore{lc(1, 1)}; o.MainLcore = 1 },
			wantRest: []string{"-p", "0x3", "--", "x"}},
		{name: "-- alone", args: []string{"--"}, wantRest: []string{}},
		{name: "without --, parsing stops at the first non-option", args: []string{"-m", "64", "input.pcap", "-l", "9"},
			want: func(o *Options) { o.MemMB = 64 }, wantRest: []string{"input.pcap", "-l", "9"}},
		{name: "a lone - is an argument", args: []string{"-", "x"}, wantRest: []string{"-", "x"}},
		{name: "everything at once", args: []string{
			"--lcores", "0@(0-1),1@2", "--main-lcore", "1", "--proc-type", "secondary", "--file-prefix", "pg",
			"--socket-mem", "256", "-a", "03:00.0", "--vdev", "net_null0", "--huge-dir=/mnt/huge", "--iova-mode", "va",
			"--log-level", "7", "--", "app"},
			want: func(o *Options) {
				*o = Options{
					Lcores: []Lcore{lc(0, 0, 1), lc(1, 2)}, MainLcore: 1, ProcType: ProcSecondary, FilePrefix: "pg",
					SocketMemMB: []int64{256}, Allow: []Device{{Addr: pci(0, 3, 0, 0)}}, VDevs: []VDev{{Name: "net_null0"}},
					HugeDir: "/mnt/huge", IOVAMode: IOVAVA, LogLevel: LogInfo,
				}
			},
			wantRest: []string{"app"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			want := defaults()
			if tc.want != nil {
				tc.want(&want)
			}
			wantRest := tc.wantRest
			if wantRest == nil {
				wantRest = []string{}
			}
			got, rest, err := parseArgs(tc.args, testEnv())
			if err != nil {
				t.Fatalf("parseArgs(%q): unexpected error: %v", tc.args, err)
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("parseArgs(%q) options:\n got  %+v\n want %+v", tc.args, got, want)
			}
			if !reflect.DeepEqual(rest, wantRest) {
				t.Errorf("parseArgs(%q) application args = %q, want %q", tc.args, rest, wantRest)
			}
		})
	}
}

func TestParseArgsRejectsBadInputNamingOptionValueAndRule(t *testing.T) {
	long := strings.Repeat("x", 33)
	tests := []struct {
		args []string
		want []string // all must appear in the error
	}{
		// option syntax
		{[]string{"--foo"}, []string{"unknown option --foo", `after "--"`}},
		{[]string{"--foo=1"}, []string{"unknown option --foo"}},
		{[]string{"-x"}, []string{"unknown option -x"}},
		{[]string{"-hv"}, []string{"unknown option -hv", "takes no value"}},
		{[]string{"--no-huge=1"}, []string{"--no-huge takes no value", `"1"`}},
		{[]string{"--lcores"}, []string{"--lcores needs a value"}},
		{[]string{"-l"}, []string{"-l needs a value"}},
		{[]string{"--file-prefix", "--no-huge"}, []string{"--file-prefix needs a value"}},
		{[]string{"-m", "1", "-m", "2"}, []string{"-m given twice"}},
		{[]string{"--file-prefix=a", "--file-prefix=b"}, []string{"--file-prefix given twice"}},
		{[]string{"--no-huge", "--no-huge"}, []string{"--no-huge given twice"}},

		// -l
		{[]string{"-l", ""}, []string{`-l ""`, "empty"}},
		{[]string{"-l", "0-"}, []string{`-l "0-"`, "lcore number should follow"}},
		{[]string{"-l", "a"}, []string{`-l "a"`, `unexpected 'a' at offset 0`}},
		{[]string{"-l", "3-1"}, []string{`-l "3-1"`, "runs backwards", "1-3"}},
		{[]string{"-l", "200"}, []string{`-l "200"`, "lcore 200 is out of range", "0 to 127"}},
		{[]string{"-l", "99999999999999999999999"}, []string{"out of range"}},
		{[]string{"-l", "0,0"}, []string{`-l "0,0"`, "lcore 0 is listed twice"}},
		{[]string{"-l", "0-2,1"}, []string{"lcore 1 is listed twice"}},
		{[]string{"-l", "(0,1)"}, []string{`-l "(0,1)"`, "--lcores"}},
		{[]string{"-l", "0@1"}, []string{`-l "0@1"`, "--lcores"}},
		{[]string{"-l", "0,,1"}, []string{`-l "0,,1"`, "unexpected ','"}},
		{[]string{"-l", "0;1"}, []string{`-l "0;1"`, "unexpected ';'", "separated by ','"}},
		{[]string{"-l", "7"}, []string{`-l "7"`, "lcore 7", "CPU 7 is not in this process's CPU affinity mask", "allowed CPUs: 0-5"}},
		{[]string{"-l", "9"}, []string{`-l "9"`, "CPU 9 is not online", "online CPUs: 0-7"}},

		// --lcores
		{[]string{"--lcores", "(0,1"}, []string{`--lcores "(0,1"`, "no ')'"}},
		{[]string{"--lcores", "()"}, []string{`--lcores "()"`, "unexpected ')'"}},
		{[]string{"--lcores", "(0;1)"}, []string{"unexpected ';'", "want ',' or ')'"}},
		{[]string{"--lcores", "0@"}, []string{`--lcores "0@"`, "CPU number should follow"}},
		{[]string{"--lcores", "0@1024"}, []string{"CPU 1024 is out of range", "0 to 1023"}},
		{[]string{"--lcores", "128@0"}, []string{"lcore 128 is out of range", "0 to 127"}},
		{[]string{"--lcores", "0@6"}, []string{`--lcores "0@6"`, "lcore 0", "CPU 6 is not in this process's CPU affinity mask"}},
		{[]string{"--lcores", "0@(0,9)"}, []string{"lcore 0", "CPU 9 is not online"}},
		{[]string{"--lcores", "1,1@2"}, []string{"lcore 1 is listed twice"}},
		{[]string{"--lcores", "0@1@2"}, []string{`unexpected '@' at offset 3`}},
		{[]string{"--lcores", "(0-1)(2)"}, []string{`unexpected '('`}},
		{[]string{"--lcores", "(2-0)@1"}, []string{"lcore range 2-0 runs backwards"}},
		{[]string{"--lcores", "0@(3-1)"}, []string{"CPU range 3-1 runs backwards"}},
		{[]string{"-l", "0", "--lcores", "1"}, []string{"-l and --lcores cannot be used together"}},

		// --main-lcore
		{[]string{"--main-lcore", "x"}, []string{`--main-lcore "x"`, "0 to 127"}},
		{[]string{"--main-lcore=-1"}, []string{`--main-lcore "-1"`, "0 to 127"}},
		{[]string{"--main-lcore", "200"}, []string{`--main-lcore "200"`}},
		{[]string{"-l", "0-3", "--main-lcore", "5"}, []string{`--main-lcore "5"`, "lcore 5 is not one of the lcores to run (0-3)"}},

		// --proc-type, --file-prefix
		{[]string{"--proc-type", "prim"}, []string{`--proc-type "prim"`, "primary, secondary or auto"}},
		{[]string{"--file-prefix="}, []string{`--file-prefix ""`, "1 to 32 characters"}},
		{[]string{"--file-prefix", "a/b"}, []string{`--file-prefix "a/b"`, "'/'"}},
		{[]string{"--file-prefix", long}, []string{"--file-prefix", "33 characters, want at most 32"}},
		{[]string{"--file-prefix", ".."}, []string{`--file-prefix ".."`, "cannot be"}},
		{[]string{"--file-prefix", "."}, []string{`--file-prefix "."`}},

		// memory
		{[]string{"-m", "0"}, []string{`-m "0"`, "1 to"}},
		{[]string{"-m", "abc"}, []string{`-m "abc"`, "whole number of megabytes"}},
		{[]string{"-m-5"}, []string{`-m "-5"`}},
		{[]string{"-m", "+5"}, []string{`-m "+5"`}},
		{[]string{"-m", "99999999999999999999"}, []string{`-m "99999999999999999999"`}},
		{[]string{"-m", "8796093022208"}, []string{`-m "8796093022208"`, "8796093022207"}},
		{[]string{"--socket-mem="}, []string{`--socket-mem ""`, `node 0's ""`}},
		{[]string{"--socket-mem", "1,,2"}, []string{`--socket-mem "1,,2"`, `node 1's ""`}},
		{[]string{"--socket-mem", "1,a"}, []string{`node 1's "a"`, "whole numbers separated by commas"}},
		{[]string{"--socket-mem", "0,0"}, []string{`--socket-mem "0,0"`, "no memory"}},
		{[]string{"--socket-mem", strings.Repeat("1,", 32) + "1"}, []string{"33 NUMA nodes, want at most 32"}},
		{[]string{"--socket-mem", "8796093022207,1"}, []string{`node 1's "1"`, "in total"}},
		{[]string{"-m", "1", "--socket-mem", "1"}, []string{"-m and --socket-mem cannot be used together"}},
		{[]string{"--no-huge", "--socket-mem", "1"}, []string{"--socket-mem", "--no-huge"}},

		// devices
		{[]string{"-a", "0000:03:00"}, []string{`-a "0000:03:00"`, "no '.'", "DDDD:BB:DD.F or BB:DD.F"}},
		{[]string{"-a", "03:00.8"}, []string{`-a "03:00.8"`, "function 8, above 7"}},
		{[]string{"-a", "03:20.0"}, []string{"device 20, above 1f"}},
		{[]string{"-a", "000:03:00.0"}, []string{"domain of 3 digits, not 4 to 8"}},
		{[]string{"-a", "zz:00.0"}, []string{`"zz:00.0"`, "not hexadecimal"}},
		{[]string{"-a", "3:0.0"}, []string{"2 digits of bus"}},
		{[]string{"-a", "0:0:03:00.0"}, []string{"3 ':', not 1 or 2"}},
		{[]string{"-a", "+3:00.0"}, []string{"not hexadecimal"}},
		{[]string{"-a", "0000:03:00.0,"}, []string{`-a "0000:03:00.0,"`, `argument ""`, "key=value"}},
		{[]string{"--allow", "0000:03:00.0,=x"}, []string{`--allow "0000:03:00.0,=x"`, `argument "=x"`}},
		{[]string{"-a", "03:00.0,a=[1"}, []string{"1 '[' not closed"}},
		{[]string{"-a", "03:00.0,a=1]"}, []string{"']' at offset 3 closes no '['"}},
		{[]string{"-a", "03:00.0", "-a", "0000:03:00.0,x=1"}, []string{"device 0000:03:00.0 is already allowed"}},
		{[]string{"-b", "0000:03:00.0,x=1"}, []string{`-b "0000:03:00.0,x=1"`, "take no arguments"}},
		{[]string{"-b", "03:00.0", "--block", "03:00.0"}, []string{`--block "03:00.0"`, "already blocked"}},
		{[]string{"-a", "03:00.0", "--block", "04:00.0"}, []string{"-a and --block cannot be used together"}},
		{[]string{"--no-pci", "-a", "03:00.0"}, []string{"--no-pci and -a cannot be used together"}},
		{[]string{"--no-pci", "-b", "03:00.0"}, []string{"--no-pci and -b cannot be used together"}},
		{[]string{"--vdev="}, []string{`--vdev ""`, "device name"}},
		{[]string{"--vdev", ",x=1"}, []string{`--vdev ",x=1"`, `device name ""`}},
		{[]string{"--vdev", "net ring0"}, []string{`device name "net ring0"`, "letters, digits"}},
		{[]string{"--vdev", strings.Repeat("n", 64)}, []string{"1 to 63"}},
		{[]string{"--vdev", "net_ring0,"}, []string{`--vdev "net_ring0,"`, `argument ""`}},
		{[]string{"--vdev", "net_ring0,a b=1"}, []string{`argument "a b=1"`}},
		{[]string{"--vdev", "net_ring0", "--vdev", "net_ring0,x=1"}, []string{"net_ring0 was already added"}},

		// hugepages, IOVA, log level, help
		{[]string{"--huge-dir", "relative/dir"}, []string{`--huge-dir "relative/dir"`, "absolute path"}},
		{[]string{"--huge-dir="}, []string{`--huge-dir ""`}},
		{[]string{"--no-huge", "--huge-dir", "/dev/hugepages"}, []string{`--huge-dir "/dev/hugepages"`, "--no-huge"}},
		{[]string{"--iova-mode", "VA"}, []string{`--iova-mode "VA"`, "va or pa"}},
		{[]string{"--no-huge", "--iova-mode", "pa"}, []string{"--iova-mode pa", "--no-huge"}},
		{[]string{"--log-level", "verbose"}, []string{`--log-level "verbose"`, "debug", "1 (emergency) to 8 (debug)"}},
		{[]string{"--log-level", "0"}, []string{`--log-level "0"`}},
		{[]string{"--log-level", "9"}, []string{`--log-level "9"`}},
		{[]string{"--log-level", "lib.eal:debug"}, []string{`"lib.eal:debug"`, "per component"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			_, _, err := parseArgs(tc.args, testEnv())
			if err == nil {
				t.Fatalf("parseArgs(%q): got no error, want one mentioning %q", tc.args, tc.want)
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("parseArgs(%q) error %q does not mention %q", tc.args, err, w)
				}
			}
			if !strings.HasPrefix(err.Error(), "eal: ") {
				t.Errorf("error %q does not start with the package name", err)
			}
		})
	}
}

func TestParseArgsReturnsErrHelpForHelp(t *testing.T) {
	for _, args := range [][]string{{"-h"}, {"--help"}, {"-l", "0", "--help", "--", "x"}} {
		if _, _, err := parseArgs(args, testEnv()); !errors.Is(err, ErrHelp) {
			t.Errorf("parseArgs(%q) error = %v, want ErrHelp", args, err)
		}
	}
}

func TestParseArgsWithoutUsableLowCPUsAsksForLcores(t *testing.T) {
	var env cpuEnv
	env.online.Set(200)
	env.allowed.Set(200)
	_, _, err := parseArgs(nil, env)
	if err == nil || !strings.Contains(err.Error(), "--lcores") || !strings.Contains(err.Error(), "0@200") {
		t.Fatalf("parseArgs with only CPU 200 usable: error = %v, want one suggesting --lcores 0@200", err)
	}
	o, _, err := parseArgs([]string{"--lcores", "0@200"}, env)
	if err != nil || !reflect.DeepEqual(o.Lcores, []Lcore{lc(0, 200)}) {
		t.Fatalf("--lcores 0@200 with CPU 200 usable: got %+v, %v; want lcore 0 on CPU 200", o.Lcores, err)
	}
}

func TestMemLimitIsBytesFromMOrSocketMem(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want int64
	}{
		{nil, 0},
		{[]string{"-m", "512"}, 512 << 20},
		{[]string{"--socket-mem", "1024,0,512"}, 1536 << 20},
		{[]string{"-m", "8796093022207"}, 8796093022207 << 20},
	} {
		o, _, err := parseArgs(tc.args, testEnv())
		if err != nil {
			t.Fatalf("parseArgs(%q): %v", tc.args, err)
		}
		if got := o.MemLimit(); got != tc.want {
			t.Errorf("parseArgs(%q).MemLimit() = %d, want %d", tc.args, got, tc.want)
		}
	}
}

func TestParseArgsDefaultsToEveryUsableCPUOfThisMachine(t *testing.T) {
	var allowed unix.CPUSet
	if err := unix.SchedGetaffinity(0, &allowed); err != nil {
		t.Fatalf("sched_getaffinity: %v", err)
	}
	o, rest, err := ParseArgs([]string{"--", "app"})
	if err != nil {
		t.Fatalf("ParseArgs: %v", err)
	}
	var want []Lcore
	for c := 0; c < MaxLcores; c++ {
		if allowed.IsSet(c) {
			want = append(want, lc(c, c))
		}
	}
	if !reflect.DeepEqual(o.Lcores, want) {
		t.Errorf("default lcores = %+v, want one per allowed CPU: %+v", o.Lcores, want)
	}
	if o.MainLcore != want[0].ID {
		t.Errorf("default main lcore = %d, want the lowest, %d", o.MainLcore, want[0].ID)
	}
	if !reflect.DeepEqual(rest, []string{"app"}) {
		t.Errorf("application args = %q, want [app]", rest)
	}
}

func TestParseArgsRejectsACPUThisMachineLacks(t *testing.T) {
	_, _, err := ParseArgs([]string{"--lcores", "0@1023"})
	if err == nil || !strings.Contains(err.Error(), "CPU 1023") {
		t.Fatalf("ParseArgs(--lcores 0@1023) error = %v, want one naming CPU 1023", err)
	}
}

func TestPCIAddrStringIsTheSysfsName(t *testing.T) {
	a, err := ParsePCIAddr("0A:1f.7")
	if err != nil {
		t.Fatal(err)
	}
	if got := a.String(); got != "0000:0a:1f.7" {
		t.Fatalf("String() = %q, want %q", got, "0000:0a:1f.7")
	}
}

func TestEnumStrings(t *testing.T) {
	for _, tc := range []struct{ got, want string }{
		{ProcPrimary.String(), "primary"}, {ProcSecondary.String(), "secondary"}, {ProcAuto.String(), "auto"},
		{ProcType(9).String(), "ProcType(9)"},
		{IOVADefault.String(), "default"}, {IOVAVA.String(), "va"}, {IOVAPA.String(), "pa"}, {IOVAMode(7).String(), "IOVAMode(7)"},
		{LogEmergency.String(), "emergency"}, {LogDebug.String(), "debug"}, {LogLevel(0).String(), "LogLevel(0)"},
	} {
		if tc.got != tc.want {
			t.Errorf("String() = %q, want %q", tc.got, tc.want)
		}
	}
}

func TestParseKernelCPUList(t *testing.T) {
	set, ok := parseKernelCPUList("0-2,5,7-8")
	if !ok {
		t.Fatal("parseKernelCPUList(0-2,5,7-8) failed")
	}
	if got := formatSet(&set); got != "0-2,5,7-8" {
		t.Fatalf("round trip = %q, want 0-2,5,7-8", got)
	}
	for _, bad := range []string{"", "a", "3-1", "0-2000", "-1"} {
		if _, ok := parseKernelCPUList(bad); ok {
			t.Errorf("parseKernelCPUList(%q) succeeded, want failure", bad)
		}
	}
}
