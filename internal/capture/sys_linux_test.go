//go:build linux && (amd64 || arm64)

package capture

import (
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/testenv"
)

// dupTarget is the fd dup3 makes: far above the ones the test process
// holds (the per-syscall hook alone opens about a hundred).
const dupTarget = 4000

// TestSyscalls makes each syscall captured after TypeProcexit in the test
// process and checks the event the kernel sends, with either hook.
func TestSyscalls(t *testing.T) {
	testenv.RequireRoot(t)
	for _, h := range []Hook{HookSyscall, HookRaw} {
		t.Run(string(h), func(t *testing.T) { testSyscalls(t, h) })
	}
}

func testSyscalls(t *testing.T, hook Hook) {
	col := startCapture(t, Config{PID: uint32(os.Getpid()), IncludeSelf: true, Hook: hook})
	if got := col.c.Hook(); got != hook {
		t.Fatalf("Hook() = %q, want %q", got, hook)
	}
	untraced := map[event.Type]bool{}
	for _, ty := range col.c.Untraced() {
		untraced[ty] = true
	}
	pid := uint32(os.Getpid())
	dir := realDir(t)
	dfd, err := unix.Open(dir, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dfd)
	file := filepath.Join(dir, "file")
	writeFile(t, file, "x", 0o644)
	ffd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(ffd)

	// A TCP listener and a connected pair, made with raw syscalls.
	lfd, lport := loopbackListener(t)
	cfd := must(t)(unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0))
	defer unix.Close(cfd)
	check(t, unix.Connect(cfd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: int(lport)}))
	afd, _, err := unix.Accept4(lfd, unix.SOCK_CLOEXEC)
	check(t, err)
	defer unix.Close(afd)
	udp := must(t)(unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0))
	defer unix.Close(udp)
	loop := netip.MustParseAddr("127.0.0.1")

	of := func(ty event.Type) func(*event.Event) bool {
		return func(e *event.Event) bool { return e.Type == ty && e.Proc.PID == pid }
	}
	for _, tc := range []struct {
		typ   event.Type
		do    func() error
		match func(*event.Event) bool // besides type and process; nil: any
		check func(t *testing.T, e *event.Event)
	}{
		{event.TypeSymlinkat, func() error { return unix.Symlinkat("/etc/shadow", dfd, "sym") }, func(e *event.Event) bool { return e.Sys.RawPath == "/etc/shadow" },
			func(t *testing.T, e *event.Event) {
				s := &e.Sys
				if e.Res != 0 || s.RawPath != "/etc/shadow" || s.Path != "" || s.RawPath2 != "sym" || s.Path2 != dir+"/sym" {
					t.Errorf("res=%d %+v", e.Res, s)
				}
			}},
		{event.TypeLinkat, func() error { return unix.Linkat(unix.AT_FDCWD, file, dfd, "hard", 0) }, func(e *event.Event) bool { return e.Sys.RawPath2 == "hard" },
			func(t *testing.T, e *event.Event) {
				s := &e.Sys
				if e.Res != 0 || s.Path != file || s.RawPath != file || s.Path2 != dir+"/hard" || int32(s.Args[2]) != int32(dfd) {
					t.Errorf("res=%d %+v", e.Res, s)
				}
			}},
		{event.TypeRenameat2, func() error { return unix.Renameat2(dfd, "hard", dfd, "../"+filepath.Base(dir)+"/moved", 0) }, func(e *event.Event) bool { return e.Sys.RawPath == "hard" },
			func(t *testing.T, e *event.Event) {
				s := &e.Sys
				if e.Res != 0 || s.Path != dir+"/hard" || s.Path2 != dir+"/moved" || s.RawPath2 != "../"+filepath.Base(dir)+"/moved" {
					t.Errorf("res=%d %+v", e.Res, s)
				}
			}},
		{event.TypeUnlinkat, func() error { return ignore(unix.Unlinkat(dfd, "missing", 0)) }, func(e *event.Event) bool { return e.Sys.RawPath == "missing" },
			func(t *testing.T, e *event.Event) {
				if e.Res != -int64(unix.ENOENT) || e.Sys.Path != dir+"/missing" {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeMkdirat, func() error { return unix.Mkdirat(dfd, "d", 0o700) }, func(e *event.Event) bool { return e.Sys.RawPath == "d" },
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || e.Sys.Path != dir+"/d" || e.Sys.Args[2] != 0o700 {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeFchmodat, func() error { return unix.Fchmodat(dfd, "file", 0o4755, 0) }, func(e *event.Event) bool { return e.Sys.RawPath == "file" },
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || e.Sys.Path != file || e.Sys.Args[2] != 0o4755 {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		// fchmodat2 (Linux 6.6) takes flags: glibc calls it for
		// AT_SYMLINK_NOFOLLOW, and anyone can call it directly.
		{event.TypeFchmodat2, func() error {
			p, err := unix.BytePtrFromString("file")
			if err != nil {
				return err
			}
			_, _, errno := unix.Syscall6(sysnumOf(t, event.TypeFchmodat2), uintptr(dfd), uintptr(unsafe.Pointer(p)), 0o2755,
				unix.AT_SYMLINK_NOFOLLOW, 0, 0)
			if errno == unix.ENOSYS {
				return nil // an older kernel: no tracepoint either (see below)
			}
			if errno != 0 {
				return errno
			}
			return nil
		}, func(e *event.Event) bool { return e.Sys.RawPath == "file" },
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || e.Sys.Path != file || e.Sys.Args[2] != 0o2755 || e.Sys.Args[3] != unix.AT_SYMLINK_NOFOLLOW {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeFchmod, func() error { return unix.Fchmod(ffd, 0o644) }, func(e *event.Event) bool { return e.Sys.FD == int32(ffd) },
			func(t *testing.T, e *event.Event) {
				s := &e.Sys
				if e.Res != 0 || s.FD != int32(ffd) || s.FDKind != event.FDFile || s.FDPath != file || e.Open.Ino == 0 {
					t.Errorf("res=%d %+v ino=%d", e.Res, s, e.Open.Ino)
				}
			}},
		{event.TypeSocket, func() error {
			fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW|unix.SOCK_CLOEXEC, 0)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}, func(e *event.Event) bool { return e.Sys.Args[0] == unix.AF_PACKET },
			func(t *testing.T, e *event.Event) {
				if e.Res < 0 || e.Sys.FDKind != event.FDSocket || e.Connect.Family != unix.AF_PACKET || e.Sys.FD != int32(e.Res) {
					t.Errorf("res=%d %+v %+v", e.Res, e.Sys, e.Connect)
				}
			}},
		{event.TypeBind, nil, func(e *event.Event) bool { return e.Sys.FD == int32(lfd) },
			func(t *testing.T, e *event.Event) {
				c := &e.Connect
				if e.Res != 0 || c.LocalAddr != loop || c.LocalPort != lport || c.Proto != event.ProtoTCP {
					t.Errorf("res=%d %+v", e.Res, c)
				}
			}},
		{event.TypeListen, nil, func(e *event.Event) bool { return e.Sys.FD == int32(lfd) },
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || e.Connect.LocalPort != lport || e.Sys.Args[1] != 4 {
					t.Errorf("res=%d %+v %+v", e.Res, e.Sys, e.Connect)
				}
			}},
		{event.TypeAccept4, nil, nil,
			func(t *testing.T, e *event.Event) {
				c := &e.Connect
				if e.Res != int64(afd) || e.Sys.FD != int32(afd) || c.LocalPort != lport || c.RemoteAddr != loop || c.RemotePort == 0 {
					t.Errorf("res=%d %+v", e.Res, c)
				}
			}},
		{event.TypeSendto, func() error {
			return unix.Sendto(udp, []byte("x"), 0, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 9})
		}, func(e *event.Event) bool { return e.Sys.FD == int32(udp) && e.Connect.RemotePort == 9 },
			func(t *testing.T, e *event.Event) {
				c := &e.Connect
				if e.Sys.FD != int32(udp) || c.RemoteAddr != loop || c.RemotePort != 9 || c.Proto != event.ProtoUDP {
					t.Errorf("res=%d %+v", e.Res, c)
				}
			}},
		{event.TypeSendmsg, func() error {
			return unix.Sendmsg(udp, []byte("x"), nil, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: 7}, 0)
		}, func(e *event.Event) bool { return e.Sys.FD == int32(udp) },
			func(t *testing.T, e *event.Event) {
				if c := &e.Connect; c.RemoteAddr != loop || c.RemotePort != 7 {
					t.Errorf("res=%d %+v", e.Res, c)
				}
			}},
		{event.TypeDup3, func() error { return unix.Dup3(afd, dupTarget, unix.O_CLOEXEC) }, func(e *event.Event) bool { return e.Res == dupTarget },
			func(t *testing.T, e *event.Event) {
				defer unix.Close(dupTarget)
				c := &e.Connect
				if e.Res != dupTarget || e.Sys.FDKind != event.FDSocket || int(e.Sys.Args[0]) != afd ||
					c.Family != unix.AF_INET || c.LocalPort != lport || c.RemoteAddr != loop {
					t.Errorf("res=%d %+v %+v", e.Res, e.Sys, c)
				}
			}},
		{event.TypeDup, func() error {
			fd, err := unix.Dup(ffd)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}, func(e *event.Event) bool { return e.Sys.FDPath == file },
			func(t *testing.T, e *event.Event) {
				if e.Res < 0 || e.Sys.FDKind != event.FDFile || e.Sys.FDPath != file {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeFcntl, func() error {
			if _, err := unix.FcntlInt(uintptr(ffd), unix.F_GETFD, 0); err != nil { // not reported
				return err
			}
			fd, err := unix.FcntlInt(uintptr(ffd), unix.F_DUPFD_CLOEXEC, 50)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}, func(e *event.Event) bool { return e.Sys.Args[2] == 50 },
			func(t *testing.T, e *event.Event) {
				if e.Res < 50 || e.Sys.Args[1] != unix.F_DUPFD_CLOEXEC || e.Sys.FDPath != file {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypePtrace, func() error {
			// PEEKDATA of a process we do not trace: fails, harmlessly.
			_, _, errno := unix.Syscall6(unix.SYS_PTRACE, unix.PTRACE_PEEKDATA, uintptr(os.Getppid()), 0, 0, 0, 0)
			return ignore(errno)
		}, nil,
			func(t *testing.T, e *event.Event) {
				if e.Res != -int64(unix.ESRCH) || e.Sys.Args[0] != unix.PTRACE_PEEKDATA || e.Sys.Args[1] != uint64(os.Getppid()) {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeFinitModule, func() error {
			// An invalid fd: nothing is loaded.
			b, _ := unix.BytePtrFromString("param=1")
			_, _, errno := unix.Syscall(unix.SYS_FINIT_MODULE, ^uintptr(0), uintptr(unsafe.Pointer(b)), 0)
			return ignore(errno)
		}, nil,
			func(t *testing.T, e *event.Event) {
				// EBADF, or ENOSYS on a kernel without modules.
				if e.Res >= 0 || e.Sys.RawPath != "param=1" || e.Sys.Path != "" {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeInitModule, func() error {
			_, _, errno := unix.Syscall(unix.SYS_INIT_MODULE, 0, 0, 0)
			return ignore(errno)
		}, nil,
			func(t *testing.T, e *event.Event) {
				if e.Res >= 0 {
					t.Errorf("res=%d", e.Res)
				}
			}},
		{event.TypeSetresgid, func() error { return ignore(rawErr(unix.SYS_SETRESGID, ^uintptr(0), ^uintptr(0), ^uintptr(0))) }, nil,
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || uint32(e.Sys.Args[0]) != ^uint32(0) {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeSetuid, func() error { return ignore(rawErr(unix.SYS_SETUID, uintptr(os.Geteuid()), 0, 0)) }, nil,
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || e.Sys.Args[0] != uint64(os.Geteuid()) {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeMemfdCreate, func() error {
			fd, err := unix.MemfdCreate("tl-memfd", unix.MFD_CLOEXEC)
			if err == nil {
				unix.Close(fd)
			}
			return err
		}, func(e *event.Event) bool { return e.Sys.RawPath == "tl-memfd" },
			func(t *testing.T, e *event.Event) {
				if e.Res < 0 || e.Sys.RawPath != "tl-memfd" || e.Sys.Args[1] != unix.MFD_CLOEXEC {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeMount, func() error {
			// A bad file system type: nothing is mounted.
			return ignore(unix.Mount("none", dir+"/d", "tl-nofs", unix.MS_RDONLY, ""))
		}, nil,
			func(t *testing.T, e *event.Event) {
				s := &e.Sys
				if e.Res != -int64(unix.ENODEV) || s.RawPath != "none" || s.Path2 != dir+"/d" || s.Aux != "tl-nofs" || s.Args[3] != unix.MS_RDONLY {
					t.Errorf("res=%d %+v", e.Res, s)
				}
			}},
		{event.TypeUmount2, func() error { return ignore(unix.Unmount(dir+"/d", unix.MNT_DETACH)) }, nil,
			func(t *testing.T, e *event.Event) {
				if e.Res != -int64(unix.EINVAL) || e.Sys.Path != dir+"/d" || e.Sys.Args[1] != unix.MNT_DETACH {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeBpf, func() error { return ignore(rawErr(unix.SYS_BPF, 9999, 0, 0)) }, func(e *event.Event) bool { return e.Sys.Args[0] == 9999 },
			func(t *testing.T, e *event.Event) {
				if e.Res >= 0 || e.Sys.Args[0] != 9999 {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeUnshare, func() error { return unix.Unshare(0) }, nil,
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || e.Sys.Args[0] != 0 {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
		{event.TypeSetns, func() error {
			fd, err := unix.Open("/proc/thread-self/ns/uts", unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				return err
			}
			defer unix.Close(fd)
			return unix.Setns(fd, unix.CLONE_NEWUTS) // the namespace it is in already
		}, nil,
			func(t *testing.T, e *event.Event) {
				if e.Res != 0 || e.Sys.Args[1] != unix.CLONE_NEWUTS || e.Sys.FDKind != event.FDFile || e.Sys.FDPath == "" {
					t.Errorf("res=%d %+v", e.Res, e.Sys)
				}
			}},
	} {
		t.Run(tc.typ.String(), func(t *testing.T) {
			if tc.do != nil {
				if err := tc.do(); err != nil {
					t.Fatalf("%s: %v", tc.typ, err)
				}
			}
			if untraced[tc.typ] {
				// Only a syscall this kernel lacks has no tracepoint.
				if hook != HookSyscall || rawErr(sysnumOf(t, tc.typ), ^uintptr(0), 0, 0) != unix.ENOSYS {
					t.Fatalf("%s untraced with hook %q, and the kernel implements it", tc.typ, hook)
				}
				t.Logf("%s: not in this kernel (ENOSYS), no tracepoint to attach", tc.typ)
				return
			}
			e := col.wait(t, tc.typ.String(), func(e *event.Event) bool {
				return of(tc.typ)(e) && (tc.match == nil || tc.match(e))
			})
			tc.check(t, e)
		})
	}

	t.Run("fcntl F_GETFD not reported", func(t *testing.T) {
		if e := col.find(func(e *event.Event) bool { return of(event.TypeFcntl)(e) && e.Sys.Args[1] == unix.F_GETFD }); e != nil {
			t.Errorf("fcntl(F_GETFD) reported: %+v", e.Sys)
		}
	})
	t.Run("send on a connected socket not reported", func(t *testing.T) {
		if _, err := unix.Write(cfd, []byte("x")); err != nil {
			t.Fatal(err)
		}
		check(t, unix.Sendto(cfd, []byte("x"), 0, nil))
		// A reported call after them: once it is seen, so would they be.
		_ = unix.Unlinkat(dfd, "marker", 0)
		col.wait(t, "marker", func(e *event.Event) bool { return of(event.TypeUnlinkat)(e) && e.Sys.RawPath == "marker" })
		if e := col.find(func(e *event.Event) bool { return of(event.TypeSendto)(e) && e.Sys.FD == int32(cfd) }); e != nil {
			t.Errorf("sendto without destination reported: %+v", e.Connect)
		}
	})
}

// loopbackListener is a TCP listener on 127.0.0.1, made with raw syscalls
// and closed at the end of the test, and its port.
func loopbackListener(t *testing.T) (fd int, port uint16) {
	t.Helper()
	fd = must(t)(unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0))
	t.Cleanup(func() { unix.Close(fd) })
	check(t, unix.Bind(fd, &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}}))
	check(t, unix.Listen(fd, 4))
	sa, err := unix.Getsockname(fd)
	check(t, err)
	return fd, uint16(sa.(*unix.SockaddrInet4).Port)
}

func must(t *testing.T) func(int, error) int {
	return func(fd int, err error) int {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return fd
	}
}

func check(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// ignore drops the error of a call made for its event only.
func ignore(error) error { return nil }

func rawErr(nr, a0, a1, a2 uintptr) error {
	if _, _, errno := unix.RawSyscall(nr, a0, a1, a2); errno != 0 {
		return errno
	}
	return nil
}

// sysnumOf is the syscall number of type ty on this architecture.
func sysnumOf(t *testing.T, ty event.Type) uintptr {
	t.Helper()
	for _, s := range syscallTypes {
		if s.typ == ty {
			return uintptr(s.nr)
		}
	}
	t.Fatalf("no syscall for %s", ty)
	return 0
}
