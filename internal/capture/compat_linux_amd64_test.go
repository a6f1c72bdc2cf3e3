package capture

import (
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/testenv"
)

// mem32 is memory below 4 GiB, where ia32 syscalls can point.
type mem32 struct {
	buf []byte
	off int
}

func newMem32(t *testing.T) *mem32 {
	t.Helper()
	b, err := unix.Mmap(-1, 0, 4096, unix.PROT_READ|unix.PROT_WRITE, unix.MAP_PRIVATE|unix.MAP_ANONYMOUS|unix.MAP_32BIT)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Munmap(b) })
	if p := uintptr(unsafe.Pointer(&b[0])); p >= 1<<32 {
		t.Fatalf("MAP_32BIT mapping at %#x", p)
	}
	return &mem32{buf: b}
}

// put copies b and returns its address.
func (m *mem32) put(b []byte) uintptr {
	p := uintptr(unsafe.Pointer(&m.buf[m.off]))
	m.off += copy(m.buf[m.off:], b)
	m.off = (m.off + 8) &^ 7
	return p
}

func (m *mem32) str(s string) uintptr { return m.put(append([]byte(s), 0)) }

// u32s stores vs as an array of 32-bit words (socketcall's arguments).
func (m *mem32) u32s(vs ...uint32) uintptr {
	b := make([]byte, 4*len(vs))
	for i, v := range vs {
		binary.LittleEndian.PutUint32(b[4*i:], v)
	}
	return m.put(b)
}

// sockaddrIn is a struct sockaddr_in for 127.0.0.1:port.
func sockaddrIn(port uint16) []byte {
	b := make([]byte, 16)
	binary.LittleEndian.PutUint16(b, unix.AF_INET)
	binary.BigEndian.PutUint16(b[2:], port)
	copy(b[4:], []byte{127, 0, 0, 1})
	return b
}

// ia32 syscall numbers and socketcall's connect.
const (
	ia32Open       = 5
	ia32Getpid     = 20
	ia32Execve     = 11
	ia32Socketcall = 102
	ia32Openat     = 295
	ia32Connect    = 362
	sysConnect     = 3
	atFDCWD32      = 0xffffff9c // AT_FDCWD as a 32-bit register
)

// faultExit is compatHelper's exit status when int $0x80 faulted.
const faultExit = 3

// compatHelper makes the ia32 getpid. Where the kernel refuses ia32
// syscalls, int $0x80 raises a general protection fault (SIGSEGV), which
// the runtime turns into a panic here.
func compatHelper() error {
	debug.SetPanicOnFault(true)
	defer func() {
		if recover() != nil {
			os.Exit(faultExit)
		}
	}()
	if got := testenv.Int80(ia32Getpid, 0, 0, 0, 0); got != int64(os.Getpid()) {
		return fmt.Errorf("ia32 getpid = %d, want %d", got, os.Getpid())
	}
	return nil
}

// ia32Works tells whether this kernel runs ia32 syscalls, from a helper
// process that makes one.
func ia32Works(t *testing.T) bool {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "TRIPLINE_HELPER=int80")
	out, err := cmd.CombinedOutput()
	if err == nil {
		return true
	}
	if cmd.ProcessState != nil && cmd.ProcessState.ExitCode() == faultExit {
		return false
	}
	t.Fatalf("ia32 helper: %v\n%s", err, out)
	return false
}

// TestCompatSyscalls makes ia32 syscalls through int $0x80 from this
// 64-bit process, a known way to hide from sensors that watch native
// syscalls only, and checks they are reported as their native types, with
// either hook; without Config.Compat they are not.
func TestCompatSyscalls(t *testing.T) {
	testenv.RequireRoot(t)
	if !CompatKernel() {
		t.Skip("this kernel has no ia32 emulation, or it was turned off at boot (ia32_emulation=false)")
	}
	if !ia32Works(t) {
		// PVM guests (our development VMs) and confidential-computing
		// guests turn ia32 off at run time, which userspace cannot read:
		// the capture attaches the program all the same. Check that it
		// loads, attaches and leaves native syscalls reported.
		t.Log("NOTE: this kernel refuses ia32 syscalls (int $0x80 killed a helper with SIGSEGV): only loading and attaching the compat program is checked")
		col := startCapture(t, Config{PID: uint32(os.Getpid()), IncludeSelf: true, Compat: true})
		if !col.c.Compat() {
			t.Fatal("Compat() = false with Config.Compat on a kernel with ia32 emulation")
		}
		missing := filepath.Join(realDir(t), "missing")
		_ = openClose(missing)
		col.wait(t, "native open", func(e *event.Event) bool {
			return e.Type == event.TypeOpenat && e.Proc.PID == uint32(os.Getpid()) && e.Open.RawPath == missing
		})
		return
	}
	for _, h := range []Hook{HookSyscall, HookRaw} {
		t.Run(string(h), func(t *testing.T) { testCompat(t, Config{Hook: h, Compat: true}) })
	}
	t.Run("off", func(t *testing.T) { testCompat(t, Config{}) })
}

func testCompat(t *testing.T, cfg Config) {
	pid := uint32(os.Getpid())
	cfg.PID, cfg.IncludeSelf = pid, true
	col := startCapture(t, cfg)
	if col.c.Compat() != cfg.Compat {
		t.Fatalf("Compat() = %v, want %v", col.c.Compat(), cfg.Compat)
	}
	dir := realDir(t)
	file := filepath.Join(dir, "file")
	writeFile(t, file, "x", 0o644)
	m := newMem32(t)

	_, lport := loopbackListener(t)
	loop := netip.MustParseAddr("127.0.0.1")

	of := func(ty event.Type) func(*event.Event) bool {
		return func(e *event.Event) bool { return e.Type == ty && e.Proc.PID == pid }
	}
	var unseen []func(*event.Event) bool
	for _, tc := range []struct {
		name  string
		typ   event.Type
		do    func() int64
		match func(e *event.Event, res int64) bool
	}{
		{"openat", event.TypeOpenat, func() int64 {
			return testenv.Int80(ia32Openat, atFDCWD32, m.str(file), unix.O_RDONLY, 0)
		}, func(e *event.Event, res int64) bool {
			return e.Res == res && e.Open.Path == file && e.Open.DirFD == unix.AT_FDCWD && e.Open.Flags&3 == unix.O_RDONLY
		}},
		{"open", event.TypeOpen, func() int64 {
			return testenv.Int80(ia32Open, m.str(file), unix.O_WRONLY|unix.O_TRUNC, 0, 0)
		}, func(e *event.Event, res int64) bool {
			return e.Res == res && e.Open.Path == file && e.Open.Flags&3 == unix.O_WRONLY
		}},
		{"failed execve", event.TypeExecve, func() int64 {
			return testenv.Int80(ia32Execve, m.str(dir+"/missing"), 0, 0, 0)
		}, func(e *event.Event, res int64) bool {
			return res == -int64(unix.ENOENT) && e.Res == res && e.Open.RawPath == dir+"/missing"
		}},
		{"connect", event.TypeConnect, func() int64 {
			fd := must(t)(unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0))
			t.Cleanup(func() { unix.Close(fd) })
			return testenv.Int80(ia32Connect, uintptr(fd), m.put(sockaddrIn(lport)), 16, 0)
		}, func(e *event.Event, res int64) bool {
			return res == 0 && e.Res == 0 && e.Connect.RemoteAddr == loop && e.Connect.RemotePort == lport
		}},
		{"socketcall connect", event.TypeConnect, func() int64 {
			fd := must(t)(unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0))
			t.Cleanup(func() { unix.Close(fd) })
			args := m.u32s(uint32(fd), uint32(m.put(sockaddrIn(lport))), 16)
			res := testenv.Int80(ia32Socketcall, sysConnect, args, 0, 0)
			if res == 0 {
				// Tell it from the direct connect: by its fd.
				return int64(fd)
			}
			return res
		}, func(e *event.Event, fd int64) bool {
			return e.Res == 0 && e.Connect.FD == int32(fd) && e.Connect.RemoteAddr == loop && e.Connect.RemotePort == lport
		}},
	} {
		res := tc.do()
		if res < 0 && tc.typ != event.TypeExecve {
			t.Fatalf("%s: ia32 syscall failed: %v", tc.name, unix.Errno(-res))
		}
		pred := func(e *event.Event) bool { return of(tc.typ)(e) && tc.match(e, res) }
		if !cfg.Compat {
			unseen = append(unseen, pred)
			continue
		}
		col.wait(t, tc.name, pred)
	}
	if !cfg.Compat {
		// A native call after them: once it is seen, so would they be.
		_ = unix.Unlinkat(unix.AT_FDCWD, dir+"/marker", 0)
		col.wait(t, "marker", func(e *event.Event) bool { return of(event.TypeUnlinkat)(e) && e.Sys.RawPath == dir+"/marker" })
		for i, pred := range unseen {
			if e := col.find(pred); e != nil {
				t.Errorf("call %d reported with NoCompat: %+v", i, e)
			}
		}
	}
}

// TestCompatSyscallTable checks the ia32 numbers against the kernel's UAPI
// list (testdata/ia32_syscalls.txt): each maps to the type its name says
// (the 32-bit-id and 64-bit-offset variants to their base syscall), and
// every number listed is mapped.
func TestCompatSyscallTable(t *testing.T) {
	data, err := os.ReadFile("testdata/ia32_syscalls.txt")
	if err != nil {
		t.Fatal(err)
	}
	want := map[uint32]string{}
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) != 2 || strings.HasPrefix(line, "#") {
			continue
		}
		nr, err := strconv.ParseUint(f[1], 10, 32)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		want[uint32(nr)] = strings.TrimSuffix(strings.TrimSuffix(f[0], "32"), "64")
	}
	got := map[uint32]bool{}
	for _, s := range compatSyscallTypes {
		if got[s.nr] {
			t.Errorf("%d mapped twice", s.nr)
		}
		got[s.nr] = true
		if name, ok := want[s.nr]; !ok || name != s.typ.String() {
			t.Errorf("ia32 syscall %d is %q, mapped to %s", s.nr, name, s.typ)
		}
	}
	for nr, name := range want {
		if !got[nr] {
			t.Errorf("ia32 %s (%d) not mapped", name, nr)
		}
	}
}
