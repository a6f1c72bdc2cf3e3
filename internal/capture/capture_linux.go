//go:build linux && (amd64 || arm64)

package capture

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/link"
	"github.com/cilium/ebpf/ringbuf"
	"github.com/cilium/ebpf/rlimit"
	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
)

type sysnum struct {
	nr  uint32
	typ event.Type
}

// Record flags of struct tl_config.
const (
	cfgPID  = 1 << 0
	cfgComm = 1 << 1
)

// pastDeadline makes the reader's wait return at once.
var pastDeadline = time.Unix(1, 0)

// Capture is a loaded and attached set of BPF programs and the reader of
// their ring buffer. Read/Run must be called from one goroutine at a time;
// SetTypes, Stats and Close may be called from any goroutine.
type Capture struct {
	objs  objects
	links []link.Link
	hook  Hook // resolved: HookSyscall or HookRaw
	// sysLinks are the per-syscall tracepoint links by syscall number
	// (HookSyscall), following the enabled types; detached stops that.
	sysLinks map[uint32]link.Link
	untraced map[event.Type]bool // enabled, but no tracepoint in this kernel
	fallback error               // why HookAuto chose the raw hook
	detached bool
	rd       *ringbuf.Reader
	rec      ringbuf.Record
	// noWait: the reader's deadline is in the past (records are queued).
	noWait bool
	dec    decoder
	flush  time.Duration

	mu       sync.Mutex // guards cfg, map reprogramming and the links
	detachMu sync.Mutex // serialises detach
	cfg      triplineTlConfig

	closeOnce sync.Once
	closed    atomic.Bool
	final     Stats // the kernel counters as Close found them
	last      Stats // the kernel counters last read whole
	malformed atomic.Uint64
	noIdent   atomic.Uint64
	decoded   atomic.Uint64

	// drainUntil is set by Stop: the wall-clock ns until which Read keeps
	// returning the records still queued.
	drainUntil atomic.Int64
}

// objects are the maps and programs New loads: of the two sys_exit
// programs, only the one for the chosen hook (see open).
type objects struct {
	triplineMaps
	TlSchedFork *ebpf.Program `ebpf:"tl_sched_fork"`
	TlSchedExit *ebpf.Program `ebpf:"tl_sched_exit"`
	TlSchedExec *ebpf.Program `ebpf:"tl_sched_exec"`
	TlSysExit   *ebpf.Program `ebpf:"tl_sys_exit"`
	// compat reports 32-bit syscalls; nil when they are not traced (not a
	// field LoadAndAssign fills: it needs every tagged program).
	compat []*ebpf.Program
}

// withCompat is what LoadAndAssign fills when 32-bit syscalls are traced.
type withCompat struct {
	*objects
	Compat *ebpf.Program `ebpf:"tl_sys_exit_compat"`
}

func (o *objects) Close() error {
	err := o.triplineMaps.Close()
	for _, p := range append([]*ebpf.Program{o.TlSchedFork, o.TlSchedExit, o.TlSchedExec, o.TlSysExit}, o.compat...) {
		if e := p.Close(); e != nil && err == nil { // nil-safe
			err = e
		}
	}
	return err
}

// Capturable returns the event types this build can capture on this
// architecture, in Type order.
func Capturable() []event.Type {
	var out []event.Type
	for t := event.TypeUnknown + 1; t < event.NumTypes; t++ {
		if capturable(t) {
			out = append(out, t)
		}
	}
	return out
}

func capturable(t event.Type) bool {
	return t == event.TypeProcexit || hasSyscall(t)
}

func hasSyscall(t event.Type) bool {
	return slices.ContainsFunc(syscallTypes, func(s sysnum) bool { return s.typ == t })
}

// SyscallHooked reports whether the per-syscall hook attaches to the exit
// of t's syscall: t has one, and is not a fork (sched_process_fork reports
// those).
func SyscallHooked(t event.Type) bool {
	return hasSyscall(t) && t.Class() != event.ClassFork
}

// namedProg is a program and the tracepoint it attaches to.
type namedProg struct {
	name string
	prog *ebpf.Program
}

// schedHooks are the scheduler events every capture hooks, whatever its
// types: the process table and the pid filter follow them.
func (o *objects) schedHooks() []namedProg {
	return []namedProg{
		{"sched_process_fork", o.TlSchedFork},
		{"sched_process_exit", o.TlSchedExit},
		{"sched_process_exec", o.TlSchedExec},
	}
}

// New loads the BPF programs, configures them from cfg and attaches them.
func New(cfg Config) (*Capture, error) {
	if cfg.ArgvMax == 0 {
		cfg.ArgvMax = DefaultArgvMax
	}
	if cfg.ArgvMax < 0 || cfg.ArgvMax > MaxArgvMax {
		return nil, fmt.Errorf("capture: ArgvMax %d out of range [1,%d]", cfg.ArgvMax, MaxArgvMax)
	}
	switch {
	case cfg.EnvMax == 0:
		cfg.EnvMax = DefaultEnvMax
	case cfg.EnvMax < 0:
		cfg.EnvMax = 0
	case cfg.EnvMax > MaxEnvMax:
		return nil, fmt.Errorf("capture: EnvMax %d out of range [1,%d]", cfg.EnvMax, MaxEnvMax)
	}
	// One count of the CPUs writing events sizes the ring and splits the
	// wakeup threshold between them.
	ncpu := onlineCPUs()
	if cfg.RingSize == 0 {
		cfg.RingSize = ringSizeFor(ncpu)
	}
	if cfg.RingSize < os.Getpagesize() || cfg.RingSize&(cfg.RingSize-1) != 0 {
		return nil, fmt.Errorf("capture: RingSize %d is not a power of two of at least a page", cfg.RingSize)
	}
	if len(cfg.Comm) > 15 {
		return nil, fmt.Errorf("capture: Comm %q longer than 15 bytes", cfg.Comm)
	}
	if cfg.FlushInterval <= 0 {
		cfg.FlushInterval = DefaultFlushInterval
	}
	if cfg.WakeupBytes <= 0 {
		cfg.WakeupBytes = cfg.RingSize / 16
	}
	wakeup := uint64(max(cfg.WakeupBytes/ncpu, 4096)) // per CPU
	mask, err := typeMask(cfg.Types)
	if err != nil {
		return nil, err
	}
	if _, err := os.Stat("/sys/kernel/btf/vmlinux"); err != nil {
		return nil, ErrNoBTF
	}
	// Kernels before 5.11 charge BPF memory to RLIMIT_MEMLOCK.
	_ = rlimit.RemoveMemlock()

	hook, why, err := resolveHook(cfg.Hook)
	if err != nil {
		return nil, err
	}
	c, err := open(cfg, mask, wakeup, hook)
	if errors.Is(err, errSyscallHook) && cfg.Hook == HookAuto {
		// What only the per-syscall hook needs (tracefs event ids,
		// perf_event_open on tracepoints, which an LSM may refuse)
		// failed: the raw hook still captures everything.
		why = err
		c, err = open(cfg, mask, wakeup, HookRaw)
		if err != nil {
			return nil, fmt.Errorf("%w (the per-syscall hook failed first: %v)", err, why)
		}
	}
	if err != nil {
		return nil, err
	}
	c.fallback = why
	return c, nil
}

// RingSize is the ring buffer's size in bytes.
func (c *Capture) RingSize() int { return int(c.objs.Events.MaxEntries()) }

// onlineCPUs counts the CPUs online, which are the ones writing events: the
// possible CPUs can be many more on hypervisors that leave room for
// hotplug. runtime.NumCPU when the list cannot be read.
func onlineCPUs() int {
	b, err := os.ReadFile("/sys/devices/system/cpu/online")
	if err != nil {
		return runtime.NumCPU()
	}
	n, ok := countCPUList(strings.TrimSpace(string(b)))
	if !ok {
		return runtime.NumCPU()
	}
	return n
}

// open loads, configures and attaches everything with the given hook.
func open(cfg Config, mask, wakeup uint64, hook Hook) (*Capture, error) {
	spec, err := loadTripline()
	if err != nil {
		return nil, fmt.Errorf("capture: reading embedded BPF objects: %w", err)
	}
	spec.Maps[triplineMapEvents].MaxEntries = uint32(cfg.RingSize)
	cpus, err := ebpf.PossibleCPU()
	if err != nil {
		return nil, fmt.Errorf("capture: counting possible CPUs: %w", err)
	}
	spec.Maps[triplineMapStats].MaxEntries = uint32(cpus) // an entry per CPU

	c := &Capture{flush: cfg.FlushInterval, hook: hook, sysLinks: map[uint32]link.Link{}, untraced: map[event.Type]bool{}}
	if hook == HookSyscall {
		// Load the per-syscall program in the raw one's place, so that
		// only one of the two is verified and the rest of the code names
		// one program.
		spec.Programs[triplineProgTlSysExit] = spec.Programs[triplineProgTlSysExitTp]
	}
	delete(spec.Programs, triplineProgTlSysExitTp)
	var dst any = &c.objs
	wc := &withCompat{objects: &c.objs}
	if !cfg.Compat || !CompatKernel() {
		delete(spec.Programs, triplineProgTlSysExitCompat)
	} else {
		dst = wc
	}
	if err := spec.LoadAndAssign(dst, nil); err != nil {
		// The verifier also answers EACCES: tell its rejection from a
		// missing privilege first.
		var ve *ebpf.VerifierError
		if errors.As(err, &ve) {
			return nil, fmt.Errorf("capture: BPF verifier rejected the programs: %+v", ve)
		}
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			return nil, fmt.Errorf("%w: loading BPF objects: %v", ErrPrivilege, err)
		}
		return nil, fmt.Errorf("capture: loading BPF objects: %w", err)
	}
	if wc.Compat != nil {
		c.objs.compat = []*ebpf.Program{wc.Compat}
	}

	c.cfg = triplineTlConfig{
		ArgvMax:     uint32(cfg.ArgvMax),
		EnvMax:      uint32(cfg.EnvMax),
		WakeupBytes: wakeup,
		TypeMask:    mask,
	}
	if cfg.PID != 0 {
		c.cfg.Flags |= cfgPID
		c.cfg.Pid = cfg.PID
	}
	if cfg.Comm != "" {
		c.cfg.Flags |= cfgComm
		for i := range len(cfg.Comm) {
			c.cfg.Comm[i] = int8(cfg.Comm[i])
		}
	}
	if !cfg.IncludeSelf {
		c.cfg.SelfTgid = uint32(os.Getpid())
	}
	if err := c.program(); err != nil {
		c.objs.Close()
		return nil, err
	}
	if cfg.Filter != nil {
		if err := c.programFilter(cfg.Filter); err != nil {
			c.objs.Close()
			return nil, err
		}
	}

	c.dec.bootOffset = bootOffset()
	c.rd, err = ringbuf.NewReader(c.objs.Events)
	if err != nil {
		c.objs.Close()
		return nil, fmt.Errorf("capture: opening ring buffer: %w", err)
	}

	if err := c.attach(); err != nil {
		c.Close()
		return nil, err
	}
	return c, nil
}

// attach hooks the loaded programs: on the capture's open, and again after
// a detach in the overhead benchmark, which toggles the hooks of one load.
func (c *Capture) attach() error {
	c.detachMu.Lock()
	defer c.detachMu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.detached = false
	// Attach the lifecycle hooks first so no process escapes the pid filter
	// between its fork and its first syscall.
	progs := c.objs.schedHooks()
	if c.hook == HookRaw {
		progs = append(progs, namedProg{"sys_exit", c.objs.TlSysExit})
	}
	for _, p := range c.objs.compat {
		progs = append(progs, namedProg{"sys_exit", p})
	}
	for _, p := range progs {
		l, err := link.AttachTracing(link.TracingOptions{Program: p.prog})
		if err != nil {
			if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
				return fmt.Errorf("%w: attaching tp_btf/%s: %v", ErrPrivilege, p.name, err)
			}
			return fmt.Errorf("capture: attaching tp_btf/%s: %w", p.name, err)
		}
		c.links = append(c.links, l)
	}
	stale, err := c.hookSyscalls() // none: detach took every link
	return errors.Join(err, closeLinks(stale))
}

// Compat reports whether 32-bit syscalls are traced (see Config.Compat).
func (c *Capture) Compat() bool { return len(c.objs.compat) > 0 }

// Hook reports how syscall exits are traced: HookSyscall or HookRaw.
func (c *Capture) Hook() Hook { return c.hook }

// Fallback says why HookAuto ended up with the raw hook (nil when it did
// not).
func (c *Capture) Fallback() error { return c.fallback }

// resolveHook turns HookAuto into HookSyscall when the syscalls tracepoints
// can be reached in tracefs, mounting tracefs at /sys/kernel/tracing when
// nothing is mounted (as systemd does at boot; the sensor runs as root), and
// into HookRaw, with the reason, when they cannot.
func resolveHook(h Hook) (hook Hook, why, err error) {
	switch h {
	case HookRaw:
		return HookRaw, nil, nil
	case HookAuto, HookSyscall:
	default:
		return "", nil, fmt.Errorf("capture: unknown hook %q (want %q or %q)", h, HookSyscall, HookRaw)
	}
	reach := syscallEvents()
	switch {
	case reach == nil:
		return HookSyscall, nil, nil
	case h == HookSyscall:
		return "", nil, fmt.Errorf("capture: hook %q: %w", h, reach)
	default:
		return HookRaw, reach, nil
	}
}

// tracefsDir is where tracefs is mounted when none is; tracefsDirs are
// where it is looked for (debugfs mounts it below itself).
const tracefsDir = "/sys/kernel/tracing"

var tracefsDirs = []string{tracefsDir, "/sys/kernel/debug/tracing"}

// tracefsAt tells whether tracefs (or debugfs) is mounted at d.
func tracefsAt(d string) bool {
	var st unix.Statfs_t
	return unix.Statfs(d, &st) == nil && (st.Type == unix.TRACEFS_MAGIC || st.Type == unix.DEBUGFS_MAGIC)
}

// syscallEvents checks that the syscalls trace events are reachable where
// link.Tracepoint looks for them, after mounting tracefs if none is mounted.
func syscallEvents() error {
	if !slices.ContainsFunc(tracefsDirs, tracefsAt) {
		if err := unix.Mount("tracefs", tracefsDir, "tracefs", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
			return fmt.Errorf("no tracefs, and mounting it at %s: %w", tracefsDir, err)
		}
	}
	err := errors.New("no tracefs at " + strings.Join(tracefsDirs, " or "))
	for _, d := range tracefsDirs {
		if !tracefsAt(d) {
			continue
		}
		_, err = os.Stat(d + "/events/syscalls")
		if err == nil {
			return nil
		}
		if errors.Is(err, os.ErrNotExist) {
			err = fmt.Errorf("no syscalls trace events in %s (a kernel without CONFIG_FTRACE_SYSCALLS?)", d)
		}
	}
	return err
}

// tracepointName is the syscalls/sys_exit_<name> event of a syscall type:
// the kernel's SYSCALL_DEFINE name.
func tracepointName(t event.Type) string {
	if t == event.TypeUmount2 {
		return "umount"
	}
	return t.String()
}

// hookSyscalls attaches the per-syscall program to the exit of every
// syscall whose type is enabled and returns the links of the others, for
// the caller to close once it has released c.mu: closing one waits for the
// kernel's grace periods, a second for a dozen, which Stats should not
// wait for. Fork types are reported by sched_process_fork and need no
// syscall hook. Callers hold c.mu or own c.
func (c *Capture) hookSyscalls() (stale map[uint32]link.Link, err error) {
	if c.hook != HookSyscall || c.detached {
		return nil, nil
	}
	for _, s := range syscallTypes {
		want := c.cfg.TypeMask&(1<<s.typ) != 0 && SyscallHooked(s.typ)
		l, have := c.sysLinks[s.nr]
		switch {
		case want && !have:
			name := "sys_exit_" + tracepointName(s.typ)
			// The program reads the syscall's type from the cookie.
			l, err := link.Tracepoint("syscalls", name, c.objs.TlSysExit, &link.TracepointOptions{Cookie: uint64(s.typ)})
			if errors.Is(err, os.ErrNotExist) && optionalSyscall(s.typ) {
				// A syscall the kernel may be built without
				// (init_module without CONFIG_MODULES) has no trace
				// event; it fails with ENOSYS and does nothing.
				c.untraced[s.typ] = true
				continue
			}
			if err != nil {
				if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
					return stale, fmt.Errorf("%w: %w: attaching syscalls/%s: %v", errSyscallHook, ErrPrivilege, name, err)
				}
				return stale, fmt.Errorf("capture: %w: attaching syscalls/%s: %w", errSyscallHook, name, err)
			}
			c.sysLinks[s.nr] = l
		case !want && have:
			if stale == nil {
				stale = map[uint32]link.Link{}
			}
			stale[s.nr] = l
			delete(c.sysLinks, s.nr)
		}
		if !want {
			delete(c.untraced, s.typ)
		}
	}
	return stale, nil
}

// errSyscallHook marks a failure to attach the per-syscall hook, which
// HookAuto answers with the raw hook rather than a failed New.
var errSyscallHook = errors.New("per-syscall hook")

// optionalSyscall reports whether t's syscall may be missing from a kernel
// the probes run on. Any other missing trace event is an error: the
// sensor would be blind to the type.
func optionalSyscall(t event.Type) bool {
	return t == event.TypeInitModule || t == event.TypeFinitModule
}

// Untraced returns the enabled types that are not traced because the kernel
// has no trace event for their syscall (HookSyscall): syscalls it does not
// implement, which fail with ENOSYS. The raw hook sees those attempts too.
func (c *Capture) Untraced() []event.Type {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []event.Type
	for t := range event.NumTypes {
		if c.untraced[t] {
			out = append(out, t)
		}
	}
	return out
}

// typeMask validates types and returns the bit set of enabled types.
func typeMask(types []event.Type) (uint64, error) {
	if types == nil {
		types = Capturable()
	}
	var mask uint64
	for _, t := range types {
		if !capturable(t) {
			return 0, fmt.Errorf("capture: event type %q cannot be captured on this system", t)
		}
		mask |= 1 << t
	}
	return mask, nil
}

// program writes the config and the syscall table. Callers hold c.mu or own c.
func (c *Capture) program() error {
	// The 32-bit numbers follow the native ones in the table.
	compatBase := c.objs.Syscalls.MaxEntries() / 2
	for _, tab := range []struct {
		base uint32
		nums []sysnum
	}{{0, syscallTypes}, {compatBase, compatSyscallTypes}} {
		for _, s := range tab.nums {
			var v uint8
			if c.cfg.TypeMask&(1<<s.typ) != 0 {
				v = uint8(s.typ)
			}
			// Fork-family numbers stay mapped even when disabled so the
			// pid filter can follow children; type_mask decides emission.
			if s.typ.Class() == event.ClassFork {
				v = uint8(s.typ)
			}
			if err := c.objs.Syscalls.Update(tab.base+s.nr, v, ebpf.UpdateAny); err != nil {
				return fmt.Errorf("capture: programming syscall table: %w", err)
			}
		}
	}
	if err := c.objs.Config.Update(uint32(0), &c.cfg, ebpf.UpdateAny); err != nil {
		return fmt.Errorf("capture: writing config: %w", err)
	}
	return nil
}

// SetTypes reprograms the in-kernel type filter (nil = all capturable).
func (c *Capture) SetTypes(types []event.Type) error {
	mask, err := typeMask(types)
	if err != nil {
		return err
	}
	// detachMu keeps a concurrent SetTypes or detach from attaching while
	// the links dropped here are still being closed.
	c.detachMu.Lock()
	defer c.detachMu.Unlock()
	stale, err := c.setTypes(mask)
	return errors.Join(err, closeLinks(stale))
}

// setTypes is SetTypes under c.mu: it returns the links to close.
func (c *Capture) setTypes(mask uint64) (map[uint32]link.Link, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() {
		return nil, ErrClosed
	}
	c.cfg.TypeMask = mask
	if err := c.program(); err != nil {
		return nil, err
	}
	return c.hookSyscalls()
}

// Read blocks until the next event is decoded into ev. Strings and slices in
// ev are valid until the next Read. It returns ErrClosed after Close.
func (c *Capture) Read(ev *event.Event) error {
	return c.read(nil, ev)
}

func (c *Capture) read(ctx context.Context, ev *event.Event) error {
	for {
		if c.closed.Load() {
			return ErrClosed
		}
		if ctx != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if d := c.drainUntil.Load(); d != 0 && (c.rd.AvailableBytes() == 0 || time.Now().UnixNano() > d) {
			c.Close() // stopped, and the ring is drained (or the time is up)
			return ErrClosed
		}
		// Producers rarely wake us (BPF_RB_NO_WAKEUP below the threshold),
		// so the deadline decides how long the reader waits: the flush
		// interval on an empty ring, not at all while records are queued.
		// It is set only when that choice changes, keeping the clock read
		// and the reader's lock off the per-record path.
		if c.rd.AvailableBytes() == 0 {
			c.rd.SetDeadline(time.Now().Add(c.flush))
			c.noWait = false
		} else if !c.noWait {
			c.rd.SetDeadline(pastDeadline)
			c.noWait = true
		}
		if err := c.rd.ReadInto(&c.rec); err != nil {
			if errors.Is(err, os.ErrDeadlineExceeded) {
				continue
			}
			if errors.Is(err, os.ErrClosed) || c.closed.Load() {
				return ErrClosed
			}
			return fmt.Errorf("capture: reading ring buffer: %w", err)
		}
		if err := c.dec.decode(c.rec.RawSample, ev); err != nil {
			c.malformed.Add(1)
			if errors.Is(err, errNoIdent) {
				c.noIdent.Add(1)
				c.resync(u32(c.rec.RawSample, offEpoch))
			}
			continue
		}
		c.decoded.Add(1)
		return nil
	}
}

// resync has every task resend its identity with its next record, after a
// record named one the decoder does not hold (evicted from the cache, or
// its record failed validation). Records sent before the new epoch reaches
// the kernel name the old one and do not bump it again.
func (c *Capture) resync(epoch uint32) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed.Load() || epoch != c.cfg.Epoch {
		return
	}
	c.cfg.Epoch++
	_ = c.objs.Config.Update(uint32(0), &c.cfg, ebpf.UpdateAny) // best effort: the next unknown record retries
}

// Pending reports whether records are queued, so that Read returns without
// waiting (unless they are all malformed). Call it from the reading
// goroutine.
func (c *Capture) Pending() bool {
	return !c.closed.Load() && c.rd.AvailableBytes() > 0
}

// Stop ends the capture in order and returns once the programs are detached
// (about a second with the per-syscall hook: the kernel waits once per
// syscall hooked), so no new records arrive; Read goes on returning the records
// still queued in the ring, for at most timeout, and then closes the
// capture and returns ErrClosed. Records a stop leaves behind would be
// counted as seen yet never processed. Close still works (and must be
// called if nothing reads).
func (c *Capture) Stop(timeout time.Duration) {
	if c.closed.Load() || c.drainUntil.Load() != 0 {
		return
	}
	// Detach first: a reader that found the ring empty before the last
	// program run committed its record would close and leave it behind.
	c.detach()
	c.drainUntil.CompareAndSwap(0, time.Now().Add(timeout).UnixNano())
}

// detach closes the links: the programs stop running. The syscall hooks go
// first, so that no syscall event arrives once the lifecycle is no longer
// followed. The links are closed outside c.mu, which Stats and SetTypes
// need meanwhile; detachMu makes a second caller wait for the first.
func (c *Capture) detach() error {
	c.detachMu.Lock()
	defer c.detachMu.Unlock()
	c.mu.Lock()
	sys, lifecycle := c.sysLinks, c.links
	c.sysLinks, c.links = map[uint32]link.Link{}, nil
	c.detached = true
	c.mu.Unlock()
	err := closeLinks(sys)
	// In the reverse of the attach order: the raw syscall hook, attached
	// after the lifecycle, goes before it.
	for _, l := range slices.Backward(lifecycle) {
		if e := l.Close(); e != nil && err == nil {
			err = e
		}
	}
	return err
}

// closeLinks closes links concurrently. Each detach from a syscall
// tracepoint waits for the kernel's grace periods (tens of ms here) under
// a kernel mutex, so concurrency only overlaps the rest: 44 links take
// about 1.2 s instead of 2.4 s.
func closeLinks(links map[uint32]link.Link) error {
	var wg sync.WaitGroup
	errs := make(chan error, len(links))
	for _, l := range links {
		wg.Go(func() {
			if err := l.Close(); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	return <-errs // the first error, or nil
}

// Run calls fn for every event until ctx is cancelled (returning nil) or the
// capture is closed (returning ErrClosed). fn borrows the event.
func (c *Capture) Run(ctx context.Context, fn func(*event.Event)) error {
	var ev event.Event
	for {
		err := c.read(ctx, &ev)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		fn(&ev)
	}
}

// Stats sums the per-CPU kernel counters and the userspace ones.
func (c *Capture) Stats() Stats {
	c.mu.Lock()
	defer c.mu.Unlock()
	var s Stats
	if c.closed.Load() {
		s = c.final // the maps are gone: the last figures stand
	} else {
		s = c.kernelStats()
	}
	s.Malformed, s.NoIdentity, s.Decoded = c.malformed.Load(), c.noIdent.Load(), c.decoded.Load()
	return s
}

// kernelStats sums the per-CPU counters of the stats map. A read that
// fails part way gives the last whole one: the counters only grow, and a
// partial sum would make them shrink (and a later read look like new
// losses). Callers hold c.mu.
func (c *Capture) kernelStats() Stats {
	var s Stats
	var cpu uint32
	var p triplineTlStats
	it := c.objs.Stats.Iterate()
	for it.Next(&cpu, &p) {
		s.Seen += p.Seen
		s.Delivered += p.Delivered
		s.Lost += p.Lost
		s.Truncated += p.Truncated
		s.Filtered += p.Filtered
		s.FilteredEarly += p.FilteredEarly
		for t := range event.NumTypes {
			s.SeenByType[t] += p.SeenType[t]
			s.LostByType[t] += p.LostType[t]
			s.FilteredByType[t] += p.FilteredType[t]
		}
	}
	if it.Err() != nil {
		return c.last
	}
	c.last = s
	return s
}

// Close detaches and unloads everything. It is idempotent; a blocked Read
// returns ErrClosed.
func (c *Capture) Close() error {
	var err error
	c.closeOnce.Do(func() {
		err = c.detach()
		// Detached: the counters are final. Keep them for Stats.
		c.mu.Lock()
		if c.objs.Stats != nil {
			c.final = c.kernelStats()
		}
		c.closed.Store(true)
		c.mu.Unlock()
		if c.rd != nil {
			if e := c.rd.Close(); e != nil && err == nil {
				err = e
			}
		}
		if e := c.objs.Close(); e != nil && err == nil {
			err = e
		}
	})
	return err
}

// bootOffset returns CLOCK_REALTIME - CLOCK_BOOTTIME in ns, sampled with the
// tightest bracketing of a few tries.
func bootOffset() int64 {
	best, off := int64(-1), int64(0)
	for range 5 {
		var ts unix.Timespec
		r1 := time.Now().UnixNano()
		_ = unix.ClockGettime(unix.CLOCK_BOOTTIME, &ts)
		r2 := time.Now().UnixNano()
		if d := r2 - r1; best < 0 || d < best {
			best = d
			off = r1 + d/2 - ts.Nano()
		}
	}
	return off
}
