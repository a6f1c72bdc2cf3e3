package rules

import (
	"fmt"
	"net/netip"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

func testProc(name, exe string, pid uint32, argv ...string) *event.Process {
	return &event.Process{PID: pid, TID: pid, Comm: name, ExePath: exe, Argv: argv, LoginUID: 0xffffffff}
}

var testContainer = &event.Container{
	ID: "0123456789ab", FullID: "0123456789abcdef0123456789abcdef", Name: "web", Type: "containerd",
	Image: "docker.io/library/nginx:1.25", ImageRepository: "docker.io/library/nginx", ImageTag: "1.25",
	Labels:       map[string]string{"app": "web", "tier": "front end"},
	Privileged:   true,
	Capabilities: []string{"CAP_CHOWN", "CAP_SYS_ADMIN"},
	Mounts: []event.Mount{
		{Source: "/var/run/docker.sock", Dest: "/var/run/docker.sock", Mode: "rw", RW: true, Propagation: "rprivate"},
		{Source: "/data", Dest: "/srv/data", Mode: "ro"},
	},
	User: "0", StartTS: 1_700_000_000_000_000_000,
	PodName: "web-1", PodNamespace: "prod", PodUID: "uid-1", PodLabels: map[string]string{"app.kubernetes.io/name": "web"},
}

func execEvent() *event.Event {
	ev := &event.Event{Type: event.TypeExecve, Timestamp: 1_700_000_100_000_000_000}
	ev.Proc = *testProc("bash", "/usr/bin/bash", 100, "bash", "-c", "cat /etc/Shadow")
	ev.Proc.PPID, ev.Proc.EUID, ev.Proc.TTY = 50, 0, 34816
	ev.Proc.CapEffective = 1<<21 | 1<<0
	ev.Proc.ExeUpperLayer = true
	ev.SetLineage([]*event.Process{
		testProc("sshd", "/usr/sbin/sshd", 50, "sshd: root@pts/0"),
		testProc("systemd", "/usr/lib/systemd/systemd", 1, "/sbin/init"),
	})
	return ev
}

func openEvent() *event.Event {
	ev := execEvent()
	ev.Type = event.TypeOpenat
	ev.Res = 3
	ev.Open = event.Open{Path: "/etc/shadow", RawPath: "../etc/shadow", DirFD: -100, Flags: 0o2000000} // O_RDONLY|O_CLOEXEC
	ev.Container = testContainer
	return ev
}

func connectEvent() *event.Event {
	ev := execEvent()
	ev.Type = event.TypeConnect
	ev.Res = -115
	ev.Connect = event.Connect{FD: 4, Family: event.AFInet, SockType: 1, Proto: event.ProtoTCP,
		LocalAddr: netip.MustParseAddr("192.168.1.2"), LocalPort: 50000,
		RemoteAddr: netip.MustParseAddr("10.0.0.5"), RemotePort: 443}
	return ev
}

func compileOne(t testing.TB, cond string) *Ruleset {
	t.Helper()
	src := fmt.Sprintf("- rule: r\n  desc: d\n  condition: %q\n  output: o\n  priority: INFO\n", cond)
	rs, rep, err := Load([]Source{{Name: "t.yaml", Data: []byte(src)}}, Options{})
	if err != nil {
		t.Fatalf("condition %q: %v", cond, err)
	}
	if rep.Compiled != 1 {
		t.Fatalf("condition %q: not compiled: %+v", cond, rep.Skipped)
	}
	return rs
}

func TestOperatorSemantics(t *testing.T) {
	ex, op, cn := execEvent(), openEvent(), connectEvent()
	nc := connectEvent() // its arguments hold the server address and port as text
	nc.Proc.Argv = []string{"nc", "10.0.0.5", "443", "not-an-address"}
	cases := []struct {
		cond string
		ev   *event.Event
		want bool
	}{
		// = == != and types
		{"proc.name = bash", ex, true},
		{"proc.name == bash", ex, true},
		{"proc.name=bash", ex, true},
		{"proc.name = sh", ex, false},
		{"proc.name != sh", ex, true},
		{"proc.pid = 100", ex, true},
		{"proc.pid = 0x64", ex, true},
		{"proc.pid != 100", ex, false},
		{"proc.tty > 0", ex, true},
		{"proc.tty < 0", ex, false},
		{"proc.pid <= 100", ex, true},
		{"proc.pid >= 101", ex, false},
		{"proc.name < c", ex, true}, // string ordering
		// missing field: comparisons false, exists tells
		{"fd.name = x", ex, false},
		{"fd.name != x", ex, false},
		{"not fd.name = x", ex, true},
		{"fd.name exists", ex, false},
		{"fd.name exists", op, true},
		{"proc.aname[5] exists", ex, false},
		{"proc.aname[2] exists", ex, true},
		// string operators
		{"proc.cmdline contains /etc/Shadow", ex, true},
		{"proc.cmdline contains /etc/shadow", ex, false},
		{"proc.cmdline icontains /ETC/shadow", ex, true},
		{"proc.cmdline startswith \"bash -c\"", ex, true},
		{"proc.cmdline endswith Shadow", ex, true},
		{"proc.exepath glob /usr/*", ex, true},         // * crosses '/'
		{"proc.exepath glob /usr/?in/bash", ex, true},  // ?
		{"proc.exepath glob /usr/[a-c]in/*", ex, true}, // class
		{"proc.exepath glob /USR/*", ex, false},
		{"proc.exepath iglob /USR/*BASH", ex, true},
		{"proc.exepath regex \"/usr/bin/(ba|z)sh\"", ex, true},
		{"proc.exepath regex bin/bash", ex, false}, // full match only
		{"proc.exepath regex .*bin/bash", ex, true},
		{"fd.name bcontains 736861646f77", op, true}, // "shadow"
		{"fd.name bstartswith 2f657463", op, true},   // "/etc"
		{"fd.name bstartswith 736861", op, false},
		// in / intersects / pmatch
		{"proc.name in (sh, bash, zsh)", ex, true},
		{"proc.name in (sh, zsh)", ex, false},
		{"proc.name in ()", ex, false},
		{"proc.name intersects (bash)", ex, true},
		{"proc.pid in (1, 100)", ex, true},
		{"fd.sport in (80, 443)", cn, true},
		{"fd.dport = 443", cn, true},
		{"fd.lport = 50000", cn, true},
		{"fd.name pmatch (/etc)", op, true},
		{"fd.name pmatch (/et)", op, false},
		{"fd.name pmatch (/etc/shadow)", op, true},
		{"fd.name pmatch (/e*/sh*)", op, true},
		{"fd.name pmatch (/e*)", op, true},
		{"fd.directory = /etc", op, true},
		{"fd.filename = shadow", op, true},
		{"fd.nameraw = ../etc/shadow", op, true},
		{"fd.typechar = f", op, true},
		{"fd.num = 3", op, true},
		{"evt.is_open_read = true", op, true},
		{"evt.is_open_write = true", op, false},
		{"evt.arg.flags contains O_CLOEXEC", op, true},
		{"evt.arg.flags = O_RDONLY|O_CLOEXEC", op, true},
		{"evt.arg.flags contains EXE_UPPER_LAYER", ex, true},
		// network
		{"fd.sip = 10.0.0.5", cn, true},
		{"fd.sip in (10.0.0.0/8)", cn, true},
		{"fd.cip = 192.168.1.2", cn, true},
		{"fd.net = 10.0.0.0/8", cn, true},
		{"fd.net != 10.0.0.0/8", cn, false},
		{"fd.snet in (192.168.0.0/16, 172.16.0.0/12)", cn, false},
		{"fd.ip = 192.168.1.2", cn, true},
		{"fd.l4proto = tcp", cn, true},
		{"fd.typechar = 4", cn, true},
		{"fd.name = 192.168.1.2:50000->10.0.0.5:443", cn, true},
		{"evt.res = EINPROGRESS", cn, true},
		{"evt.rawres >= 0 or evt.res = EINPROGRESS", cn, true},
		{"fd.connected = false", cn, true},
		// ancestors
		{"proc.pname = sshd", ex, true},
		{"proc.aname[1] = sshd", ex, true},
		{"proc.aname[2] = systemd", ex, true},
		{"proc.aname[0] = bash", ex, true},
		{"proc.aname = systemd", ex, true}, // any ancestor
		{"proc.aname = bash", ex, false},   // self is not an ancestor
		{"proc.aname in (foo, sshd)", ex, true},
		{"proc.apid[1] = 50", ex, true},
		{"proc.apid[2] = 1", ex, true},
		{"proc.aexepath[2] = /usr/lib/systemd/systemd", ex, true},
		{"proc.pcmdline startswith sshd", ex, true},
		// process and user
		{"proc.args = \"-c cat /etc/Shadow\"", ex, true},
		{"proc.args[0] = -c", ex, true},
		{"proc.exe = bash", ex, true},
		{"user.uid = 0 and user.name = root", ex, true},
		{"user.loginuid = -1", ex, true},
		{"thread.cap_effective contains CAP_SYS_ADMIN", ex, true},
		{"proc.is_exe_upper_layer = true", ex, true},
		// containers
		{"container.id = host", ex, true},
		{"container.id != host", op, true},
		{"container.name = web", op, true},
		{"container.privileged = true", op, true},
		{"container.capabilities intersects (sys_admin, sys_module)", op, true},
		{"container.capabilities intersects (CAP_SYS_MODULE)", op, false},
		{"container.capabilities in (CAP_CHOWN, CAP_SYS_ADMIN, CAP_KILL)", op, true},
		{"container.capabilities in (CAP_CHOWN)", op, false},
		{"container.capabilities exists", ex, false},
		{"container.mount.dest[/var/run/docker.sock] = /var/run/docker.sock", op, true},
		{"container.mount.dest[/var/run/docker*] exists", op, true},
		{"container.mount.dest[/proc*] exists", op, false},
		{"container.mount.source[/data] = /data", op, true},
		{"container.mount.dest[/data] = /srv/data", op, true},
		{"container.mount.dest[/srv/data] exists", op, false},
		{"container.mount.source[1] = /data", op, true},
		{"container.label[app] = web", op, true},
		{"container.label.app = web", op, true},
		{"container.label[tier] = \"front end\"", op, true},
		{"container.label[nope] exists", op, false},
		{"k8s.pod.label[app.kubernetes.io/name] = web", op, true},
		{"k8s.ns.name = prod and k8s.pod.name = web-1 and k8s.pod.uid = uid-1", op, true},
		{"container.image.repository in (docker.io/library/nginx)", op, true},
		{"container.start_ts > 0", op, true},
		{"container.user = 0", op, true},
		// transformers and val()
		{"tolower(proc.cmdline) contains /etc/shadow", ex, true},
		{"toupper(proc.name) = BASH", ex, true},
		{"basename(proc.exepath) = bash", ex, true},
		{"len(proc.name) = 4", ex, true},
		{"len(container.capabilities) = 2", op, true},
		{"b64(container.label[b64]) = hello", &event.Event{Type: event.TypeContainer, Container: &event.Container{Labels: map[string]string{"b64": "aGVsbG8="}}}, true},
		{"proc.name = val(proc.aname[0])", ex, true},
		{"proc.name = val(proc.pname)", ex, false},
		{"tolower(proc.name) = tolower(proc.name)", ex, true},
		{"proc.tty > val(proc.pid)", ex, true},
		{"fd.sip = val(proc.args[0])", nc, true}, // address as text
		{"fd.sip != val(proc.args[0])", nc, false},
		{"fd.sport = val(proc.args[1])", nc, true}, // port as text
		{"fd.sport != val(proc.args[1])", nc, false},
		{"fd.sip = val(proc.args[2])", nc, false}, // not an address: false both ways
		{"fd.sip != val(proc.args[2])", nc, false},
		{"fd.sport = val(proc.args[2])", nc, false},
		{"fd.sip = val(proc.args[0])", cn, false},
		// boolean structure and precedence
		{"proc.name = bash and proc.pid = 100", ex, true},
		{"proc.name = sh or proc.pid = 100", ex, true},
		{"proc.name = sh or proc.name = bash and proc.pid = 1", ex, false}, // and binds tighter
		{"(proc.name = sh or proc.name = bash) and proc.pid = 100", ex, true},
		{"not not proc.name = bash", ex, true},
		{"not(proc.name = sh)", ex, true},
		{"proc.name = bash and(proc.pid = 100)", ex, true},
		// quoting and escapes
		{"proc.cmdline = 'bash -c cat /etc/Shadow'", ex, true},
		{`proc.cmdline = "bash\x20-c cat \/etc/Shadow"`, ex, true},
		// event types
		{"evt.type = execve", ex, true},
		{"evt.type in (open, openat)", op, true},
		{"evt.type != execve", op, true},
	}
	for _, c := range cases {
		rs := compileOne(t, c.cond)
		got := len(rs.NewEvaluator().Match(c.ev, nil)) == 1
		if got != c.want {
			t.Errorf("%s on %s: got %v, want %v", c.cond, c.ev.Type, got, c.want)
		}
	}
}
