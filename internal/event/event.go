package event

import (
	"net/netip"
	"time"
)

// Type is the event type, named as Falco names it in evt.type.
type Type uint8

// Event types. The order is part of the BPF ABI (see bpf/tripline.h): keep it.
const (
	TypeUnknown Type = iota
	TypeExecve
	TypeExecveat
	TypeOpen
	TypeOpenat
	TypeOpenat2
	TypeCreat
	TypeConnect
	TypeClone
	TypeClone3
	TypeFork
	TypeVfork
	TypeProcexit
	TypeContainer
	NumTypes // number of types; not a type
)

var typeNames = [NumTypes]string{
	TypeUnknown:   "unknown",
	TypeExecve:    "execve",
	TypeExecveat:  "execveat",
	TypeOpen:      "open",
	TypeOpenat:    "openat",
	TypeOpenat2:   "openat2",
	TypeCreat:     "creat",
	TypeConnect:   "connect",
	TypeClone:     "clone",
	TypeClone3:    "clone3",
	TypeFork:      "fork",
	TypeVfork:     "vfork",
	TypeProcexit:  "procexit",
	TypeContainer: "container",
}

// String returns Falco's name for the type (evt.type).
func (t Type) String() string {
	if t < NumTypes {
		return typeNames[t]
	}
	return "unknown"
}

// ParseType maps a Falco evt.type name to a Type.
func ParseType(name string) (Type, bool) {
	for i, n := range typeNames {
		if n == name && Type(i) != TypeUnknown {
			return Type(i), true
		}
	}
	return TypeUnknown, false
}

// Class is a family of event types handled alike by the pipeline.
type Class uint8

// Event classes.
const (
	ClassUnknown Class = iota
	ClassExec
	ClassOpen
	ClassConnect
	ClassFork
	ClassExit
	ClassContainer
	NumClasses
)

var classNames = [NumClasses]string{"unknown", "exec", "open", "connect", "fork", "exit", "container"}

// String returns the class name as used by `sensor trace --types`.
func (c Class) String() string {
	if c < NumClasses {
		return classNames[c]
	}
	return "unknown"
}

// ParseClass maps a class name (exec, open, connect, fork, exit, container) to a Class.
func ParseClass(name string) (Class, bool) {
	for i, n := range classNames {
		if n == name && Class(i) != ClassUnknown {
			return Class(i), true
		}
	}
	return ClassUnknown, false
}

// Class returns the family of t.
func (t Type) Class() Class {
	switch t {
	case TypeExecve, TypeExecveat:
		return ClassExec
	case TypeOpen, TypeOpenat, TypeOpenat2, TypeCreat:
		return ClassOpen
	case TypeConnect:
		return ClassConnect
	case TypeClone, TypeClone3, TypeFork, TypeVfork:
		return ClassFork
	case TypeProcexit:
		return ClassExit
	case TypeContainer:
		return ClassContainer
	}
	return ClassUnknown
}

// Types returns the event types of class c.
func (c Class) Types() []Type {
	var out []Type
	for t := TypeUnknown + 1; t < NumTypes; t++ {
		if t.Class() == c {
			out = append(out, t)
		}
	}
	return out
}

// Flag marks conditions of a captured event.
type Flag uint32

// Event flags.
const (
	FlagArgvTruncated   Flag = 1 << iota // argv longer than the configured cap
	FlagPathTruncated                    // a path longer than the kernel-side buffer or depth limit
	FlagCgroupTruncated                  // cgroup path cut short
	FlagFromProcScan                     // synthesized from /proc, not seen in the kernel
	FlagEnvTruncated                     // environment longer than the configured cap (or no room left)
)

// Event is one captured or synthesized event. See the package doc for
// ownership rules.
type Event struct {
	Type      Type
	Flags     Flag
	CPU       uint32
	Timestamp int64 // wall-clock time, nanoseconds since the Unix epoch
	// Res is the syscall result: >= 0 on success (the fd for open, the child
	// pid for fork, 0 for exec and connect), -errno on failure (EINPROGRESS
	// for a non-blocking connect is -115).
	Res int64

	// Proc is the thread that made the syscall. For exec it describes the new
	// image (or, when exec failed, the unchanged caller).
	Proc Process

	// Lineage holds the known ancestors, Lineage[0] being the parent. Filled by
	// the process table; empty when ancestry is unknown.
	Lineage []*Process

	Open    Open    // ClassOpen
	Connect Connect // ClassConnect
	Fork    Fork    // ClassFork
	Exit    Exit    // ClassExit

	// Container is the container the thread runs in; nil for the host or when
	// enrichment has not run. For TypeContainer events it is the container
	// that started.
	Container *Container

	lineage [MaxLineage]*Process
}

// MaxLineage is how many ancestors an event carries inline.
const MaxLineage = 16

// SetLineage stores ancestors without allocating (up to MaxLineage).
func (e *Event) SetLineage(anc []*Process) {
	n := copy(e.lineage[:], anc)
	e.Lineage = e.lineage[:n]
}

// LineageBuf returns the event's inline ancestor array for a filler that
// appends in place: e.Lineage = append(e.LineageBuf(), p, ...).
func (e *Event) LineageBuf() []*Process { return e.lineage[:0] }

// Time returns the event time.
func (e *Event) Time() time.Time { return time.Unix(0, e.Timestamp) }

// Class is shorthand for e.Type.Class().
func (e *Event) Class() Class { return e.Type.Class() }

// Failed reports whether the syscall returned an error.
func (e *Event) Failed() bool { return e.Res < 0 }

// Process describes a thread and its thread group at the time of an event.
type Process struct {
	PID, TID, PPID uint32 // host namespace: PID is the thread-group id
	VPID, VTID     uint32 // in the process's own pid namespace
	SID            uint32 // session id (host namespace)
	UID, GID       uint32 // real
	EUID, EGID     uint32 // effective
	LoginUID       uint32 // audit loginuid; 0xffffffff when unset

	Comm    string   // task comm (≤ 15 bytes)
	ExePath string   // executable path as the kernel resolved it
	Argv    []string // argv, argv[0] included; bounded by the capture cap
	Cwd     string
	TTY     uint32 // device number of the controlling tty; 0 if none

	// Env is the environment the image was started with ("NAME=value"),
	// bounded by the capture cap; nil when not captured. It may hold
	// credentials: outputs redact it (see internal/rules).
	Env []string

	CapEffective, CapPermitted, CapInheritable uint64

	PidNS, MntNS uint64 // namespace inode numbers
	CgroupID     uint64
	CgroupPath   string // path in the hierarchy that names containers

	ExeFromMemfd  bool // executable is a memfd
	ExeUpperLayer bool // executable lives on an overlayfs upper layer
	ExeLowerLayer bool // executable lives on an overlayfs lower layer
	ExeWritable   bool // the process's fs credentials may write its executable (best effort)

	StartTime int64 // process start, wall-clock ns since the Unix epoch

	// ContainerID is the full container id, "" for the host. Set by enrichment
	// from CgroupPath.
	ContainerID string

	// User (of EUID), Group (of EGID) and LoginUser (of LoginUID) are the
	// names from the passwd and group files of the process's root: the
	// host's, or its container's. Immutable, shared; nil when unknown.
	User      *User
	Group     *Group
	LoginUser *User
}

// User is a passwd entry as Falco's user.* fields show it.
type User struct {
	Name, HomeDir, Shell string
}

// Group is a group entry (group.name).
type Group struct {
	Name string
}

// Name returns the process name as Falco's proc.name: the basename of argv[0]
// when known, else comm.
func (p *Process) Name() string {
	if len(p.Argv) > 0 && p.Argv[0] != "" {
		a := p.Argv[0]
		for i := len(a) - 1; i >= 0; i-- {
			if a[i] == '/' {
				a = a[i+1:]
				break
			}
		}
		if a != "" {
			return a
		}
	}
	return p.Comm
}

// Open carries open/openat/openat2/creat details. The fd is Event.Res.
type Open struct {
	Path    string // absolute path of the opened file as the kernel resolved it (symlinks, .., dirfd)
	RawPath string // path argument as the process passed it
	DirFD   int32  // dirfd argument; AT_FDCWD (-100) when none
	Flags   uint32 // open flags as passed (O_*)
	Mode    uint32 // mode argument
	Resolve uint64 // openat2 resolve flags
	Dev     uint32 // device of the opened file (0 when failed)
	Ino     uint64 // inode of the opened file (0 when failed)
}

// Socket address families.
const (
	AFUnix  = 1
	AFInet  = 2
	AFInet6 = 10
)

// L4 protocols.
const (
	ProtoTCP = 6
	ProtoUDP = 17
)

// Connect carries connect(2) details. The result is Event.Res.
type Connect struct {
	FD         int32
	Family     uint16 // AFUnix, AFInet, AFInet6
	SockType   uint16 // SOCK_STREAM=1, SOCK_DGRAM=2, ...
	Proto      uint8  // ProtoTCP, ProtoUDP, 0 when unknown
	LocalAddr  netip.Addr
	LocalPort  uint16
	RemoteAddr netip.Addr
	RemotePort uint16
	UnixPath   string // AF_UNIX: the path connected to ('@' prefix for abstract)
}

// Fork carries clone/fork details. The parent is Event.Proc.
type Fork struct {
	ChildPID, ChildTID uint32
	CloneFlags         uint64
	IsThread           bool // CLONE_THREAD: a new thread, not a new process
}

// Exit carries procexit details.
type Exit struct {
	Code   int32 // exit status as wait(2) reports it
	Signal int32 // terminating signal, 0 if none
	Thread bool  // only a thread exited; the process lives on
}

// Container is metadata of a container, an immutable snapshot.
type Container struct {
	ID              string // 12-character short id
	FullID          string
	Name            string
	Type            string // "containerd", "cri", "docker"
	Image           string // full reference
	ImageRepository string
	ImageTag        string
	ImageDigest     string
	Labels          map[string]string
	Privileged      bool
	Capabilities    []string // effective set, e.g. "CAP_SYS_ADMIN"
	Mounts          []Mount
	User            string // uid of the container's process, as text
	StartTS         int64  // wall-clock ns since the Unix epoch

	PodName, PodNamespace, PodUID string
	PodLabels                     map[string]string
}

// Mount is one mount of a container.
type Mount struct {
	Source, Dest string
	Mode         string // mount options joined by ","
	RW           bool
	Propagation  string
}

// HostID is container.id for processes not in a container (Falco's convention).
const HostID = "host"
