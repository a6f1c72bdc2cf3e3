package proc

import (
	"net/netip"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

func dupEv(ts int64, pid uint32, ty event.Type, oldfd, newfd int32, flags uint64, sock bool) *event.Event {
	ev := &event.Event{Type: ty, Timestamp: ts, Res: int64(newfd),
		Proc: event.Process{PID: pid, TID: pid, PPID: 1, SID: 1},
		Sys:  event.Sys{Args: [6]uint64{uint64(oldfd), uint64(newfd), flags}, FD: newfd, FDKind: event.FDFile, FDPath: "/tmp/log"}}
	if sock {
		ev.Sys.FDKind, ev.Sys.FDPath = event.FDSocket, ""
		ev.Connect = event.Connect{FD: newfd, Family: event.AFInet, SockType: 1, Proto: event.ProtoTCP,
			LocalAddr: netip.MustParseAddr("10.0.0.2"), LocalPort: 40000, RemoteAddr: netip.MustParseAddr("10.0.0.9"), RemotePort: 4444}
	}
	return ev
}

// TestStdFDs follows a reverse shell's fds 0-2 through dup2, fork and exec.
func TestStdFDs(t *testing.T) {
	const tuple = "10.0.0.2:40000->10.0.0.9:4444"
	sock := event.StdFD{Type: "ipv4", Name: tuple}
	file := event.StdFD{Type: "file", Name: "/tmp/log"}
	tb := newTable(Config{})
	ts := base
	step := func(ev *event.Event) *event.Event {
		ts++
		ev.Timestamp = ts
		tb.Handle(ev)
		return ev
	}
	step(execEv(ts, 10, 1, "/usr/bin/python3", "python3"))
	for _, tc := range []struct {
		name string
		ev   *event.Event
		want [3]event.StdFD
	}{
		{"dup2 socket onto stdin", dupEv(0, 10, event.TypeDup2, 3, 0, 0, true), [3]event.StdFD{sock}},
		{"dup3 cloexec onto stdout", dupEv(0, 10, event.TypeDup3, 3, 1, 0o2000000, true), [3]event.StdFD{sock, sock}},
		{"file onto stderr", dupEv(0, 10, event.TypeDup2, 4, 2, 0, false), [3]event.StdFD{sock, sock, file}},
		{"dup of fd 5 (not std)", dupEv(0, 10, event.TypeDup, 3, 5, 0, true), [3]event.StdFD{sock, sock, file}},
		{"fork: the child inherits", forkEv(0, 10, 11), [3]event.StdFD{sock, sock, file}},
		{"exec drops the cloexec fd", execEv(0, 11, 10, "/bin/sh", "sh"), [3]event.StdFD{sock, {}, file}},
		{"open takes fd 2", &event.Event{Type: event.TypeOpenat, Res: 2, Proc: event.Process{PID: 11, TID: 11, PPID: 10, SID: 1},
			Open: event.Open{Path: "/dev/null"}}, [3]event.StdFD{sock, {}, {Type: "file", Name: "/dev/null"}}},
	} {
		ev := step(tc.ev)
		if ev.Std != tc.want {
			t.Errorf("%s: std = %+v, want %+v", tc.name, ev.Std, tc.want)
		}
	}
	// The parent keeps its own.
	open := openEv(0, 10, 1)
	open.Res = 7
	if ev := step(open); ev.Std != [3]event.StdFD{sock, sock, file} {
		t.Errorf("parent: %+v", ev.Std)
	}
}
