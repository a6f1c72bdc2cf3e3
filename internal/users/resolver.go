package users

import (
	"context"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
)

// Defaults of Config.
const (
	DefaultRefresh  = 5 * time.Second
	DefaultMissWait = 20 * time.Millisecond
	DefaultMaxRoots = 1024
	// idleCycles is how many refresh cycles a container's database stays
	// cached without being used.
	idleCycles = 60
)

// Config configures a Resolver. The zero value resolves the host from / and
// containers through /proc.
type Config struct {
	// HostRoot is the directory whose etc/passwd and etc/group name the
	// host's users. Default "/".
	HostRoot string
	// ProcFS is where /proc is mounted. Default "/proc".
	ProcFS string
	// Refresh is how often Run checks the cached files for changes (size,
	// mtime, inode). Default DefaultRefresh.
	Refresh time.Duration
	// MissWait bounds how long an event of a container not yet cached waits
	// for its files to be read (once per container); the event then goes on
	// without names. Default DefaultMissWait.
	MissWait time.Duration
	// MaxRoots bounds the containers cached. Default DefaultMaxRoots.
	MaxRoots int
}

// Stats are the resolver's counters.
type Stats struct {
	Roots      int    // container databases cached
	Loads      uint64 // passwd/group pairs read
	LoadErrors uint64 // reads that failed (the root then has no names)
	Reloads    uint64 // reads caused by a changed file
	MissWaits  uint64 // events that waited for a first read
	Timeouts   uint64 // first reads that outlasted MissWait
	Overflow   uint64 // containers not cached because MaxRoots was reached
}

// fileID tells whether a file changed since it was read.
type fileID struct {
	size, ino   int64
	mtime, ctim int64
}

// root is the database of one root directory: the host or a container.
type root struct {
	id      string        // container id; "" for the host
	pid     atomic.Uint32 // a process in the container, to reach its root
	db      atomic.Pointer[DB]
	used    atomic.Bool
	pending atomic.Pointer[chan struct{}] // set while a read is queued; closed when done
	retryAt atomic.Int64                  // event time before which a failed read is not retried
	idle    int                           // refresh cycles without use (Run's goroutine only)
	ids     [2]fileID                     // the files last read (Run's goroutine only)
}

// retryAfter spaces the reads of a container whose files could not be read
// (none yet, or its process had not entered its root filesystem).
const retryAfter = int64(time.Second)

// Resolver gives events the names of their user and group, read from the
// passwd and group files of the process's root. See the package doc.
type Resolver struct {
	cfg   Config
	host  *root
	roots atomic.Pointer[map[string]*root] // copy on write, under mu
	mu    sync.Mutex
	load  chan *root

	loads, loadErrors, reloads, missWaits, timeouts, overflow atomic.Uint64
}

// New builds a Resolver and reads the host's files (a failure leaves the
// host without names and is returned for logging; the Resolver is usable).
func New(cfg Config) (*Resolver, error) {
	if cfg.HostRoot == "" {
		cfg.HostRoot = "/"
	}
	if cfg.ProcFS == "" {
		cfg.ProcFS = "/proc"
	}
	if cfg.Refresh <= 0 {
		cfg.Refresh = DefaultRefresh
	}
	if cfg.MissWait <= 0 {
		cfg.MissWait = DefaultMissWait
	}
	if cfg.MaxRoots <= 0 {
		cfg.MaxRoots = DefaultMaxRoots
	}
	r := &Resolver{cfg: cfg, host: &root{}, load: make(chan *root, 64)}
	m := map[string]*root{}
	r.roots.Store(&m)
	return r, r.read(r.host)
}

// Resolve sets ev.Proc.User, Group and LoginUser. Call it from one
// goroutine, after the container id is known. With the root cached it does
// not allocate.
func (r *Resolver) Resolve(ev *event.Event) {
	p := &ev.Proc
	if ev.Type.Class() == event.ClassContainer {
		return
	}
	rt := r.host
	if p.ContainerID != "" {
		rt = r.container(ev)
	}
	var db *DB
	if rt != nil {
		db = rt.db.Load()
	}
	p.User = db.User(p.EUID)
	p.Group = db.Group(p.EGID)
	p.LoginUser = nil
	if p.LoginUID != 0xffffffff {
		p.LoginUser = db.User(p.LoginUID)
	}
}

// container returns the root of ev's container. A container without a
// database asks Run to read it: at its first event, at an exec (the moment a
// container's first process enters its own root) and otherwise at most once
// per retryAfter; the first event and execs wait at most MissWait for it.
func (r *Resolver) container(ev *event.Event) *root {
	id, pid := ev.Proc.ContainerID, ev.Proc.PID
	rt := (*r.roots.Load())[id]
	created := false
	if rt == nil {
		if pid == 0 {
			return nil
		}
		if rt, created = r.add(id); rt == nil {
			return nil
		}
	}
	if !rt.used.Load() {
		rt.used.Store(true)
	}
	if pid != 0 && rt.pid.Load() != pid {
		rt.pid.Store(pid)
	}
	if rt.db.Load() != nil {
		return rt
	}
	exec := ev.Type.Class() == event.ClassExec
	if !created && !exec && ev.Timestamp < rt.retryAt.Load() {
		return rt
	}
	ch := r.request(rt)
	if ch == nil || !(created || exec) {
		return rt
	}
	r.missWaits.Add(1)
	t := time.NewTimer(r.cfg.MissWait)
	defer t.Stop()
	select {
	case <-ch:
	case <-t.C:
		r.timeouts.Add(1)
	}
	return rt
}

// add caches a new container root (copy on write); nil past MaxRoots.
func (r *Resolver) add(id string) (*root, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	old := *r.roots.Load()
	if rt := old[id]; rt != nil {
		return rt, false
	}
	if len(old) >= r.cfg.MaxRoots {
		r.overflow.Add(1)
		return nil, false
	}
	rt := &root{id: id}
	m := make(map[string]*root, len(old)+1)
	for k, v := range old {
		m[k] = v
	}
	m[id] = rt
	r.roots.Store(&m)
	return rt, true
}

// request queues a read of rt unless one is queued, and returns the channel
// closed when it is done (nil when the queue is full).
func (r *Resolver) request(rt *root) <-chan struct{} {
	if ch := rt.pending.Load(); ch != nil {
		return *ch
	}
	ch := make(chan struct{})
	if !rt.pending.CompareAndSwap(nil, &ch) {
		if p := rt.pending.Load(); p != nil {
			return *p
		}
		return nil
	}
	select {
	case r.load <- rt:
		return ch
	default:
		rt.pending.Store(nil)
		close(ch)
		return nil
	}
}

// Run reads containers' files when asked and re-reads changed ones until
// ctx is done. Names of containers stay unknown without it.
func (r *Resolver) Run(ctx context.Context) {
	t := time.NewTicker(r.cfg.Refresh)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case rt := <-r.load:
			if r.read(rt) != nil {
				rt.retryAt.Store(time.Now().UnixNano() + retryAfter)
			}
			if ch := rt.pending.Swap(nil); ch != nil {
				close(*ch)
			}
		case <-t.C:
			r.refresh()
		}
	}
}

// refresh re-reads changed files and forgets containers long unused.
func (r *Resolver) refresh() {
	r.check(r.host)
	var gone []string
	for id, rt := range *r.roots.Load() {
		if rt.used.Swap(false) {
			rt.idle = 0
		} else if rt.idle++; rt.idle >= idleCycles {
			gone = append(gone, id)
			continue
		}
		if rt.db.Load() != nil {
			r.check(rt)
		}
	}
	if len(gone) > 0 {
		r.mu.Lock()
		old := *r.roots.Load()
		m := make(map[string]*root, len(old))
		for k, v := range old {
			m[k] = v
		}
		for _, id := range gone {
			delete(m, id)
		}
		r.roots.Store(&m)
		r.mu.Unlock()
	}
}

// check re-reads rt when one of its files changed (or was unreadable).
func (r *Resolver) check(rt *root) {
	dir, err := r.dir(rt)
	if err != nil {
		return
	}
	dfd, err := openRoot(dir)
	if err != nil {
		return // gone or unreachable: keep what is known
	}
	defer unix.Close(dfd)
	var ids [2]fileID
	for i, name := range dbFiles {
		f, err := openInRoot(dfd, name)
		if err != nil {
			return
		}
		ids[i], err = identify(f)
		f.Close()
		if err != nil {
			return
		}
	}
	if ids != rt.ids {
		r.reloads.Add(1)
		_ = r.read(rt)
	}
}

var dbFiles = [2]string{"etc/passwd", "etc/group"}

// dir is the directory rt's files are relative to.
func (r *Resolver) dir(rt *root) (string, error) {
	if rt.id == "" {
		return r.cfg.HostRoot, nil
	}
	pid := rt.pid.Load()
	if pid == 0 {
		return "", fmt.Errorf("users: container %s: no process", rt.id)
	}
	return r.cfg.ProcFS + "/" + strconv.FormatUint(uint64(pid), 10) + "/root", nil
}

// read loads rt's passwd and group files and stores the database. A group
// file that cannot be read leaves only user names.
func (r *Resolver) read(rt *root) error {
	r.loads.Add(1)
	dir, err := r.dir(rt)
	if err != nil {
		r.loadErrors.Add(1)
		return err
	}
	// Both files are read through one open root: a container's process
	// may exit between them, and /proc/PID/root with it.
	dfd, err := openRoot(dir)
	if err != nil {
		r.loadErrors.Add(1)
		return fmt.Errorf("users: opening %s: %w", dir, err)
	}
	defer unix.Close(dfd)
	if rt.id != "" && sameDir(dfd, r.cfg.HostRoot) {
		// Not yet in its own root (runc init before pivot_root): reading now
		// would give the container the host's names.
		r.loadErrors.Add(1)
		return fmt.Errorf("users: container %s: %w", rt.id, ErrNotEntered)
	}
	var data [2][]byte
	var ids [2]fileID
	for i, name := range dbFiles {
		data[i], ids[i], err = readInRoot(dfd, name)
		if err != nil && i == 0 {
			r.loadErrors.Add(1)
			return fmt.Errorf("users: reading %s/%s: %w", dir, name, err)
		}
	}
	db, err := Parse(data[0], data[1])
	if err != nil {
		r.loadErrors.Add(1)
		return fmt.Errorf("users: %s: %w", dir, err)
	}
	rt.ids = ids
	rt.db.Store(db)
	return nil
}

// sameDir reports whether the directory open at dfd is dir.
func sameDir(dfd int, dir string) bool {
	var sa, sb unix.Stat_t
	if unix.Fstat(dfd, &sa) != nil || unix.Stat(dir, &sb) != nil {
		return false
	}
	return sa.Dev == sb.Dev && sa.Ino == sb.Ino
}

// openRoot opens dir, the root a passwd and group file are resolved in.
func openRoot(dir string) (int, error) {
	return unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
}

// openInRoot opens name with every path component resolved inside the
// directory open at dfd, as if it were "/": a container's absolute symlink
// (etc/passwd -> /etc/shadow) stays in the container. Non-blocking, so a
// FIFO cannot stall the reader.
func openInRoot(dfd int, name string) (*os.File, error) {
	fd, err := unix.Openat2(dfd, name, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), name), nil
}

// identify checks that f is a regular file of bounded size and returns what
// tells a change.
func identify(f *os.File) (fileID, error) {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fileID{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fileID{}, ErrNotFile
	}
	if st.Size > MaxFileSize {
		return fileID{}, ErrTooLarge
	}
	return fileID{size: st.Size, ino: int64(st.Ino), mtime: st.Mtim.Nano(), ctim: st.Ctim.Nano()}, nil
}

// readInRoot reads name, a regular file of at most MaxFileSize bytes, in
// the root open at dfd.
func readInRoot(dfd int, name string) ([]byte, fileID, error) {
	f, err := openInRoot(dfd, name)
	if err != nil {
		return nil, fileID{}, err
	}
	defer f.Close()
	id, err := identify(f)
	if err != nil {
		return nil, fileID{}, err
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fileID{}, err
	}
	if len(b) > MaxFileSize {
		return nil, fileID{}, ErrTooLarge
	}
	return b, id, nil
}

// Stats returns the counters.
func (r *Resolver) Stats() Stats {
	return Stats{
		Roots: len(*r.roots.Load()), Loads: r.loads.Load(), LoadErrors: r.loadErrors.Load(),
		Reloads: r.reloads.Load(), MissWaits: r.missWaits.Load(), Timeouts: r.timeouts.Load(), Overflow: r.overflow.Load(),
	}
}
