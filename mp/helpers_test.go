package mp

import (
	"fmt"
	"io"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/gopmd/gopmd/hugemem"
	"github.com/gopmd/gopmd/internal/testmem"
	"github.com/gopmd/gopmd/internal/testproc"
	"golang.org/x/sys/unix"
)

// The tests run group members as real processes: this test binary started
// again with a childSpec naming what the child does (see TestMain).

func testGroup(t *testing.T) hugemem.Options {
	o := testmem.Options(t, "mp")
	o.Limit, o.SegmentSize = 64<<20, 8<<20
	return o
}

// childSpec is what the parent tells a child.
type childSpec struct {
	Role   string
	Type   ProcType
	Mem    hugemem.Options
	Lcores []Lcore
	Args   []string
	// ShiftMapping makes the child take 64 GiB of address space before it
	// joins, so its group mapping lands far from where the parent's is.
	ShiftMapping bool
}

func startChild(t *testing.T, spec childSpec) *testproc.Child {
	t.Helper()
	return testproc.Start(t, testproc.Config{Name: spec.Role, Spec: spec})
}

// runChild is the child side: it acts out spec.Role and exits.
func runChild(spec childSpec) int {
	if spec.ShiftMapping {
		if _, err := unix.Mmap(-1, 0, 64<<30, unix.PROT_NONE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_NORESERVE); err != nil {
			fmt.Println("error: shift mapping:", err)
			return 2
		}
	}
	p, err := Start(Config{Type: spec.Type, Memory: spec.Mem, Lcores: spec.Lcores, ReapInterval: 20 * time.Millisecond})
	if err != nil {
		fmt.Println("error:", err)
		return 2
	}
	fmt.Println("ready", p.Type(), os.Getpid())
	role, ok := childRoles[spec.Role]
	if !ok {
		fmt.Println("error: unknown role", spec.Role)
		return 2
	}
	code := role(p, spec.Args)
	p.Close()
	return code
}

// childRoles maps a role name to what the child does once it has started.
var childRoles = map[string]func(p *Process, args []string) int{
	// hold stays a member until its stdin closes.
	"hold": func(p *Process, _ []string) int {
		io.Copy(io.Discard, os.Stdin)
		return 0
	},
	// watch-primary reports when the primary exits.
	"watch-primary": func(p *Process, _ []string) int {
		select {
		case <-p.PrimaryGone():
			fmt.Println("primary gone")
			return 0
		case <-time.After(20 * time.Second):
			fmt.Println("primary still there")
			return 1
		}
	},
	// die-holding-lock is killed by SIGKILL while it holds the group lock.
	"die-holding-lock": func(p *Process, _ []string) int {
		p.Mem.WithLock(func() error {
			fmt.Println("locked")
			syscall.Kill(os.Getpid(), syscall.SIGKILL)
			time.Sleep(time.Minute)
			return nil
		})
		return 1
	},
}

func TestMain(m *testing.M) {
	var spec childSpec
	if testproc.IsChild(&spec) {
		os.Exit(runChild(spec))
	}
	os.Exit(m.Run())
}
