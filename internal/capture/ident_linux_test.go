//go:build linux && (amd64 || arm64)

package capture

import (
	"bufio"
	"context"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/testenv"
)

// identChanges is the "ident" helper: it changes its identity between
// opens of files in dir (arg "dir,cgroup", the cgroup may be empty): mount
// namespace, cgroup, comm, then credentials. Everything runs on one thread:
// unshare and PR_SET_NAME change only the calling thread.
func identChanges(arg string) error {
	dir, cg, _ := strings.Cut(arg, ",")
	runtime.LockOSThread()
	open := func(name string) { _ = openClose(filepath.Join(dir, name)) }
	open("a0")
	open("a1")
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return err
	}
	open("b")
	if cg != "" {
		if err := os.WriteFile(filepath.Join(cg, "cgroup.procs"), []byte("0"), 0); err != nil {
			return err
		}
	}
	open("c")
	name := []byte("tl-renamed\x00")
	if err := unix.Prctl(unix.PR_SET_NAME, uintptr(unsafe.Pointer(&name[0])), 0, 0, 0); err != nil {
		return err
	}
	open("d")
	if err := unix.Setresuid(65534, 65534, 65534); err != nil {
		return err
	}
	open("e")
	open("f")
	return nil
}

// cgroup2Dir creates a cgroup on the cgroup v2 hierarchy ("" when there is
// none) and removes it at the end of the test.
func cgroup2Dir(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/mounts")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 3 || fields[2] != "cgroup2" {
			continue
		}
		dir := filepath.Join(fields[1], "tripline-test-"+strings.ReplaceAll(t.Name(), "/", "-"))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Logf("no cgroup move: %v", err)
			return ""
		}
		t.Cleanup(func() { _ = os.Remove(dir) })
		return dir
	}
	return ""
}

func nsInode(t *testing.T, p string) uint64 {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

// TestIdentityChanges: the identity is sent once per task, so a change in
// the middle of a task (unshare, cgroup move, comm, setresuid) must reach
// the events after it, and only those.
func TestIdentityChanges(t *testing.T) {
	testenv.RequireRoot(t)
	col := startCapture(t, Config{PID: uint32(os.Getpid())})
	dir := realDir(t)
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"a0", "a1", "b", "c", "d", "e", "f"} {
		writeFile(t, filepath.Join(dir, n), "x", 0o644)
	}
	cg := cgroup2Dir(t)
	// The helper is born in the mount namespace of the thread that starts
	// it. /proc/self names the main thread's, which may be a private one: a
	// test that locked the main thread to unshare leaves it wedged so.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mnt := nsInode(t, "/proc/thread-self/ns/mnt")
	pid := helper(t, "ident", dir+","+cg)
	ev := func(name string) *event.Event {
		return col.wait(t, "open of "+name, openOf(pid, filepath.Join(dir, name)))
	}
	a0, a1, b, c, d, e, f := ev("a0"), ev("a1"), ev("b"), ev("c"), ev("d"), ev("e"), ev("f")

	for _, x := range []*event.Event{a0, a1} {
		checkIdentity(t, x, pid)
		if x.Proc.MntNS != mnt || x.Proc.Comm == "tl-renamed" {
			t.Errorf("%s before the changes: mntns %d (ours %d) comm %q", x.Open.Path, x.Proc.MntNS, mnt, x.Proc.Comm)
		}
	}
	if p, q := a0.Proc, a1.Proc; p.TID != q.TID || p.UID != q.UID || p.CapEffective != q.CapEffective || p.MntNS != q.MntNS ||
		p.CgroupID != q.CgroupID || p.Comm != q.Comm || p.PPID != q.PPID || p.StartTime != q.StartTime {
		t.Errorf("identity differs between two opens:\n%+v\n%+v", p, q)
	}
	for _, x := range []*event.Event{b, c, d, e, f} {
		if x.Proc.MntNS == mnt || x.Proc.MntNS == 0 {
			t.Errorf("%s after unshare: mntns %d, ours %d", x.Open.Path, x.Proc.MntNS, mnt)
		}
		if x.Proc.TID != a0.Proc.TID || x.Proc.PID != pid || x.Proc.StartTime != a0.Proc.StartTime {
			t.Errorf("%s: tid %d pid %d start %d", x.Open.Path, x.Proc.TID, x.Proc.PID, x.Proc.StartTime)
		}
	}
	if b.Proc.CgroupID != a0.Proc.CgroupID {
		t.Errorf("cgroup changed before the move: %d, was %d", b.Proc.CgroupID, a0.Proc.CgroupID)
	}
	if cg != "" {
		want := nsInode(t, cg)
		for _, x := range []*event.Event{c, d, e, f} {
			if x.Proc.CgroupID != want {
				t.Errorf("%s after the cgroup move: cgroup id %d, want %d (was %d)", x.Open.Path, x.Proc.CgroupID, want, a0.Proc.CgroupID)
			}
		}
	}
	for _, x := range []*event.Event{a0, b, c} {
		if x.Proc.Comm == "tl-renamed" {
			t.Errorf("%s before PR_SET_NAME: comm %q", x.Open.Path, x.Proc.Comm)
		}
	}
	for _, x := range []*event.Event{d, e, f} {
		if x.Proc.Comm != "tl-renamed" {
			t.Errorf("%s after PR_SET_NAME: comm %q", x.Open.Path, x.Proc.Comm)
		}
	}
	for _, x := range []*event.Event{a0, b, c, d} {
		if x.Proc.UID != 0 || x.Proc.EUID != 0 || x.Proc.CapEffective == 0 {
			t.Errorf("%s before setresuid: uid %d euid %d caps %#x", x.Open.Path, x.Proc.UID, x.Proc.EUID, x.Proc.CapEffective)
		}
	}
	for _, x := range []*event.Event{e, f} {
		if x.Proc.UID != 65534 || x.Proc.EUID != 65534 || x.Proc.CapEffective != 0 || x.Proc.CapPermitted != 0 {
			t.Errorf("%s after setresuid: uid %d euid %d caps %#x/%#x", x.Open.Path, x.Proc.UID, x.Proc.EUID, x.Proc.CapEffective, x.Proc.CapPermitted)
		}
	}
	exit := col.wait(t, "exit of the helper", func(x *event.Event) bool {
		return x.Type == event.TypeProcexit && x.Proc.TID == a0.Proc.TID
	})
	if exit.Proc.UID != 65534 || exit.Proc.Comm != "tl-renamed" {
		t.Errorf("exit: uid %d comm %q", exit.Proc.UID, exit.Proc.Comm)
	}
	if s := col.c.Stats(); s.Malformed != 0 || s.NoIdentity != 0 {
		t.Errorf("malformed %d, no identity %d", s.Malformed, s.NoIdentity)
	}
}

// TestCompactRecords: the kernel sends a task's identity with its first
// record only; the others name it, and decode to the same identity.
func TestCompactRecords(t *testing.T) {
	testenv.RequireRoot(t)
	// Exit records are what let the decoder forget an identity: with them.
	c, err := New(Config{PID: uint32(os.Getpid()), Types: append(event.ClassOpen.Types(), event.TypeProcexit)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	const n = 100
	pid := helper(t, "burst", "100")
	full := map[uint32]int{}
	first := map[uint32]event.Process{}
	var opens, compact int
	var ev event.Event
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for opens < n {
		if err := c.read(ctx, &ev); err != nil {
			t.Fatalf("after %d of %d opens: %v", opens, n, err)
		}
		if ev.Proc.PID != pid {
			continue
		}
		if ev.Open.Path == "/dev/null" {
			opens++
		}
		tid := ev.Proc.TID
		if u32(c.rec.RawSample, offFlags)&recIdent != 0 {
			full[tid]++
			first[tid] = ev.Proc.Clone()
			continue
		}
		compact++
		p, ok := first[tid]
		if !ok || ev.Proc.UID != p.UID || ev.Proc.Comm != p.Comm || ev.Proc.MntNS != p.MntNS || ev.Proc.CgroupID != p.CgroupID {
			t.Fatalf("compact record of tid %d decoded to %+v, its full one had %+v", tid, ev.Proc, p)
		}
	}
	for tid, k := range full {
		if k != 1 {
			t.Errorf("tid %d sent its identity %d times", tid, k)
		}
	}
	if compact < n-len(full) {
		t.Errorf("%d compact records for %d opens by %d threads", compact, n, len(full))
	}
	if s := c.Stats(); s.NoIdentity != 0 {
		t.Errorf("no identity %d", s.NoIdentity)
	}
}

// TestIdentityResync: when the decoder lost an identity (here a cache of
// one entry, thrashed by two tasks), the records naming it are counted and
// skipped, and the kernel is told to resend: events keep their identity.
func TestIdentityResync(t *testing.T) {
	testenv.RequireRoot(t)
	c, err := New(Config{PID: uint32(os.Getpid()), IncludeSelf: true, Types: append(event.ClassOpen.Types(), event.TypeProcexit)})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	c.dec.idents.max = 1
	uid := uint32(os.Getuid())
	done := make(chan error, 1)
	go func() {
		// Two threads of this process take turns at opens: each evicts the
		// other's identity.
		turn := [2]chan struct{}{make(chan struct{}, 1), make(chan struct{}, 1)}
		errs := make(chan error, 2)
		for i := range 2 {
			go func() {
				runtime.LockOSThread()
				defer runtime.UnlockOSThread()
				var err error
				for range 200 {
					<-turn[i]
					if err == nil {
						err = openClose("/dev/null")
					}
					turn[1-i] <- struct{}{}
				}
				errs <- err
			}()
		}
		turn[0] <- struct{}{}
		err := <-errs
		if e := <-errs; err == nil {
			err = e
		}
		done <- err
	}()
	var ev event.Event
	got := 0
	for got < 100 {
		if err := c.read(context.Background(), &ev); err != nil {
			t.Fatal(err)
		}
		if ev.Open.Path != "/dev/null" || ev.Proc.PID != uint32(os.Getpid()) {
			continue
		}
		got++
		if ev.Proc.UID != uid || ev.Proc.Comm == "" || ev.Proc.CgroupID == 0 {
			t.Fatalf("event with identity %+v", ev.Proc)
		}
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	epoch := c.cfg.Epoch
	c.mu.Unlock()
	s := c.Stats()
	t.Logf("epoch %d, no identity %d, decoded %d", epoch, s.NoIdentity, s.Decoded)
	if s.NoIdentity == 0 || epoch == 0 {
		t.Errorf("no identity %d, epoch %d: the thrashed cache went unnoticed", s.NoIdentity, epoch)
	}
}

// TestFullRecordsWithoutExits: without exit records the decoder could never
// forget an identity, so every record carries its own, uncached.
func TestFullRecordsWithoutExits(t *testing.T) {
	testenv.RequireRoot(t)
	c, err := New(Config{PID: uint32(os.Getpid()), Types: event.ClassOpen.Types()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pid := helper(t, "burst", "100")
	var ev event.Event
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for opens := 0; opens < 100; {
		if err := c.read(ctx, &ev); err != nil {
			t.Fatalf("after %d of 100 opens: %v", opens, err)
		}
		if ev.Proc.PID != pid {
			continue
		}
		opens++
		if u32(c.rec.RawSample, offFlags)&recIdent == 0 {
			t.Fatalf("compact record of tid %d without exit records", ev.Proc.TID)
		}
	}
	if s := c.Stats(); s.NoIdentity != 0 || s.Malformed != 0 {
		t.Errorf("stats %+v", s)
	}
}
