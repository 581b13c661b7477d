package eal

import (
	"errors"
	"log/slog"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/mp"
	"github.com/gopmd/gopmd/timer/clock"
)

// Env is a started gopmd process: its options, its membership of the group
// (shared memory, process table), its clock and its lcores.
type Env struct {
	Options  Options
	Proc     *mp.Process
	Mem      *hugemem.Memory
	Launcher *Launcher
	// Clock is what the process measures time with, chosen by --timer
	// under the group's rule for HPET comparators (see package clock).
	Clock *clock.Clock

	releaseClock func() error
}

// Init is what a gopmd program calls first, like rte_eal_init: it parses the
// EAL options in args (os.Args[1:]), sets the log level, joins or creates
// the group named by --file-prefix as --proc-type says, selects the clock
// as --timer says, and starts the worker lcores. It returns the
// application's own arguments. Close undoes it.
func Init(args []string) (*Env, []string, error) {
	o, rest, err := ParseArgs(args)
	if err != nil {
		return nil, nil, err
	}
	e, err := Start(o)
	return e, rest, err
}

// Start is Init for options already parsed.
func Start(o Options) (*Env, error) {
	slog.SetLogLoggerLevel(o.LogLevel.slogLevel())
	cfg := mp.Config{Memory: o.MemOptions()}
	switch o.ProcType {
	case ProcPrimary:
		cfg.Type = mp.Primary
	case ProcSecondary:
		cfg.Type = mp.Secondary
	case ProcAuto:
		cfg.Type = mp.Auto
	}
	for _, lc := range o.Lcores {
		cfg.Lcores = append(cfg.Lcores, mp.Lcore{ID: lc.ID, CPUs: lc.CPUs})
	}
	proc, err := mp.Start(cfg)
	if err != nil {
		return nil, err
	}
	clk, release, err := clock.Select(proc.Mem, o.Timer)
	if err != nil {
		proc.Close()
		return nil, err
	}
	l, err := NewLauncher(o.Lcores, o.MainLcore)
	if err != nil {
		release()
		proc.Close()
		return nil, err
	}
	return &Env{Options: o, Proc: proc, Mem: proc.Mem, Launcher: l, Clock: clk, releaseClock: release}, nil
}

// MemOptions translates the memory options for hugemem.
func (o Options) MemOptions() hugemem.Options {
	m := hugemem.Options{
		Prefix:  o.FilePrefix,
		HugeDir: o.HugeDir,
		NoHuge:  o.NoHuge,
		Limit:   o.MemLimit(),
	}
	if o.IOVAMode == IOVAPA {
		m.IOVAMode = hugemem.IOVAModePA
	}
	return m
}

// Close stops the worker lcores, gives back the clock's HPET comparator if
// it holds one, and leaves the group.
func (e *Env) Close() error {
	err := e.Launcher.Close()
	if e.releaseClock != nil {
		err = errors.Join(err, e.releaseClock())
	}
	return errors.Join(err, e.Proc.Close())
}

func (l LogLevel) slogLevel() slog.Level {
	switch {
	case l >= LogDebug:
		return slog.LevelDebug
	case l >= LogInfo:
		return slog.LevelInfo
	case l >= LogWarning:
		return slog.LevelWarn
	}
	return slog.LevelError
}

// ParseVDev parses a device string as --vdev takes it: a name such as
// net_memif0, then optional ,key=value arguments.
func ParseVDev(s string) (VDev, error) { return parseVDev(s) }

// Arg returns the value of the first argument named key, and whether there is one.
func (v VDev) Arg(key string) (string, bool) {
	for _, kv := range v.Args {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return "", false
}

// String gives the device string back in --vdev form.
func (v VDev) String() string {
	s := v.Name
	for _, kv := range v.Args {
		s += "," + kv.Key
		if kv.Value != "" {
			s += "=" + kv.Value
		}
	}
	return s
}
