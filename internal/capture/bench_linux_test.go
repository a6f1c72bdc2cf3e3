//go:build linux && (amd64 || arm64)

package capture

import (
	"context"
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
	"time"

	"github.com/cilium/ebpf"
	"github.com/cilium/ebpf/asm"
	"github.com/cilium/ebpf/link"
	"golang.org/x/sys/unix"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
	"github.com/tripline/tripline/internal/testenv"
)

// BenchmarkOverhead measures the slowdown of tight syscall loops while the
// capture runs (every type, a reader draining the ring), against the same
// loop without it (see measure for the ratios and why the capture is loaded
// once and attached only around the hooked blocks). The "-floor" variants hook
// the same places with programs that do nothing: the part of the ratios the
// kernel's hooks cost whatever the programs do. Root only.
//
//	go test -run '^$' -bench Overhead -benchtime 20000x ./internal/capture [-args -rounds 12 -bpfstats]
func BenchmarkOverhead(b *testing.B) {
	testenv.RequireRoot(b)
	dir := b.TempDir()
	file := filepath.Join(dir, "f")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	openClose := func() {
		fd, err := unix.Open(file, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
	b.Run("open-close", func(b *testing.B) { overhead(b, Config{}, openClose) })
	// A rule set of open rules only, without and with the process lifecycle
	// that the sensor always captures for its tables.
	opens := event.ClassOpen.Types()
	b.Run("open-close-opentypes", func(b *testing.B) { overhead(b, Config{Types: opens}, openClose) })
	b.Run("open-close-open+lifecycle", func(b *testing.B) { overhead(b, Config{Types: append(Lifecycle(), opens...)}, openClose) })

	// The default rules as the sensor runs them: their types plus the
	// lifecycle, without and with their kernel filter, on a file no rule
	// matches and on one a rule matches (a name in "Read cloud or
	// Kubernetes credentials").
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{Captured: Capturable()})
	if err != nil {
		b.Fatal(err)
	}
	var ruleTypes []event.Type
	for _, t := range Capturable() {
		if slices.Contains(rs.Types(), t) || slices.Contains(Lifecycle(), t) {
			ruleTypes = append(ruleTypes, t)
		}
	}
	filter := benchFilter(rs.KernelFilter())
	watched := filepath.Join(dir, ".aws", "credentials")
	if err := os.MkdirAll(filepath.Dir(watched), 0o755); err != nil {
		b.Fatal(err)
	}
	if err := os.WriteFile(watched, []byte("x"), 0o644); err != nil {
		b.Fatal(err)
	}
	openWatched := func() {
		fd, err := unix.Open(watched, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
	}
	b.Run("open-close-defaults-nofilter", func(b *testing.B) { overhead(b, Config{Types: ruleTypes}, openClose) })
	b.Run("open-close-defaults-filter", func(b *testing.B) { overhead(b, Config{Types: ruleTypes, Filter: filter}, openClose) })
	// With the hook of 32-bit syscalls (--compat-syscalls=on), which runs
	// on every syscall.
	b.Run("open-close-defaults-filter-compat", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter, Compat: true}, openClose)
	})
	b.Run("open-close-defaults-filter-raw", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter, Hook: HookRaw}, openClose)
	})
	b.Run("open-close-floor", func(b *testing.B) { overheadFloor(b, ruleTypes, openClose) })
	// The raw hook's floor: one empty program on every syscall's exit.
	b.Run("open-close-floor-raw", func(b *testing.B) { measure(b, openClose, floorHooksOn(b, ruleTypes, HookRaw)) })
	b.Run("open-close-defaults-filter-overfloor", func(b *testing.B) {
		overheadOverFloor(b, Config{Types: ruleTypes, Filter: filter}, ruleTypes, openClose)
	})
	b.Run("open-close-defaults-filter-entry", func(b *testing.B) {
		overheadEntry(b, Config{Types: ruleTypes, Filter: filter}, ruleTypes, openClose)
	})
	b.Run("open-close-defaults-filter-work", func(b *testing.B) { overheadWork(b, Config{Types: ruleTypes, Filter: filter}, openClose) })
	b.Run("open-close-defaults-filter-match", func(b *testing.B) { overhead(b, Config{Types: ruleTypes, Filter: filter}, openWatched) })
	// File churn as editors and builds make it: a temporary file written,
	// renamed over another and removed. The default rules watch none of
	// it: the open is dropped on its path, the rename and the unlink on
	// their file names.
	tmp, churned := filepath.Join(dir, "churn.tmp"), filepath.Join(dir, "churned.o")
	fileChurn := func() {
		fd, err := unix.Open(tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_TRUNC|unix.O_CLOEXEC, 0o644)
		if err != nil {
			b.Fatal(err)
		}
		unix.Close(fd)
		if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, churned, 0); err != nil {
			b.Fatal(err)
		}
		if err := unix.Unlinkat(unix.AT_FDCWD, churned, 0); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("file-churn-defaults-nofilter", func(b *testing.B) { overhead(b, Config{Types: ruleTypes}, fileChurn) })
	b.Run("file-churn-defaults-filter", func(b *testing.B) { overhead(b, Config{Types: ruleTypes, Filter: filter}, fileChurn) })
	b.Run("file-churn-floor", func(b *testing.B) { overheadFloor(b, ruleTypes, fileChurn) })
	// A syscall no hook captures: what every other syscall of the host
	// pays once any syscall is hooked (the kernel's syscall-trace path;
	// with the raw hook, also the program's early return).
	b.Run("getppid-defaults-filter", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter}, func() { unix.Getppid() })
	})
	b.Run("getppid-defaults-filter-compat", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter, Compat: true}, func() { unix.Getppid() })
	})
	b.Run("getppid-defaults-filter-raw", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter, Hook: HookRaw}, func() { unix.Getppid() })
	})
	forkExec := func() {
		if err := exec.Command("/bin/true").Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("fork-exec-defaults-filter", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter}, forkExec)
	})
	b.Run("fork-exec-floor", func(b *testing.B) { overheadFloor(b, ruleTypes, forkExec) })
	b.Run("fork-exec-lifecycle", func(b *testing.B) {
		overhead(b, Config{Types: Lifecycle()}, forkExec)
	})
	b.Run("fork-exec-defaults-filter-raw", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter, Hook: HookRaw}, forkExec)
	})
	b.Run("fork-exec", func(b *testing.B) {
		overhead(b, Config{}, forkExec)
	})
	// A command found through a PATH search (env, shells, shims): five
	// failed execs before the one that runs, which the default rules let
	// the kernel drop (FailDrop); and the same without that drop.
	pathSearch := func() {
		cmd := exec.Command("/usr/bin/env", "true")
		cmd.Env = []string{"PATH=/nonexistent/a:/nonexistent/b:/nonexistent/c:/nonexistent/d:/nonexistent/e:/usr/bin:/bin"}
		if err := cmd.Run(); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("path-search-defaults-filter", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter}, pathSearch)
	})
	b.Run("path-search-defaults-filter-keepfailures", func(b *testing.B) {
		keep := *filter
		keep.FailDrop = nil
		overhead(b, Config{Types: ruleTypes, Filter: &keep}, pathSearch)
	})
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	defer l.Close()
	acceptAndClose(l)
	sa := &unix.SockaddrInet4{Addr: [4]byte{127, 0, 0, 1}, Port: l.Addr().(*net.TCPAddr).Port}
	connect := func() {
		fd, err := unix.Socket(unix.AF_INET, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			b.Fatal(err)
		}
		if err := unix.Connect(fd, sa); err != nil {
			b.Fatal(err)
		}
		// Close with a reset: no TIME_WAIT sockets pile up and skew
		// later rounds (ephemeral ports, hash chains).
		_ = unix.SetsockoptLinger(fd, unix.SOL_SOCKET, unix.SO_LINGER, &unix.Linger{Onoff: 1, Linger: 0})
		unix.Close(fd)
	}
	b.Run("tcp-connect", func(b *testing.B) { overhead(b, Config{}, connect) })
	// Every type reports socket() too; the default rules do not need it.
	// A loopback connect from the host matches no default rule: the filter
	// drops it in the kernel.
	b.Run("tcp-connect-defaults-nofilter", func(b *testing.B) { overhead(b, Config{Types: ruleTypes}, connect) })
	b.Run("tcp-connect-defaults-filter", func(b *testing.B) { overhead(b, Config{Types: ruleTypes, Filter: filter}, connect) })
	b.Run("tcp-connect-floor", func(b *testing.B) { overheadFloor(b, ruleTypes, connect) })
	// Against the floor in the same blocks: separate runs of the two read
	// a spread of about 0.1 here (the floor below 1), the loop's own noise.
	b.Run("tcp-connect-defaults-filter-overfloor", func(b *testing.B) {
		overheadOverFloor(b, Config{Types: ruleTypes, Filter: filter}, ruleTypes, connect)
	})
	b.Run("tcp-connect-defaults-filter-raw", func(b *testing.B) {
		overhead(b, Config{Types: ruleTypes, Filter: filter, Hook: HookRaw}, connect)
	})
}

// threadCPU returns the CPU time of the calling OS thread: unlike wall time
// it excludes time other processes hold the CPU, so the ratio stays
// meaningful on a loaded machine (BPF programs run on the caller's thread).
func threadCPU() time.Duration {
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_THREAD_CPUTIME_ID, &ts)
	return time.Duration(ts.Nano())
}

// benchFilter is the capture's filter of kf as the sensor programs it.
func benchFilter(kf *rules.KernelFilter) *Filter {
	f := RulesFilter(kf)
	f.HostMntNS, _ = HostMntNS() // 0 (off) when unknown, as in the sensor
	return f
}

// Flags of BenchmarkOverhead (after -args).
var (
	// Off by default: with the statistics on, every program run pays two
	// clock reads (about 100 ns on the development VM), which the ratios
	// would count though the sensor never turns them on.
	bpfStats = flag.Bool("bpfstats", false, "Overhead: turn on the kernel's BPF run-time statistics and report bpf-ns/op (each program run then costs two clock reads more)")
	rounds   = flag.Int("rounds", 6, "Overhead: hooked blocks per benchmark, each between two baseline blocks")
)

// hooks are programs loaded once, attached and detached around each hooked
// block of a benchmark.
type hooks struct {
	sys    *ebpf.Program   // with sched, their run time is bpf-ns/op
	sched  []*ebpf.Program // their share is bpf-sched-ns/op
	attach func()
	detach func()
	stop   func() Stats // detaches and unloads for good
	counts bool
}

// overhead runs op with the capture configured by cfg (Types nil: every
// type; Filter nil: none) on and off.
func overhead(b *testing.B, cfg Config, op func()) {
	_, h := benchCapture(b, cfg)
	measure(b, op, h)
}

// overheadWork runs op with the capture attached throughout, its type mask
// set around the hooked blocks and cleared around the others, where the
// programs return after reading it: the ratio is what the programs' work
// beyond their entry costs, toggled in microseconds rather than the second
// a detach takes, so the blocks can be short and many and the machine's
// drift weighs less than in the other variants.
func overheadWork(b *testing.B, cfg Config, op func()) {
	c, h := benchCapture(b, cfg)
	mask := c.cfg.TypeMask
	setMask := func(m uint64) {
		c.mu.Lock()
		defer c.mu.Unlock()
		c.cfg.TypeMask = m
		if err := c.objs.Config.Update(uint32(0), &c.cfg, ebpf.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
	h.attach = func() { setMask(mask) }
	h.detach = func() { setMask(0) }
	measure(b, op, h)
}

// benchCapture starts the capture cfg configures, following this process
// and its children, with a reader counting what it decodes; its hooks
// attach and detach the capture's programs.
func benchCapture(b *testing.B, cfg Config) (*Capture, hooks) {
	cfg.PID, cfg.IncludeSelf, cfg.RingSize = uint32(os.Getpid()), true, 32<<20
	c, err := New(cfg)
	if err != nil {
		b.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- c.Run(ctx, func(*event.Event) {})
	}()
	var sched []*ebpf.Program
	for _, h := range c.objs.schedHooks() {
		sched = append(sched, h.prog)
	}
	return c, hooks{
		sys:    c.objs.TlSysExit,
		sched:  sched,
		counts: true,
		attach: func() {
			if err := c.attach(); err != nil {
				b.Fatal(err)
			}
		},
		detach: func() {
			if err := c.detach(); err != nil {
				b.Fatal(err)
			}
		},
		stop: func() Stats {
			c.detach()
			// Let the reader drain before reading the counters.
			deadline := time.Now().Add(5 * time.Second)
			for time.Now().Before(deadline) {
				s := c.Stats()
				if s.Decoded+s.Malformed >= s.Delivered {
					break
				}
				time.Sleep(time.Millisecond)
			}
			s := c.Stats()
			cancel()
			<-done
			c.Close()
			return s
		},
	}
}

// overheadFloor runs op with, instead of the capture, programs that return
// at once on the hooks the capture would use for types (the exits of their
// syscalls, and the scheduler events it always hooks): what the kernel's hook
// machinery costs before any of the sensor's code runs. Its ratio is the
// floor of the capture's ratios on this machine.
func overheadFloor(b *testing.B, types []event.Type, op func()) {
	measure(b, op, floorHooks(b, types))
}

// overheadOverFloor runs op with the capture cfg configures against the
// floor's empty programs on the same hooks rather than against no hooks:
// its ratio is what the sensor's own code costs beyond the kernel's hook
// machinery. Both sides share the interleaved blocks, so the floor, which
// moves between about 1.03 and 1.10 from one day to the next on the
// development VM, cancels out.
func overheadOverFloor(b *testing.B, cfg Config, types []event.Type, op func()) {
	_, h := benchCapture(b, cfg)
	measureOverFloor(b, h, types, op)
}

// overheadEntry is overheadOverFloor with the capture's type mask cleared
// in the kernel once its hooks are attached (they are chosen by the mask),
// so its programs return after reading it: what their entry (the hook's
// context, the config) costs beyond an empty program's.
func overheadEntry(b *testing.B, cfg Config, types []event.Type, op func()) {
	c, h := benchCapture(b, cfg)
	attach := h.attach
	h.attach = func() {
		attach()
		c.mu.Lock()
		defer c.mu.Unlock()
		kcfg := c.cfg
		kcfg.TypeMask = 0
		if err := c.objs.Config.Update(uint32(0), &kcfg, ebpf.UpdateAny); err != nil {
			b.Fatal(err)
		}
	}
	measureOverFloor(b, h, types, op)
}

// measureOverFloor measures op with the hooks h against the floor's empty
// programs for types.
func measureOverFloor(b *testing.B, h hooks, types []event.Type, op func()) {
	fl := floorHooks(b, types)
	attach, detach, stop := h.attach, h.detach, h.stop
	h.attach = func() {
		fl.detach()
		attach()
	}
	h.detach = func() {
		detach()
		fl.attach()
	}
	h.stop = func() Stats {
		s := stop()
		fl.stop()
		return s
	}
	measure(b, op, h)
}

// floorHooks loads programs that return at once, for the hooks the capture
// would use for types: the exits of their syscalls, and the scheduler
// events it always hooks.
func floorHooks(b *testing.B, types []event.Type) hooks {
	return floorHooksOn(b, types, HookSyscall)
}

// floorHooksOn is floorHooks with the syscall exits hooked as hook says.
func floorHooksOn(b *testing.B, types []event.Type, hook Hook) hooks {
	if err := syscallEvents(); err != nil {
		b.Fatal(err)
	}
	var progs []*ebpf.Program
	var links []link.Link
	detach := func() {
		for _, l := range links {
			l.Close()
		}
		links = nil
	}
	release := func() {
		detach()
		for _, p := range progs {
			p.Close()
		}
		progs = nil
	}
	b.Cleanup(release) // after a failed attach
	nop := func(spec ebpf.ProgramSpec) *ebpf.Program {
		spec.License = "GPL"
		spec.Instructions = asm.Instructions{asm.Mov.Imm(asm.R0, 0), asm.Return()}
		p, err := ebpf.NewProgram(&spec)
		if err != nil {
			b.Fatal(err)
		}
		progs = append(progs, p)
		return p
	}
	raw := hook == HookRaw
	sysSpec := ebpf.ProgramSpec{Type: ebpf.TracePoint}
	if raw {
		sysSpec = ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: "sys_exit"}
	}
	sys := nop(sysSpec)
	schedHooks := (&objects{}).schedHooks()
	var sched []*ebpf.Program
	for _, h := range schedHooks {
		sched = append(sched, nop(ebpf.ProgramSpec{Type: ebpf.Tracing, AttachType: ebpf.AttachTraceRawTp, AttachTo: h.name}))
	}
	attach := func() {
		for _, p := range sched {
			l, err := link.AttachTracing(link.TracingOptions{Program: p})
			if err != nil {
				b.Fatal(err)
			}
			links = append(links, l)
		}
		if raw {
			l, err := link.AttachTracing(link.TracingOptions{Program: sys})
			if err != nil {
				b.Fatal(err)
			}
			links = append(links, l)
			return
		}
		for _, sn := range syscallTypes {
			if !slices.Contains(types, sn.typ) || !SyscallHooked(sn.typ) {
				continue
			}
			l, err := link.Tracepoint("syscalls", "sys_exit_"+tracepointName(sn.typ), sys, nil)
			if errors.Is(err, os.ErrNotExist) && optionalSyscall(sn.typ) {
				continue
			}
			if err != nil {
				b.Fatal(err)
			}
			links = append(links, l)
		}
	}
	return hooks{
		sys:    sys,
		sched:  sched,
		attach: attach,
		detach: detach,
		stop: func() Stats {
			release()
			return Stats{}
		},
	}
}

// measure runs blocks of op, *rounds of them with the hooks attached and
// one more without them than with: each hooked block sits between two
// baseline blocks, and its ratio is its time over their mean, so a machine
// drifting slowly during the run does not skew it. "ratio" is the median
// of these ratios on wall time, "cpu-ratio" on the thread's CPU time: one
// round disturbed by the rest of the machine does not decide them. The
// programs are loaded once, before the first block, and only attached and
// detached around the hooked ones: the ratios are those of a sensor that
// has been running, without what loading and verifying costs the machine
// for a few seconds after.
func measure(b *testing.B, op func(), h hooks) {
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	stopped := false
	stop := func() Stats {
		if stopped {
			return Stats{}
		}
		stopped = true
		return h.stop()
	}
	b.Cleanup(func() { stop() }) // when op fails with the hooks attached
	// The programs' own run time: it includes the early exits of other
	// processes' syscalls; the sched programs' share is mostly this
	// process's forks, execs and exits.
	if *bpfStats {
		st, err := ebpf.EnableStats(uint32(unix.BPF_STATS_RUN_TIME))
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
	}
	n := min(max(*rounds, 1), max(b.N, 1))
	per := max(b.N/n, 1)
	block := func() (wall, cpu time.Duration) {
		start, cpu0 := time.Now(), threadCPU()
		for range per {
			op()
		}
		return time.Since(start), threadCPU() - cpu0
	}
	// Detaching waits for the kernel's grace periods (most of a second
	// with the per-syscall hook) while the work op leaves behind (freed
	// sockets, reaped tasks) catches up; the hooked blocks get as long a
	// pause after attaching, or they would pay for the baseline's backlog.
	// And what the kernel frees after a detach returns would land on the
	// baseline: both blocks start after a further quiet settle.
	const settle = 250 * time.Millisecond
	var pause time.Duration
	detach := func() {
		start := time.Now()
		h.detach()
		pause = time.Since(start)
		time.Sleep(settle)
	}
	detach() // loaded attached
	var base, with time.Duration
	var wallRatios, cpuRatios []float64
	bWall, bCPU := block()
	base += bWall
	for range n {
		start := time.Now()
		h.attach()
		time.Sleep(pause + settle - time.Since(start))
		wWall, wCPU := block()
		detach()
		with += wWall
		aWall, aCPU := block()
		base += aWall
		wallRatios = append(wallRatios, 2*float64(wWall)/float64(bWall+aWall))
		cpuRatios = append(cpuRatios, 2*float64(wCPU)/float64(bCPU+aCPU))
		bWall, bCPU = aWall, aCPU
	}
	var bpfTime, schedTime time.Duration
	if *bpfStats {
		for _, p := range append([]*ebpf.Program{h.sys}, h.sched...) {
			if ps, err := p.Stats(); err == nil {
				bpfTime += ps.Runtime
				if p != h.sys {
					schedTime += ps.Runtime
				}
			}
		}
	}
	s := stop()
	ops := float64(per * n)
	b.ReportMetric(median(wallRatios), "ratio")
	b.ReportMetric(median(cpuRatios), "cpu-ratio")
	b.ReportMetric(float64(base.Nanoseconds())/(ops+float64(per)), "base-ns/op")
	b.ReportMetric(float64(with.Nanoseconds())/ops, "capture-ns/op")
	if *bpfStats {
		b.ReportMetric(float64(bpfTime.Nanoseconds())/ops, "bpf-ns/op")
		b.ReportMetric(float64(schedTime.Nanoseconds())/ops, "bpf-sched-ns/op")
	}
	if h.counts {
		b.ReportMetric(float64(s.Lost), "lost")
		b.ReportMetric(float64(s.Seen)/with.Seconds(), "events/s")
		b.ReportMetric(float64(s.Filtered)/ops, "filtered/op")
		b.ReportMetric(float64(s.FilteredEarly)/ops, "filtered-early/op")
	}
}

func median(v []float64) float64 {
	slices.Sort(v)
	if n := len(v); n%2 == 0 {
		return (v[n/2-1] + v[n/2]) / 2
	}
	return v[len(v)/2]
}
