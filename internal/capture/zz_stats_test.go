//go:build linux

package capture

import (
	"context"
	"os"
	"testing"
	"os/exec"
	"time"

	"github.com/cilium/ebpf"
	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
)

func TestZZProgStats(t *testing.T) {
	st, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
	if err != nil { t.Fatal(err) }
	defer st.Close()
	c, err := New(Config{PID: uint32(os.Getpid()), IncludeSelf: true})
	if err != nil { t.Fatal(err) }
	defer c.Close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go c.Run(ctx, func(*event.Event) {})
	for range 100000 {
		fd, _ := unix.Open("/etc/hostname", unix.O_RDONLY, 0)
		unix.Close(fd)
	}
	for range 100 { exec.Command("/bin/true").Run() }
	for name, p := range map[string]*ebpf.Program{"enter": c.objs.TlSysEnter, "exit": c.objs.TlSysExit, "exec": c.objs.TlSchedExec, "fork": c.objs.TlSchedFork, "pexit": c.objs.TlSchedExit} {
		s, _ := p.Stats()
		t.Logf("%s: runs %d avg %v", name, s.RunCount, s.Runtime/(1+time.Duration(s.RunCount)))
	}
}
