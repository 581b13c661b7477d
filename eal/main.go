package eal

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sync/atomic"
)

// Main is the main function of a gopmd program that has options of its
// own, in the order every DPDK application follows: it starts the EAL from
// args (Init), hands the application's arguments (those after "--") to
// parse, calls run with the Env and parse's result, and closes the Env
// when run returns. It returns the process's exit status: run's; 0 when
// parse returns flag.ErrHelp (parse printed the usage); 1 when the EAL
// options or the application's arguments are wrong, after printing
// "name: error" on os.Stderr. parse gets os.Stderr for its usage and flag
// errors.
//
//	func main() { os.Exit(eal.Main("myapp", os.Args[1:], parseApp, run)) }
func Main[C any](name string, args []string, parse func(appArgs []string, errOut io.Writer) (C, error), run func(env *Env, cfg C) int) int {
	return mainTo(os.Stderr, name, args, parse, run)
}

func mainTo[C any](errOut io.Writer, name string, args []string, parse func([]string, io.Writer) (C, error), run func(*Env, C) int) int {
	env, appArgs, err := Init(args)
	if err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", name, err)
		return 1
	}
	defer env.Close()
	cfg, err := parse(appArgs, errOut)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintf(errOut, "%s: %v\n", name, err)
		return 1
	}
	return run(env, cfg)
}

// RunMainUntil runs loop on the main lcore (RunMain) until the process is
// told to stop: loop polls the flag it gets, and RunMainUntil sets it at
// the first signal from sig or when the group's primary exits (which only a
// secondary sees). Make sig with signal.Notify before the program's set-up,
// so that a signal during set-up stops the loop at once instead of killing
// the process. stopping, if not nil, runs just before the flag is set, with
// the signal, or nil when the primary exited: the place to say why the
// program stops. RunMainUntil returns when loop has returned (and stopping
// with it), with RunMain's error.
func (e *Env) RunMainUntil(sig <-chan os.Signal, stopping func(os.Signal), loop func(stop *atomic.Bool)) error {
	var stop atomic.Bool
	returned := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		var s os.Signal
		select {
		case s = <-sig:
		case <-e.Proc.PrimaryGone():
		case <-returned: // loop ended by itself, or never ran
			return
		}
		if stopping != nil {
			stopping(s)
		}
		stop.Store(true)
	}()
	err := e.Launcher.RunMain(func(int) error { loop(&stop); return nil })
	close(returned)
	<-watched
	return err
}
