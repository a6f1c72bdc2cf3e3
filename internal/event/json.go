package event

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/tripline/tripline/internal/jsonenc"
	"math"
	"net/netip"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"time"
)

// The flat JSON form of an Event: one object keyed by Falco field names
// (Falco's field reference), used by `sensor trace --json`
// and as the record format of replay. Values use Falco's formats: evt.res is
// "SUCCESS" or an errno name, capabilities are space-separated CAP_ names,
// evt.arg.flags is "O_RDONLY|O_CLOEXEC" text, user.loginuid is -1 when unset.
//
// A few keys have no Falco equivalent and carry what the Event needs to
// round-trip exactly: proc.argv (the argv array), proc.comm (when it differs
// from proc.name), user.ruid / group.rgid (real ids; user.uid and group.gid
// are the effective ones, as in Falco), evt.arg.child_pid / evt.arg.child_tid
// (fork), evt.arg.thread (exit of a thread, not the process) and
// tripline.flags (Event.Flags as a number).

// AppendJSON appends the flat JSON object of ev to dst. It does not allocate
// beyond growing dst.
func AppendJSON(dst []byte, ev *Event) []byte {
	w := jw{b: dst}
	w.b = append(w.b, '{')
	w.str("evt.type", ev.Type.String())
	w.int("evt.time", ev.Timestamp)
	w.key("evt.datetime")
	w.b = append(w.b, '"')
	w.b = time.Unix(0, ev.Timestamp).UTC().AppendFormat(w.b, time.RFC3339Nano)
	w.b = append(w.b, '"')
	w.str("evt.dir", "<")
	w.int("evt.cpu", int64(ev.CPU))
	w.key("evt.res")
	w.b = appendRes(w.b, ev.Res)
	w.int("evt.rawres", ev.Res)
	w.bool("evt.failed", ev.Res < 0)
	if ev.Flags != 0 {
		w.int("tripline.flags", int64(ev.Flags))
	}

	p := &ev.Proc
	w.int("proc.pid", int64(p.PID))
	w.int("thread.tid", int64(p.TID))
	w.int("proc.ppid", int64(p.PPID))
	w.int("proc.vpid", int64(p.VPID))
	w.int("thread.vtid", int64(p.VTID))
	w.int("proc.sid", int64(p.SID))
	name := p.Name()
	w.str("proc.name", name)
	if p.Comm != name {
		w.str("proc.comm", p.Comm)
	}
	w.procCmd("proc.exe", "proc.args", "proc.cmdline", p)
	w.key("proc.argv")
	w.b = appendStrings(w.b, p.Argv)
	w.str("proc.exepath", p.ExePath)
	w.str("proc.cwd", p.Cwd)
	w.int("proc.tty", int64(p.TTY))
	w.int("proc.pid.ts", p.StartTime)
	w.str("proc.cgroup", p.CgroupPath)
	for i, name := range stdKeys {
		if sd := ev.Std[i]; sd.Type != "" {
			w.str(name[0], sd.Type)
			w.str(name[1], sd.Name)
		}
	}
	w.uint("proc.cgroupid", p.CgroupID)
	w.uint("proc.pidns", p.PidNS)
	w.uint("proc.mntns", p.MntNS)
	w.bool("proc.is_exe_from_memfd", p.ExeFromMemfd)
	w.bool("proc.is_exe_upper_layer", p.ExeUpperLayer)
	w.bool("proc.is_exe_writable", p.ExeWritable)
	w.bool("proc.is_exe_lower_layer", p.ExeLowerLayer)
	w.int("user.uid", int64(p.EUID))
	w.int("user.ruid", int64(p.UID))
	w.int("group.gid", int64(p.EGID))
	w.int("group.rgid", int64(p.GID))
	w.int("user.loginuid", loginUID(p.LoginUID))
	if p.User != nil {
		w.str("user.name", p.User.Name)
		w.str("user.homedir", p.User.HomeDir)
		w.str("user.shell", p.User.Shell)
	}
	if p.Group != nil {
		w.str("group.name", p.Group.Name)
	}
	if p.LoginUser != nil {
		w.str("user.loginname", p.LoginUser.Name)
	}
	w.key("thread.cap_effective")
	w.b = appendCaps(w.b, p.CapEffective)
	w.key("thread.cap_permitted")
	w.b = appendCaps(w.b, p.CapPermitted)
	w.key("thread.cap_inheritable")
	w.b = appendCaps(w.b, p.CapInheritable)

	for i, a := range ev.Lineage {
		if a == nil {
			continue
		}
		if i == 0 {
			w.str("proc.pname", a.Name())
			w.str("proc.pexepath", a.ExePath)
			w.procCmd("proc.pexe", "", "proc.pcmdline", a)
			continue
		}
		// proc.aname[1] is the parent, written as proc.pname above.
		w.keyIdx("proc.aname", i+1)
		w.b = jsonenc.AppendString(w.b, a.Name())
		w.keyIdx("proc.apid", i+1)
		w.b = strconv.AppendUint(w.b, uint64(a.PID), 10)
		w.keyIdx("proc.aexepath", i+1)
		w.b = jsonenc.AppendString(w.b, a.ExePath)
	}

	switch ev.Class() {
	case ClassExec:
		if ev.Open.RawPath != "" {
			w.str("evt.arg.filename", ev.Open.RawPath)
		}
		w.key("evt.arg.flags")
		w.b = appendExeFlags(w.b, p)
		if p.Env != nil {
			w.key("evt.arg.env")
			w.b = appendStrings(w.b, p.Env)
		}
	case ClassOpen:
		o := &ev.Open
		fd := ev.Res
		if fd < 0 {
			fd = -1
		}
		w.int("fd.num", fd)
		dir := o.Flags&oflag("O_DIRECTORY") != 0
		if dir {
			w.str("fd.typechar", "d")
			w.str("fd.type", "directory")
		} else {
			w.str("fd.typechar", "f")
			w.str("fd.type", "file")
		}
		w.str("fd.name", o.Path)
		w.str("fd.nameraw", o.RawPath)
		d, f := splitPath(o.Path)
		w.str("fd.directory", d)
		w.str("fd.filename", f)
		w.key("evt.arg.flags")
		w.b = appendOpenFlags(w.b, o.Flags)
		w.key("evt.arg.mode")
		w.b = append(w.b, '"', '0')
		w.b = strconv.AppendUint(w.b, uint64(o.Mode), 8)
		w.b = append(w.b, '"')
		w.int("evt.arg.dirfd", int64(o.DirFD))
		if ev.Type == TypeOpenat2 {
			w.uint("evt.arg.resolve", o.Resolve)
		}
		acc := o.Flags & 3
		w.bool("evt.is_open_read", acc == 0 || acc == 2)
		w.bool("evt.is_open_write", acc == 1 || acc == 2)
		w.uint("fd.dev", uint64(o.Dev))
		w.uint("fd.ino", o.Ino)
	case ClassConnect:
		w.int("fd.num", int64(ev.Connect.FD))
		w.sock(&ev.Connect)
	case ClassFile, ClassSocket, ClassDup, ClassPriv, ClassMount, ClassNS, ClassMemfd:
		w.sys(ev)
	case ClassFork:
		f := &ev.Fork
		w.int("evt.arg.child_pid", int64(f.ChildPID))
		w.int("evt.arg.child_tid", int64(f.ChildTID))
		w.key("evt.arg.flags")
		w.b = appendCloneFlags(w.b, f.CloneFlags)
	case ClassExit:
		x := &ev.Exit
		w.int("evt.arg.status", int64(x.Code)<<8|int64(x.Signal))
		w.int("evt.arg.ret", int64(x.Code))
		w.int("evt.arg.sig", int64(x.Signal))
		w.bool("evt.arg.thread", x.Thread)
	}

	if c := ev.Container; c != nil {
		w.str("container.id", c.ID)
		w.str("container.full_id", c.FullID)
		w.str("container.name", c.Name)
		w.str("container.type", c.Type)
		w.str("container.image", c.Image)
		w.str("container.image.repository", c.ImageRepository)
		w.str("container.image.tag", c.ImageTag)
		w.str("container.image.digest", c.ImageDigest)
		w.bool("container.privileged", c.Privileged)
		w.int("container.start_ts", c.StartTS)
		if c.PodName != "" || c.PodNamespace != "" || c.PodUID != "" {
			w.str("k8s.pod.name", c.PodName)
			w.str("k8s.ns.name", c.PodNamespace)
			w.str("k8s.pod.uid", c.PodUID)
		}
	} else if p.ContainerID != "" {
		w.str("container.id", shortID(p.ContainerID))
		w.str("container.full_id", p.ContainerID)
	} else {
		w.str("container.id", HostID)
	}
	return append(w.b, '}')
}

// appendStrings writes l as a JSON array of strings.
func appendStrings(b []byte, l []string) []byte {
	b = append(b, '[')
	for i, a := range l {
		if i > 0 {
			b = append(b, ',')
		}
		b = jsonenc.AppendString(b, a)
	}
	return append(b, ']')
}

// stdKeys are the JSON keys of Event.Std: type and name of fds 0-2.
var stdKeys = [3][2]string{{"proc.stdin.type", "proc.stdin.name"}, {"proc.stdout.type", "proc.stdout.name"},
	{"proc.stderr.type", "proc.stderr.name"}}

// sock writes the fd.* fields of a socket.
func (w *jw) sock(c *Connect) {
	switch c.Family {
	case AFInet, AFInet6:
		if c.Family == AFInet {
			w.str("fd.typechar", "4")
			w.str("fd.type", "ipv4")
		} else {
			w.str("fd.typechar", "6")
			w.str("fd.type", "ipv6")
		}
		w.str("fd.sockfamily", "ip")
		w.key("fd.name")
		w.b = append(AppendSockName(append(w.b, '"'), c), '"')
		w.addr("fd.cip", c.LocalAddr)
		w.int("fd.cport", int64(c.LocalPort))
		w.addr("fd.sip", c.RemoteAddr)
		w.int("fd.sport", int64(c.RemotePort))
		w.addr("fd.lip", c.LocalAddr)
		w.int("fd.lport", int64(c.LocalPort))
		w.addr("fd.rip", c.RemoteAddr)
		w.int("fd.rport", int64(c.RemotePort))
	case AFUnix:
		w.str("fd.typechar", "u")
		w.str("fd.type", "unix")
		w.str("fd.sockfamily", "unix")
		w.str("fd.name", c.UnixPath)
	}
	switch c.Proto {
	case ProtoTCP:
		w.str("fd.l4proto", "tcp")
	case ProtoUDP:
		w.str("fd.l4proto", "udp")
	}
}

// sys writes the parameters of a Sys event (evt.arg.NAME as Falco renders
// them; the result is evt.res) and the fd.* fields of its fd.
func (w *jw) sys(ev *Event) {
	for _, a := range SysArgs(ev.Type) {
		if a.Kind == ArgRes {
			continue
		}
		w.b = append(w.b, `,"evt.arg.`...)
		w.b = append(w.b, a.Name...)
		w.b = append(w.b, '"', ':')
		w.quoted(func(b []byte) []byte { return AppendSysArg(b, ev, a) })
	}
	s := &ev.Sys
	switch s.FDKind {
	case FDSocket:
		w.int("fd.num", int64(s.FD))
		w.sock(&ev.Connect)
	case FDFile:
		w.int("fd.num", int64(s.FD))
		w.str("fd.typechar", "f")
		w.str("fd.type", "file")
		w.str("fd.name", s.FDPath)
	}
	if c := ev.Type.Class(); c != ClassFile && c != ClassMount {
		return
	}
	// What the rules read, null where they find no value; all written, so
	// that reading this output back gives the same paths (they are read
	// after the evt.arg text, which cannot tell the resolved path from the
	// raw one).
	switch name, pair := PathArgs(ev.Type); {
	case pair:
		w.strOrNull("fs.path.source", s.Source())
		w.strOrNull("fs.path.sourceraw", s.RawPath)
		w.strOrNull("fs.path.target", s.Path2)
		w.strOrNull("fs.path.targetraw", s.RawPath2)
	case name:
		w.strOrNull("fs.path.name", s.Path)
		w.strOrNull("fs.path.nameraw", s.RawPath)
	}
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func loginUID(u uint32) int64 {
	if u == math.MaxUint32 {
		return -1
	}
	return int64(u)
}

func splitPath(p string) (dir, file string) {
	i := strings.LastIndexByte(p, '/')
	if i < 0 {
		return "", p
	}
	if i == 0 {
		return "/", p[1:]
	}
	return p[:i], p[i+1:]
}

// jw writes "key":value pairs.
type jw struct {
	b []byte
}

// keyIdx writes the key name[n].
func (w *jw) keyIdx(name string, n int) {
	w.b = append(w.b, ',', '"')
	w.b = append(w.b, name...)
	w.b = append(w.b, '[')
	w.b = strconv.AppendInt(w.b, int64(n), 10)
	w.b = append(w.b, ']', '"', ':')
}

// quoted appends the text that fill appends as a JSON string, escaping it
// through a copy only when it needs escaping.
func (w *jw) quoted(fill func([]byte) []byte) {
	start := len(w.b)
	w.b = fill(w.b)
	v := w.b[start:]
	for _, c := range v {
		if c < 0x20 || c == '"' || c == '\\' || c >= 0x80 {
			text := string(v)
			w.b = jsonenc.AppendString(w.b[:start], text)
			return
		}
	}
	w.b = append(w.b, 0)
	copy(w.b[start+1:], w.b[start:len(w.b)-1])
	w.b[start] = '"'
	w.b = append(w.b, '"')
}

func (w *jw) key(k string) {
	if len(w.b) > 0 && w.b[len(w.b)-1] != '{' {
		w.b = append(w.b, ',')
	}
	w.b = jsonenc.AppendString(w.b, k)
	w.b = append(w.b, ':')
}

func (w *jw) str(k, v string) { w.key(k); w.b = jsonenc.AppendString(w.b, v) }

// strOrNull writes "" as null: a field with no value.
func (w *jw) strOrNull(k, v string) {
	if v == "" {
		w.key(k)
		w.b = append(w.b, "null"...)
		return
	}
	w.str(k, v)
}
func (w *jw) int(k string, v int64) {
	w.key(k)
	w.b = strconv.AppendInt(w.b, v, 10)
}
func (w *jw) uint(k string, v uint64) {
	w.key(k)
	w.b = strconv.AppendUint(w.b, v, 10)
}
func (w *jw) bool(k string, v bool) { w.key(k); w.b = strconv.AppendBool(w.b, v) }
func (w *jw) addr(k string, a netip.Addr) {
	w.key(k)
	w.b = append(w.b, '"')
	if a.IsValid() {
		w.b = a.AppendTo(w.b)
	}
	w.b = append(w.b, '"')
}

// procCmd writes argv[0] (exeKey), the arguments joined by spaces (argsKey,
// skipped when empty) and name + arguments (cmdKey), as Falco does.
func (w *jw) procCmd(exeKey, argsKey, cmdKey string, p *Process) {
	exe := ""
	if len(p.Argv) > 0 {
		exe = p.Argv[0]
	}
	w.str(exeKey, exe)
	if argsKey != "" {
		w.key(argsKey)
		w.b = appendJoined(w.b, "", p.Argv)
	}
	w.key(cmdKey)
	w.b = appendJoined(w.b, p.Name(), p.Argv)
}

// appendJoined writes head followed by argv[1:], space-separated, as one
// JSON string.
func appendJoined(b []byte, head string, argv []string) []byte {
	b = append(b, '"')
	b = jsonenc.AppendEscaped(b, head)
	for i := 1; i < len(argv); i++ {
		if i > 1 || head != "" {
			b = append(b, ' ')
		}
		b = jsonenc.AppendEscaped(b, argv[i])
	}
	return append(b, '"')
}

func appendAddrPort(b []byte, a netip.Addr, port uint16) []byte {
	if a.Is6() && !a.Is4In6() {
		b = append(b, '[')
		b = a.AppendTo(b)
		b = append(b, ']')
	} else if a.IsValid() {
		b = a.AppendTo(b)
	}
	b = append(b, ':')
	return strconv.AppendUint(b, uint64(port), 10)
}

const hexDigits = "0123456789abcdef"

// ---- Falco value formats -------------------------------------------------

// errnoNames are Linux errno names (the numbering of the kernel that
// produced the event, whatever the platform reading it).
var errnoNames = map[int64]string{
	1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 7: "E2BIG", 8: "ENOEXEC",
	9: "EBADF", 10: "ECHILD", 11: "EAGAIN", 12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 15: "ENOTBLK",
	16: "EBUSY", 17: "EEXIST", 18: "EXDEV", 19: "ENODEV", 20: "ENOTDIR", 21: "EISDIR", 22: "EINVAL",
	23: "ENFILE", 24: "EMFILE", 25: "ENOTTY", 26: "ETXTBSY", 27: "EFBIG", 28: "ENOSPC", 29: "ESPIPE",
	30: "EROFS", 31: "EMLINK", 32: "EPIPE", 33: "EDOM", 34: "ERANGE", 35: "EDEADLK", 36: "ENAMETOOLONG",
	37: "ENOLCK", 38: "ENOSYS", 39: "ENOTEMPTY", 40: "ELOOP", 42: "ENOMSG", 43: "EIDRM", 61: "ENODATA", 62: "ETIME", 71: "EPROTO",
	74: "EBADMSG", 75: "EOVERFLOW", 84: "EILSEQ", 88: "ENOTSOCK", 89: "EDESTADDRREQ", 90: "EMSGSIZE",
	91: "EPROTOTYPE", 92: "ENOPROTOOPT", 93: "EPROTONOSUPPORT", 94: "ESOCKTNOSUPPORT", 95: "EOPNOTSUPP",
	96: "EPFNOSUPPORT", 97: "EAFNOSUPPORT", 98: "EADDRINUSE", 99: "EADDRNOTAVAIL", 100: "ENETDOWN",
	101: "ENETUNREACH", 102: "ENETRESET", 103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS",
	106: "EISCONN", 107: "ENOTCONN", 108: "ESHUTDOWN", 109: "ETOOMANYREFS", 110: "ETIMEDOUT",
	111: "ECONNREFUSED", 112: "EHOSTDOWN", 113: "EHOSTUNREACH", 114: "EALREADY", 115: "EINPROGRESS",
	116: "ESTALE", 122: "EDQUOT", 125: "ECANCELED",
}

// ErrnoName returns Falco's evt.res text for a syscall result: "SUCCESS"
// for res >= 0, else the errno name ("ENOENT"), or "E<n>" when unnamed.
func ErrnoName(res int64) string {
	if res >= 0 {
		return "SUCCESS"
	}
	if n, ok := errnoNames[-res]; ok {
		return n
	}
	return "E" + strconv.FormatInt(-res, 10)
}

func appendRes(b []byte, res int64) []byte {
	b = append(b, '"')
	switch n, ok := errnoNames[-res]; {
	case res >= 0:
		b = append(b, "SUCCESS"...)
	case ok:
		b = append(b, n...)
	default:
		b = append(b, 'E')
		b = strconv.AppendInt(b, -res, 10)
	}
	return append(b, '"')
}

func parseRes(s string) (int64, bool) {
	if s == "SUCCESS" {
		return 0, true
	}
	if n, ok := ErrnoNumber(s); ok {
		return -n, true
	}
	return 0, false
}

// ErrnoNumber is the errno an evt.res text other than "SUCCESS" names:
// an errno name ("EACCES") or "E<n>".
func ErrnoNumber(s string) (int64, bool) {
	for n, name := range errnoNames {
		if name == s {
			return n, true
		}
	}
	if len(s) > 1 && s[0] == 'E' {
		if n, err := strconv.ParseInt(s[1:], 10, 64); err == nil && n > 0 {
			return n, true
		}
	}
	return 0, false
}

func appendCaps(b []byte, set uint64) []byte {
	b = append(b, '"')
	b = AppendCapNames(b, set)
	return append(b, '"')
}

func parseCaps(s string) (uint64, error) {
	var set uint64
	for _, name := range strings.Fields(s) {
		if i, ok := CapIndex(name); ok {
			set |= 1 << i
		} else {
			if n, err := strconv.Atoi(strings.TrimPrefix(name, "CAP_")); err == nil && n >= 0 && n < 64 {
				set |= 1 << n
				continue
			}
			return 0, fmt.Errorf("unknown capability %q", name)
		}
	}
	return set, nil
}

type flagName struct {
	name string
	bit  uint64
}

// Open flags in Falco's print order; values are the Linux ones of the
// architecture (O_DIRECT, O_LARGEFILE, O_DIRECTORY, O_NOFOLLOW differ on arm64).
var openFlagsX86 = []flagName{
	{"O_LARGEFILE", 0o100000}, {"O_DIRECTORY", 0o200000}, {"O_DIRECT", 0o40000}, {"O_TRUNC", 0o1000},
	{"O_SYNC", 0o4010000}, {"O_NONBLOCK", 0o4000}, {"O_EXCL", 0o200}, {"O_DSYNC", 0o10000},
	{"O_APPEND", 0o2000}, {"O_CREAT", 0o100}, {"O_RDWR", 2}, {"O_WRONLY", 1}, {"O_CLOEXEC", 0o2000000},
	{"O_NOFOLLOW", 0o400000}, {"O_NOATIME", 0o1000000}, {"O_NOCTTY", 0o400}, {"O_PATH", 0o10000000},
	{"O_TMPFILE", 0o20200000},
}

var openFlagsArm64 = []flagName{
	{"O_LARGEFILE", 0o400000}, {"O_DIRECTORY", 0o40000}, {"O_DIRECT", 0o200000}, {"O_TRUNC", 0o1000},
	{"O_SYNC", 0o4010000}, {"O_NONBLOCK", 0o4000}, {"O_EXCL", 0o200}, {"O_DSYNC", 0o10000},
	{"O_APPEND", 0o2000}, {"O_CREAT", 0o100}, {"O_RDWR", 2}, {"O_WRONLY", 1}, {"O_CLOEXEC", 0o2000000},
	{"O_NOFOLLOW", 0o100000}, {"O_NOATIME", 0o1000000}, {"O_NOCTTY", 0o400}, {"O_PATH", 0o10000000},
	{"O_TMPFILE", 0o20040000},
}

func openFlags() []flagName {
	if runtime.GOARCH == "arm64" {
		return openFlagsArm64
	}
	return openFlagsX86
}

func oflag(name string) uint32 {
	for _, f := range openFlags() {
		if f.name == name {
			return uint32(f.bit)
		}
	}
	return 0
}

// OpenFlagsText renders open flags as Falco does: "O_RDONLY|O_CLOEXEC".
func OpenFlagsText(flags uint32) string { return string(appendOpenFlagText(nil, flags)) }

func appendOpenFlagText(b []byte, flags uint32) []byte {
	start := len(b)
	rest := uint64(flags)
	for _, f := range openFlags() {
		if f.name == "O_RDWR" && rest&3 == 0 {
			// O_RDONLY is the absence of an access mode; print it in
			// Falco's position.
			if len(b) > start {
				b = append(b, '|')
			}
			b = append(b, "O_RDONLY"...)
			continue
		}
		if f.bit != 0 && rest&f.bit == f.bit {
			if len(b) > start {
				b = append(b, '|')
			}
			b = append(b, f.name...)
			rest &^= f.bit
		}
	}
	if rest != 0 {
		if len(b) > start {
			b = append(b, '|')
		}
		b = append(b, "0x"...)
		b = strconv.AppendUint(b, rest, 16)
	}
	return b
}

func appendOpenFlags(b []byte, flags uint32) []byte {
	b = append(b, '"')
	b = appendOpenFlagText(b, flags)
	return append(b, '"')
}

var cloneFlagNames = []flagName{
	{"CLONE_VM", 0x100}, {"CLONE_FS", 0x200}, {"CLONE_FILES", 0x400}, {"CLONE_SIGHAND", 0x800},
	{"CLONE_PIDFD", 0x1000}, {"CLONE_PTRACE", 0x2000}, {"CLONE_VFORK", 0x4000}, {"CLONE_PARENT", 0x8000},
	{"CLONE_THREAD", 0x10000}, {"CLONE_NEWNS", 0x20000}, {"CLONE_SYSVSEM", 0x40000},
	{"CLONE_SETTLS", 0x80000}, {"CLONE_PARENT_SETTID", 0x100000}, {"CLONE_CHILD_CLEARTID", 0x200000},
	{"CLONE_DETACHED", 0x400000}, {"CLONE_UNTRACED", 0x800000}, {"CLONE_CHILD_SETTID", 0x1000000},
	{"CLONE_NEWCGROUP", 0x2000000}, {"CLONE_NEWUTS", 0x4000000}, {"CLONE_NEWIPC", 0x8000000},
	{"CLONE_NEWUSER", 0x10000000}, {"CLONE_NEWPID", 0x20000000}, {"CLONE_NEWNET", 0x40000000},
	{"CLONE_IO", 0x80000000}, {"CLONE_CLEAR_SIGHAND", 0x100000000}, {"CLONE_INTO_CGROUP", 0x200000000},
}

// appendCloneFlags renders clone flags as CLONE_ names; the exit signal in
// the low byte is printed as SIG<n> (omitted when 0).
func appendCloneFlags(b []byte, flags uint64) []byte {
	b = append(b, '"')
	start := len(b)
	for _, f := range cloneFlagNames {
		if flags&f.bit != 0 {
			if len(b) > start {
				b = append(b, '|')
			}
			b = append(b, f.name...)
		}
	}
	if sig := flags & 0xff; sig != 0 {
		if len(b) > start {
			b = append(b, '|')
		}
		b = append(b, "SIG"...)
		b = strconv.AppendUint(b, sig, 10)
	}
	return append(b, '"')
}

func parseFlags(s string, table []flagName, what string) (uint64, error) {
	var v uint64
	if s == "" || s == "0" {
		return 0, nil
	}
	for _, name := range strings.Split(s, "|") {
		name = strings.TrimSpace(name)
		switch {
		case name == "O_RDONLY" && what == "open":
			continue
		case strings.HasPrefix(name, "0x"):
			n, err := strconv.ParseUint(name[2:], 16, 64)
			if err != nil {
				return 0, fmt.Errorf("bad %s flag %q", what, name)
			}
			v |= n
			continue
		case strings.HasPrefix(name, "SIG") && what == "clone":
			n, err := strconv.ParseUint(name[3:], 10, 8)
			if err != nil {
				return 0, fmt.Errorf("bad %s flag %q", what, name)
			}
			v |= n
			continue
		}
		found := false
		for _, f := range table {
			if f.name == name {
				v |= f.bit
				found = true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("unknown %s flag %q", what, name)
		}
	}
	return v, nil
}

var exeFlagNames = []string{"EXE_WRITABLE", "EXE_UPPER_LAYER", "EXE_FROM_MEMFD", "EXE_LOWER_LAYER"}

func appendExeFlags(b []byte, p *Process) []byte {
	b = append(b, '"')
	start := len(b)
	for i, on := range []bool{p.ExeWritable, p.ExeUpperLayer, p.ExeFromMemfd, p.ExeLowerLayer} {
		if on {
			if len(b) > start {
				b = append(b, '|')
			}
			b = append(b, exeFlagNames[i]...)
		}
	}
	return append(b, '"')
}

// ---- decoding ------------------------------------------------------------

// UnmarshalJSON rebuilds an Event from its flat JSON form (see FromFields).
func UnmarshalJSON(b []byte) (*Event, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, fmt.Errorf("event: decoding JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("event: trailing data after JSON object")
	}
	return FromFields(m)
}

// fieldSetter applies one key to the event being built.
type fieldSetter func(b *builder, v any) error

// builder collects fields before deriving what follows from them.
type builder struct {
	ev      Event
	set     map[string]bool
	argv    []string
	exe     string // proc.exe
	name    string // proc.name
	comm    string // proc.comm
	args    *string
	cmdline *string
	// pcmdline is proc.pcmdline: the parent's name, then its arguments.
	pcmdline *string
	lineage  map[int]*Process
	ctr      *Container
	fdName   string
	fdRaw    string
	l4       string
	family   string
	typech   string
	sip      netip.Addr
	dip      netip.Addr
	sport    uint16
	dport    uint16
	uid      *uint32
	gid      *uint32
	fdnum    *int64
	res      *int64
}

func (b *builder) parent(n int) *Process {
	if b.lineage == nil {
		b.lineage = map[int]*Process{}
	}
	p := b.lineage[n]
	if p == nil {
		p = &Process{LoginUID: math.MaxUint32}
		b.lineage[n] = p
	}
	return p
}

func (b *builder) user() *User {
	if b.ev.Proc.User == nil {
		b.ev.Proc.User = &User{}
	}
	return b.ev.Proc.User
}

func (b *builder) container() *Container {
	if b.ctr == nil {
		b.ctr = &Container{}
	}
	return b.ctr
}

// setPath sets one of the paths of a file event (null: none) over what the
// evt.arg text set, which is the resolved path when there is one, else the
// raw one.
func setPath(dst func(s *Sys) *string) fieldSetter {
	return func(b *builder, v any) error {
		if v == nil {
			*dst(&b.ev.Sys) = ""
			return nil
		}
		s, err := asString(v)
		if err != nil {
			return err
		}
		*dst(&b.ev.Sys) = s
		return nil
	}
}

func setStr(dst func(b *builder) *string) fieldSetter {
	return func(b *builder, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		*dst(b) = s
		return nil
	}
}

func setU32(dst func(b *builder) *uint32) fieldSetter {
	return func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		if n < 0 || n > math.MaxUint32 {
			return fmt.Errorf("%d out of range", n)
		}
		*dst(b) = uint32(n)
		return nil
	}
}

func setU64(dst func(b *builder) *uint64) fieldSetter {
	return func(b *builder, v any) error {
		n, err := asUint(v)
		if err != nil {
			return err
		}
		*dst(b) = n
		return nil
	}
}

func setBool(dst func(b *builder) *bool) fieldSetter {
	return func(b *builder, v any) error {
		x, err := asBool(v)
		if err != nil {
			return err
		}
		*dst(b) = x
		return nil
	}
}

func setAddr(dst func(b *builder) *netip.Addr) fieldSetter {
	return func(b *builder, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		if s == "" {
			return nil
		}
		a, err := netip.ParseAddr(s)
		if err != nil {
			return err
		}
		*dst(b) = a
		return nil
	}
}

func setPort(dst func(b *builder) *uint16) fieldSetter {
	return func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		if n < 0 || n > math.MaxUint16 {
			return fmt.Errorf("port %d out of range", n)
		}
		*dst(b) = uint16(n)
		return nil
	}
}

func setCaps(dst func(b *builder) *uint64) fieldSetter {
	return func(b *builder, v any) error {
		if n, err := asUint(v); err == nil {
			*dst(b) = n
			return nil
		}
		s, err := asString(v)
		if err != nil {
			return err
		}
		set, err := parseCaps(s)
		if err != nil {
			return err
		}
		*dst(b) = set
		return nil
	}
}

func ignore(*builder, any) error { return nil }

// asStrings converts a JSON array of strings.
func asStrings(v any) ([]string, error) {
	l, ok := v.([]any)
	if !ok {
		return nil, fmt.Errorf("want a list, got %T", v)
	}
	out := make([]string, len(l))
	for i, x := range l {
		s, err := asString(x)
		if err != nil {
			return nil, err
		}
		out[i] = s
	}
	return out, nil
}

var fieldSetters = map[string]fieldSetter{
	"evt.type": func(b *builder, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		t, ok := ParseType(s)
		if !ok {
			return fmt.Errorf("unknown event type %q", s)
		}
		b.ev.Type = t
		return nil
	},
	"evt.time": func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		b.ev.Timestamp = n
		return nil
	},
	"evt.datetime": func(b *builder, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		t, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			return err
		}
		if !b.set["evt.time"] {
			b.ev.Timestamp = t.UnixNano()
		}
		return nil
	},
	"evt.dir": ignore, "evt.failed": ignore, "evt.is_open_read": ignore, "evt.is_open_write": ignore,
	"fd.type": ignore, "fd.directory": ignore, "fd.filename": ignore,
	"evt.cpu": setU32(func(b *builder) *uint32 { return &b.ev.CPU }),
	"evt.res": func(b *builder, v any) error {
		if n, err := asInt(v); err == nil {
			b.res = &n
			return nil
		}
		s, err := asString(v)
		if err != nil {
			return err
		}
		n, ok := parseRes(s)
		if !ok {
			return fmt.Errorf("unknown result %q", s)
		}
		if b.res == nil {
			b.res = &n
		}
		return nil
	},
	"evt.rawres": func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		b.res = &n
		return nil
	},
	"tripline.flags": func(b *builder, v any) error {
		n, err := asUint(v)
		if err != nil {
			return err
		}
		b.ev.Flags = Flag(n)
		return nil
	},
	"proc.pid":    setU32(func(b *builder) *uint32 { return &b.ev.Proc.PID }),
	"thread.tid":  setU32(func(b *builder) *uint32 { return &b.ev.Proc.TID }),
	"proc.tid":    setU32(func(b *builder) *uint32 { return &b.ev.Proc.TID }),
	"proc.ppid":   setU32(func(b *builder) *uint32 { return &b.ev.Proc.PPID }),
	"proc.vpid":   setU32(func(b *builder) *uint32 { return &b.ev.Proc.VPID }),
	"thread.vtid": setU32(func(b *builder) *uint32 { return &b.ev.Proc.VTID }),
	"proc.sid":    setU32(func(b *builder) *uint32 { return &b.ev.Proc.SID }),
	"proc.name":   setStr(func(b *builder) *string { return &b.name }),
	"proc.comm":   setStr(func(b *builder) *string { return &b.comm }),
	"proc.exe":    setStr(func(b *builder) *string { return &b.exe }),
	"proc.args": func(b *builder, v any) error {
		s, err := asString(v)
		b.args = &s
		return err
	},
	"proc.cmdline": func(b *builder, v any) error {
		s, err := asString(v)
		b.cmdline = &s
		return err
	},
	"proc.argv": func(b *builder, v any) error {
		l, err := asStrings(v)
		b.argv = l
		return err
	},
	"proc.env": func(b *builder, v any) error {
		// Falco's form, "A=1 B=2" (values without spaces), or a list.
		if str, ok := v.(string); ok {
			b.ev.Proc.Env = strings.Fields(str)
			return nil
		}
		l, err := asStrings(v)
		b.ev.Proc.Env = l
		return err
	},
	"evt.arg.env": func(b *builder, v any) error {
		l, err := asStrings(v)
		if l == nil {
			l = []string{} // captured, empty
		}
		b.ev.Proc.Env = l
		return err
	},
	"proc.exepath":            setStr(func(b *builder) *string { return &b.ev.Proc.ExePath }),
	"proc.cwd":                setStr(func(b *builder) *string { return &b.ev.Proc.Cwd }),
	"proc.tty":                setU32(func(b *builder) *uint32 { return &b.ev.Proc.TTY }),
	"proc.pid.ts":             func(b *builder, v any) error { n, err := asInt(v); b.ev.Proc.StartTime = n; return err },
	"proc.cgroup":             setStr(func(b *builder) *string { return &b.ev.Proc.CgroupPath }),
	"proc.cgroupid":           setU64(func(b *builder) *uint64 { return &b.ev.Proc.CgroupID }),
	"proc.pidns":              setU64(func(b *builder) *uint64 { return &b.ev.Proc.PidNS }),
	"proc.mntns":              setU64(func(b *builder) *uint64 { return &b.ev.Proc.MntNS }),
	"proc.is_exe_from_memfd":  setBool(func(b *builder) *bool { return &b.ev.Proc.ExeFromMemfd }),
	"proc.is_exe_upper_layer": setBool(func(b *builder) *bool { return &b.ev.Proc.ExeUpperLayer }),
	"proc.is_exe_writable":    setBool(func(b *builder) *bool { return &b.ev.Proc.ExeWritable }),
	"proc.is_exe_lower_layer": setBool(func(b *builder) *bool { return &b.ev.Proc.ExeLowerLayer }),
	"user.uid":                setU32(func(b *builder) *uint32 { return &b.ev.Proc.EUID }),
	"user.euid":               setU32(func(b *builder) *uint32 { return &b.ev.Proc.EUID }),
	"proc.loginuid": func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		b.ev.Proc.LoginUID = uint32(n) // -1 wraps to unset
		return nil
	},
	"user.ruid": func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil || n < 0 || n > math.MaxUint32 {
			return fmt.Errorf("bad uid %v", v)
		}
		u := uint32(n)
		b.uid = &u
		return nil
	},
	"group.gid":    setU32(func(b *builder) *uint32 { return &b.ev.Proc.EGID }),
	"user.name":    setStr(func(b *builder) *string { return &b.user().Name }),
	"user.homedir": setStr(func(b *builder) *string { return &b.user().HomeDir }),
	"user.shell":   setStr(func(b *builder) *string { return &b.user().Shell }),
	"group.name": setStr(func(b *builder) *string {
		if b.ev.Proc.Group == nil {
			b.ev.Proc.Group = &Group{}
		}
		return &b.ev.Proc.Group.Name
	}),
	"user.loginname": setStr(func(b *builder) *string {
		if b.ev.Proc.LoginUser == nil {
			b.ev.Proc.LoginUser = &User{}
		}
		return &b.ev.Proc.LoginUser.Name
	}),
	"group.rgid": func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil || n < 0 || n > math.MaxUint32 {
			return fmt.Errorf("bad gid %v", v)
		}
		g := uint32(n)
		b.gid = &g
		return nil
	},
	"user.loginuid": func(b *builder, v any) error {
		n, err := asInt(v)
		if err != nil {
			return err
		}
		b.ev.Proc.LoginUID = uint32(n) // -1 wraps to unset
		return nil
	},
	"thread.cap_effective":   setCaps(func(b *builder) *uint64 { return &b.ev.Proc.CapEffective }),
	"thread.cap_permitted":   setCaps(func(b *builder) *uint64 { return &b.ev.Proc.CapPermitted }),
	"thread.cap_inheritable": setCaps(func(b *builder) *uint64 { return &b.ev.Proc.CapInheritable }),
	"proc.pname":             setStr(func(b *builder) *string { return &b.parent(0).Comm }),
	"proc.pexepath":          setStr(func(b *builder) *string { return &b.parent(0).ExePath }),
	"proc.pexe": func(b *builder, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		p := b.parent(0)
		if len(p.Argv) == 0 {
			p.Argv = []string{s}
		} else {
			p.Argv[0] = s
		}
		return nil
	},
	"proc.pcmdline": func(b *builder, v any) error {
		s, err := asString(v)
		if err != nil {
			return err
		}
		b.pcmdline = &s // once proc.pexe and proc.pname are known (finish)
		b.parent(0)
		return nil
	},
	"evt.arg.filename": setStr(func(b *builder) *string { return &b.ev.Open.RawPath }),
	"evt.arg.flags": func(b *builder, v any) error {
		b.set["evt.arg.flags"] = true
		return nil // applied after the type is known (see applyFlags)
	},
	"fd.num": func(b *builder, v any) error {
		n, err := asInt(v)
		b.fdnum = &n
		return err
	},
	"fd.typechar": setStr(func(b *builder) *string { return &b.typech }),
	"fd.name":     setStr(func(b *builder) *string { return &b.fdName }),
	"fd.nameraw":  setStr(func(b *builder) *string { return &b.fdRaw }),
	"evt.arg.mode": func(b *builder, v any) error {
		if s, ok := v.(string); ok {
			n, err := strconv.ParseUint(s, 8, 32)
			if err != nil {
				return fmt.Errorf("bad mode %q", s)
			}
			b.ev.Open.Mode = uint32(n)
			return nil
		}
		n, err := asInt(v)
		b.ev.Open.Mode = uint32(n)
		return err
	},
	"evt.arg.dirfd": func(b *builder, v any) error {
		n, err := asInt(v)
		b.ev.Open.DirFD = int32(n)
		return err
	},
	"fd.dirfd": func(b *builder, v any) error {
		n, err := asInt(v)
		b.ev.Open.DirFD = int32(n)
		return err
	},
	"evt.arg.resolve":   setU64(func(b *builder) *uint64 { return &b.ev.Open.Resolve }),
	"fd.dev":            setU32(func(b *builder) *uint32 { return &b.ev.Open.Dev }),
	"fd.ino":            setU64(func(b *builder) *uint64 { return &b.ev.Open.Ino }),
	"fd.sockfamily":     setStr(func(b *builder) *string { return &b.family }),
	"fd.l4proto":        setStr(func(b *builder) *string { return &b.l4 }),
	"fd.cip":            setAddr(func(b *builder) *netip.Addr { return &b.sip }),
	"fd.lip":            setAddr(func(b *builder) *netip.Addr { return &b.sip }),
	"fd.sip":            setAddr(func(b *builder) *netip.Addr { return &b.dip }),
	"fd.rip":            setAddr(func(b *builder) *netip.Addr { return &b.dip }),
	"fd.dip":            setAddr(func(b *builder) *netip.Addr { return &b.dip }),
	"fd.cport":          setPort(func(b *builder) *uint16 { return &b.sport }),
	"fd.lport":          setPort(func(b *builder) *uint16 { return &b.sport }),
	"fd.sport":          setPort(func(b *builder) *uint16 { return &b.dport }),
	"fd.rport":          setPort(func(b *builder) *uint16 { return &b.dport }),
	"fd.dport":          setPort(func(b *builder) *uint16 { return &b.dport }),
	"evt.arg.child_pid": setU32(func(b *builder) *uint32 { return &b.ev.Fork.ChildPID }),
	"evt.arg.child_tid": setU32(func(b *builder) *uint32 { return &b.ev.Fork.ChildTID }),
	"evt.arg.status": func(b *builder, v any) error {
		n, err := asInt(v)
		if err == nil && !b.set["evt.arg.ret"] && !b.set["evt.arg.sig"] {
			b.ev.Exit.Code = int32(n>>8) & 0xff
			b.ev.Exit.Signal = int32(n) & 0x7f
		}
		return err
	},
	"evt.arg.ret": func(b *builder, v any) error {
		n, err := asInt(v)
		b.ev.Exit.Code = int32(n)
		return err
	},
	"evt.arg.sig": func(b *builder, v any) error {
		n, err := asInt(v)
		b.ev.Exit.Signal = int32(n)
		return err
	},
	"evt.arg.thread":             setBool(func(b *builder) *bool { return &b.ev.Exit.Thread }),
	"proc.stdin.type":            setStr(func(b *builder) *string { return &b.ev.Std[0].Type }),
	"proc.stdin.name":            setStr(func(b *builder) *string { return &b.ev.Std[0].Name }),
	"proc.stdout.type":           setStr(func(b *builder) *string { return &b.ev.Std[1].Type }),
	"proc.stdout.name":           setStr(func(b *builder) *string { return &b.ev.Std[1].Name }),
	"proc.stderr.type":           setStr(func(b *builder) *string { return &b.ev.Std[2].Type }),
	"proc.stderr.name":           setStr(func(b *builder) *string { return &b.ev.Std[2].Name }),
	"fs.path.name":               setPath(func(s *Sys) *string { return &s.Path }),
	"fs.path.source":             func(*builder, any) error { return nil }, // the path, else the raw one
	"fs.path.target":             setPath(func(s *Sys) *string { return &s.Path2 }),
	"fs.path.nameraw":            setPath(func(s *Sys) *string { return &s.RawPath }),
	"fs.path.sourceraw":          setPath(func(s *Sys) *string { return &s.RawPath }),
	"fs.path.targetraw":          setPath(func(s *Sys) *string { return &s.RawPath2 }),
	"container.id":               setStr(func(b *builder) *string { return &b.container().ID }),
	"container.full_id":          setStr(func(b *builder) *string { return &b.container().FullID }),
	"container.name":             setStr(func(b *builder) *string { return &b.container().Name }),
	"container.type":             setStr(func(b *builder) *string { return &b.container().Type }),
	"container.image":            setStr(func(b *builder) *string { return &b.container().Image }),
	"container.image.repository": setStr(func(b *builder) *string { return &b.container().ImageRepository }),
	"container.image.tag":        setStr(func(b *builder) *string { return &b.container().ImageTag }),
	"container.image.digest":     setStr(func(b *builder) *string { return &b.container().ImageDigest }),
	"container.privileged":       setBool(func(b *builder) *bool { return &b.container().Privileged }),
	"container.start_ts":         func(b *builder, v any) error { n, err := asInt(v); b.container().StartTS = n; return err },
	"k8s.pod.name":               setStr(func(b *builder) *string { return &b.container().PodName }),
	"k8s.ns.name":                setStr(func(b *builder) *string { return &b.container().PodNamespace }),
	"k8s.pod.uid":                setStr(func(b *builder) *string { return &b.container().PodUID }),
}

// ancestorKey parses proc.aname[N] / proc.apid[N] / proc.aexepath[N].
func ancestorKey(k string) (field string, n int, ok bool) {
	for _, f := range []string{"proc.aname[", "proc.apid[", "proc.aexepath[", "proc.acmdline["} {
		if strings.HasPrefix(k, f) && strings.HasSuffix(k, "]") {
			n, err := strconv.Atoi(k[len(f) : len(k)-1])
			if err != nil || n < 1 || n > MaxLineage {
				return "", 0, false
			}
			return f[:len(f)-1], n, true
		}
	}
	return "", 0, false
}

// FromFields builds an Event from flat Falco-named fields, as written by
// AppendJSON or by hand in rule tests. Any subset of keys is accepted, with
// YAML/JSON value types (int, float64, json.Number, string, bool, []any);
// unknown keys are an error naming the key. Missing values get defaults
// and are derived where possible: evt.type from the fields present,
// proc.name → Comm and Argv[0], proc.cmdline/proc.args → Argv, fd.name →
// Open.Path (or the connect tuple / unix path), fd.sip/fd.dip/ports →
// Connect, container.* → Container ("host" means none), proc.pname /
// proc.aname[N] / proc.apid[N] / proc.pexepath / proc.pcmdline → Lineage.
func FromFields(m map[string]any) (*Event, error) {
	b := &builder{set: map[string]bool{}}
	b.ev.Proc.LoginUID = math.MaxUint32
	b.ev.Open.DirFD = -100
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
		b.set[k] = true
	}
	// Deterministic order; lineage "p" keys before ancestor ones.
	sort.Strings(keys)
	var sysType Type
	if name, ok := m["evt.type"].(string); ok {
		if t, ok := ParseType(name); ok && SysArgs(t) != nil {
			sysType = t
		}
	}
	for _, k := range keys {
		v := m[k]
		if name, ok := strings.CutPrefix(k, "evt.arg."); ok && sysType != TypeUnknown {
			a, ok := LookupSysArg(sysType, name)
			if !ok {
				return nil, fmt.Errorf("event: field %s: not a parameter of %s", k, sysType)
			}
			if err := setSysArg(&b.ev, a, v); err != nil {
				return nil, fmt.Errorf("event: field %s: %w", k, err)
			}
			continue
		}
		if set, ok := fieldSetters[k]; ok {
			if err := set(b, v); err != nil {
				return nil, fmt.Errorf("event: field %s: %w", k, err)
			}
			continue
		}
		if f, n, ok := ancestorKey(k); ok {
			p := b.parent(n - 1)
			var err error
			switch f {
			case "proc.aname":
				p.Comm, err = asString(v)
			case "proc.apid":
				var x int64
				x, err = asInt(v)
				p.PID = uint32(x)
			case "proc.aexepath":
				p.ExePath, err = asString(v)
			case "proc.acmdline":
				var s string
				s, err = asString(v)
				p.Argv = strings.Fields(s)
			}
			if err != nil {
				return nil, fmt.Errorf("event: field %s: %w", k, err)
			}
			continue
		}
		return nil, fmt.Errorf("event: unknown field %q", k)
	}
	if err := b.finish(m); err != nil {
		return nil, err
	}
	return &b.ev, nil
}

func (b *builder) finish(m map[string]any) error {
	ev := &b.ev
	if b.pcmdline != nil {
		b.parentArgs(*b.pcmdline)
	}
	if ev.Type == TypeUnknown {
		switch {
		case b.fdName != "" && (b.typech == "4" || b.typech == "6" || b.typech == "u" || b.family != "") ||
			b.dip.IsValid() || b.dport != 0:
			ev.Type = TypeConnect
		case b.fdName != "" || b.fdRaw != "":
			ev.Type = TypeOpenat
		case b.set["evt.arg.child_pid"]:
			ev.Type = TypeClone
		default:
			ev.Type = TypeExecve
		}
	}

	// Result: evt.rawres / evt.res, else fd.num for open.
	if b.res != nil {
		ev.Res = *b.res
	} else if ev.Class() == ClassOpen && b.fdnum != nil && *b.fdnum >= 0 {
		ev.Res = *b.fdnum
	} else if ev.Class() == ClassOpen && b.fdnum == nil {
		ev.Res = 3 // a successful open needs some fd
	}

	p := &ev.Proc
	switch {
	case b.argv != nil:
		p.Argv = b.argv
	case b.cmdline != nil:
		p.Argv = strings.Fields(*b.cmdline)
		if head, args := splitCmdline(*b.cmdline, b.name); head != "" {
			if b.exe != "" {
				head = b.exe
			}
			p.Argv = append([]string{head}, args...)
		}
	case b.args != nil:
		head := b.exe
		if head == "" {
			head = b.name
		}
		p.Argv = append([]string{head}, strings.Fields(*b.args)...)
	case b.exe != "":
		p.Argv = []string{b.exe}
	case b.name != "":
		p.Argv = []string{b.name}
	}
	if len(p.Argv) > 0 && b.exe != "" {
		p.Argv[0] = b.exe
	}
	switch {
	case b.comm != "":
		p.Comm = b.comm
	case b.name != "":
		p.Comm = b.name
	case len(p.Argv) > 0:
		_, p.Comm = splitPath(p.Argv[0])
	}
	if len(p.Comm) > 15 {
		p.Comm = p.Comm[:15]
	}
	if p.ExePath == "" && strings.HasPrefix(b.exe, "/") && !b.set["proc.exepath"] {
		p.ExePath = b.exe
	}
	if p.TID == 0 {
		p.TID = p.PID
	}
	if p.VPID == 0 && !b.set["proc.vpid"] {
		p.VPID = p.PID
	}
	if p.VTID == 0 && !b.set["thread.vtid"] {
		p.VTID = p.TID
	}
	p.UID, p.GID = p.EUID, p.EGID
	if b.uid != nil {
		p.UID = *b.uid
	}
	if b.gid != nil {
		p.GID = *b.gid
	}

	if b.set["evt.arg.flags"] {
		if err := b.applyFlags(m["evt.arg.flags"]); err != nil {
			return fmt.Errorf("event: field evt.arg.flags: %w", err)
		}
	}

	switch ev.Class() {
	case ClassOpen:
		ev.Open.Path = b.fdName
		ev.Open.RawPath = b.fdRaw
		if ev.Open.RawPath == "" {
			ev.Open.RawPath = ev.Open.Path
		}
		if ev.Open.Path == "" {
			ev.Open.Path = ev.Open.RawPath
		}
		if b.typech == "d" && !b.set["evt.arg.flags"] {
			ev.Open.Flags |= oflag("O_DIRECTORY")
		}
	case ClassConnect:
		if err := b.finishConnect(); err != nil {
			return err
		}
	case ClassFile, ClassSocket, ClassDup, ClassPriv, ClassMount, ClassNS, ClassMemfd:
		sy := &ev.Sys
		sy.FD = -1
		if b.fdnum != nil {
			sy.FD = int32(*b.fdnum)
		}
		switch {
		case b.typech == "f" || b.typech == "d":
			sy.FDKind, sy.FDPath = FDFile, b.fdName
		case b.typech != "" || b.family != "":
			sy.FDKind = FDSocket
			if err := b.finishConnect(); err != nil {
				return err
			}
		}
	case ClassFork:
		f := &ev.Fork
		if f.ChildTID == 0 {
			f.ChildTID = f.ChildPID
		}
		if f.ChildPID == 0 && ev.Res > 0 {
			f.ChildPID, f.ChildTID = uint32(ev.Res), uint32(ev.Res)
		}
		f.IsThread = f.CloneFlags&0x10000 != 0 || (f.ChildPID != f.ChildTID)
	}

	if c := b.ctr; c != nil && c.ID != HostID {
		if c.FullID == "" {
			c.FullID = c.ID
		}
		if c.ID == "" {
			c.ID = shortID(c.FullID)
		}
		p.ContainerID = c.FullID
		ev.Container = c
	}

	if len(b.lineage) > 0 {
		max := 0
		for n := range b.lineage {
			if n+1 > max {
				max = n + 1
			}
		}
		anc := make([]*Process, max)
		for i := range anc {
			a := b.lineage[i]
			if a == nil {
				a = &Process{LoginUID: math.MaxUint32}
			}
			if i == 0 && a.PID == 0 {
				a.PID = p.PPID
			}
			if a.Comm == "" && len(a.Argv) > 0 {
				_, a.Comm = splitPath(a.Argv[0])
			}
			a.TID = a.PID
			anc[i] = a
		}
		ev.SetLineage(anc)
	}
	return nil
}

func (b *builder) applyFlags(v any) error {
	ev := &b.ev
	if n, err := asUint(v); err == nil {
		switch ev.Class() {
		case ClassOpen:
			ev.Open.Flags = uint32(n)
		case ClassFork:
			ev.Fork.CloneFlags = n
		}
		return nil
	}
	s, err := asString(v)
	if err != nil {
		return err
	}
	switch ev.Class() {
	case ClassOpen:
		n, err := parseFlags(s, openFlags(), "open")
		ev.Open.Flags = uint32(n)
		return err
	case ClassFork:
		n, err := parseFlags(s, cloneFlagNames, "clone")
		ev.Fork.CloneFlags = n
		return err
	case ClassExec:
		for _, f := range strings.Split(s, "|") {
			switch strings.TrimSpace(f) {
			case "":
			case "EXE_WRITABLE":
				ev.Proc.ExeWritable = true
			case "EXE_UPPER_LAYER":
				ev.Proc.ExeUpperLayer = true
			case "EXE_FROM_MEMFD":
				ev.Proc.ExeFromMemfd = true
			case "EXE_LOWER_LAYER":
				ev.Proc.ExeLowerLayer = true
			default:
				return fmt.Errorf("unknown exe flag %q", f)
			}
		}
	}
	return nil
}

func (b *builder) finishConnect() error {
	c := &b.ev.Connect
	if b.fdnum != nil {
		c.FD = int32(*b.fdnum)
	}
	switch {
	case b.typech == "u" || b.family == "unix":
		c.Family = AFUnix
		c.UnixPath = b.fdName
		c.SockType = 1
		return nil
	case !b.sip.IsValid() && !b.dip.IsValid() && b.fdName != "":
		// Parse the Falco tuple "lip:lport->rip:rport".
		l, r, ok := strings.Cut(b.fdName, "->")
		if !ok {
			return fmt.Errorf("event: field fd.name: %q is not an address tuple", b.fdName)
		}
		la, err := netip.ParseAddrPort(l)
		if err != nil {
			return fmt.Errorf("event: field fd.name: %w", err)
		}
		ra, err := netip.ParseAddrPort(r)
		if err != nil {
			return fmt.Errorf("event: field fd.name: %w", err)
		}
		b.sip, b.sport, b.dip, b.dport = la.Addr(), la.Port(), ra.Addr(), ra.Port()
	}
	c.LocalAddr, c.LocalPort = b.sip, b.sport
	c.RemoteAddr, c.RemotePort = b.dip, b.dport
	ref := c.RemoteAddr
	if !ref.IsValid() {
		ref = c.LocalAddr
	}
	switch {
	case b.typech == "6" || (ref.IsValid() && ref.Is6()):
		c.Family = AFInet6
	default:
		c.Family = AFInet
	}
	// An unset side gets the family's zero address, as the kernel reports it.
	if !c.LocalAddr.IsValid() {
		c.LocalAddr = zeroAddr(c.Family)
	}
	if !c.RemoteAddr.IsValid() {
		c.RemoteAddr = zeroAddr(c.Family)
	}
	switch b.l4 {
	case "udp":
		c.Proto, c.SockType = ProtoUDP, 2
	case "", "tcp":
		c.Proto, c.SockType = ProtoTCP, 1
	default:
		return fmt.Errorf("event: field fd.l4proto: unknown protocol %q", b.l4)
	}
	return nil
}

func zeroAddr(fam uint16) netip.Addr {
	if fam == AFInet6 {
		return netip.IPv6Unspecified()
	}
	return netip.IPv4Unspecified()
}

// ---- value coercion --------------------------------------------------------

func asInt(v any) (int64, error) {
	switch x := v.(type) {
	case int:
		return int64(x), nil
	case int8:
		return int64(x), nil
	case int16:
		return int64(x), nil
	case int32:
		return int64(x), nil
	case int64:
		return x, nil
	case uint:
		return int64(x), nil
	case uint8:
		return int64(x), nil
	case uint16:
		return int64(x), nil
	case uint32:
		return int64(x), nil
	case uint64:
		if x > math.MaxInt64 {
			return 0, fmt.Errorf("%d overflows", x)
		}
		return int64(x), nil
	case float64:
		if x != math.Trunc(x) || x > math.MaxInt64 || x < math.MinInt64 {
			return 0, fmt.Errorf("%v is not an integer", x)
		}
		return int64(x), nil
	case json.Number:
		return strconv.ParseInt(string(x), 10, 64)
	case string:
		n, err := strconv.ParseInt(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an integer", x)
		}
		return n, nil
	}
	return 0, fmt.Errorf("want an integer, got %T", v)
}

func asUint(v any) (uint64, error) {
	switch x := v.(type) {
	case uint64:
		return x, nil
	case json.Number:
		return strconv.ParseUint(string(x), 10, 64)
	case string:
		n, err := strconv.ParseUint(x, 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%q is not an unsigned integer", x)
		}
		return n, nil
	case float64:
		if x < 0 || x != math.Trunc(x) || x > math.MaxUint64 {
			return 0, fmt.Errorf("%v is not an unsigned integer", x)
		}
		return uint64(x), nil
	}
	n, err := asInt(v)
	if err != nil {
		return 0, err
	}
	if n < 0 {
		return 0, fmt.Errorf("%d is negative", n)
	}
	return uint64(n), nil
}

func asString(v any) (string, error) {
	switch x := v.(type) {
	case string:
		return x, nil
	case json.Number:
		return string(x), nil
	case int, int64, int32, uint32, uint64:
		return fmt.Sprint(x), nil
	case float64:
		return strconv.FormatFloat(x, 'f', -1, 64), nil
	case bool:
		return strconv.FormatBool(x), nil
	case nil:
		return "", nil
	}
	return "", fmt.Errorf("want a string, got %T", v)
}

func asBool(v any) (bool, error) {
	switch x := v.(type) {
	case bool:
		return x, nil
	case string:
		return strconv.ParseBool(x)
	}
	n, err := asInt(v)
	if err != nil {
		return false, fmt.Errorf("want a bool, got %T", v)
	}
	return n != 0, nil
}

// parentArgs sets the parent's arguments from proc.pcmdline; argv[0] is
// proc.pexe when given, else the name.
func (b *builder) parentArgs(cmd string) {
	p := b.parent(0)
	head, args := splitCmdline(cmd, p.Name())
	if head == "" {
		return
	}
	if b.set["proc.pexe"] && len(p.Argv) > 0 {
		head = p.Argv[0]
	}
	p.Argv = append([]string{head}, args...)
}

// splitCmdline splits a command line as Falco writes it, a process name
// (which may hold spaces) and then the arguments, into the two. Without
// the name, or when cmd does not start with it as a whole word, the first
// word is taken for the name ("" when cmd is blank).
func splitCmdline(cmd, name string) (string, []string) {
	if rest, ok := strings.CutPrefix(cmd, name); name != "" && ok && (rest == "" || rest[0] == ' ') {
		return name, strings.Fields(rest)
	}
	f := strings.Fields(cmd)
	if len(f) == 0 {
		return "", nil
	}
	return f[0], f[1:]
}
