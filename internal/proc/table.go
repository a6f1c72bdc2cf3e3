package proc

import (
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tripline/tripline/internal/event"
)

// ErrProcFS is returned by Seed when the proc filesystem cannot be read.
var ErrProcFS = errors.New("proc: cannot read procfs")

// Config configures a Table. The zero value is usable.
type Config struct {
	// MaxEntries caps the number of tracked processes; past it the least
	// recently used entry is evicted. Default 65536.
	MaxEntries int
	// ExitGrace is how long an exited process stays resolvable so that late
	// events (from other CPUs) still find it. Default 5s.
	ExitGrace time.Duration
	// ProcFS is the proc filesystem mount. Default /proc.
	ProcFS string
	// ContainerID maps a cgroup path to a full container id ("" for the
	// host); it fills Process.ContainerID of the snapshots, and so of
	// Lineage entries. Wire it to (*enrich.Enricher).ContainerIDOf. When nil
	// a snapshot keeps the ContainerID its event carried.
	ContainerID func(cgroupPath string) string
	// DisableMissRead turns off reading /proc/<pid> when a non-exec event
	// names an unknown process (rare: processes the seed missed, or evicted
	// ones). By default the table reads it, synchronously.
	DisableMissRead bool
}

// Defaults.
const (
	DefaultMaxEntries = 65536
	DefaultExitGrace  = 5 * time.Second
	DefaultProcFS     = "/proc"
)

// Stats are counters of a Table.
type Stats struct {
	Size      int    // entries held, exited ones within their grace included
	Seeded    uint64 // entries created by Seed
	Forks     uint64 // processes created by fork events
	Execs     uint64 // snapshots replaced by exec events
	Exits     uint64 // process exits seen
	Expired   uint64 // entries removed after their exit grace
	Evicted   uint64 // entries removed by the MaxEntries cap
	Misses    uint64 // events whose process had no entry
	MissReads uint64 // misses resolved by reading /proc
	Refreshed uint64 // snapshots replaced because credentials, comm, namespaces or cgroup changed
	ProcErrs  uint64 // /proc entries that could not be read (process gone, malformed)
}

// entry is the table's bookkeeping around a snapshot. Only Handle and Seed
// (under wmu) touch prev/next/exitAt/stamp; p is read by Get.
type entry struct {
	p          atomic.Pointer[event.Process]
	prev, next *entry // LRU list; head.next is the most recent
	stamp      int64  // time of the event (or scan) that produced p
	exitAt     int64  // exit time, 0 while alive
	pid        uint32
	// The fd table, fds 0-2 only (see fd.go): what each refers to and
	// whether it closes on exec. Writer-only, like stamp.
	std     [3]event.StdFD
	cloexec uint8
}

type exitRec struct {
	e  *entry
	at int64
}

// Table is the process table. See the package doc.
type Table struct {
	cfg Config

	wmu    sync.Mutex   // serialises writers (Handle, Seed)
	mu     sync.RWMutex // guards m against Get; writers hold wmu too, so they read m without it
	m      map[uint32]*entry
	lru    entry     // sentinel
	exq    []exitRec // exits in time order, from exHead on
	exHead int
	cgv2   string // cgroup v2 mount, for cgroup ids of scanned processes

	seeded, forks, execs, exits, expired, evicted, misses, missReads, refreshed, procErrs atomic.Uint64
}

// New returns an empty table; call Seed to fill it from /proc.
func New(cfg Config) *Table {
	if cfg.MaxEntries <= 0 {
		cfg.MaxEntries = DefaultMaxEntries
	}
	if cfg.ExitGrace <= 0 {
		cfg.ExitGrace = DefaultExitGrace
	}
	if cfg.ProcFS == "" {
		cfg.ProcFS = DefaultProcFS
	}
	t := &Table{cfg: cfg, m: make(map[uint32]*entry)}
	t.lru.next, t.lru.prev = &t.lru, &t.lru
	t.cgv2 = cgroup2Mount(cfg.ProcFS)
	return t
}

// Get returns the snapshot of process pid (thread-group id), or nil. Safe for
// concurrent use.
func (t *Table) Get(pid uint32) *event.Process {
	t.mu.RLock()
	e := t.m[pid]
	t.mu.RUnlock()
	if e == nil {
		return nil
	}
	return e.p.Load()
}

// Stats returns the counters. Safe for concurrent use.
func (t *Table) Stats() Stats {
	t.mu.RLock()
	n := len(t.m)
	t.mu.RUnlock()
	return Stats{
		Size: n, Seeded: t.seeded.Load(), Forks: t.forks.Load(), Execs: t.execs.Load(),
		Exits: t.exits.Load(), Expired: t.expired.Load(), Evicted: t.evicted.Load(),
		Misses: t.misses.Load(), MissReads: t.missReads.Load(), Refreshed: t.refreshed.Load(),
		ProcErrs: t.procErrs.Load(),
	}
}

// Handle updates the table from ev and fills ev's lineage and missing
// process fields. Call it from one goroutine.
func (t *Table) Handle(ev *event.Event) {
	t.wmu.Lock()
	defer t.wmu.Unlock()
	now := ev.Timestamp
	if now == 0 {
		now = time.Now().UnixNano()
	}
	t.expire(now)

	p := &ev.Proc
	var e *entry
	if ev.Type.Class() == event.ClassExec && !ev.Failed() && p.PID != 0 {
		e = t.exec(ev, now)
	} else {
		e = t.current(ev, now)
		if e != nil {
			fill(p, e.p.Load())
		}
	}
	t.lineage(ev, e)
	if e != nil {
		trackStd(e, ev)
		ev.Std = e.std
	}

	switch ev.Type.Class() {
	case event.ClassFork:
		t.fork(ev, now, e)
	case event.ClassExit:
		if !ev.Exit.Thread && e != nil && e.exitAt == 0 {
			e.exitAt = now
			t.exq = append(t.exq, exitRec{e: e, at: now})
			t.exits.Add(1)
		}
	}
}

// fill copies into p the fields a non-exec event does not carry.
func fill(p *event.Process, s *event.Process) {
	if s == nil {
		return
	}
	if p.ExePath == "" {
		p.ExePath = s.ExePath
	}
	if p.Argv == nil {
		p.Argv = s.Argv
	}
	if p.Env == nil {
		p.Env = s.Env
	}
	if p.Cwd == "" {
		p.Cwd = s.Cwd
	}
	if p.CgroupPath == "" {
		p.CgroupPath = s.CgroupPath
	}
	if p.ContainerID == "" {
		p.ContainerID = s.ContainerID
	}
	if !p.ExeFromMemfd && !p.ExeUpperLayer && !p.ExeLowerLayer && !p.ExeWritable {
		p.ExeFromMemfd, p.ExeUpperLayer, p.ExeLowerLayer, p.ExeWritable = s.ExeFromMemfd, s.ExeUpperLayer, s.ExeLowerLayer, s.ExeWritable
	}
	if p.StartTime == 0 {
		p.StartTime = s.StartTime
	}
	if p.Comm == "" {
		p.Comm = s.Comm
	}
}

// exec replaces the snapshot of the process with the new image.
func (t *Table) exec(ev *event.Event, now int64) *entry {
	p := &ev.Proc
	s := p.Clone()
	old := t.m[p.PID]
	var prev *event.Process
	if old != nil {
		prev = old.p.Load()
	}
	if prev != nil {
		// Exec keeps the process: its start time, and whatever the capture
		// could not read this time.
		if s.StartTime == 0 {
			s.StartTime = prev.StartTime
		}
		if s.CgroupPath == "" {
			s.CgroupPath = prev.CgroupPath
		}
		if s.Cwd == "" {
			s.Cwd = prev.Cwd
		}
		if s.VPID == 0 {
			s.VPID = prev.VPID
		}
	}
	if s.StartTime == 0 {
		s.StartTime = now
	}
	if t.cfg.ContainerID != nil {
		s.ContainerID = t.cfg.ContainerID(s.CgroupPath)
	} else if s.ContainerID == "" && prev != nil && s.CgroupPath == prev.CgroupPath {
		s.ContainerID = prev.ContainerID
	}
	if p.ContainerID == "" {
		p.ContainerID = s.ContainerID
	}
	if p.StartTime == 0 {
		p.StartTime = s.StartTime
	}
	t.execs.Add(1)
	if old != nil && old.exitAt == 0 {
		old.p.Store(&s)
		old.stamp = now
		t.touch(old)
		return old
	}
	return t.insert(p.PID, &s, now)
}

// current returns the entry of ev's process, creating or refreshing it from
// the event when needed.
func (t *Table) current(ev *event.Event, now int64) *entry {
	p := &ev.Proc
	if p.PID == 0 {
		return nil
	}
	e := t.m[p.PID]
	if e != nil && e.exitAt != 0 && ev.Type.Class() != event.ClassExit && p.StartTime != 0 {
		// An event of a live process under the pid of an exited entry: the
		// pid was reused.
		if s := e.p.Load(); s.StartTime != 0 && !sameStart(s.StartTime, p.StartTime) {
			e = nil
		}
	}
	if e == nil {
		t.misses.Add(1)
		var s *event.Process
		if !t.cfg.DisableMissRead && ev.Type.Class() != event.ClassExit {
			if r, err := readProcess(t.cfg.ProcFS, t.cgv2, p.PID); err == nil && (p.StartTime == 0 || r.StartTime == 0 || sameStart(r.StartTime, p.StartTime)) {
				t.missReads.Add(1)
				s = r
			}
		}
		if s == nil {
			c := p.Clone()
			s = &c
		} else {
			merge(s, p)
		}
		if t.cfg.ContainerID != nil && s.CgroupPath != "" {
			s.ContainerID = t.cfg.ContainerID(s.CgroupPath)
		}
		return t.insert(p.PID, s, now)
	}
	t.touch(e)
	if s := e.p.Load(); changed(s, p) {
		n := *s
		merge(&n, p)
		if p.CgroupID != 0 && p.CgroupID != s.CgroupID && p.CgroupPath == "" {
			// Moved to another cgroup without exec (runc joins the container
			// cgroup this way): re-read the path.
			if cg, err := readCgroup(t.cfg.ProcFS, p.PID); err == nil {
				n.CgroupPath = cg
			}
		}
		if t.cfg.ContainerID != nil && n.CgroupPath != s.CgroupPath {
			n.ContainerID = t.cfg.ContainerID(n.CgroupPath)
		}
		e.p.Store(&n)
		e.stamp = now
		t.refreshed.Add(1)
	}
	return e
}

// startSlack is how far two start times of one process may differ: /proc
// counts 10 ms ticks since boot and the capture converts kernel clocks to
// wall time its own way. A pid is reused only after pid_max forks, so a
// generous slack costs nothing.
const startSlack = int64(time.Second)

// sameStart compares start times from /proc and from the kernel.
func sameStart(a, b int64) bool {
	d := a - b
	return d > -startSlack && d < startSlack
}

// changed reports whether the kernel-side fields every event carries differ
// from the snapshot; zero values in the event mean "not captured".
func changed(s, p *event.Process) bool {
	return (p.PPID != 0 && p.PPID != s.PPID) ||
		(p.VPID != 0 && p.VPID != s.VPID) ||
		(p.SID != 0 && p.SID != s.SID) ||
		p.UID != s.UID || p.GID != s.GID || p.EUID != s.EUID || p.EGID != s.EGID ||
		(p.LoginUID != 0 && p.LoginUID != s.LoginUID) ||
		(p.Comm != "" && p.Comm != s.Comm) ||
		p.TTY != s.TTY || // 0 is a value: setsid drops the terminal
		p.CapEffective != s.CapEffective || p.CapPermitted != s.CapPermitted || p.CapInheritable != s.CapInheritable ||
		(p.PidNS != 0 && p.PidNS != s.PidNS) || (p.MntNS != 0 && p.MntNS != s.MntNS) ||
		(p.CgroupID != 0 && p.CgroupID != s.CgroupID) ||
		(p.CgroupPath != "" && p.CgroupPath != s.CgroupPath) ||
		(p.StartTime != 0 && p.StartTime != s.StartTime)
}

// merge copies the kernel-side fields of the event p into snapshot s,
// cloning strings (the event's are borrowed).
func merge(s, p *event.Process) {
	s.PID = p.PID
	if s.TID == 0 {
		s.TID = p.TID
	}
	if p.PPID != 0 {
		s.PPID = p.PPID
	}
	if p.VPID != 0 {
		s.VPID = p.VPID
	}
	if p.SID != 0 {
		s.SID = p.SID
	}
	s.UID, s.GID, s.EUID, s.EGID = p.UID, p.GID, p.EUID, p.EGID
	if p.LoginUID != 0 {
		s.LoginUID = p.LoginUID
	}
	if p.Comm != "" && p.Comm != s.Comm {
		s.Comm = strings.Clone(p.Comm)
	}
	s.TTY = p.TTY
	s.CapEffective, s.CapPermitted, s.CapInheritable = p.CapEffective, p.CapPermitted, p.CapInheritable
	if p.PidNS != 0 {
		s.PidNS = p.PidNS
	}
	if p.MntNS != 0 {
		s.MntNS = p.MntNS
	}
	if p.CgroupID != 0 {
		s.CgroupID = p.CgroupID
	}
	if p.CgroupPath != "" && p.CgroupPath != s.CgroupPath {
		s.CgroupPath = strings.Clone(p.CgroupPath)
	}
	if p.StartTime != 0 {
		s.StartTime = p.StartTime
	}
	if s.ExePath == "" && p.ExePath != "" {
		s.ExePath = strings.Clone(p.ExePath)
	}
	if s.Cwd == "" && p.Cwd != "" {
		s.Cwd = strings.Clone(p.Cwd)
	}
	if s.Argv == nil && p.Argv != nil {
		s.Argv = event.CloneStrings(p.Argv)
	}
	if s.Env == nil && p.Env != nil {
		s.Env = event.CloneStrings(p.Env)
	}
}

// cloneNewPID is CLONE_NEWPID.
const cloneNewPID = 0x20000000

// fork creates the child's entry as a copy of the parent's snapshot.
func (t *Table) fork(ev *event.Event, now int64, pe *entry) {
	f := &ev.Fork
	if f.IsThread || ev.Failed() {
		return
	}
	child := f.ChildPID
	if child == 0 && ev.Res > 0 && ev.Res <= 1<<22 {
		child = uint32(ev.Res)
	}
	if child == 0 || child == ev.Proc.PID {
		return
	}
	if old := t.m[child]; old != nil && old.exitAt == 0 && old.stamp >= now {
		// The child's own events (another CPU) got here first; they are newer.
		return
	}
	var s event.Process // pe is the parent's entry (Handle's current)
	if pe != nil {
		s = *pe.p.Load()
	} else {
		s = ev.Proc.Clone()
	}
	pp := &ev.Proc
	s.PID, s.TID, s.PPID = child, f.ChildTID, pp.PID
	if s.TID == 0 {
		s.TID = child
	}
	switch {
	case f.CloneFlags&cloneNewPID != 0:
		s.VPID = 1
	case pp.VPID != 0 && pp.VPID == pp.PID:
		s.VPID = child
	default:
		s.VPID = 0
	}
	s.VTID = s.VPID
	s.StartTime = now
	t.forks.Add(1)
	ce := t.insert(child, &s, now)
	if pe != nil { // the child inherits the fds
		ce.std, ce.cloexec = pe.std, pe.cloexec
	}
}

// lineage fills ev.Lineage by walking the parents.
func (t *Table) lineage(ev *event.Event, e *entry) {
	buf := ev.LineageBuf()
	ppid := ev.Proc.PPID
	start := ev.Proc.StartTime
	if e != nil {
		s := e.p.Load()
		if ppid == 0 {
			ppid = s.PPID
		}
		if start == 0 {
			start = s.StartTime
		}
	}
	self := ev.Proc.PID
	for len(buf) < event.MaxLineage && ppid != 0 && ppid != self {
		pe := t.m[ppid]
		if pe == nil {
			break
		}
		ps := pe.p.Load()
		if start != 0 && ps.StartTime != 0 && ps.StartTime > start+startSlack {
			break // pid reused by a younger process
		}
		buf = append(buf, ps)
		t.touch(pe)
		self, ppid, start = ppid, ps.PPID, ps.StartTime
	}
	ev.Lineage = buf
}

// insert adds or replaces the entry of pid. Caller holds wmu.
func (t *Table) insert(pid uint32, s *event.Process, stamp int64) *entry {
	e := &entry{pid: pid, stamp: stamp}
	e.p.Store(s)
	t.mu.Lock()
	if old := t.m[pid]; old != nil {
		t.unlink(old)
	} else if len(t.m) >= t.cfg.MaxEntries {
		if v := t.lru.prev; v != &t.lru {
			t.unlink(v)
			delete(t.m, v.pid)
			t.evicted.Add(1)
		}
	}
	t.m[pid] = e
	t.mu.Unlock()
	t.pushFront(e)
	return e
}

// expire removes exited entries whose grace has passed.
func (t *Table) expire(now int64) {
	grace := int64(t.cfg.ExitGrace)
	for t.exHead < len(t.exq) && t.exq[t.exHead].at+grace <= now {
		r := t.exq[t.exHead]
		t.exq[t.exHead] = exitRec{}
		t.exHead++
		if cur := t.m[r.e.pid]; cur == r.e {
			t.mu.Lock()
			delete(t.m, r.e.pid)
			t.mu.Unlock()
			t.unlink(r.e)
			t.expired.Add(1)
		}
	}
	switch {
	case t.exHead == len(t.exq):
		t.exq, t.exHead = t.exq[:0], 0 // reuse the backing array
		if cap(t.exq) > 1<<16 {
			t.exq = nil // after a burst, let it go
		}
	case t.exHead > 1024 && t.exHead > len(t.exq)/2:
		n := copy(t.exq, t.exq[t.exHead:])
		clear(t.exq[n:])
		t.exq, t.exHead = t.exq[:n], 0
	}
}

func (t *Table) touch(e *entry) {
	if t.lru.next == e {
		return
	}
	t.unlink(e)
	t.pushFront(e)
}

func (t *Table) unlink(e *entry) {
	if e.prev == nil {
		return
	}
	e.prev.next = e.next
	e.next.prev = e.prev
	e.prev, e.next = nil, nil
}

func (t *Table) pushFront(e *entry) {
	e.next = t.lru.next
	e.prev = &t.lru
	t.lru.next.prev = e
	t.lru.next = e
}
