package fields

import (
	"strconv"

	"github.com/tripline/tripline/internal/event"
)

// Linux open(2) flags (generic values, as on x86-64 and arm64).
const (
	oAccMode   = 0o3
	oRDONLY    = 0o0
	oWRONLY    = 0o1
	oRDWR      = 0o2
	oCreat     = 0o100
	oExcl      = 0o200
	oNoctty    = 0o400
	oTrunc     = 0o1000
	oAppend    = 0o2000
	oNonblock  = 0o4000
	oDsync     = 0o10000
	oDirect    = 0o40000
	oLargefile = 0o100000
	oDirectory = 0o200000
	oNofollow  = 0o400000
	oNoatime   = 0o1000000
	oCloexec   = 0o2000000
	oSync      = 0o4010000
	oPath      = 0o10000000
	oTmpfile   = 0o20200000
)

// openFlagNames is Falco's rendering order (flags_table.c); the access mode is
// handled separately because O_RDONLY is 0 on Linux.
var openFlagNames = []struct {
	bit  uint32
	name string
}{
	{oLargefile, "O_LARGEFILE"},
	{oTmpfile, "O_TMPFILE"},
	{oDirectory, "O_DIRECTORY"},
	{oDirect, "O_DIRECT"},
	{oTrunc, "O_TRUNC"},
	{oSync, "O_SYNC"},
	{oNonblock, "O_NONBLOCK"},
	{oExcl, "O_EXCL"},
	{oDsync, "O_DSYNC"},
	{oAppend, "O_APPEND"},
	{oCreat, "O_CREAT"},
	{oNoctty, "O_NOCTTY"},
	{oNofollow, "O_NOFOLLOW"},
	{oNoatime, "O_NOATIME"},
	{oPath, "O_PATH"},
}

// AppendOpenFlags renders open flags like Falco's evt.arg.flags
// ("O_WRONLY|O_CREAT|O_CLOEXEC").
func AppendOpenFlags(dst []byte, flags uint32) []byte {
	n := 0
	sep := func() {
		if n > 0 {
			dst = append(dst, '|')
		}
		n++
	}
	rest := flags &^ oAccMode
	for _, f := range openFlagNames {
		if rest&f.bit == f.bit {
			sep()
			dst = append(dst, f.name...)
			rest &^= f.bit
		}
	}
	sep()
	switch flags & oAccMode {
	case oRDWR:
		dst = append(dst, "O_RDWR"...)
	case oWRONLY:
		dst = append(dst, "O_WRONLY"...)
	default:
		dst = append(dst, "O_RDONLY"...)
	}
	if rest&oCloexec != 0 {
		sep()
		dst = append(dst, "O_CLOEXEC"...)
	}
	return dst
}

// AppendExecFlags renders the execve flags parameter (EXE_WRITABLE|...).
func AppendExecFlags(dst []byte, p *event.Process) []byte {
	n := 0
	add := func(on bool, s string) {
		if !on {
			return
		}
		if n > 0 {
			dst = append(dst, '|')
		}
		n++
		dst = append(dst, s...)
	}
	add(p.ExeWritable, "EXE_WRITABLE")
	add(p.ExeUpperLayer, "EXE_UPPER_LAYER")
	add(p.ExeFromMemfd, "EXE_FROM_MEMFD")
	add(p.ExeLowerLayer, "EXE_LOWER_LAYER")
	return dst
}

// CapIndex returns the bit of a capability name ("CAP_SYS_ADMIN" → 21).
// CapIndex returns the bit of a capability name ("CAP_SYS_ADMIN" → 21).
func CapIndex(name string) (int, bool) { return event.CapIndex(name) }

// AppendCaps renders a capability mask as space-separated CAP_* names.
func AppendCaps(dst []byte, mask uint64) []byte { return event.AppendCapNames(dst, mask) }

// ErrnoName returns the symbolic name of a positive errno ("ENOENT"), or
// "E<n>" for numbers it does not know (still starts with E, as Falco's rules
// expect of failures).
func ErrnoName(n int64) string { return event.ErrnoName(-n) }

// evtArgField is evt.arg.NAME; evt.arg.env is the exec environment, redacted
// in outputs like proc.env.
func evtArgField() *Field {
	f := withArg(fstr("evt.arg", clsArgs, "an event parameter rendered as text, by name (evt.arg.flags)", evtArg), ArgKey, true, true)
	f.Redact = func(c *Ctx, ev *event.Event, a *Arg, r *Redactor) (Value, bool) {
		if a != nil && a.Text == "env" && ev.Type.Class() == event.ClassExec {
			return envValue(c, &ev.Proc, nil, r)
		}
		return f.Extract(c, ev, a)
	}
	return f
}

// evtArg renders one event parameter by name (Falco's evt.arg.NAME).
func evtArg(c *Ctx, ev *event.Event, a *Arg) (string, bool) {
	if a == nil {
		return "", false
	}
	if isSys(ev) {
		sa, ok := event.LookupSysArg(ev.Type, a.Text)
		if !ok {
			return "", false
		}
		start := c.begin()
		c.buf = event.AppendSysArg(c.buf, ev, sa)
		return c.end(start), true
	}
	start := c.begin()
	switch ev.Type.Class() {
	case event.ClassExec:
		p := &ev.Proc
		switch a.Text {
		case "env":
			c.buf = appendEnv(c.buf, p.Env, nil)
		case "flags":
			c.buf = AppendExecFlags(c.buf, p)
		case "exe":
			s, _ := pExe(c, p)
			return s, true
		case "args":
			return pArgs(c, p)
		case "cwd":
			return p.Cwd, true
		case "comm":
			return p.Comm, true
		case "trusted_exepath", "filename":
			return p.ExePath, true
		case "res":
			c.buf = appendRes(c.buf, ev.Res)
		case "pid":
			c.buf = strconv.AppendUint(c.buf, uint64(p.PID), 10)
		case "tid":
			c.buf = strconv.AppendUint(c.buf, uint64(p.TID), 10)
		case "ptid":
			c.buf = strconv.AppendUint(c.buf, uint64(p.PPID), 10)
		case "tty":
			c.buf = strconv.AppendUint(c.buf, uint64(p.TTY), 10)
		case "uid":
			c.buf = strconv.AppendUint(c.buf, uint64(p.EUID), 10)
		case "gid":
			c.buf = strconv.AppendUint(c.buf, uint64(p.EGID), 10)
		case "loginuid":
			c.buf = strconv.AppendInt(c.buf, int64(int32(p.LoginUID)), 10)
		case "cap_effective":
			c.buf = AppendCaps(c.buf, p.CapEffective)
		case "cap_permitted":
			c.buf = AppendCaps(c.buf, p.CapPermitted)
		case "cap_inheritable":
			c.buf = AppendCaps(c.buf, p.CapInheritable)
		default:
			return "", false
		}
	case event.ClassOpen:
		o := &ev.Open
		switch a.Text {
		case "flags":
			c.buf = AppendOpenFlags(c.buf, o.Flags)
		case "name":
			return o.Path, true
		case "fd":
			c.buf = appendRes(c.buf, ev.Res)
		case "dirfd":
			if ev.Type == event.TypeOpen || ev.Type == event.TypeCreat {
				return "", false
			}
			if o.DirFD == -100 {
				c.buf = append(c.buf, "AT_FDCWD"...)
			} else {
				c.buf = strconv.AppendInt(c.buf, int64(o.DirFD), 10)
			}
		case "mode":
			c.buf = append(c.buf, '0')
			c.buf = strconv.AppendUint(c.buf, uint64(o.Mode), 8)
		case "resolve":
			if ev.Type != event.TypeOpenat2 {
				return "", false
			}
			c.buf = strconv.AppendUint(c.buf, o.Resolve, 10)
		case "dev":
			c.buf = strconv.AppendUint(c.buf, uint64(o.Dev), 16)
		case "ino":
			c.buf = strconv.AppendUint(c.buf, o.Ino, 10)
		default:
			return "", false
		}
	case event.ClassConnect:
		switch a.Text {
		case "res":
			c.buf = appendRes(c.buf, ev.Res)
		case "fd":
			c.buf = strconv.AppendInt(c.buf, int64(ev.Connect.FD), 10)
		case "tuple":
			return fdName(c, ev, a)
		case "addr":
			cn := &ev.Connect
			if cn.Family == event.AFUnix {
				return cn.UnixPath, true
			}
			c.buf = appendEndpoint(c.buf, cn.RemoteAddr, cn.RemotePort)
		default:
			return "", false
		}
	default:
		return "", false
	}
	return c.end(start), true
}

func appendRes(dst []byte, res int64) []byte {
	if res < 0 {
		return append(dst, ErrnoName(-res)...)
	}
	return strconv.AppendInt(dst, res, 10)
}

func evtRawArg(_ *Ctx, ev *event.Event, a *Arg) (int64, bool) {
	if a == nil {
		return 0, false
	}
	if isSys(ev) {
		sa, ok := event.LookupSysArg(ev.Type, a.Text)
		if !ok {
			return 0, false
		}
		return event.SysRaw(ev, sa)
	}
	switch ev.Type.Class() {
	case event.ClassOpen:
		switch a.Text {
		case "flags":
			return int64(ev.Open.Flags), true
		case "mode":
			return int64(ev.Open.Mode), true
		case "fd":
			return ev.Res, true
		case "dirfd":
			return int64(ev.Open.DirFD), true
		case "dev":
			return int64(ev.Open.Dev), true
		case "ino":
			return int64(ev.Open.Ino), true
		}
	case event.ClassConnect:
		switch a.Text {
		case "fd":
			return int64(ev.Connect.FD), true
		case "res":
			return ev.Res, true
		}
	case event.ClassExec:
		p := &ev.Proc
		switch a.Text {
		case "res":
			return ev.Res, true
		case "pid":
			return int64(p.PID), true
		case "tid":
			return int64(p.TID), true
		case "ptid":
			return int64(p.PPID), true
		case "uid":
			return int64(p.EUID), true
		case "gid":
			return int64(p.EGID), true
		case "tty":
			return int64(p.TTY), true
		case "loginuid":
			return int64(int32(p.LoginUID)), true
		case "cap_effective":
			return int64(p.CapEffective), true
		case "cap_permitted":
			return int64(p.CapPermitted), true
		case "cap_inheritable":
			return int64(p.CapInheritable), true
		}
	}
	return 0, false
}

// evtArgs renders the main parameters as "name=value name=value".
func evtArgs(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
	var names []string
	switch ev.Type.Class() {
	case event.ClassExec:
		names = execArgNames[:]
	case event.ClassOpen:
		names = openArgNames[:]
	case event.ClassConnect:
		names = connectArgNames[:]
	default:
		if !isSys(ev) {
			return "", false
		}
		start := c.begin()
		for i, sa := range event.SysArgs(ev.Type) {
			if i > 0 {
				c.buf = append(c.buf, ' ')
			}
			c.buf = append(c.buf, sa.Name...)
			c.buf = append(c.buf, '=')
			c.buf = event.AppendSysArg(c.buf, ev, sa)
		}
		return c.end(start), true
	}
	start := c.begin()
	for _, n := range names {
		mark := len(c.buf)
		if mark > start {
			c.buf = append(c.buf, ' ')
		}
		c.buf = append(c.buf, n...)
		c.buf = append(c.buf, '=')
		at := len(c.buf)
		a := Arg{Text: n, Set: true}
		s, ok := evtArg(c, ev, &a)
		if !ok {
			c.buf = c.buf[:mark]
			continue
		}
		if len(c.buf) == at { // not built in place: copy it
			c.buf = append(c.buf, s...)
		}
	}
	return c.end(start), true
}

var (
	execArgNames    = [...]string{"res", "exe", "args", "tid", "pid", "ptid", "cwd", "flags"}
	openArgNames    = [...]string{"fd", "dirfd", "name", "flags", "mode", "dev", "ino"}
	connectArgNames = [...]string{"res", "tuple", "fd"}
)
