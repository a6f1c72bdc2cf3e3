package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/testenv"
)

// TestTraceJSON runs `sensor trace --json` on this test process and checks
// the Falco-keyed JSON of each event class it causes: exec (with fork and
// exit of the child), a failed open and a loopback TCP connect.
func TestTraceJSON(t *testing.T) {
	testenv.RequireRoot(t)
	dir := t.TempDir()
	exe := filepath.Join(dir, "tl-trace-true")
	b, err := os.ReadFile("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(exe, b, 0o755); err != nil {
		t.Fatal(err)
	}
	missing := filepath.Join(dir, "missing.txt")
	ln, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port

	cmd, stdout := startTrace(t, "--json", "--pid", fmt.Sprint(os.Getpid()), "--containerd-socket", "")
	var (
		mu    sync.Mutex
		lines []map[string]any
		bad   []string
	)
	go func() {
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			var m map[string]any
			mu.Lock()
			if err := json.Unmarshal(sc.Bytes(), &m); err != nil {
				bad = append(bad, sc.Text())
			} else {
				lines = append(lines, m)
			}
			mu.Unlock()
		}
	}()

	child := exec.Command(exe, "arg1")
	if err := child.Run(); err != nil {
		t.Fatal(err)
	}
	childPID := float64(child.ProcessState.Pid())
	if _, err := os.Open(missing); err == nil {
		t.Fatal("missing file opened")
	}
	c, err := net.Dial("tcp4", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	lport := float64(c.LocalAddr().(*net.TCPAddr).Port)
	// The connection dup'ed onto fd 60, as a reverse shell dup2s onto 0-2.
	rc, err := c.(*net.TCPConn).SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var dupErr error
	if err := rc.Control(func(fd uintptr) { dupErr = syscall.Dup3(int(fd), 60, syscall.O_CLOEXEC) }); err != nil || dupErr != nil {
		t.Fatal(err, dupErr)
	}
	syscall.Close(60)
	c.Close()
	link := filepath.Join(dir, "shadow-link")
	if err := os.Symlink("/etc/shadow", link); err != nil {
		t.Fatal(err)
	}
	// A ptrace peek of a process this one does not trace: fails, harmlessly.
	syscall.Syscall6(syscall.SYS_PTRACE, syscall.PTRACE_PEEKDATA, uintptr(os.Getppid()), 0, 0, 0, 0)

	self := float64(os.Getpid())
	cases := []struct {
		name  string
		match func(m map[string]any) bool
		want  map[string]any
	}{
		{"exec", func(m map[string]any) bool { return m["evt.type"] == "execve" && m["proc.pid"] == childPID }, map[string]any{
			"evt.res": "SUCCESS", "proc.exepath": exe, "proc.name": "tl-trace-true", "proc.cmdline": "tl-trace-true arg1",
			"proc.ppid": self, "proc.is_exe_writable": true, "proc.is_exe_from_memfd": false, "user.uid": 0.0, "container.id": "host",
		}},
		{"fork", func(m map[string]any) bool { return m["evt.arg.child_pid"] == childPID }, map[string]any{
			"proc.pid": self,
		}},
		{"exit", func(m map[string]any) bool { return m["evt.type"] == "procexit" && m["proc.pid"] == childPID }, map[string]any{
			"proc.name": "tl-trace-true",
		}},
		{"failed open", func(m map[string]any) bool { return m["fd.name"] == missing }, map[string]any{
			"evt.type": "openat", "evt.res": "ENOENT", "evt.failed": true, "fd.nameraw": missing, "proc.pid": self,
		}},
		{"connect", func(m map[string]any) bool { return m["evt.type"] == "connect" && m["fd.sport"] == float64(port) }, map[string]any{
			// Go connects non-blocking: the call returns EINPROGRESS.
			"evt.res": "EINPROGRESS", "fd.sip": "127.0.0.1", "fd.cip": "127.0.0.1", "fd.cport": lport, "fd.l4proto": "tcp",
			"fd.typechar": "4", "fd.name": fmt.Sprintf("127.0.0.1:%d->127.0.0.1:%d", int(lport), port), "proc.pid": self,
		}},
		{"dup3", func(m map[string]any) bool { return m["evt.type"] == "dup3" && m["evt.arg.newfd"] == "60" }, map[string]any{
			"evt.rawres": 60.0, "fd.num": 60.0, "fd.type": "ipv4", "fd.sip": "127.0.0.1", "fd.sport": float64(port),
			"fd.lport": lport, "fd.l4proto": "tcp", "evt.arg.flags": "524288",
		}},
		{"symlinkat", func(m map[string]any) bool { return m["evt.type"] == "symlinkat" && m["evt.arg.linkpath"] == link }, map[string]any{
			"evt.res": "SUCCESS", "evt.arg.target": "/etc/shadow", "evt.arg.linkdirfd": "AT_FDCWD", "fs.path.target": link,
		}},
		{"ptrace", func(m map[string]any) bool { return m["evt.type"] == "ptrace" }, map[string]any{
			"evt.res": "ESRCH", "evt.arg.request": "PTRACE_PEEKDATA", "evt.arg.pid": fmt.Sprint(os.Getppid()), "proc.pid": self,
		}},
	}
	for _, c := range cases {
		var got map[string]any
		testenv.Eventually(t, 15*time.Second, func() bool {
			mu.Lock()
			defer mu.Unlock()
			for _, m := range lines {
				if c.match(m) {
					got = m
					return true
				}
			}
			return false
		}, "no %s event in the trace output", c.name)
		for k, v := range c.want {
			if got[k] != v {
				t.Errorf("%s: %s = %v (%T), want %v", c.name, k, got[k], got[k], v)
			}
		}
	}
	cmd.Process.Signal(syscall.SIGINT)
	if err := cmd.Wait(); err != nil {
		t.Errorf("trace exit: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(bad) > 0 {
		t.Errorf("%d lines are not JSON, first: %q", len(bad), bad[0])
	}
}
