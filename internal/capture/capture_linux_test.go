//go:build linux && (amd64 || arm64)

package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/testenv"
)

// The test binary doubles as the helper process that makes the syscalls
// under test: TRIPLINE_HELPER selects the scenario, TRIPLINE_ARG its input.
func TestMain(m *testing.M) {
	// The main goroutine keeps the main thread: a test that locks a
	// thread to change its namespaces cannot leave it wedged there, where
	// /proc/self would see that namespace.
	runtime.LockOSThread()
	if s := os.Getenv("TRIPLINE_HELPER"); s != "" {
		if err := runHelper(s, os.Getenv("TRIPLINE_ARG")); err != nil {
			fmt.Fprintln(os.Stderr, "helper:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func runHelper(scenario, arg string) error {
	switch scenario {
	case "int80": // an ia32 syscall (amd64), which some kernels refuse
		return compatHelper()
	case "relopen": // chdir then open a relative path
		if err := os.Chdir(arg); err != nil {
			return err
		}
		return openClose("target.txt")
	case "dirfd": // openat relative to a directory fd
		d, err := unix.Open(arg, unix.O_DIRECTORY|unix.O_RDONLY, 0)
		if err != nil {
			return err
		}
		fd, err := unix.Openat(d, "target.txt", unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		unix.Close(fd)
		return nil
	case "open": // open the path as given (symlink, "..", missing file)
		_ = openClose(arg)
		return nil
	case "relmissing": // failed relative open
		if err := os.Chdir(arg); err != nil {
			return err
		}
		_ = openClose("sub/../missing.txt")
		return nil
	case "burst":
		n, _ := strconv.Atoi(arg)
		for range n {
			fd, err := unix.Open("/dev/null", unix.O_RDONLY, 0)
			if err != nil {
				return err
			}
			unix.Close(fd)
		}
		return nil
	case "unixrel": // connect to a unix socket by a path relative to arg
		if err := os.Chdir(arg); err != nil {
			return err
		}
		return blockingConnect("unix", "s.sock")
	case "connect":
		// arg: network,address
		network, addr, _ := strings.Cut(arg, ",")
		return blockingConnect(network, addr)
	case "connectlist": // semicolon-separated network,address connects, in order
		for _, op := range strings.Split(arg, ";") {
			network, addr, _ := strings.Cut(op, ",")
			if err := blockingConnect(network, addr); err != nil {
				return err
			}
		}
		return nil
	case "memfd":
		return execMemfd()
	case "ident":
		return identChanges(arg)
	case "openlist": // comma-separated r:PATH (read) or w:PATH (write) opens; r2:, w2: through openat2
		for _, op := range strings.Split(arg, ",") {
			mode, p, _ := strings.Cut(op, ":")
			flags := unix.O_RDONLY
			if strings.HasPrefix(mode, "w") {
				flags = unix.O_WRONLY | unix.O_CREAT
			}
			var fd int
			var err error
			if strings.HasSuffix(mode, "2") {
				how := unix.OpenHow{Flags: uint64(flags | unix.O_CLOEXEC)}
				if flags&unix.O_CREAT != 0 {
					how.Mode = 0o644 // openat2 refuses a mode without O_CREAT (EINVAL)
				}
				fd, err = unix.Openat2(unix.AT_FDCWD, p, &how)
			} else {
				fd, err = unix.Open(p, flags|unix.O_CLOEXEC, 0o644)
			}
			if err == nil {
				unix.Close(fd)
			}
		}
		return nil
	}
	return fmt.Errorf("unknown scenario %q", scenario)
}

// blockingConnect connects with a blocking socket, so connect(2) returns
// the final result (Go's net package would get EINPROGRESS).
func blockingConnect(network, addr string) error {
	var domain, typ int
	var sa unix.Sockaddr
	switch network {
	case "unix":
		domain, typ, sa = unix.AF_UNIX, unix.SOCK_STREAM, &unix.SockaddrUnix{Name: addr}
	default:
		ap, err := netip.ParseAddrPort(addr)
		if err != nil {
			return err
		}
		typ = unix.SOCK_STREAM
		if strings.HasPrefix(network, "udp") {
			typ = unix.SOCK_DGRAM
		}
		if ap.Addr().Is4() {
			domain, sa = unix.AF_INET, &unix.SockaddrInet4{Addr: ap.Addr().As4(), Port: int(ap.Port())}
		} else {
			domain, sa = unix.AF_INET6, &unix.SockaddrInet6{Addr: ap.Addr().As16(), Port: int(ap.Port())}
		}
	}
	fd, err := unix.Socket(domain, typ|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	_ = unix.Connect(fd, sa) // the result is what the test checks in the event
	return nil
}

func openClose(p string) error {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return unix.Close(fd)
}

// execMemfd copies /bin/true into a memfd and runs it with execveat(AT_EMPTY_PATH).
func execMemfd() error {
	fd, err := unix.MemfdCreate("tripline-test", 0)
	if err != nil {
		return err
	}
	src, err := os.Open("/bin/true")
	if err != nil {
		return err
	}
	dst := os.NewFile(uintptr(fd), "memfd")
	if _, err := io.Copy(dst, src); err != nil {
		return err
	}
	arg0, err := unix.BytePtrFromString("true-from-memfd")
	if err != nil {
		return err
	}
	argv := []*byte{arg0, nil}
	envv := []*byte{nil}
	empty, _ := unix.BytePtrFromString("")
	_, _, errno := unix.Syscall6(unix.SYS_EXECVEAT, uintptr(fd), uintptr(unsafe.Pointer(empty)),
		uintptr(unsafe.Pointer(&argv[0])), uintptr(unsafe.Pointer(&envv[0])), unix.AT_EMPTY_PATH, 0)
	return errno
}

// collector runs a Capture and keeps clones of every event.
type collector struct {
	c      *Capture
	mu     sync.Mutex
	evs    []*event.Event
	cancel context.CancelFunc
	done   chan error
}

func startCapture(t *testing.T, cfg Config) *collector {
	t.Helper()
	testenv.RequireRoot(t)
	c, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	col := &collector{c: c, cancel: cancel, done: make(chan error, 1)}
	go func() {
		col.done <- c.Run(ctx, func(ev *event.Event) {
			cl := ev.Clone()
			col.mu.Lock()
			col.evs = append(col.evs, cl)
			col.mu.Unlock()
		})
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-col.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if err := c.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return col
}

func (col *collector) find(pred func(*event.Event) bool) *event.Event {
	col.mu.Lock()
	defer col.mu.Unlock()
	for _, e := range col.evs {
		if pred(e) {
			return e
		}
	}
	return nil
}

func (col *collector) wait(t *testing.T, what string, pred func(*event.Event) bool) *event.Event {
	t.Helper()
	var got *event.Event
	testenv.Eventually(t, 10*time.Second, func() bool {
		got = col.find(pred)
		return got != nil
	}, "no event: %s", what)
	return got
}

// helper runs the test binary as a helper process and returns its pid.
func helper(t *testing.T, scenario, arg string) uint32 {
	t.Helper()
	return helperWith(t, nil, scenario, arg)
}

// newNetNS puts a helper in a network namespace of its own, whose
// loopback is down: its connects fail before the socket takes the address.
func newNetNS() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWNET}
}

// helperWith is helper with the child's attributes (namespaces, ...).
func helperWith(t *testing.T, attr *syscall.SysProcAttr, scenario, arg string) uint32 {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.SysProcAttr = attr
	cmd.Env = append(os.Environ(), "TRIPLINE_HELPER="+scenario, "TRIPLINE_ARG="+arg)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("helper %s: %v\n%s", scenario, err, out)
	}
	return uint32(cmd.ProcessState.Pid())
}

func realDir(t *testing.T) string {
	t.Helper()
	d, err := filepath.EvalSymlinks(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func writeFile(t *testing.T, p, content string, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

func openOf(pid uint32, path string) func(*event.Event) bool {
	return func(e *event.Event) bool {
		return e.Class() == event.ClassOpen && e.Proc.PID == pid && e.Open.Path == path
	}
}

func TestCapture(t *testing.T) {
	testenv.RequireRoot(t)
	col := startCapture(t, Config{PID: uint32(os.Getpid())})
	dir := realDir(t)
	target := filepath.Join(dir, "target.txt")
	writeFile(t, target, "x", 0o644)
	if err := os.Mkdir(filepath.Join(dir, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.txt", filepath.Join(dir, "link.txt")); err != nil {
		t.Fatal(err)
	}

	t.Run("relative open after chdir", func(t *testing.T) {
		pid := helper(t, "relopen", dir)
		e := col.wait(t, "open of "+target, openOf(pid, target))
		if e.Open.RawPath != "target.txt" || e.Res < 0 || e.Open.DirFD != atFDCWD {
			t.Errorf("raw=%q res=%d dirfd=%d", e.Open.RawPath, e.Res, e.Open.DirFD)
		}
		if e.Open.Ino == 0 || e.Open.Flags&unix.O_CLOEXEC == 0 {
			t.Errorf("ino=%d flags=%#x", e.Open.Ino, e.Open.Flags)
		}
		checkIdentity(t, e, pid)
	})
	t.Run("openat with dirfd", func(t *testing.T) {
		pid := helper(t, "dirfd", dir)
		e := col.wait(t, "openat via dirfd", openOf(pid, target))
		if e.Type != event.TypeOpenat || e.Open.DirFD < 0 || e.Open.RawPath != "target.txt" {
			t.Errorf("type=%v dirfd=%d raw=%q", e.Type, e.Open.DirFD, e.Open.RawPath)
		}
	})
	t.Run("open through symlink", func(t *testing.T) {
		link := filepath.Join(dir, "link.txt")
		pid := helper(t, "open", link)
		e := col.wait(t, "open via symlink", openOf(pid, target))
		if e.Open.RawPath != link {
			t.Errorf("raw=%q", e.Open.RawPath)
		}
	})
	t.Run("open through dotdot", func(t *testing.T) {
		raw := dir + "/sub/../target.txt"
		pid := helper(t, "open", raw)
		e := col.wait(t, "open via ..", openOf(pid, target))
		if e.Open.RawPath != raw {
			t.Errorf("raw=%q", e.Open.RawPath)
		}
	})
	t.Run("failed open", func(t *testing.T) {
		missing := filepath.Join(dir, "missing.txt")
		pid := helper(t, "open", missing)
		e := col.wait(t, "failed open", openOf(pid, missing))
		if e.Res != -int64(unix.ENOENT) || !e.Failed() {
			t.Errorf("res=%d", e.Res)
		}
		pid = helper(t, "relmissing", dir)
		e = col.wait(t, "failed relative open", openOf(pid, missing))
		if e.Res != -int64(unix.ENOENT) || e.Open.RawPath != "sub/../missing.txt" {
			t.Errorf("res=%d raw=%q", e.Res, e.Open.RawPath)
		}
	})

	t.Run("exec script via shebang", func(t *testing.T) {
		script := filepath.Join(dir, "script.sh")
		writeFile(t, script, "#!/bin/sh\nexit 0\n", 0o755)
		cmd := exec.Command(script, "arg1")
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := uint32(cmd.ProcessState.Pid())
		sh, _ := filepath.EvalSymlinks("/bin/sh")
		e := col.wait(t, "exec of script", func(e *event.Event) bool {
			return e.Class() == event.ClassExec && e.Proc.PID == pid && e.Res == 0
		})
		if e.Proc.ExePath != sh || e.Open.RawPath != script {
			t.Errorf("exepath=%q (want %q) filename=%q", e.Proc.ExePath, sh, e.Open.RawPath)
		}
		if len(e.Proc.Argv) != 3 || e.Proc.Argv[1] != script || e.Proc.Argv[2] != "arg1" {
			t.Errorf("argv=%q", e.Proc.Argv)
		}
		wd, _ := os.Getwd()
		if e.Proc.Cwd != wd || e.Proc.CgroupPath == "" || e.Proc.StartTime == 0 {
			t.Errorf("cwd=%q (want %q) cgroup=%q start=%d", e.Proc.Cwd, wd, e.Proc.CgroupPath, e.Proc.StartTime)
		}
		checkIdentity(t, e, pid)
	})
	t.Run("exec through symlink", func(t *testing.T) {
		link := filepath.Join(dir, "true-link")
		if err := os.Symlink("/bin/true", link); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(link)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := uint32(cmd.ProcessState.Pid())
		real, _ := filepath.EvalSymlinks("/bin/true")
		e := col.wait(t, "exec via symlink", func(e *event.Event) bool {
			return e.Class() == event.ClassExec && e.Proc.PID == pid && e.Res == 0
		})
		if e.Proc.ExePath != real || e.Proc.ExeFromMemfd || e.Proc.Comm != "true-link" {
			t.Errorf("exepath=%q want %q memfd=%v comm=%q", e.Proc.ExePath, real, e.Proc.ExeFromMemfd, e.Proc.Comm)
		}
	})
	t.Run("failed exec", func(t *testing.T) {
		missing := filepath.Join(dir, "no-such-binary")
		cmd := exec.Command(missing)
		if err := cmd.Run(); err == nil {
			t.Fatal("exec of a missing file succeeded")
		}
		e := col.wait(t, "failed exec", func(e *event.Event) bool {
			return e.Class() == event.ClassExec && e.Open.RawPath == missing
		})
		if e.Res != -int64(unix.ENOENT) || e.Type != event.TypeExecve || e.Proc.ExePath == "" {
			t.Errorf("res=%d type=%v exepath=%q", e.Res, e.Type, e.Proc.ExePath)
		}
	})
	t.Run("execveat memfd", func(t *testing.T) {
		pid := helper(t, "memfd", "")
		e := col.wait(t, "execveat of memfd", func(e *event.Event) bool {
			return e.Type == event.TypeExecveat && e.Proc.PID == pid && e.Res == 0
		})
		if !e.Proc.ExeFromMemfd || len(e.Proc.Argv) != 1 || e.Proc.Argv[0] != "true-from-memfd" {
			t.Errorf("memfd=%v argv=%q exepath=%q", e.Proc.ExeFromMemfd, e.Proc.Argv, e.Proc.ExePath)
		}
	})
	t.Run("argv truncated", func(t *testing.T) {
		args := make([]string, 50)
		for i := range args {
			args[i] = strings.Repeat(string(rune('a'+i%26)), 200)
		}
		cmd := exec.Command("/bin/true", args...)
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := uint32(cmd.ProcessState.Pid())
		e := col.wait(t, "exec with long argv", func(e *event.Event) bool {
			return e.Class() == event.ClassExec && e.Proc.PID == pid
		})
		if e.Flags&event.FlagArgvTruncated == 0 {
			t.Errorf("flags=%v: not truncated", e.Flags)
		}
		if n := len(strings.Join(e.Proc.Argv, "\x00")); n > DefaultArgvMax || n < DefaultArgvMax-1 {
			t.Errorf("captured %d argv bytes, cap %d", n, DefaultArgvMax)
		}
		if e.Proc.Argv[0] != "/bin/true" || e.Proc.Argv[1] != args[0] {
			t.Errorf("argv[:2]=%q", e.Proc.Argv[:2])
		}
	})

	t.Run("environment", func(t *testing.T) {
		cmd := exec.Command("/bin/true")
		cmd.Env = []string{"GLIBC_TUNABLES=glibc.malloc.mxfast=0", "EMPTY=", "API_TOKEN=s3cr3t"}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := uint32(cmd.ProcessState.Pid())
		e := col.wait(t, "exec with an environment", func(e *event.Event) bool {
			return e.Class() == event.ClassExec && e.Proc.PID == pid
		})
		if !slices.Equal(e.Proc.Env, cmd.Env) || e.Flags&event.FlagEnvTruncated != 0 {
			t.Errorf("env=%q flags=%v, want %q", e.Proc.Env, e.Flags, cmd.Env)
		}
	})
	t.Run("environment truncated", func(t *testing.T) {
		cmd := exec.Command("/bin/true")
		for i := range 40 {
			cmd.Env = append(cmd.Env, fmt.Sprintf("V%02d=%s", i, strings.Repeat("x", 200)))
		}
		if err := cmd.Run(); err != nil {
			t.Fatal(err)
		}
		pid := uint32(cmd.ProcessState.Pid())
		e := col.wait(t, "exec with a long environment", func(e *event.Event) bool {
			return e.Class() == event.ClassExec && e.Proc.PID == pid
		})
		if e.Flags&event.FlagEnvTruncated == 0 {
			t.Errorf("flags=%v: not truncated", e.Flags)
		}
		if n := len(strings.Join(e.Proc.Env, "\x00")); n > DefaultEnvMax || n < DefaultEnvMax-1 {
			t.Errorf("captured %d environment bytes, cap %d", n, DefaultEnvMax)
		}
		if len(e.Proc.Env) == 0 || e.Proc.Env[0] != cmd.Env[0] {
			t.Errorf("env[0]=%q", e.Proc.Env)
		}
	})

	t.Run("exe writable", func(t *testing.T) { testExeWritable(t, col) })
	t.Run("overlay layers", func(t *testing.T) { testOverlay(t, col) })

	t.Run("fork and exit", func(t *testing.T) {
		cmd := exec.Command("/bin/sh", "-c", "/bin/true; exit 7")
		_ = cmd.Run()
		pid := uint32(cmd.ProcessState.Pid())
		f := col.wait(t, "fork by sh", func(e *event.Event) bool {
			return e.Class() == event.ClassFork && e.Proc.PID == pid && !e.Fork.IsThread
		})
		child := f.Fork.ChildPID
		if child == 0 || f.Res != int64(f.Fork.ChildTID) || f.Proc.CgroupPath == "" {
			t.Errorf("fork=%+v res=%d cgroup=%q", f.Fork, f.Res, f.Proc.CgroupPath)
		}
		col.wait(t, "exec by the child", func(e *event.Event) bool {
			return e.Class() == event.ClassExec && e.Proc.PID == child && e.Proc.PPID == pid
		})
		ce := col.wait(t, "exit of the child", func(e *event.Event) bool {
			return e.Type == event.TypeProcexit && e.Proc.PID == child
		})
		if ce.Exit.Code != 0 || ce.Exit.Thread {
			t.Errorf("child exit=%+v", ce.Exit)
		}
		pe := col.wait(t, "exit of sh", func(e *event.Event) bool {
			return e.Type == event.TypeProcexit && e.Proc.PID == pid && !e.Exit.Thread
		})
		if pe.Exit.Code != 7 || pe.Exit.Signal != 0 {
			t.Errorf("sh exit=%+v", pe.Exit)
		}
	})
	t.Run("killed by signal", func(t *testing.T) {
		cmd := exec.Command("/bin/sh", "-c", "kill -9 $$")
		_ = cmd.Run()
		pid := uint32(cmd.ProcessState.Pid())
		e := col.wait(t, "exit by SIGKILL", func(e *event.Event) bool {
			return e.Type == event.TypeProcexit && e.Proc.PID == pid
		})
		if e.Exit.Signal != int32(unix.SIGKILL) {
			t.Errorf("exit=%+v", e.Exit)
		}
	})

	testConnect(t, col, dir)
}

// sharedDir returns a fresh directory that other users may enter (t.TempDir
// is 0700), removed when the test ends.
func sharedDir(t *testing.T) string {
	t.Helper()
	d, err := os.MkdirTemp("", "tripline-exe-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(d) })
	if err := os.Chmod(d, 0o755); err != nil {
		t.Fatal(err)
	}
	return d
}

func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, dst, string(b), mode)
	if err := os.Chmod(dst, mode); err != nil { // not subject to the umask
		t.Fatal(err)
	}
}

// execAs runs path with the given uid/gid (0: unchanged) and returns the
// exec event.
func execAs(t *testing.T, col *collector, path string, uid uint32) *event.Event {
	t.Helper()
	cmd := exec.Command(path)
	if uid != 0 {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uid, Gid: uid}}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s as uid %d: %v\n%s", path, uid, err, out)
	}
	pid := uint32(cmd.ProcessState.Pid())
	return col.wait(t, "exec of "+path, func(e *event.Event) bool {
		return e.Class() == event.ClassExec && e.Proc.PID == pid && e.Res == 0
	})
}

func testExeWritable(t *testing.T, col *collector) {
	dir := sharedDir(t)
	locked := filepath.Join(dir, "true-0755")
	open := filepath.Join(dir, "true-0757")
	copyFile(t, "/bin/true", locked, 0o755)
	copyFile(t, "/bin/true", open, 0o757)
	// The same file through a read-only bind mount: not writable, even for root.
	ro := filepath.Join(sharedDir(t), "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mount(dir, ro, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Unmount(ro, unix.MNT_DETACH) })
	if err := unix.Mount("", ro, "", unix.MS_BIND|unix.MS_REMOUNT|unix.MS_RDONLY, ""); err != nil {
		t.Fatal(err)
	}
	const nobody = 65534
	for _, c := range []struct {
		name string
		path string
		uid  uint32
		want bool
	}{
		{"root (CAP_DAC_OVERRIDE)", locked, 0, true},
		{"other user, no write bit", locked, nobody, false},
		{"other user, world-writable", open, nobody, true},
		{"root, read-only mount", filepath.Join(ro, "true-0755"), 0, false},
	} {
		e := execAs(t, col, c.path, c.uid)
		if e.Proc.ExeWritable != c.want || e.Proc.UID != c.uid {
			t.Errorf("%s: writable=%v (want %v) uid=%d", c.name, e.Proc.ExeWritable, c.want, e.Proc.UID)
		}
	}
}

// testOverlay runs one executable from each layer of a real overlayfs mount.
func testOverlay(t *testing.T, col *collector) {
	dir := sharedDir(t)
	lower, upper, work, merged := filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "merged")
	for _, d := range []string{lower, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(t, "/bin/true", filepath.Join(lower, "from-lower"), 0o755)
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
	if err := unix.Mount("overlay", merged, "overlay", 0, opts); err != nil {
		t.Fatalf("mount overlay (the kernel needs CONFIG_OVERLAY_FS): %v", err)
	}
	t.Cleanup(func() { unix.Unmount(merged, unix.MNT_DETACH) })
	// Written through the mount: the file lands on the upper layer, as a
	// binary dropped into a running container does.
	copyFile(t, "/bin/true", filepath.Join(merged, "from-upper"), 0o755)

	for _, c := range []struct {
		name         string
		path         string
		upper, lower bool
	}{
		{"lower layer", filepath.Join(merged, "from-lower"), false, true},
		{"upper layer", filepath.Join(merged, "from-upper"), true, false},
		{"not overlayfs", "/bin/true", false, false},
	} {
		e := execAs(t, col, c.path, 0)
		if e.Proc.ExeUpperLayer != c.upper || e.Proc.ExeLowerLayer != c.lower {
			t.Errorf("%s: upper=%v lower=%v, want %v %v (exe %q)", c.name, e.Proc.ExeUpperLayer, e.Proc.ExeLowerLayer, c.upper, c.lower, e.Proc.ExePath)
		}
	}
}

// acceptAndClose accepts and closes every connection to l until l closes.
func acceptAndClose(l net.Listener) {
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
}

func testConnect(t *testing.T, col *collector, dir string) {
	connectOf := func(pid uint32) func(*event.Event) bool {
		return func(e *event.Event) bool { return e.Type == event.TypeConnect && e.Proc.PID == pid }
	}
	inet := func(t *testing.T, network, laddr string, ip string) {
		l, err := net.Listen(network, laddr)
		testenv.Require(t, err == nil, fmt.Sprintf("a %s loopback (%v)", network, err))
		defer l.Close()
		acceptAndClose(l)
		port := l.Addr().(*net.TCPAddr).Port
		pid := helper(t, "connect", network+","+l.Addr().String())
		e := col.wait(t, "connect", connectOf(pid))
		c := e.Connect
		if e.Res != 0 || c.Proto != event.ProtoTCP || c.SockType != unix.SOCK_STREAM {
			t.Errorf("res=%d proto=%d type=%d", e.Res, c.Proto, c.SockType)
		}
		if c.RemoteAddr.String() != ip || int(c.RemotePort) != port || c.LocalAddr.String() != ip || c.LocalPort == 0 {
			t.Errorf("connect %+v", c)
		}
	}
	t.Run("tcp4 connect", func(t *testing.T) {
		inet(t, "tcp4", "127.0.0.1:0", "127.0.0.1")
	})
	t.Run("tcp6 connect", func(t *testing.T) {
		inet(t, "tcp6", "[::1]:0", "::1")
	})
	t.Run("udp connect", func(t *testing.T) {
		pid := helper(t, "connect", "udp4,127.0.0.1:9")
		e := col.wait(t, "udp connect", connectOf(pid))
		c := e.Connect
		if e.Res != 0 || c.Proto != event.ProtoUDP || c.SockType != unix.SOCK_DGRAM || c.Family != event.AFInet ||
			c.RemotePort != 9 || c.LocalPort == 0 {
			t.Errorf("res=%d connect=%+v", e.Res, c)
		}
	})
	t.Run("unix connect", func(t *testing.T) {
		sock := filepath.Join(dir, "s.sock")
		l, err := net.Listen("unix", sock)
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		acceptAndClose(l)
		pid := helper(t, "connect", "unix,"+sock)
		e := col.wait(t, "unix connect", connectOf(pid))
		if e.Res != 0 || e.Connect.Family != event.AFUnix || e.Connect.UnixPath != sock {
			t.Errorf("res=%d connect=%+v", e.Res, e.Connect)
		}
		// A relative path names the peer's bound address: the kernel's
		// view, not the caller's buffer.
		pid = helper(t, "unixrel", dir)
		e = col.wait(t, "relative unix connect", connectOf(pid))
		if e.Res != 0 || e.Connect.UnixPath != sock {
			t.Errorf("relative: res=%d path=%q, want %q", e.Res, e.Connect.UnixPath, sock)
		}
	})
	// Connects that fail before the socket takes the address: the record
	// carries the caller's sockaddr.
	t.Run("unix connect to no socket", func(t *testing.T) {
		sock := filepath.Join(dir, "none.sock")
		pid := helper(t, "connect", "unix,"+sock)
		e := col.wait(t, "unix connect to no socket", connectOf(pid))
		if e.Res != -int64(unix.ENOENT) || e.Connect.Family != event.AFUnix || e.Connect.UnixPath != sock {
			t.Errorf("res=%d connect=%+v, want -ENOENT to %s", e.Res, e.Connect, sock)
		}
	})
	t.Run("connect without a route", func(t *testing.T) {
		pid := helperWith(t, newNetNS(), "connect", "tcp4,127.0.0.1:7")
		e := col.wait(t, "connect without a route", connectOf(pid))
		c := e.Connect
		if e.Res != -int64(unix.ENETUNREACH) || c.Family != event.AFInet || c.RemoteAddr.String() != "127.0.0.1" || c.RemotePort != 7 {
			t.Errorf("res=%d connect=%+v, want -ENETUNREACH to 127.0.0.1:7", e.Res, c)
		}
	})
	t.Run("refused connect", func(t *testing.T) {
		l, err := net.Listen("tcp4", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		pid := helper(t, "connect", "tcp4,"+addr)
		e := col.wait(t, "refused connect", connectOf(pid))
		if e.Res != -int64(unix.ECONNREFUSED) {
			t.Errorf("res=%d, want -ECONNREFUSED", e.Res)
		}
	})
}

func checkIdentity(t *testing.T, e *event.Event, pid uint32) {
	t.Helper()
	p := e.Proc
	if p.PID != pid || p.TID == 0 || p.PPID == 0 || p.VPID != pid || p.PidNS == 0 || p.MntNS == 0 || p.CgroupID == 0 {
		t.Errorf("identity %+v", p)
	}
	// Children inherit our session. It is 0 when no ancestor ever called
	// setsid (CI's init), so compare with ours rather than demand non-zero.
	if sid, err := unix.Getsid(0); err == nil && p.SID != uint32(sid) {
		t.Errorf("sid=%d, want %d (ours)", p.SID, sid)
	}
	if p.UID != uint32(os.Getuid()) || p.GID != uint32(os.Getgid()) || p.EUID != uint32(os.Geteuid()) {
		t.Errorf("creds uid=%d gid=%d euid=%d", p.UID, p.GID, p.EUID)
	}
	if p.CapEffective == 0 || p.CapPermitted == 0 {
		t.Errorf("caps eff=%#x perm=%#x (root)", p.CapEffective, p.CapPermitted)
	}
	now := time.Now().UnixNano()
	if d := now - e.Timestamp; d < 0 || d > int64(time.Minute) {
		t.Errorf("timestamp %v is %v from now", e.Time(), time.Duration(d))
	}
	if e.Timestamp < p.StartTime || e.Timestamp-p.StartTime > int64(time.Minute) {
		t.Errorf("start time %d vs event %d", p.StartTime, e.Timestamp)
	}
	if e.Proc.Comm == "" {
		t.Error("no comm")
	}
}

// TestBurst: 200k opens from a helper; the counters balance exactly and a
// reader keeping up (ring large enough for its scheduling jitter) loses nothing.
func TestBurst(t *testing.T) {
	testenv.RequireRoot(t)
	const n = 200000
	c, err := New(Config{PID: uint32(os.Getpid()), RingSize: 128 << 20, Types: event.ClassOpen.Types()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var mu sync.Mutex
	var hpid uint32
	count := 0
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(e *event.Event) {
			if e.Open.Path == "/dev/null" {
				mu.Lock()
				if e.Proc.PID == hpid || hpid == 0 {
					count++
				}
				mu.Unlock()
			}
		})
	}()
	pid := helper(t, "burst", strconv.Itoa(n))
	mu.Lock()
	hpid = pid
	mu.Unlock()
	testenv.Eventually(t, 60*time.Second, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return count >= n
	}, "received fewer than %d opens (stats %+v)", n, c.Stats())
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	s := c.Stats()
	if s.Seen != s.Delivered+s.Lost {
		t.Errorf("seen %d != delivered %d + lost %d", s.Seen, s.Delivered, s.Lost)
	}
	if s.Lost != 0 || s.Malformed != 0 {
		t.Errorf("lost %d malformed %d", s.Lost, s.Malformed)
	}
	if count != n {
		t.Errorf("got %d opens of /dev/null, want %d", count, n)
	}
}

// TestStopDrains: records still queued when the capture stops are read, not
// lost: Stop detaches the programs and Read returns what the ring holds
// before ErrClosed.
func TestStopDrains(t *testing.T) {
	testenv.RequireRoot(t)
	const n = 20000
	c, err := New(Config{PID: uint32(os.Getpid()), RingSize: 32 << 20, Types: event.ClassOpen.Types()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if c.RingSize() != 32<<20 { // a set size wins
		t.Fatalf("RingSize() = %d, want the 32 MiB asked for", c.RingSize())
	}
	pid := helper(t, "burst", strconv.Itoa(n)) // nothing reads meanwhile
	testenv.Eventually(t, 30*time.Second, func() bool { return c.Stats().Delivered >= n },
		"the kernel delivered fewer than %d records (stats %+v)", n, c.Stats())
	if !c.Pending() {
		t.Fatal("records are queued but Pending is false")
	}
	c.Stop(time.Minute)
	c.Stop(time.Minute) // idempotent
	count := 0
	var ev event.Event
	for {
		err := c.Read(&ev)
		if errors.Is(err, ErrClosed) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if ev.Proc.PID == pid && ev.Open.Path == "/dev/null" {
			count++
		}
	}
	s := c.Stats()
	if count != n || s.Lost != 0 || s.Decoded+s.Malformed != s.Delivered {
		t.Errorf("read %d of %d opens after Stop; stats %+v", count, n, s)
	}
	if c.Pending() {
		t.Error("Pending after the capture closed")
	}
}

func TestSetTypesAndClose(t *testing.T) {
	testenv.RequireRoot(t)
	col := startCapture(t, Config{PID: uint32(os.Getpid()), Types: []event.Type{event.TypeProcexit}})
	cmd := exec.Command("/bin/true")
	_ = cmd.Run()
	pid := uint32(cmd.ProcessState.Pid())
	col.wait(t, "exit", func(e *event.Event) bool { return e.Type == event.TypeProcexit && e.Proc.PID == pid })
	if e := col.find(func(e *event.Event) bool { return e.Proc.PID == pid && e.Type != event.TypeProcexit }); e != nil {
		t.Errorf("type filter let through %v", e.Type)
	}
	if err := col.c.SetTypes(event.ClassExec.Types()); err != nil {
		t.Fatal(err)
	}
	cmd = exec.Command("/bin/true")
	_ = cmd.Run()
	pid = uint32(cmd.ProcessState.Pid())
	col.wait(t, "exec after SetTypes", func(e *event.Event) bool { return e.Class() == event.ClassExec && e.Proc.PID == pid })
	if err := col.c.SetTypes([]event.Type{event.TypeContainer}); err == nil {
		t.Error("SetTypes accepted a type the kernel cannot produce")
	}

	c, err := New(Config{PID: 1})
	if err != nil {
		t.Fatal(err)
	}
	if want := ringSizeFor(onlineCPUs()); c.RingSize() != want {
		t.Errorf("default RingSize() = %d, want %d for %d CPUs", c.RingSize(), want, onlineCPUs())
	}
	errc := make(chan error, 1)
	go func() {
		var ev event.Event
		errc <- c.Read(&ev)
	}()
	time.Sleep(20 * time.Millisecond) // let Read block; Close must wake it either way
	if err := c.Close(); err != nil {
		t.Fatal(err)
	}
	if err := c.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	select {
	case err := <-errc:
		if !errors.Is(err, ErrClosed) {
			t.Errorf("Read after Close: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Read did not return after Close")
	}
	var ev event.Event
	if err := c.Read(&ev); !errors.Is(err, ErrClosed) {
		t.Errorf("Read on closed: %v", err)
	}
}

func TestConfigErrors(t *testing.T) {
	for _, cfg := range []Config{
		{ArgvMax: MaxArgvMax + 1},
		{EnvMax: MaxEnvMax + 1},
		{RingSize: 3 << 20},
		{Comm: "a-name-longer-than-15"},
		{Types: []event.Type{event.TypeContainer}},
	} {
		if c, err := New(cfg); err == nil {
			c.Close()
			t.Errorf("New(%+v) accepted", cfg)
		}
	}
}

// TestSyscallHookFollowsTypes checks that the per-syscall hook attaches to
// exactly the syscalls of the enabled types, also after SetTypes.
func TestSyscallHookFollowsTypes(t *testing.T) {
	testenv.RequireRoot(t)
	opens := event.ClassOpen.Types()
	col := startCapture(t, Config{PID: uint32(os.Getpid()), IncludeSelf: true, Hook: HookSyscall, Types: append(opens, event.TypeProcexit)})
	hooked := func() int {
		col.c.mu.Lock()
		defer col.c.mu.Unlock()
		return len(col.c.sysLinks)
	}
	wantOpens := 0
	for _, s := range syscallTypes {
		if s.typ.Class() == event.ClassOpen {
			wantOpens++
		}
	}
	dir := realDir(t)
	// openAndExit opens a file named name, then runs a child and waits for
	// its exit: events of one task arrive in order, and the exit comes
	// after the open in time.
	openAndExit := func(name string) {
		f, err := os.Create(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		cmd := exec.Command("/bin/true")
		_ = cmd.Run()
		pid := uint32(cmd.ProcessState.Pid())
		col.wait(t, "exit of "+name, func(e *event.Event) bool { return e.Type == event.TypeProcexit && e.Proc.PID == pid })
	}
	opened := func(name string) *event.Event {
		return col.find(func(e *event.Event) bool {
			return e.Class() == event.ClassOpen && e.Open.Path == filepath.Join(dir, name)
		})
	}

	if got := hooked(); got != wantOpens {
		t.Errorf("%d syscalls hooked, want the %d open syscalls", got, wantOpens)
	}
	openAndExit("a")
	if opened("a") == nil {
		t.Error("open not captured")
	}
	if err := col.c.SetTypes([]event.Type{event.TypeProcexit}); err != nil {
		t.Fatal(err)
	}
	if got := hooked(); got != 0 {
		t.Errorf("%d syscalls hooked with only procexit enabled", got)
	}
	openAndExit("b")
	if e := opened("b"); e != nil {
		t.Errorf("open captured after its types were disabled: %+v", e.Open)
	}
	if err := col.c.SetTypes(append(opens, event.TypeProcexit)); err != nil {
		t.Fatal(err)
	}
	if got := hooked(); got != wantOpens {
		t.Errorf("%d syscalls hooked after re-enabling the opens, want %d", got, wantOpens)
	}
	openAndExit("c")
	if opened("c") == nil {
		t.Error("open not captured after re-enabling")
	}
}

// withoutTracefs runs fn on a thread of its own in a private mount
// namespace from which every tracefs and debugfs mount was taken away.
func withoutTracefs(t *testing.T, fn func() error) {
	t.Helper()
	errc := make(chan error, 1)
	go func() {
		// The thread keeps its own mount namespace (and capabilities): it
		// is never unlocked, so the runtime ends it with the goroutine.
		runtime.LockOSThread()
		errc <- func() error {
			if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
				return err
			}
			if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
				return err
			}
			for _, d := range append(tracefsDirs, "/sys/kernel/debug") {
				for unix.Unmount(d, unix.MNT_DETACH) == nil { // stacked mounts too
				}
			}
			if tracefsAt(tracefsDir) {
				return fmt.Errorf("tracefs still mounted at %s", tracefsDir)
			}
			return fn()
		}()
	}()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

// TestSyscallEventsMountsTracefs checks that a host without tracefs gets one
// mounted for the per-syscall hook.
func TestSyscallEventsMountsTracefs(t *testing.T) {
	testenv.RequireRoot(t)
	withoutTracefs(t, func() error {
		if err := syscallEvents(); err != nil {
			return err
		}
		if !tracefsAt(tracefsDir) {
			return fmt.Errorf("no tracefs at %s after syscallEvents", tracefsDir)
		}
		return nil
	})
}

// TestHookFallback checks the hook chosen when tracefs is missing and
// cannot be mounted (no CAP_SYS_ADMIN, as in the least-privilege DaemonSet
// without the host's tracefs): auto falls back to the raw hook, an explicit
// per-syscall hook is an error.
func TestHookFallback(t *testing.T) {
	testenv.RequireRoot(t)
	withoutTracefs(t, func() error {
		// Capabilities are per thread: drop CAP_SYS_ADMIN from this one.
		hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
		var data [2]unix.CapUserData
		if err := unix.Capget(&hdr, &data[0]); err != nil {
			return err
		}
		data[unix.CAP_SYS_ADMIN/32].Effective &^= 1 << (unix.CAP_SYS_ADMIN % 32)
		if err := unix.Capset(&hdr, &data[0]); err != nil {
			return err
		}
		for _, tc := range []struct {
			in   Hook
			want Hook
			why  bool // a reason for the raw hook
			err  bool
		}{
			{HookAuto, HookRaw, true, false},
			{HookRaw, HookRaw, false, false},
			{HookSyscall, "", false, true},
			{"kprobe", "", false, true},
		} {
			got, why, err := resolveHook(tc.in)
			if got != tc.want || (why != nil) != tc.why || (err != nil) != tc.err {
				return fmt.Errorf("resolveHook(%q) = %q, %v, %v; want %q, reason %v, error %v", tc.in, got, why, err, tc.want, tc.why, tc.err)
			}
		}
		if tracefsAt(tracefsDir) {
			return errors.New("tracefs mounted without CAP_SYS_ADMIN")
		}
		return nil
	})
}

// TestStatsReadFailure checks that a read of the kernel counters that
// fails gives the last whole one, not a partial sum that would make the
// counters shrink: the stats map's fd is closed under a running capture.
func TestStatsReadFailure(t *testing.T) {
	col := startCapture(t, Config{PID: uint32(os.Getpid()), IncludeSelf: true, Types: []event.Type{event.TypeOpenat}})
	dir := realDir(t)
	target := filepath.Join(dir, "counted")
	writeFile(t, target, "x", 0o644)
	f, err := os.Open(target)
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	col.wait(t, "open of "+target, openOf(uint32(os.Getpid()), target))
	before := col.c.Stats()
	if before.Seen == 0 {
		t.Fatal("no event counted")
	}
	col.c.mu.Lock()
	err = col.c.objs.Stats.Close()
	col.c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if after := col.c.Stats(); after.Seen != before.Seen || after.SeenByType != before.SeenByType {
		t.Errorf("after a failed read: seen %d (by type %v), want the last whole read's %d", after.Seen, after.SeenByType, before.Seen)
	}
}
