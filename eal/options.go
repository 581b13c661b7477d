package eal

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"github.com/gopmd/gopmd/timer/clock"
)

// MaxLcores is the number of lcore IDs: IDs run from 0 to MaxLcores-1
// (DPDK's RTE_MAX_LCORE).
const MaxLcores = 128

// MaxSockets is the number of NUMA nodes --socket-mem can name
// (DPDK's RTE_MAX_NUMA_NODES).
const MaxSockets = 32

// maxCPUs bounds CPU numbers to what the affinity system calls take
// (CPU_SETSIZE).
const maxCPUs = 1024

// ProcType says whether a process creates the shared state or joins it.
type ProcType int

const (
	ProcPrimary   ProcType = iota // creates the group's shared memory (default)
	ProcSecondary                 // attaches to a running primary's memory
	ProcAuto                      // secondary if a primary is running, else primary
)

func (p ProcType) String() string {
	switch p {
	case ProcPrimary:
		return "primary"
	case ProcSecondary:
		return "secondary"
	case ProcAuto:
		return "auto"
	}
	return fmt.Sprintf("ProcType(%d)", int(p))
}

// IOVAMode is the kind of address devices are given for DMA.
type IOVAMode int

const (
	IOVADefault IOVAMode = iota // not chosen on the command line
	IOVAVA                      // virtual addresses (needs an IOMMU, e.g. vfio-pci)
	IOVAPA                      // physical addresses
)

func (m IOVAMode) String() string {
	switch m {
	case IOVADefault:
		return "default"
	case IOVAVA:
		return "va"
	case IOVAPA:
		return "pa"
	}
	return fmt.Sprintf("IOVAMode(%d)", int(m))
}

// LogLevel numbers severities like syslog and DPDK's RTE_LOG_*: 1 is the
// most severe, 8 the most verbose.
type LogLevel int

const (
	LogEmergency LogLevel = iota + 1
	LogAlert
	LogCritical
	LogError
	LogWarning
	LogNotice
	LogInfo
	LogDebug
)

var logLevelNames = [...]string{"", "emergency", "alert", "critical", "error", "warning", "notice", "info", "debug"}

func (l LogLevel) String() string {
	if l >= LogEmergency && l <= LogDebug {
		return logLevelNames[l]
	}
	return fmt.Sprintf("LogLevel(%d)", int(l))
}

// Lcore is a logical core: the ID code refers to it by and the CPUs its
// thread may run on (sorted, without duplicates).
type Lcore struct {
	ID   int
	CPUs []int
}

// KeyValue is one key=value device argument. A key given without "=" has
// an empty Value.
type KeyValue struct {
	Key, Value string
}

// Device is a PCI device from -a/--allow with its device arguments in the
// order given.
type Device struct {
	Addr PCIAddr
	Args []KeyValue
}

// VDev is a virtual device from --vdev: a driver name with an instance
// number (net_ring0) and its arguments in the order given.
type VDev struct {
	Name string
	Args []KeyValue
}

// Options is what the EAL command line asks for. The zero value is not
// meaningful; ParseArgs fills in every default.
type Options struct {
	// Lcores are sorted by ID. Default: one lcore per CPU that is online and
	// in the affinity mask, with the CPU's number as its ID (CPUs numbered
	// MaxLcores and above get none; name them with --lcores).
	Lcores    []Lcore
	MainLcore int // --main-lcore; default: the lowest lcore ID

	ProcType   ProcType // --proc-type; default ProcPrimary
	FilePrefix string   // --file-prefix; default "gopmd"

	MemMB       int64   // -m: megabytes for the group; 0 if not given
	SocketMemMB []int64 // --socket-mem: megabytes per NUMA node, node 0 first

	Allow []Device  // -a/--allow: probe only these PCI devices
	Block []PCIAddr // -b/--block: never probe these
	NoPCI bool      // --no-pci: probe no PCI device at all
	VDevs []VDev    // --vdev, in the order given

	HugeDir  string   // --huge-dir: hugetlbfs mount point; "" = find one
	NoHuge   bool     // --no-huge: ordinary memory, no DMA
	IOVAMode IOVAMode // --iova-mode; IOVADefault if not given

	LogLevel LogLevel // --log-level; default LogInfo

	// Timer is the clock to measure time with (--timer): clock.ModeTSC
	// (default), clock.ModeAuto (the HPET if one of its comparators is
	// free, else the TSC) or clock.ModeHPET (the HPET or fail).
	Timer clock.Mode
}

// MemLimit returns the bytes the group may reserve according to -m or the
// sum of --socket-mem, or 0 if neither was given.
func (o Options) MemLimit() int64 {
	mb := o.MemMB
	for _, n := range o.SocketMemMB {
		mb += n
	}
	return mb << 20
}

// ErrHelp is returned by ParseArgs for -h and --help; print Usage.
var ErrHelp = errors.New("eal: help requested")

// Usage describes the options ParseArgs accepts.
const Usage = `EAL options (application options follow "--"):
  -l CORELIST             lcores to run, each on the CPU of the same number: 0-3,5
  --lcores MAP            lcores mapped to CPU sets: LCORES[@CPUS][,...], where each
                          side is N, N-M or a group (N,N-M,...); 1,2@(4-5),(6,7)@0
                          lcores of a group without @ share the group as CPU set
  --main-lcore ID         lcore whose function runs on the calling goroutine
                          (default: the lowest lcore)
  --proc-type TYPE        primary (default), secondary or auto
  --file-prefix NAME      name of the shared-memory group (default "gopmd")
  -m MB                   memory for the group in megabytes
  --socket-mem MB,...     memory per NUMA node in megabytes (not with -m)
  -a, --allow ADDR[,K=V...] probe only this PCI device (repeatable)
  -b, --block ADDR        never probe this PCI device (repeatable; not with -a)
  --no-pci                probe no PCI device
  --vdev NAME[,K=V...]    add a virtual device (repeatable)
  --huge-dir DIR          hugetlbfs mount point to use
  --no-huge               use ordinary memory instead of hugepages (no DMA)
  --iova-mode va|pa       addresses given to devices for DMA
  --log-level LEVEL       emergency, alert, critical, error, warning, notice,
                          info (default) or debug, or 1-8
  --timer auto|tsc|hpet   clock to measure time with: tsc (default); hpet, which
                          needs a free HPET comparator; auto, the HPET if one is
                          free, else the TSC
  -h, --help              show this text
PCI addresses are DDDD:BB:DD.F or BB:DD.F (domain 0000).
`

// ParseArgs parses the EAL options at the start of args, which excludes the
// program name (pass os.Args[1:]), and returns them with the application's
// arguments.
//
// Like rte_eal_init, it reads options until "--" and hands the application
// everything after it. Without "--" it stops at the first argument that
// does not start with "-" and hands the application that argument and the
// rest. An unknown option is an error either way: application options must
// follow "--".
//
// Long options take their value as --opt=value or --opt value, short ones as
// -lvalue or -l value. Options other than -a, -b and --vdev may be given
// once. For -h or --help ParseArgs returns ErrHelp.
//
// Each CPU named must be online and in the process's affinity mask
// (sched_getaffinity); that is read when ParseArgs runs.
func ParseArgs(args []string) (Options, []string, error) {
	env, err := currentCPUs()
	if err != nil {
		return Options{}, nil, err
	}
	return parseArgs(args, env)
}

type optKind int

const (
	takesValue optKind = iota
	isFlag
)

type optSpec struct {
	name      string // as the user writes it, for messages: "-l", "--lcores"
	kind      optKind
	repeat    bool
	canonical string // key for the once-only check and the handler
}

var longOpts = map[string]optSpec{
	"lcores":      {name: "--lcores", canonical: "lcores"},
	"main-lcore":  {name: "--main-lcore", canonical: "main-lcore"},
	"proc-type":   {name: "--proc-type", canonical: "proc-type"},
	"file-prefix": {name: "--file-prefix", canonical: "file-prefix"},
	"socket-mem":  {name: "--socket-mem", canonical: "socket-mem"},
	"allow":       {name: "--allow", canonical: "allow", repeat: true},
	"block":       {name: "--block", canonical: "block", repeat: true},
	"vdev":        {name: "--vdev", canonical: "vdev", repeat: true},
	"huge-dir":    {name: "--huge-dir", canonical: "huge-dir"},
	"iova-mode":   {name: "--iova-mode", canonical: "iova-mode"},
	"log-level":   {name: "--log-level", canonical: "log-level"},
	"timer":       {name: "--timer", canonical: "timer"},
	"no-huge":     {name: "--no-huge", canonical: "no-huge", kind: isFlag},
	"no-pci":      {name: "--no-pci", canonical: "no-pci", kind: isFlag},
	"help":        {name: "--help", canonical: "help", kind: isFlag},
}

var shortOpts = map[byte]optSpec{
	'l': {name: "-l", canonical: "l"},
	'm': {name: "-m", canonical: "m"},
	'a': {name: "-a", canonical: "allow", repeat: true},
	'b': {name: "-b", canonical: "block", repeat: true},
	'h': {name: "-h", canonical: "help", kind: isFlag},
}

// parser collects options; seen maps each option's canonical key to the
// spelling it was first given with.
type parser struct {
	env  cpuEnv
	opts Options
	seen map[string]string

	corelist, lcoremap, mainLcore string
}

func parseArgs(args []string, env cpuEnv) (Options, []string, error) {
	p := parser{env: env, seen: map[string]string{}}
	p.opts.FilePrefix = "gopmd"
	p.opts.LogLevel = LogInfo
	rest := []string{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			rest = args[i+1:]
			break
		}
		if !strings.HasPrefix(arg, "-") || arg == "-" {
			rest = args[i:]
			break
		}
		spec, value, hasValue, err := lookupOpt(arg)
		if err != nil {
			return Options{}, nil, err
		}
		if spec.kind == isFlag && hasValue {
			return Options{}, nil, fmt.Errorf("eal: %s takes no value, got %q", spec.name, value)
		}
		if spec.kind == takesValue && !hasValue {
			if i+1 == len(args) || (strings.HasPrefix(args[i+1], "-") && args[i+1] != "-") {
				return Options{}, nil, fmt.Errorf("eal: %s needs a value", spec.name)
			}
			i++
			value = args[i]
		}
		if first, dup := p.seen[spec.canonical]; dup && !spec.repeat {
			if first == spec.name {
				return Options{}, nil, fmt.Errorf("eal: %s given twice; it may be given once", spec.name)
			}
			return Options{}, nil, fmt.Errorf("eal: %s given twice (also as %s); it may be given once", spec.name, first)
		}
		p.seen[spec.canonical] = spec.name
		if err := p.apply(spec, value); err != nil {
			return Options{}, nil, err
		}
	}
	if _, ok := p.seen["help"]; ok {
		return Options{}, nil, ErrHelp
	}
	if err := p.finish(); err != nil {
		return Options{}, nil, err
	}
	return p.opts, rest, nil
}

// lookupOpt splits "--name=value", "--name", "-xvalue" or "-x".
func lookupOpt(arg string) (spec optSpec, value string, hasValue bool, err error) {
	if long, ok := strings.CutPrefix(arg, "--"); ok {
		name, value, hasValue := strings.Cut(long, "=")
		spec, ok := longOpts[name]
		if !ok {
			return optSpec{}, "", false, fmt.Errorf("eal: unknown option --%s (application options go after \"--\"; see eal.Usage)", name)
		}
		return spec, value, hasValue, nil
	}
	spec, ok := shortOpts[arg[1]]
	if !ok {
		return optSpec{}, "", false, fmt.Errorf("eal: unknown option %s (application options go after \"--\"; see eal.Usage)", arg)
	}
	if len(arg) > 2 {
		if spec.kind == isFlag {
			return optSpec{}, "", false, fmt.Errorf("eal: unknown option %s: %s takes no value and short options do not combine", arg, spec.name)
		}
		return spec, arg[2:], true, nil
	}
	return spec, "", false, nil
}

func (p *parser) apply(spec optSpec, v string) error {
	o := &p.opts
	switch spec.canonical {
	case "l":
		p.corelist = v
	case "lcores":
		p.lcoremap = v
	case "main-lcore":
		p.mainLcore = v
	case "proc-type":
		switch v {
		case "primary":
			o.ProcType = ProcPrimary
		case "secondary":
			o.ProcType = ProcSecondary
		case "auto":
			o.ProcType = ProcAuto
		default:
			return fmt.Errorf("eal: --proc-type %q: want primary, secondary or auto", v)
		}
	case "file-prefix":
		if err := checkFilePrefix(v); err != nil {
			return err
		}
		o.FilePrefix = v
	case "m":
		mb, err := parseMB(v)
		if err != nil || mb == 0 {
			return fmt.Errorf("eal: -m %q: want a whole number of megabytes from 1 to %d", v, maxMB)
		}
		o.MemMB = mb
	case "socket-mem":
		mem, err := parseSocketMem(v)
		if err != nil {
			return err
		}
		o.SocketMemMB = mem
	case "allow":
		d, err := parseAllow(spec.name, v)
		if err != nil {
			return err
		}
		for _, prev := range o.Allow {
			if prev.Addr == d.Addr {
				return fmt.Errorf("eal: %s %q: device %s is already allowed", spec.name, v, d.Addr)
			}
		}
		o.Allow = append(o.Allow, d)
	case "block":
		a, err := ParsePCIAddr(v)
		if err != nil {
			return fmt.Errorf("eal: %s %q: %w (devices to block take no arguments)", spec.name, v, err)
		}
		for _, prev := range o.Block {
			if prev == a {
				return fmt.Errorf("eal: %s %q: device %s is already blocked", spec.name, v, a)
			}
		}
		o.Block = append(o.Block, a)
	case "vdev":
		d, err := parseVDev(v)
		if err != nil {
			return err
		}
		for _, prev := range o.VDevs {
			if prev.Name == d.Name {
				return fmt.Errorf("eal: --vdev %q: a device named %s was already added", v, d.Name)
			}
		}
		o.VDevs = append(o.VDevs, d)
	case "huge-dir":
		if !strings.HasPrefix(v, "/") || strings.IndexByte(v, 0) >= 0 {
			return fmt.Errorf("eal: --huge-dir %q: want the absolute path of a hugetlbfs mount point", v)
		}
		o.HugeDir = v
	case "no-huge":
		o.NoHuge = true
	case "no-pci":
		o.NoPCI = true
	case "iova-mode":
		switch v {
		case "va":
			o.IOVAMode = IOVAVA
		case "pa":
			o.IOVAMode = IOVAPA
		default:
			return fmt.Errorf("eal: --iova-mode %q: want va or pa", v)
		}
	case "log-level":
		l, err := parseLogLevel(v)
		if err != nil {
			return err
		}
		o.LogLevel = l
	case "timer":
		m, err := clock.ParseMode(v)
		if err != nil {
			return fmt.Errorf("eal: --timer %q: want auto, tsc or hpet", v)
		}
		o.Timer = m
	case "help":
	default:
		return fmt.Errorf("eal: internal error: option %s has no handler", spec.name)
	}
	return nil
}

// finish checks combinations and settles the lcores, once every option is in.
func (p *parser) finish() error {
	o := &p.opts
	conflict := func(a, b string) error {
		return fmt.Errorf("eal: %s and %s cannot be used together", p.seen[a], p.seen[b])
	}
	has := func(key string) bool { _, ok := p.seen[key]; return ok }
	switch {
	case has("l") && has("lcores"):
		return conflict("l", "lcores")
	case has("m") && has("socket-mem"):
		return conflict("m", "socket-mem")
	case has("allow") && has("block"):
		return conflict("allow", "block")
	case has("no-pci") && has("allow"):
		return conflict("no-pci", "allow")
	case has("no-pci") && has("block"):
		return conflict("no-pci", "block")
	case has("no-huge") && has("socket-mem"):
		return fmt.Errorf("eal: --socket-mem places hugepages on NUMA nodes; --no-huge uses none")
	case has("no-huge") && has("huge-dir"):
		return fmt.Errorf("eal: --huge-dir %q names hugepages to use; --no-huge uses none", o.HugeDir)
	case has("no-huge") && o.IOVAMode == IOVAPA:
		return fmt.Errorf("eal: --iova-mode pa needs hugepages, whose physical addresses stay put; --no-huge memory has none to give devices")
	}

	var err error
	switch {
	case has("l"):
		o.Lcores, err = parseLcores("-l", p.corelist, false)
	case has("lcores"):
		o.Lcores, err = parseLcores("--lcores", p.lcoremap, true)
	default:
		o.Lcores, err = p.env.defaultLcores()
	}
	if err != nil {
		return err
	}
	if has("l") || has("lcores") {
		opt, val := "-l", p.corelist
		if has("lcores") {
			opt, val = "--lcores", p.lcoremap
		}
		for _, lc := range o.Lcores {
			if err := p.env.check(lc.CPUs); err != nil {
				return fmt.Errorf("eal: %s %q: lcore %d: %w", opt, val, lc.ID, err)
			}
		}
	}

	o.MainLcore = o.Lcores[0].ID
	if has("main-lcore") {
		id, err := strconv.Atoi(p.mainLcore)
		if err != nil || id < 0 || id >= MaxLcores {
			return fmt.Errorf("eal: --main-lcore %q: want an lcore ID from 0 to %d", p.mainLcore, MaxLcores-1)
		}
		if !containsLcore(o.Lcores, id) {
			return fmt.Errorf("eal: --main-lcore %q: lcore %d is not one of the lcores to run (%s)", p.mainLcore, id, lcoreIDs(o.Lcores))
		}
		o.MainLcore = id
	}
	return nil
}

func containsLcore(lcores []Lcore, id int) bool {
	for _, lc := range lcores {
		if lc.ID == id {
			return true
		}
	}
	return false
}

func lcoreIDs(lcores []Lcore) string {
	ids := make([]int, len(lcores))
	for i, lc := range lcores {
		ids[i] = lc.ID
	}
	return formatList(ids)
}

const maxFilePrefix = 32

func checkFilePrefix(v string) error {
	switch {
	case v == "":
		return fmt.Errorf("eal: --file-prefix %q: want a name of 1 to %d characters", v, maxFilePrefix)
	case len(v) > maxFilePrefix:
		return fmt.Errorf("eal: --file-prefix %q: %d characters, want at most %d", v, len(v), maxFilePrefix)
	case strings.ContainsAny(v, "/\x00"):
		return fmt.Errorf("eal: --file-prefix %q: it names files, so it cannot contain '/' or NUL", v)
	case v == "." || v == "..":
		return fmt.Errorf("eal: --file-prefix %q: it names a directory, so it cannot be \".\" or \"..\"", v)
	}
	return nil
}

// maxMB keeps megabytes << 20 within int64.
const maxMB = math.MaxInt64 >> 20

func parseMB(v string) (int64, error) {
	if v == "" || strings.TrimLeft(v, "0123456789") != "" {
		return 0, errors.New("not a whole number")
	}
	mb, err := strconv.ParseInt(v, 10, 64)
	if err != nil || mb > maxMB {
		return 0, errors.New("too large")
	}
	return mb, nil
}

func parseSocketMem(v string) ([]int64, error) {
	fields := strings.Split(v, ",")
	if len(fields) > MaxSockets {
		return nil, fmt.Errorf("eal: --socket-mem %q: %d NUMA nodes, want at most %d", v, len(fields), MaxSockets)
	}
	mem := make([]int64, len(fields))
	var total int64
	for i, f := range fields {
		mb, err := parseMB(f)
		if err != nil || mb > maxMB-total {
			return nil, fmt.Errorf("eal: --socket-mem %q: node %d's %q: want megabytes per NUMA node as whole numbers separated by commas, at most %d in total", v, i, f, maxMB)
		}
		mem[i] = mb
		total += mb
	}
	if total == 0 {
		return nil, fmt.Errorf("eal: --socket-mem %q: asks for no memory at all; give at least one node a number of megabytes", v)
	}
	return mem, nil
}

func parseLogLevel(v string) (LogLevel, error) {
	for l := LogEmergency; l <= LogDebug; l++ {
		if v == logLevelNames[l] {
			return l, nil
		}
	}
	if n, err := strconv.Atoi(v); err == nil && n >= int(LogEmergency) && n <= int(LogDebug) {
		return LogLevel(n), nil
	}
	return 0, fmt.Errorf("eal: --log-level %q: want emergency, alert, critical, error, warning, notice, info or debug, or a number from 1 (emergency) to 8 (debug); levels per component are not supported", v)
}
