package event

import (
	"bytes"
	"encoding/json"
	"flag"
	"net/netip"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unsafe"

	"github.com/tripline/tripline/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

const ts = int64(1763812800123456789) // 2025-11-22T12:00:00.123456789Z

func sampleProc() Process {
	return Process{
		PID: 4242, TID: 4243, PPID: 1, VPID: 42, VTID: 43, SID: 4242,
		UID: 1000, GID: 1000, EUID: 0, EGID: 0, LoginUID: 1000,
		Comm: "bash", ExePath: "/usr/bin/bash", Argv: []string{"/bin/bash", "-c", "echo \"hi\"; cat /etc/shadow"},
		Cwd: "/home/u", TTY: 34816, CapEffective: 1<<21 | 1, CapPermitted: 1<<21 | 1,
		PidNS: 4026531836, MntNS: 4026531841, CgroupID: 77, CgroupPath: "/kubepods/besteffort/pod1/abc",
		StartTime: ts - 1e9,
	}
}

func samples() map[string]*Event {
	parent := &Process{PID: 1, Comm: "containerd-shim", Argv: []string{"/usr/bin/containerd-shim", "-id", "abc"}, ExePath: "/usr/bin/containerd-shim"}
	grand := &Process{PID: 0, Comm: "systemd", ExePath: "/usr/lib/systemd/systemd"}
	ctr := &Container{ID: "0123456789ab", FullID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Name: "web", Type: "containerd", Image: "docker.io/library/nginx:1.27", ImageRepository: "docker.io/library/nginx",
		ImageTag: "1.27", Privileged: true, StartTS: ts - 5e9, PodName: "web-0", PodNamespace: "default", PodUID: "u-1"}

	exec := &Event{Type: TypeExecve, CPU: 1, Timestamp: ts, Proc: sampleProc(), Container: ctr}
	exec.Proc.ExeFromMemfd = true
	exec.Proc.ContainerID = ctr.FullID
	exec.Open.RawPath = "/bin/bash"
	exec.Proc.Env = []string{"PATH=/usr/bin", "LANG=C.UTF-8"}
	exec.Proc.User = &User{Name: "root", HomeDir: "/root", Shell: "/bin/bash"}
	exec.Proc.Group = &Group{Name: "root"}
	exec.Proc.LoginUser = &User{Name: "alice"}
	exec.SetLineage([]*Process{parent, grand})
	exec.Std[0] = StdFD{Type: "ipv4", Name: "10.0.0.2:40000->10.0.0.9:4444"}

	open := &Event{Type: TypeOpenat, Timestamp: ts, Res: 3, Proc: sampleProc(),
		Open: Open{Path: "/etc/shadow", RawPath: "../../etc/shadow", DirFD: -100, Flags: 0o2000000, Dev: 2049, Ino: 1234}}
	failed := &Event{Type: TypeOpen, Timestamp: ts, Res: -2, Flags: FlagPathTruncated, Proc: sampleProc(),
		Open: Open{Path: "/tmp/x\x1b[2J", RawPath: "x\x1b[2J", DirFD: -100, Flags: 0o1101, Mode: 0o644}}
	c4 := &Event{Type: TypeConnect, Timestamp: ts, Proc: sampleProc(), Connect: Connect{FD: 5, Family: AFInet, SockType: 1, Proto: ProtoTCP,
		LocalAddr: netip.MustParseAddr("10.0.0.2"), LocalPort: 40000, RemoteAddr: netip.MustParseAddr("93.184.216.34"), RemotePort: 443}}
	c6 := &Event{Type: TypeConnect, Timestamp: ts, Res: -111, Proc: sampleProc(), Connect: Connect{FD: 6, Family: AFInet6, SockType: 2, Proto: ProtoUDP,
		LocalAddr: netip.MustParseAddr("::1"), LocalPort: 5353, RemoteAddr: netip.MustParseAddr("::1"), RemotePort: 53}}
	un := &Event{Type: TypeConnect, Timestamp: ts, Proc: sampleProc(), Connect: Connect{FD: 7, Family: AFUnix, SockType: 1, UnixPath: "/run/containerd/containerd.sock"}}
	fork := &Event{Type: TypeClone, Timestamp: ts, Res: 4300, Proc: sampleProc(), Fork: Fork{ChildPID: 4242, ChildTID: 4300, CloneFlags: 0x3d0f00, IsThread: true}}
	exit := &Event{Type: TypeProcexit, Timestamp: ts, Proc: sampleProc(), Exit: Exit{Code: 0, Signal: 9}}
	sym := &Event{Type: TypeSymlinkat, Timestamp: ts, Proc: sampleProc(), Sys: Sys{Args: [6]uint64{0, 3}, FD: -1,
		RawPath: "/etc/shadow", RawPath2: "s", Path2: "/tmp/s"}}
	ren := &Event{Type: TypeRenameat2, Timestamp: ts, Res: -2, Proc: sampleProc(), Sys: Sys{Args: [6]uint64{0xffffffffffffff9c, 0, 4, 0, 1}, FD: -1,
		RawPath: "a", Path: "/home/u/a", RawPath2: "../b", Path2: "/tmp/b"}}
	dup := &Event{Type: TypeDup2, Timestamp: ts, Res: 1, Proc: sampleProc(), Sys: Sys{Args: [6]uint64{3, 1}, FD: 1, FDKind: FDSocket},
		Connect: Connect{FD: 1, Family: AFInet, SockType: 1, Proto: ProtoTCP,
			LocalAddr: netip.MustParseAddr("10.0.0.2"), LocalPort: 40000, RemoteAddr: netip.MustParseAddr("10.0.0.9"), RemotePort: 4444}}
	chm := &Event{Type: TypeFchmod, Timestamp: ts, Proc: sampleProc(), Sys: Sys{Args: [6]uint64{4, 0o4755}, FD: 4, FDKind: FDFile, FDPath: "/tmp/x"}}
	ptr := &Event{Type: TypePtrace, Timestamp: ts, Proc: sampleProc(), Sys: Sys{Args: [6]uint64{16, 77, 0, 0}, FD: -1}}
	mnt := &Event{Type: TypeMount, Timestamp: ts, Res: -1, Proc: sampleProc(), Sys: Sys{Args: [6]uint64{0, 0, 0, 4097}, FD: -1,
		RawPath: "/dev/sda1", RawPath2: "/mnt", Path2: "/mnt", Aux: "ext4"}}
	return map[string]*Event{"symlinkat": sym, "renameat2": ren, "dup2_socket": dup, "fchmod": chm, "ptrace": ptr, "mount": mnt,
		"exec": exec, "open": open, "open_failed": failed, "connect4": c4, "connect6": c6,
		"connect_unix": un, "clone": fork, "procexit": exit}
}

func TestAppendJSONGolden(t *testing.T) {
	for name, ev := range samples() {
		t.Run(name, func(t *testing.T) {
			got := AppendJSON(nil, ev)
			if !json.Valid(got) {
				t.Fatalf("invalid JSON: %s", got)
			}
			var pretty bytes.Buffer
			if err := json.Indent(&pretty, got, "", "  "); err != nil {
				t.Fatal(err)
			}
			pretty.WriteByte('\n')
			testenv.Golden(t, filepath.Join("testdata", name+".json"), pretty.Bytes(), *update)
			if bytes.Contains(got, []byte{0x1b}) {
				t.Error("raw escape character in output")
			}
		})
	}
}

func TestJSONRoundTrip(t *testing.T) {
	for name, ev := range samples() {
		j1 := AppendJSON(nil, ev)
		ev2, err := UnmarshalJSON(j1)
		if err != nil {
			t.Fatalf("%s: %v\n%s", name, err, j1)
		}
		j2 := AppendJSON(nil, ev2)
		if !bytes.Equal(j1, j2) {
			t.Errorf("%s: round trip differs:\n%s\n%s", name, j1, j2)
		}
		lost := ev2.Proc.Comm != ev.Proc.Comm || len(ev2.Proc.Argv) != len(ev.Proc.Argv) || !slices.Equal(ev2.Proc.Env, ev.Proc.Env) ||
			(ev.Proc.User != nil && *ev2.Proc.User != *ev.Proc.User) || (ev.Proc.Group != nil && *ev2.Proc.Group != *ev.Proc.Group) ||
			(ev.Proc.LoginUser != nil && ev2.Proc.LoginUser.Name != ev.Proc.LoginUser.Name) || ev2.Proc.UID != ev.Proc.UID ||
			ev2.Proc.ExeFromMemfd != ev.Proc.ExeFromMemfd || len(ev2.Lineage) != len(ev.Lineage) || ev2.Flags != ev.Flags
		switch ev.Class() {
		case ClassOpen:
			lost = lost || ev2.Open != ev.Open
		case ClassConnect:
			lost = lost || ev2.Connect != ev.Connect
		case ClassFork:
			lost = lost || ev2.Fork != ev.Fork
		case ClassExit:
			lost = lost || ev2.Exit != ev.Exit
		case ClassExec:
			lost = lost || ev2.Std != ev.Std
		case ClassFile, ClassSocket, ClassDup, ClassPriv, ClassMount, ClassNS, ClassMemfd:
			lost = lost || ev2.Sys != ev.Sys || (ev.Sys.FDKind == FDSocket && ev2.Connect != ev.Connect)
		}
		if lost {
			t.Errorf("%s: fields lost: %+v", name, ev2)
		}
	}
}

func TestFromFieldsSubset(t *testing.T) {
	ev, err := FromFields(map[string]any{"evt.type": "openat", "fd.name": "/etc/shadow", "proc.name": "cat", "container.id": "abc"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != TypeOpenat || ev.Open.Path != "/etc/shadow" || ev.Proc.Comm != "cat" || ev.Proc.Name() != "cat" ||
		len(ev.Proc.Argv) != 1 || ev.Container == nil || ev.Container.ID != "abc" || ev.Res < 0 || ev.Open.DirFD != -100 {
		t.Errorf("%+v container=%+v", ev, ev.Container)
	}

	ev, err = FromFields(map[string]any{
		"evt.type": "connect", "fd.sip": "10.1.2.3", "fd.sport": 443, "fd.l4proto": "tcp", "proc.cmdline": "curl -s http://x",
		"proc.pname": "bash", "proc.aname[2]": "sshd", "proc.apid[2]": 10, "proc.ppid": 7, "container.id": "host",
		"evt.res": "ECONNREFUSED", "user.loginuid": -1, "thread.cap_effective": "CAP_SYS_ADMIN CAP_NET_RAW", "proc.tty": float64(34816),
	})
	if err != nil {
		t.Fatal(err)
	}
	c := ev.Connect
	if c.RemoteAddr.String() != "10.1.2.3" || c.RemotePort != 443 || c.Proto != ProtoTCP || c.Family != AFInet || ev.Res != -111 {
		t.Errorf("connect %+v res=%d", c, ev.Res)
	}
	if strings.Join(ev.Proc.Argv, " ") != "curl -s http://x" || ev.Proc.Comm != "curl" || ev.Container != nil || ev.Proc.LoginUID != 0xffffffff {
		t.Errorf("proc %+v", ev.Proc)
	}
	if len(ev.Lineage) != 2 || ev.Lineage[0].Name() != "bash" || ev.Lineage[0].PID != 7 || ev.Lineage[1].Name() != "sshd" || ev.Lineage[1].PID != 10 {
		t.Errorf("lineage %+v %+v", ev.Lineage[0], ev.Lineage[len(ev.Lineage)-1])
	}
	if ev.Proc.CapEffective != 1<<21|1<<13 || ev.Proc.TTY != 34816 {
		t.Errorf("caps %#x tty %d", ev.Proc.CapEffective, ev.Proc.TTY)
	}

	ev, err = FromFields(map[string]any{"fd.name": "127.0.0.1:5000->10.0.0.1:22", "fd.typechar": "4", "proc.exe": "/usr/bin/ssh", "proc.args": "host"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Type != TypeConnect || ev.Connect.LocalPort != 5000 || ev.Connect.RemoteAddr.String() != "10.0.0.1" ||
		ev.Proc.Argv[0] != "/usr/bin/ssh" || ev.Proc.Argv[1] != "host" || ev.Proc.ExePath != "/usr/bin/ssh" {
		t.Errorf("%+v", ev)
	}

	ev, err = FromFields(map[string]any{"evt.type": "openat", "fd.name": "/x", "evt.arg.flags": "O_WRONLY|O_CREAT|O_TRUNC", "evt.arg.mode": "0755", "fd.num": -1, "evt.res": "EACCES"})
	if err != nil {
		t.Fatal(err)
	}
	if ev.Open.Flags != 0o1101 || ev.Open.Mode != 0o755 || ev.Res != -13 {
		t.Errorf("open %+v res %d", ev.Open, ev.Res)
	}

	// Command lines start with the process name, which may hold spaces,
	// and is stripped only as a whole word.
	for _, tc := range []struct {
		fields map[string]any
		argv   string // joined with '|'
		parent string
	}{
		{map[string]any{"proc.name": "a b", "proc.cmdline": "a b x"}, "a b|x", ""},
		{map[string]any{"proc.name": "py", "proc.cmdline": "python3 x"}, "python3|x", ""},
		{map[string]any{"proc.pname": "my app", "proc.pcmdline": "my app -v"}, "", "my app|-v"},
		{map[string]any{"proc.pname": "python3", "proc.pcmdline": "python3.11 x"}, "", "python3.11|x"},
	} {
		ev, err := FromFields(tc.fields)
		if err != nil {
			t.Fatal(err)
		}
		if tc.argv != "" && strings.Join(ev.Proc.Argv, "|") != tc.argv {
			t.Errorf("%v: argv %q, want %s", tc.fields, ev.Proc.Argv, tc.argv)
		}
		if tc.parent != "" && (len(ev.Lineage) == 0 || strings.Join(ev.Lineage[0].Argv, "|") != tc.parent) {
			t.Errorf("%v: lineage %+v, want parent argv %s", tc.fields, ev.Lineage, tc.parent)
		}
	}

	for _, bad := range []map[string]any{
		{"evt.type": "openat", "fd.nmae": "/x"},
		{"evt.type": "nosuch"},
		{"proc.pid": "abc"},
		{"proc.pid": -1},
		{"evt.type": "openat", "evt.arg.flags": "O_BOGUS"},
		{"proc.argv": "not a list"},
		{"fd.sport": 70000},
		{"evt.type": "connect", "fd.name": "garbage"},
		{"thread.cap_effective": "CAP_NOPE"},
		{"evt.res": "EWHAT"},
		{"proc.aname[x]": "a"},
	} {
		if _, err := FromFields(bad); err == nil {
			t.Errorf("accepted %v", bad)
		}
	}
	if _, err := FromFields(map[string]any{"fd.nmae": 1}); err == nil || !strings.Contains(err.Error(), "fd.nmae") {
		t.Errorf("error does not name the key: %v", err)
	}
}

func TestEscaping(t *testing.T) {
	ev := &Event{Type: TypeExecve, Proc: Process{Comm: "\x1b[2J\u2028\"\\\xff", Argv: []string{"a\tb\n"}}}
	out := AppendJSON(nil, ev)
	if !json.Valid(out) {
		t.Fatalf("invalid: %q", out)
	}
	for _, c := range []byte{0x1b, '\n', '\t', 0xff} {
		if bytes.IndexByte(out, c) >= 0 {
			t.Errorf("raw %#x in %q", c, out)
		}
	}
	ev2, err := UnmarshalJSON(out)
	if err != nil {
		t.Fatal(err)
	}
	if ev2.Proc.Argv[0] != "a\tb\n" {
		t.Errorf("argv %q", ev2.Proc.Argv)
	}
}

func FuzzUnmarshalJSON(f *testing.F) {
	for _, ev := range samples() {
		f.Add(AppendJSON(nil, ev))
	}
	f.Add([]byte(`{"evt.type":"openat","fd.name":"/etc/shadow","proc.name":"cat","container.id":"abc"}`))
	f.Add([]byte(`{"fd.name":"1.2.3.4:1->[::1]:2"}`))
	f.Add([]byte(`{"evt.type":"unlinkat","evt.arg.name":"x","fs.path.name":null,"fs.path.nameraw":"x"}`))
	f.Add([]byte(`{"evt.type":"rename","evt.arg.oldpath":"/a","evt.arg.newpath":"/b","fs.path.targetraw":null}`))
	f.Add([]byte(`{"proc.aname[3]":"x","proc.argv":["a","b c"],"evt.arg.flags":"CLONE_VM|SIG17","evt.type":"clone"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := UnmarshalJSON(b)
		if err != nil {
			return
		}
		j1 := AppendJSON(nil, ev)
		if !json.Valid(j1) {
			t.Fatalf("invalid JSON %q", j1)
		}
		ev2, err := UnmarshalJSON(j1)
		if err != nil {
			t.Fatalf("own output rejected: %v\n%s", err, j1)
		}
		if j2 := AppendJSON(nil, ev2); !bytes.Equal(j1, j2) {
			t.Fatalf("not stable:\n%s\n%s", j1, j2)
		}
	})
}

func BenchmarkAppendJSON(b *testing.B) {
	evs := samples()
	list := []*Event{evs["exec"], evs["open"], evs["connect4"], evs["clone"]}
	buf := make([]byte, 0, 8192)
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		buf = AppendJSON(buf[:0], list[i%len(list)])
	}
}

func TestFromFieldsEnvAndUsers(t *testing.T) {
	for _, v := range []any{"GLIBC_TUNABLES=x HOME=/root", []any{"GLIBC_TUNABLES=x", "HOME=/root"}} {
		ev, err := FromFields(map[string]any{"evt.type": "execve", "proc.env": v, "user.name": "daemon", "group.name": "daemon"})
		if err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(ev.Proc.Env, []string{"GLIBC_TUNABLES=x", "HOME=/root"}) || ev.Proc.User.Name != "daemon" || ev.Proc.Group.Name != "daemon" {
			t.Errorf("%v: env %q user %+v group %+v", v, ev.Proc.Env, ev.Proc.User, ev.Proc.Group)
		}
	}
	if _, err := FromFields(map[string]any{"proc.env": 3}); err == nil {
		t.Error("a number as proc.env was accepted")
	}
}

// TestCloneOwnsSysStrings: a clone must not alias the capture's buffers.
func TestCloneOwnsSysStrings(t *testing.T) {
	buf := []byte("/a/b/c/d/e/f")
	str := func(i, j int) string { return unsafe.String(&buf[i], j-i) }
	ev := &Event{Type: TypeRenameat, Sys: Sys{Path: str(0, 2), RawPath: str(2, 4), Path2: str(4, 6), RawPath2: str(6, 8),
		Aux: str(8, 10), FDPath: str(10, 12)}}
	c := ev.Clone()
	for i := range buf {
		buf[i] = 'x'
	}
	if s := c.Sys; s.Path != "/a" || s.RawPath != "/b" || s.Path2 != "/c" || s.RawPath2 != "/d" || s.Aux != "/e" || s.FDPath != "/f" {
		t.Errorf("clone aliases the source: %+v", s)
	}
}
