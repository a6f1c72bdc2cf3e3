package users

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/testenv"
)

func TestParse(t *testing.T) {
	passwd := "# comment\n" +
		"root:x:0:0:root:/root:/bin/bash\n" +
		"daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\r\n" +
		"+nis::::::\n" +
		"\n" +
		"dup:x:0:0::/dup:/bin/sh\n" + // first entry of uid 0 wins
		"bad uid:x:5:5::/:/bin/sh\n" + // space in the name
		"esc\x1b[2J:x:6:6::/:/bin/sh\n" + // control character
		"short:x:7:7\n" +
		"long:x:8:8::/:/bin/sh:extra\n" +
		"neg:x:-1:0::/:/bin/sh\n" +
		"big:x:4294967296:0::/:/bin/sh\n" +
		"app:x:1000:1000:App,,,:/home/app:/bin/ash" // no final newline
	group := "root:x:0:\nadm:x:4:syslog,app\nbroken:x:\napp:x:1000:\n"
	db, err := Parse([]byte(passwd), []byte(group))
	if err != nil {
		t.Fatal(err)
	}
	users := []struct {
		uid  uint32
		want *event.User
	}{
		{0, &event.User{Name: "root", HomeDir: "/root", Shell: "/bin/bash"}},
		{1, &event.User{Name: "daemon", HomeDir: "/usr/sbin", Shell: "/usr/sbin/nologin"}},
		{1000, &event.User{Name: "app", HomeDir: "/home/app", Shell: "/bin/ash"}},
		{5, nil}, {6, nil}, {7, nil}, {8, nil}, {4294967295, nil},
	}
	for _, tc := range users {
		got := db.User(tc.uid)
		if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want {
			t.Errorf("User(%d) = %+v, want %+v", tc.uid, got, tc.want)
		}
	}
	for gid, want := range map[uint32]string{0: "root", 4: "adm", 1000: "app"} {
		if g := db.Group(gid); g == nil || g.Name != want {
			t.Errorf("Group(%d) = %+v, want %s", gid, g, want)
		}
	}
	if db.Skipped != 7 {
		t.Errorf("skipped %d lines, want 7 (%s)", db.Skipped, db)
	}
	if _, err := Parse(make([]byte, MaxFileSize+1), nil); err == nil {
		t.Error("Parse accepted an oversized file")
	}
	var nilDB *DB
	if nilDB.User(0) != nil || nilDB.Group(0) != nil {
		t.Error("a nil DB knows names")
	}
}

func FuzzParse(f *testing.F) {
	f.Add([]byte("root:x:0:0:root:/root:/bin/bash\napp:x:1000:1000::/home/app:/bin/sh\n"), []byte("root:x:0:\n"))
	f.Add([]byte("::::::\n#\n+\n-x\n\r\n"), []byte(":::\n"))
	f.Fuzz(func(t *testing.T, passwd, group []byte) {
		db, err := Parse(passwd, group)
		if err != nil {
			return
		}
		for _, u := range db.users {
			if !validName([]byte(u.Name)) || strings.ContainsAny(u.HomeDir+u.Shell, "\n\r\x00:") {
				t.Fatalf("invalid entry kept: %+v", u)
			}
		}
		for _, g := range db.groups {
			if !validName([]byte(g.Name)) || strings.Contains(g.Name, ":") {
				t.Fatalf("invalid group kept: %+v", g)
			}
		}
	})
}

func writeDB(t *testing.T, root, passwd, group string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]string{"passwd": passwd, "group": group} {
		// Write and rename, as useradd does, so the inode changes too.
		tmp := filepath.Join(root, "etc", name+".tmp")
		if err := os.WriteFile(tmp, []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(tmp, filepath.Join(root, "etc", name)); err != nil {
			t.Fatal(err)
		}
	}
}

func TestHostRefresh(t *testing.T) {
	host := t.TempDir()
	writeDB(t, host, "root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n")
	r, err := New(Config{HostRoot: host, Refresh: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ev := &event.Event{Type: event.TypeOpenat, Proc: event.Process{PID: 1, EUID: 1000, EGID: 1000, LoginUID: 0}}
	r.Resolve(ev)
	if ev.Proc.User != nil || ev.Proc.LoginUser == nil || ev.Proc.LoginUser.Name != "root" {
		t.Fatalf("before: user %+v loginuser %+v", ev.Proc.User, ev.Proc.LoginUser)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	writeDB(t, host, "root:x:0:0:root:/root:/bin/sh\nalice:x:1000:1000::/home/alice:/bin/zsh\n", "root:x:0:\nstaff:x:1000:\n")
	testenv.Eventually(t, 5*time.Second, func() bool {
		r.Resolve(ev)
		return ev.Proc.User != nil && ev.Proc.User.Name == "alice" && ev.Proc.Group != nil && ev.Proc.Group.Name == "staff"
	}, "the changed passwd was not re-read: %+v", ev.Proc.User)
	if s := r.Stats(); s.Reloads == 0 {
		t.Errorf("stats %+v: no reload counted", s)
	}
}

// chrooted starts a real process whose root is dir (as a container's is)
// and returns its pid.
func chrooted(t *testing.T, dir string) uint32 {
	t.Helper()
	bb, err := exec.LookPath("busybox")
	testenv.Require(t, err == nil, "busybox-static")
	if err := os.MkdirAll(filepath.Join(dir, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), data, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("/bin/busybox", "sleep", "60")
	cmd.SysProcAttr = &syscall.SysProcAttr{Chroot: dir}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return uint32(cmd.Process.Pid)
}

func TestContainerRoot(t *testing.T) {
	testenv.RequireRoot(t)
	host := t.TempDir()
	writeDB(t, host, "root:x:0:0:root:/root:/bin/sh\nhostuser:x:1000:1000::/home/h:/bin/sh\n", "root:x:0:\n")
	ctr := t.TempDir()
	writeDB(t, ctr, "root:x:0:0:root:/root:/bin/ash\napp:x:1000:1000::/srv/app:/bin/ash\n", "root:x:0:\napp:x:1000:\n")
	pid := chrooted(t, ctr)

	// A container whose passwd is an absolute symlink: resolved inside the
	// container (to its own, absent /etc/shadow), never the sensor's file.
	evil := t.TempDir()
	if err := os.MkdirAll(filepath.Join(evil, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/shadow", filepath.Join(evil, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	evilPid := chrooted(t, evil)

	r, err := New(Config{HostRoot: host, MissWait: 5 * time.Second, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)

	ev := &event.Event{Type: event.TypeExecve, Proc: event.Process{PID: pid, EUID: 1000, EGID: 1000, LoginUID: 0xffffffff, ContainerID: "c1"}}
	r.Resolve(ev) // first event: waits for the read
	if ev.Proc.User == nil || *ev.Proc.User != (event.User{Name: "app", HomeDir: "/srv/app", Shell: "/bin/ash"}) || ev.Proc.Group.Name != "app" {
		t.Fatalf("container user %+v group %+v", ev.Proc.User, ev.Proc.Group)
	}
	if ev.Proc.LoginUser != nil {
		t.Errorf("unset loginuid resolved to %+v", ev.Proc.LoginUser)
	}
	host1 := &event.Event{Type: event.TypeExecve, Proc: event.Process{PID: 1, EUID: 1000}}
	r.Resolve(host1)
	if host1.Proc.User == nil || host1.Proc.User.Name != "hostuser" {
		t.Errorf("host user %+v", host1.Proc.User)
	}

	bad := &event.Event{Type: event.TypeExecve, Proc: event.Process{PID: evilPid, EUID: 0, ContainerID: "c2"}}
	r.Resolve(bad)
	if bad.Proc.User != nil {
		t.Errorf("symlinked passwd resolved outside the container: %+v", bad.Proc.User)
	}
	if s := r.Stats(); s.Roots != 2 || s.LoadErrors != 1 {
		t.Errorf("stats %+v", s)
	}
}

func BenchmarkResolve(b *testing.B) {
	host := b.TempDir()
	if err := os.MkdirAll(filepath.Join(host, "etc"), 0o755); err != nil {
		b.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(host, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644)
	_ = os.WriteFile(filepath.Join(host, "etc", "group"), []byte("root:x:0:\n"), 0o644)
	r, err := New(Config{HostRoot: host})
	if err != nil {
		b.Fatal(err)
	}
	// A cached container root, as after its first event.
	rt := &root{id: "c1"}
	rt.db.Store(r.host.db.Load())
	m := map[string]*root{"c1": rt}
	r.roots.Store(&m)
	evs := []*event.Event{
		{Type: event.TypeOpenat, Proc: event.Process{PID: 10, LoginUID: 0}},
		{Type: event.TypeOpenat, Proc: event.Process{PID: 11, ContainerID: "c1"}},
	}
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ev := evs[i&1]
		r.Resolve(ev)
		if ev.Proc.User == nil {
			b.Fatal("not resolved")
		}
	}
}

// TestContainerNotEntered: a container's process that still has the host's
// root (runc init before pivot_root) must not give the container the host's
// names; its next exec retries.
func TestContainerNotEntered(t *testing.T) {
	testenv.RequireRoot(t)
	r, err := New(Config{MissWait: 5 * time.Second, Refresh: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go r.Run(ctx)
	ev := &event.Event{Type: event.TypeOpenat, Proc: event.Process{PID: uint32(os.Getpid()), EUID: 0, ContainerID: "c3"}}
	r.Resolve(ev)
	if ev.Proc.User != nil {
		t.Errorf("container process in the host root got %+v", ev.Proc.User)
	}
	ctr := t.TempDir()
	writeDB(t, ctr, "root:x:0:0:ctr-root:/root:/bin/ash\n", "root:x:0:\n")
	ev.Type, ev.Proc.PID = event.TypeExecve, chrooted(t, ctr)
	r.Resolve(ev)
	if ev.Proc.User == nil || ev.Proc.User.Shell != "/bin/ash" {
		t.Errorf("after entering its root: %+v (stats %+v)", ev.Proc.User, r.Stats())
	}
}

// TestRootOutlivesProcess: a container's files are read through its root
// opened once, so a process that exits between the passwd and the group
// file (a short-lived exec, often a container's first) cannot leave the
// container with user names and no group names, as reopening
// /proc/PID/root for each file did.
func TestRootOutlivesProcess(t *testing.T) {
	testenv.RequireRoot(t)
	ctr := t.TempDir()
	writeDB(t, ctr, "root:x:0:0:root:/root:/bin/ash\napp:x:1000:1000::/srv/app:/bin/ash\n", "root:x:0:\napp:x:1000:\n")
	pid := chrooted(t, ctr)
	dir := fmt.Sprintf("/proc/%d/root", pid)
	dfd, err := openRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	passwd, _, err := readInRoot(dfd, "etc/passwd")
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Kill(int(pid), unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for _, err := os.Stat(dir); err == nil; _, err = os.Stat(dir) {
		if time.Now().After(deadline) {
			t.Fatalf("%s still reachable after SIGKILL", dir)
		}
		time.Sleep(5 * time.Millisecond)
	}
	group, _, err := readInRoot(dfd, "etc/group")
	if err != nil {
		t.Fatalf("group file through the root opened before the exit: %v", err)
	}
	db, err := Parse(passwd, group)
	if err != nil {
		t.Fatal(err)
	}
	if g := db.Group(1000); g == nil || g.Name != "app" {
		t.Errorf("group 1000 = %+v", g)
	}
}
