package proc

import (
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/testenv"
)

const sec = int64(time.Second)

// base is a fixed wall-clock origin for synthetic events.
var base = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC).UnixNano()

func forkEv(ts int64, parent, child uint32) *event.Event {
	return &event.Event{Type: event.TypeClone, Timestamp: ts, Res: int64(child),
		Proc: event.Process{PID: parent, TID: parent, Comm: "parent"},
		Fork: event.Fork{ChildPID: child, ChildTID: child}}
}

func execEv(ts int64, pid, ppid uint32, exe string, argv ...string) *event.Event {
	return &event.Event{Type: event.TypeExecve, Timestamp: ts,
		Proc: event.Process{PID: pid, TID: pid, PPID: ppid, SID: 1, Comm: exe[strings.LastIndexByte(exe, '/')+1:],
			ExePath: exe, Argv: argv, Cwd: "/work", CgroupPath: "/process_api/0123456789abcdef0123456789abcdef"}}
}

func openEv(ts int64, pid, ppid uint32) *event.Event {
	return &event.Event{Type: event.TypeOpenat, Timestamp: ts,
		Proc: event.Process{PID: pid, TID: pid, PPID: ppid, SID: 1},
		Open: event.Open{Path: "/etc/shadow"}}
}

func exitEv(ts int64, pid uint32) *event.Event {
	return &event.Event{Type: event.TypeProcexit, Timestamp: ts, Proc: event.Process{PID: pid, TID: pid}}
}

func newTable(cfg Config) *Table {
	cfg.ProcFS = "/nonexistent" // unit tests: never read the real /proc
	cfg.DisableMissRead = true
	return New(cfg)
}

func names(l []*event.Process) []string {
	var out []string
	for _, p := range l {
		out = append(out, p.Name())
	}
	return out
}

func TestLineageAndFill(t *testing.T) {
	tb := newTable(Config{ContainerID: func(p string) string {
		if strings.HasPrefix(p, "/default/") {
			return p[len("/default/"):]
		}
		return ""
	}})
	ts := base
	step := func() int64 { ts += int64(time.Millisecond); return ts }
	tb.Handle(execEv(step(), 1, 0, "/sbin/init", "init"))
	tb.Handle(forkEv(step(), 1, 100))
	tb.Handle(execEv(step(), 100, 1, "/usr/sbin/sshd", "sshd", "-D"))
	tb.Handle(forkEv(step(), 100, 200))
	ex := execEv(step(), 200, 100, "/bin/bash", "-bash")
	ex.Proc.CgroupPath = "/default/abc"
	tb.Handle(ex)
	if ex.Proc.ContainerID != "abc" {
		t.Errorf("exec ContainerID = %q", ex.Proc.ContainerID)
	}
	tb.Handle(forkEv(step(), 200, 300))
	tb.Handle(execEv(step(), 300, 200, "/usr/bin/cat", "cat", "/etc/shadow"))

	ev := openEv(step(), 300, 200)
	tb.Handle(ev)
	if got, want := strings.Join(names(ev.Lineage), ","), "-bash,sshd,init"; got != want {
		t.Errorf("lineage = %s, want %s", got, want)
	}
	if ev.Proc.ExePath != "/usr/bin/cat" || len(ev.Proc.Argv) != 2 || ev.Proc.Cwd != "/work" || ev.Proc.StartTime == 0 {
		t.Errorf("fill: %+v", ev.Proc)
	}
	if ev.Lineage[0].ContainerID != "abc" || ev.Lineage[0].ExePath != "/bin/bash" {
		t.Errorf("parent: %+v", ev.Lineage[0])
	}
	if ev.Lineage[1].PID != 100 || ev.Lineage[2].PID != 1 {
		t.Errorf("apid: %d %d", ev.Lineage[1].PID, ev.Lineage[2].PID)
	}

	// The child snapshot made at fork carries the parent's image until exec.
	tb.Handle(forkEv(step(), 300, 301))
	if c := tb.Get(301); c == nil || c.PPID != 300 || c.ExePath != "/usr/bin/cat" {
		t.Fatalf("forked child = %+v", c)
	}
	// Exec replaces, never mutates: an old snapshot stays as it was.
	old := tb.Get(301)
	tb.Handle(execEv(step(), 301, 300, "/usr/bin/id", "id"))
	if old.ExePath != "/usr/bin/cat" || tb.Get(301).ExePath != "/usr/bin/id" {
		t.Errorf("snapshot mutated: old %q new %q", old.ExePath, tb.Get(301).ExePath)
	}
	// Thread creation adds no entry.
	n := tb.Stats().Size
	th := forkEv(step(), 300, 999)
	th.Fork.IsThread = true
	tb.Handle(th)
	if tb.Stats().Size != n || tb.Get(999) != nil {
		t.Errorf("thread created an entry")
	}
}

func TestForkAfterChildEvents(t *testing.T) {
	tb := newTable(Config{})
	tb.Handle(execEv(base, 10, 1, "/bin/sh", "sh"))
	// The child's exec (CPU 1) is delivered before the parent's fork (CPU 0).
	tb.Handle(execEv(base+2000, 11, 10, "/bin/ls", "ls"))
	tb.Handle(forkEv(base+1000, 10, 11))
	if got := tb.Get(11).ExePath; got != "/bin/ls" {
		t.Errorf("late fork overwrote the exec: %q", got)
	}
}

func TestExitGrace(t *testing.T) {
	tb := newTable(Config{ExitGrace: 2 * time.Second})
	tb.Handle(execEv(base, 10, 1, "/bin/sh", "sh"))
	tb.Handle(forkEv(base+1, 10, 11))
	tb.Handle(execEv(base+2, 11, 10, "/bin/true", "true"))
	tb.Handle(exitEv(base+3, 11))
	tb.Handle(exitEv(base+4, 10))
	// A late event of the exited child still resolves, parent included.
	ev := openEv(base+sec, 11, 10)
	tb.Handle(ev)
	if ev.Proc.ExePath != "/bin/true" || len(ev.Lineage) != 1 || ev.Lineage[0].ExePath != "/bin/sh" {
		t.Fatalf("late event: exe %q lineage %v", ev.Proc.ExePath, names(ev.Lineage))
	}
	// Past the grace both are gone.
	tb.Handle(openEv(base+3*sec, 1, 0))
	if tb.Get(10) != nil || tb.Get(11) != nil {
		t.Errorf("exited entries kept past grace")
	}
	if s := tb.Stats(); s.Expired != 2 || s.Exits != 2 {
		t.Errorf("stats %+v", s)
	}
}

func TestThreadExitKeepsProcess(t *testing.T) {
	tb := newTable(Config{ExitGrace: time.Second})
	tb.Handle(execEv(base, 10, 1, "/bin/sh", "sh"))
	ev := exitEv(base+1, 10)
	ev.Exit.Thread = true
	tb.Handle(ev)
	tb.Handle(openEv(base+10*sec, 10, 1))
	if tb.Get(10) == nil {
		t.Fatal("thread exit removed the process")
	}
}

func TestPIDReuse(t *testing.T) {
	tb := newTable(Config{ExitGrace: 10 * time.Second})
	tb.Handle(execEv(base, 10, 1, "/bin/sh", "sh"))
	tb.Handle(exitEv(base+1, 10))
	// pid 10 is reused within the grace by a new process forked from 20.
	tb.Handle(execEv(base+2, 20, 1, "/bin/bash", "bash"))
	tb.Handle(forkEv(base+3, 20, 10))
	tb.Handle(execEv(base+4, 10, 20, "/bin/ls", "ls"))
	if p := tb.Get(10); p.ExePath != "/bin/ls" || p.PPID != 20 {
		t.Fatalf("reused pid: %+v", p)
	}
	// The old exit record must not remove the new process.
	tb.Handle(openEv(base+20*sec, 20, 1))
	if tb.Get(10) == nil {
		t.Error("new process under a reused pid was expired by the old exit")
	}
	// An ancestor younger than its child is a reused pid: the walk stops.
	tb2 := newTable(Config{})
	tb2.Handle(execEv(base+5*sec, 5, 1, "/bin/young", "young"))
	ev := openEv(base+6*sec, 6, 5)
	ev.Proc.StartTime = base
	tb2.Handle(ev)
	if len(ev.Lineage) != 0 {
		t.Errorf("lineage crossed a reused pid: %v", names(ev.Lineage))
	}
}

func TestLineageCycleBounded(t *testing.T) {
	tb := newTable(Config{})
	// A corrupt parent cycle (1 -> 2 -> 1) must end.
	e1 := execEv(base, 1, 2, "/a", "a")
	e2 := execEv(base, 2, 1, "/b", "b")
	tb.Handle(e1)
	tb.Handle(e2)
	ev := openEv(base+1, 1, 2)
	tb.Handle(ev)
	if len(ev.Lineage) > event.MaxLineage {
		t.Fatalf("lineage %d", len(ev.Lineage))
	}
}

func TestRefreshOnCredentialChange(t *testing.T) {
	tb := newTable(Config{})
	tb.Handle(execEv(base, 10, 1, "/usr/bin/sudo", "sudo"))
	old := tb.Get(10)
	ev := openEv(base+1, 10, 1)
	ev.Proc.EUID = 0
	ev.Proc.UID = 1000
	tb.Handle(ev)
	if p := tb.Get(10); p.UID != 1000 || old.UID != 0 || p == old {
		t.Errorf("refresh: new %d old %d", p.UID, old.UID)
	}
}

// A process that leaves its terminal (setsid) has tty 0 in its next
// event: the snapshot follows, or ancestors would keep a stale terminal.
func TestTerminalDropped(t *testing.T) {
	tb := newTable(Config{})
	ex := execEv(base, 10, 1, "/usr/sbin/daemon", "daemon")
	ex.Proc.TTY = 34816
	tb.Handle(ex)
	ev := openEv(base+1, 10, 1)
	ev.Proc.TTY = 0
	tb.Handle(ev)
	if p := tb.Get(10); p.TTY != 0 {
		t.Errorf("tty = %d after the terminal was dropped", p.TTY)
	}
}

func TestMaxEntriesLRU(t *testing.T) {
	tb := newTable(Config{MaxEntries: 100})
	tb.Handle(execEv(base, 1, 0, "/sbin/init", "init"))
	for i := uint32(2); i < 1000; i++ {
		ts := base + int64(i)*1000
		tb.Handle(forkEv(ts, 1, i)) // touches init each time: it stays
	}
	s := tb.Stats()
	if s.Size > 100 || s.Evicted != 899 {
		t.Errorf("size %d evicted %d", s.Size, s.Evicted)
	}
	if tb.Get(1) == nil {
		t.Error("the busy init was evicted")
	}
	if tb.Get(999) == nil || tb.Get(2) != nil {
		t.Error("eviction order is not LRU")
	}
}

// TestChurnBounded: 10,000 short-lived processes leave the table as it was.
func TestChurnBounded(t *testing.T) {
	tb := newTable(Config{ExitGrace: 100 * time.Millisecond})
	tb.Handle(execEv(base, 1, 0, "/sbin/init", "init"))
	ts := base
	for i := uint32(0); i < 10000; i++ {
		pid := 1000 + i%30000
		ts += int64(time.Millisecond)
		tb.Handle(forkEv(ts, 1, pid))
		tb.Handle(execEv(ts+1, pid, 1, "/bin/true", "true"))
		tb.Handle(openEv(ts+2, pid, 1))
		tb.Handle(exitEv(ts+3, pid))
		if n := tb.Stats().Size; n > 200 {
			t.Fatalf("table grew to %d after %d processes", n, i)
		}
	}
	tb.Handle(openEv(ts+sec, 1, 0))
	if s := tb.Stats(); s.Size != 1 || s.Evicted != 0 || s.Expired != 10000 {
		t.Errorf("after churn: %+v", s)
	}
}

func TestHandleOpenNoAlloc(t *testing.T) {
	tb := newTable(Config{})
	tb.Handle(execEv(base, 1, 0, "/sbin/init", "init"))
	tb.Handle(forkEv(base+1, 1, 10))
	tb.Handle(execEv(base+2, 10, 1, "/bin/sh", "sh", "-c", "cat"))
	ev := openEv(base+3, 10, 1)
	allocs := testing.AllocsPerRun(1000, func() {
		ev.Proc.ExePath, ev.Proc.Argv, ev.Proc.Cwd = "", nil, ""
		tb.Handle(ev)
	})
	if allocs != 0 {
		t.Errorf("Handle(open) allocates %.1f times", allocs)
	}
}

func TestConcurrentGet(t *testing.T) {
	tb := newTable(Config{ExitGrace: time.Millisecond})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			default:
			}
			for pid := uint32(1); pid < 64; pid++ {
				if p := tb.Get(pid); p != nil && p.PID != pid {
					t.Errorf("Get(%d) = pid %d", pid, p.PID)
				}
			}
			_ = tb.Stats()
		}
	}()
	ts := base
	for i := 0; i < 20000; i++ {
		pid := uint32(2 + i%60)
		ts += 1000
		tb.Handle(forkEv(ts, 1, pid))
		tb.Handle(execEv(ts+1, pid, 1, "/bin/true", "true"))
		tb.Handle(exitEv(ts+2, pid))
	}
	close(stop)
	wg.Wait()
}

func TestHandleMalformed(t *testing.T) {
	tb := newTable(Config{})
	for _, ev := range []*event.Event{
		{},
		{Type: event.TypeExecve},
		{Type: event.TypeClone, Proc: event.Process{PID: 5}, Fork: event.Fork{ChildPID: 5}},
		{Type: event.TypeClone, Proc: event.Process{PID: 5}, Res: -11},
		{Type: event.TypeProcexit, Proc: event.Process{PID: 77}},
		{Type: event.Type(200), Proc: event.Process{PID: 9, PPID: 9}},
	} {
		tb.Handle(ev) // must not panic
	}
}

// TestSeedReal scans the real /proc and resolves this test's ancestry.
func TestSeedReal(t *testing.T) {
	tb := New(Config{})
	if err := tb.Seed(); err != nil {
		t.Fatal(err)
	}
	s := tb.Stats()
	if s.Seeded < 3 {
		t.Fatalf("seeded %d processes", s.Seeded)
	}
	self := tb.Get(uint32(os.Getpid()))
	if self == nil {
		t.Fatal("own process not seeded")
	}
	exe, _ := os.Executable()
	wd, _ := os.Getwd()
	if self.ExePath != exe || self.Cwd != wd || self.PPID != uint32(os.Getppid()) || len(self.Argv) == 0 {
		t.Errorf("self = exe %q cwd %q ppid %d argv %q", self.ExePath, self.Cwd, self.PPID, self.Argv)
	}
	if self.StartTime <= 0 || time.Since(time.Unix(0, self.StartTime)) > time.Hour || time.Until(time.Unix(0, self.StartTime)) > time.Second {
		t.Errorf("start time %v", time.Unix(0, self.StartTime))
	}
	if self.CgroupPath == "" || self.PidNS == 0 || self.MntNS == 0 || self.Comm == "" {
		t.Errorf("self = %+v", self)
	}
	// An open event of this process, as the capture would send it.
	ev := &event.Event{Type: event.TypeOpenat, Proc: event.Process{PID: self.PID, TID: self.PID, PPID: self.PPID}}
	tb.Handle(ev)
	if len(ev.Lineage) == 0 || ev.Lineage[0].PID != uint32(os.Getppid()) {
		t.Fatalf("lineage of self: %v", names(ev.Lineage))
	}
	if last := ev.Lineage[len(ev.Lineage)-1]; last.PID != 1 && len(ev.Lineage) < event.MaxLineage {
		t.Errorf("lineage does not reach init: ends at %d %s", last.PID, last.Name())
	}
	if ev.Proc.ExePath != exe {
		t.Errorf("fill exe %q", ev.Proc.ExePath)
	}
}

// TestRealChurn runs 2,000 real short-lived processes, feeding the table the
// events the capture would send, and checks that the table stays bounded and
// that every process resolved to its parent while alive.
func TestRealChurn(t *testing.T) {
	truePath, err := exec.LookPath("true")
	testenv.Require(t, err == nil, "true(1) in PATH")
	tb := New(Config{ExitGrace: 50 * time.Millisecond, MaxEntries: 4096})
	if err := tb.Seed(); err != nil {
		t.Fatal(err)
	}
	start := tb.Stats().Size
	self := uint32(os.Getpid())
	n := 2000
	if testing.Short() {
		n = 200
	}
	for i := 0; i < n; i++ {
		pr, err := os.StartProcess(truePath, []string{"true"}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		pid := uint32(pr.Pid)
		now := time.Now().UnixNano()
		tb.Handle(&event.Event{Type: event.TypeClone, Timestamp: now, Res: int64(pid),
			Proc: event.Process{PID: self, TID: self}, Fork: event.Fork{ChildPID: pid, ChildTID: pid}})
		ex := &event.Event{Type: event.TypeExecve, Timestamp: now + 1,
			Proc: event.Process{PID: pid, TID: pid, PPID: self, Comm: "true", ExePath: truePath, Argv: []string{"true"}}}
		tb.Handle(ex)
		if len(ex.Lineage) == 0 || ex.Lineage[0].PID != self {
			t.Fatalf("process %d: lineage %v", pid, names(ex.Lineage))
		}
		_, _ = pr.Wait()
		tb.Handle(&event.Event{Type: event.TypeProcexit, Timestamp: time.Now().UnixNano(), Proc: event.Process{PID: pid, TID: pid, PPID: self}})
	}
	testenv.Eventually(t, 5*time.Second, func() bool {
		tb.Handle(&event.Event{Type: event.TypeOpenat, Timestamp: time.Now().UnixNano(), Proc: event.Process{PID: self, TID: self}})
		return tb.Stats().Size <= start+1
	}, "table did not shrink back: %+v (start %d)", tb.Stats(), start)
	if s := tb.Stats(); s.Evicted != 0 {
		t.Errorf("evictions under churn: %+v", s)
	}
}
