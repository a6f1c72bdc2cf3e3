package capture

import (
	"errors"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/tripline/tripline/internal/event"
)

// Errors.
var (
	ErrClosed      = errors.New("capture: closed")
	ErrUnsupported = errors.New("capture: unsupported platform (needs linux on amd64 or arm64)")
	ErrNoBTF       = errors.New("capture: kernel BTF not found (/sys/kernel/btf/vmlinux; needs CONFIG_DEBUG_INFO_BTF)")
	ErrPrivilege   = errors.New("capture: not permitted (needs root, or CAP_BPF with CAP_PERFMON)")
	ErrHostNS      = errors.New("capture: the host's mount namespace is unknown")
)

// Defaults and limits of Config.
const (
	DefaultArgvMax       = 4096
	MaxArgvMax           = 8191
	DefaultEnvMax        = 4096
	MaxEnvMax            = 8191
	DefaultFlushInterval = 5 * time.Millisecond
)

// Config configures a Capture. The zero value captures everything but
// 32-bit syscalls (see Compat).
type Config struct {
	// Types are the event types to capture; nil means Capturable().
	// Types this build cannot capture are an error.
	Types []event.Type
	// ArgvMax is the number of argv bytes captured on exec (the arguments
	// NUL-separated); longer argv are cut and flagged FlagArgvTruncated.
	// Default DefaultArgvMax, at most MaxArgvMax.
	ArgvMax int
	// EnvMax is the number of environment bytes captured on exec (from the
	// new image's memory, "NAME=value" strings NUL-separated); longer
	// environments are cut and flagged FlagEnvTruncated. 0 means
	// DefaultEnvMax, a negative value captures no environment; at most
	// MaxEnvMax.
	EnvMax int
	// RingSize is the ring buffer size in bytes, a power of two and a
	// multiple of the page size. Default (0): RingPerCPU for each online
	// CPU, rounded up to a power of two within RingMin..RingMax.
	RingSize int
	// PID, when non-zero, keeps only events of this thread group and of the
	// processes it (transitively) forks after New. Filtered in the kernel.
	PID uint32
	// Comm, when set, keeps only events of tasks whose comm is exactly this
	// (at most 15 bytes). Filtered in the kernel.
	Comm string
	// IncludeSelf keeps events of the calling process, which are dropped by
	// default so the sensor does not observe itself.
	IncludeSelf bool
	// FlushInterval bounds how long a queued record waits for the reader
	// when traffic is too low to wake it. Default DefaultFlushInterval.
	FlushInterval time.Duration
	// WakeupBytes bounds the data queued before the reader is woken: each
	// online CPU wakes it after writing WakeupBytes divided by their
	// number (at least 4 KiB). Default RingSize/16.
	WakeupBytes int
	// Filter, when set, drops in the kernel the events no rule can match
	// (counted in Stats.Filtered). Nil sends everything.
	Filter *Filter
	// Hook chooses how syscall exits are traced (default HookAuto).
	Hook Hook
	// Compat also reports 32-bit syscalls (ia32 on x86_64), which the
	// per-syscall tracepoints never see and any 64-bit process can make
	// with int $0x80: as the native syscall they stand for (an ia32 open
	// is an open), so rules need not know. It takes a program on the raw
	// sys_exit tracepoint, which runs on every syscall of the host and
	// returns at once for native ones. Only on amd64 and where the kernel
	// has ia32 emulation (and ia32_emulation=false was not given at
	// boot); see Capture.Compat.
	Compat bool
}

// Hook is how the sensor traces syscall exits.
type Hook string

const (
	// HookAuto uses HookSyscall when tracefs is there (mounting it at
	// /sys/kernel/tracing if need be) and HookRaw otherwise.
	HookAuto Hook = ""
	// HookSyscall attaches to the syscalls/sys_exit_<name> tracepoint of
	// each captured syscall: the program runs only on those syscalls.
	HookSyscall Hook = "syscall"
	// HookRaw attaches to the raw sys_exit tracepoint (tp_btf): the
	// program runs on every syscall of the host and returns at once for
	// the ones not captured. It needs no tracefs.
	HookRaw Hook = "raw"
)

// Filter is a kernel filter derived from the rules (cmd/sensor converts
// rules.KernelFilter): per type, an open or connect is sent when it passes
// one of the type's terms. Types without an entry pass.
type Filter struct {
	Open []OpenFilter
	Sock []SockFilter
	File []FileFilter
	// HostDrop are the types whose events from processes in the mount
	// namespace HostMntNS are dropped (only container rules use them).
	// Exec, fork and exit are refused: the process table needs them.
	HostDrop []event.Type
	// HostMntNS is the inode number of the host's mount namespace (see
	// HostMntNS); 0 turns HostDrop and the Container terms off.
	HostMntNS uint64
	// FailDrop are the types whose failed syscalls are dropped (no rule
	// can match them; a failure changes no state the sensor keeps).
	FailDrop []event.Type
}

// FileFilter is the filter of one file-change type (event.ClassFile): an
// event passes when one of Terms lets it pass.
type FileFilter struct {
	Type  event.Type
	Terms []FileTerm
}

// FileTerm is one way a file change passes. With Container, its process
// is not in the host's mount namespace. With Flags (not 0), its argument
// register FlagReg has one of those bits (the terms of one type test one
// register). Otherwise the file name (the last component) of its first
// path as passed is in Names[0], or that of its second in Names[1]; a nil
// list is not looked at. A looked-at path whose last component is empty,
// "." or ".." passes (userspace resolves it to another name), as does one
// that was not read whole; one whose last component is longer than
// FilterNameMax never matches a name.
type FileTerm struct {
	Container bool
	FlagReg   uint8
	Flags     uint64
	Names     [2][]string
}

// SockFilter is the filter of one socket type (connect only).
type SockFilter struct {
	Type  event.Type
	Terms []SockTerm
}

// SockTerm is one way a connect passes: its family is in Families and its
// outcome in Results (SockFam*, SockRes* bits); when Container, its caller
// is not in the host's mount namespace; for IPv4/IPv6, its remote port is
// in one of Ports (nil: any), its remote address in one of Addrs (nil:
// any) and in none of NotAddrs. The family, address and port are those
// the decoder reports in event.Connect; an IPv4-mapped IPv6 address is
// compared as IPv4 (IPv4 prefixes), other IPv6 addresses with IPv6
// prefixes.
type SockTerm struct {
	Families, Results uint8
	Container         bool
	Ports             []PortRange
	Addrs, NotAddrs   []netip.Prefix
}

// PortRange is the ports Lo..Hi, both included.
type PortRange struct{ Lo, Hi uint16 }

// Family bits of SockTerm.Families: SockFamOther is any other family or
// none.
const (
	SockFamOther = 1 << iota
	SockFamUnix
	SockFamInet
	SockFamInet6
)

// Outcome bits of SockTerm.Results: success, -EINPROGRESS, other failures.
const (
	SockResOK = 1 << iota
	SockResInProgress
	SockResFailed
)

// OpenFilter is the filter of one open type.
type OpenFilter struct {
	Type  event.Type
	Terms []OpenTerm
}

// OpenTerm is one way an open passes: its access mode allows Read/Write
// when they are required; a failed open passes unless Success is required,
// and only with one of Errnos when there are some; a successful one unless
// Failure is, and only when AnyPath or its resolved path starts with one
// of Prefixes, contains one of Contains at a '/' (each must begin with
// '/'), or its last component is one of Names.
type OpenTerm struct {
	Read, Write               bool
	Success, Failure          bool
	Errnos                    []int // errnos from FilterErrnoMax on let every failure pass
	AnyPath                   bool
	Prefixes, Contains, Names []string
}

// Limits of the socket filter: at most FilterSockTerms distinct terms in
// all; beyond FilterPortIntervals port intervals the ports are not
// filtered.
const (
	FilterSockTerms     = 64
	FilterPortIntervals = 1024
)

// Limits of a Filter: prefixes and contained texts are compared on at most
// FilterPrefixMax bytes (longer ones are cut, which lets more pass), names
// have at most FilterNameMax bytes, a path longer than FilterScanMax passes
// a Contains test, and there are at most FilterEntries distinct prefixes,
// contained texts and names each; errnos are told apart below
// FilterErrnoMax.
const (
	FilterPrefixMax = 128
	FilterNameMax   = 63
	FilterScanMax   = 256
	FilterEntries   = 4096
	FilterErrnoMax  = 64
)

// Stats are capture counters since New.
type Stats struct {
	Seen      uint64 // records that passed the in-kernel filters
	Delivered uint64 // records written to the ring
	Lost      uint64 // records dropped because the ring was full
	Truncated uint64 // delivered records with a truncated argv, environment, path or cgroup
	Malformed uint64 // records that failed validation in userspace (NoIdentity included)
	// NoIdentity counts records skipped because they named a task
	// identity the decoder no longer held (see package doc).
	NoIdentity uint64
	Decoded    uint64 // records decoded and returned by Read
	Filtered   uint64 // events dropped in the kernel by Config.Filter
	// FilteredEarly counts, of Filtered, the successful opens dropped on
	// their dentries' first bytes, before their path was built.
	FilteredEarly uint64

	SeenByType     [event.NumTypes]uint64
	LostByType     [event.NumTypes]uint64
	FilteredByType [event.NumTypes]uint64
}

// Lifecycle returns the capturable event types that keep the process table
// and container identity right: exec, fork and exit. The sensor captures
// them whatever the rules (or trace's --types) ask for; rule evaluation is
// indexed by type, so a rule set without exec rules still does not evaluate
// them.
func Lifecycle() []event.Type {
	var out []event.Type
	for _, t := range Capturable() {
		switch t.Class() {
		case event.ClassExec, event.ClassFork, event.ClassExit:
			out = append(out, t)
		}
	}
	return out
}

// Sizing of the ring buffer when Config.RingSize is 0. Every CPU writes to
// the one ring, so the burst it must absorb while the reader is off-CPU
// grows with them; 2 MiB holds about 120 ms of one CPU's open+close loop.
const (
	RingPerCPU = 2 << 20
	RingMin    = 4 << 20
	RingMax    = 64 << 20
)

// ringSizeFor is the default ring size for ncpu writing CPUs.
func ringSizeFor(ncpu int) int {
	n := RingMin
	for n < RingMax && n < ncpu*RingPerCPU {
		n <<= 1
	}
	return n
}

// countCPUList counts the CPUs of a kernel CPU list such as "0-3,8,10-11".
func countCPUList(s string) (int, bool) {
	n := 0
	for _, part := range strings.Split(s, ",") {
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.Atoi(lo)
		if err != nil || a < 0 {
			return 0, false
		}
		b := a
		if isRange {
			if b, err = strconv.Atoi(hi); err != nil || b < a {
				return 0, false
			}
		}
		n += b - a + 1
	}
	return n, n > 0
}
