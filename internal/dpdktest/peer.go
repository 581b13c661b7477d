package dpdktest

import (
	"testing"

	"github.com/gopmd/gopmd/internal/testenv"
)

// Require skips t (fails it under CI=true) unless dpdk-testpmd and stdbuf
// are on PATH and the test runs as root, as the interoperability tests do.
func Require(t testing.TB) {
	t.Helper()
	testenv.RequireCommand(t, "dpdk-testpmd")
	testenv.RequireCommand(t, "stdbuf")
	testenv.RequireRoot(t)
}

// Peer is a Testpmd that belongs to one test, the other end of the ports
// the test drives. Its methods fail the test where Testpmd's return an
// error, so they must be called from the test's goroutine. It lives until
// the test's cleanup, which closes it and, if the test failed, logs
// everything testpmd printed.
type Peer struct {
	t   testing.TB
	pmd *Testpmd
}

// StartPeer starts dpdk-testpmd with cfg for t (see Start), after Require.
func StartPeer(t testing.TB, cfg Config) *Peer {
	t.Helper()
	Require(t)
	return startPeer(t, cfg)
}

func startPeer(t testing.TB, cfg Config) *Peer {
	t.Helper()
	pmd, err := Start(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dpdk-testpmd started: %s", pmd.CommandLine())
	t.Cleanup(func() {
		pmd.Close()
		if t.Failed() {
			t.Logf("dpdk-testpmd printed:\n%s", pmd.Output())
		}
	})
	return &Peer{t: t, pmd: pmd}
}

// Testpmd is the Testpmd behind p, for what Peer does not wrap.
func (p *Peer) Testpmd() *Testpmd { return p.pmd }

// Run sends a command and returns testpmd's answer up to the first line
// that contains until (Testpmd.Command).
func (p *Peer) Run(cmd, until string) []string {
	p.t.Helper()
	lines, err := p.pmd.Command(cmd, until)
	if err != nil {
		p.t.Fatal(err)
	}
	return lines
}

// SetForwardMode sets the forwarding mode (Testpmd.SetForwardMode).
func (p *Peer) SetForwardMode(mode string) {
	p.t.Helper()
	p.check(p.pmd.SetForwardMode(mode))
}

// StartForwarding starts the forwarding lcores (Testpmd.StartForwarding).
func (p *Peer) StartForwarding() {
	p.t.Helper()
	p.check(p.pmd.StartForwarding())
}

// StopForwarding stops forwarding and returns the packets testpmd's streams
// received and sent since they started (Testpmd.StopForwarding).
func (p *Peer) StopForwarding() (rx, tx uint64) {
	p.t.Helper()
	rx, tx, err := p.pmd.StopForwarding()
	p.check(err)
	return rx, tx
}

// Quit asks testpmd to quit and waits for it to exit (Testpmd.Quit).
func (p *Peer) Quit() {
	p.t.Helper()
	p.check(p.pmd.Quit())
}

func (p *Peer) check(err error) {
	p.t.Helper()
	if err != nil {
		p.t.Fatal(err)
	}
}
