package fields

import (
	"net/netip"
	"strconv"
	"strings"

	"github.com/tripline/tripline/internal/event"
)

// Class sets used in the catalogue.
var (
	clsSys  = []event.Class{event.ClassFile, event.ClassSocket, event.ClassDup, event.ClassPriv, event.ClassMount, event.ClassNS, event.ClassMemfd}
	clsProc = append([]event.Class{event.ClassExec, event.ClassOpen, event.ClassConnect, event.ClassFork, event.ClassExit}, clsSys...)
	clsAll  = append([]event.Class{event.ClassContainer}, clsProc...)
	clsFD   = []event.Class{event.ClassOpen, event.ClassConnect, event.ClassSocket, event.ClassDup, event.ClassFile, event.ClassPriv, event.ClassNS}
	clsOpen = []event.Class{event.ClassOpen}
	clsNet  = []event.Class{event.ClassConnect, event.ClassSocket, event.ClassDup}
	clsExec = []event.Class{event.ClassExec}
	clsArgs = append([]event.Class{event.ClassExec, event.ClassOpen, event.ClassConnect}, clsSys...)
	clsNone []event.Class
)

// isSys reports whether ev is one of the Sys event types.
func isSys(ev *event.Event) bool { return event.SysArgs(ev.Type) != nil }

// sockOf returns the socket an event is about: connect's, or the fd of a
// Sys event when it is a socket.
func sockOf(ev *event.Event) *event.Connect {
	if ev.Type.Class() == event.ClassConnect || (isSys(ev) && ev.Sys.FDKind == event.FDSocket) {
		return &ev.Connect
	}
	return nil
}

type (
	strFn  func(c *Ctx, ev *event.Event, a *Arg) (string, bool)
	numFn  func(c *Ctx, ev *event.Event, a *Arg) (int64, bool)
	boolFn func(c *Ctx, ev *event.Event, a *Arg) (bool, bool)
	ipFn   func(c *Ctx, ev *event.Event, a *Arg) (netip.Addr, bool)
)

func fstr(name string, cls []event.Class, desc string, fn strFn) *Field {
	return &Field{Name: name, Type: String, Classes: cls, Desc: desc, Str: fn,
		Extract: func(c *Ctx, ev *event.Event, a *Arg) (Value, bool) {
			s, ok := fn(c, ev, a)
			return Value{Str: s}, ok
		}}
}

func fnum(name string, t Type, cls []event.Class, desc string, fn numFn) *Field {
	return &Field{Name: name, Type: t, Classes: cls, Desc: desc, Num: fn,
		Extract: func(c *Ctx, ev *event.Event, a *Arg) (Value, bool) {
			n, ok := fn(c, ev, a)
			return Value{Num: n}, ok
		}}
}

func fbool(name string, cls []event.Class, desc string, fn boolFn) *Field {
	num := func(c *Ctx, ev *event.Event, a *Arg) (int64, bool) {
		b, ok := fn(c, ev, a)
		if b {
			return 1, ok
		}
		return 0, ok
	}
	return &Field{Name: name, Type: Bool, Classes: cls, Desc: desc, Num: num,
		Extract: func(c *Ctx, ev *event.Event, a *Arg) (Value, bool) {
			n, ok := num(c, ev, a)
			return Value{Num: n}, ok
		}}
}

func fip(name string, t Type, cls []event.Class, desc string, fn ipFn) *Field {
	return &Field{Name: name, Type: t, Classes: cls, Desc: desc,
		Extract: func(c *Ctx, ev *event.Event, a *Arg) (Value, bool) {
			ip, ok := fn(c, ev, a)
			return Value{IP: ip}, ok && ip.IsValid()
		}}
}

// missing declares a Falco field the sensor knows but never supplies, so
// rules using it load and compare false.
func missing(name string, t Type, desc string) *Field {
	return &Field{Name: name, Type: t, Classes: clsNone, Desc: desc + " (not supplied by this sensor)",
		Extract: func(*Ctx, *event.Event, *Arg) (Value, bool) { return Value{}, false }}
}

func withArg(f *Field, k ArgKind, required, dot bool) *Field {
	f.Arg, f.ArgRequired, f.DotArg = k, required, dot
	return f
}

// ancestor returns the process at depth i: 0 is the event's own process,
// 1 the parent, and so on.
func ancestor(ev *event.Event, i int) *event.Process {
	if i == 0 {
		return &ev.Proc
	}
	if i-1 < len(ev.Lineage) {
		return ev.Lineage[i-1]
	}
	return nil
}

func hasProc(ev *event.Event) bool { return ev.Type.Class() != event.ClassContainer }

func procStr(get func(c *Ctx, p *event.Process) (string, bool)) strFn {
	return func(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
		if !hasProc(ev) {
			return "", false
		}
		return get(c, &ev.Proc)
	}
}

func parentStr(get func(c *Ctx, p *event.Process) (string, bool)) strFn {
	return func(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
		p := ancestor(ev, 1)
		if p == nil || !hasProc(ev) {
			return "", false
		}
		return get(c, p)
	}
}

// ancestorField builds proc.aname-style fields: [N] picks one ancestor; with
// no argument a filter matches any ancestor (parent upwards) and an output
// prints them all separated by spaces.
func ancestorField(name, desc string, t Type, get func(c *Ctx, p *event.Process) (Value, bool)) *Field {
	f := &Field{Name: name, Type: t, Arg: ArgIndex, Classes: clsProc, Desc: desc}
	f.Extract = func(c *Ctx, ev *event.Event, a *Arg) (Value, bool) {
		if !hasProc(ev) {
			return Value{}, false
		}
		if a != nil && a.Set {
			p := ancestor(ev, a.Index)
			if p == nil {
				return Value{}, false
			}
			return get(c, p)
		}
		if t != String {
			return get(c, &ev.Proc) // proc.apid without argument is proc.pid
		}
		if len(ev.Lineage) == 0 {
			return Value{}, false
		}
		start := c.begin()
		for i, p := range ev.Lineage {
			if p == nil {
				continue
			}
			v, ok := get(c, p)
			if !ok {
				continue
			}
			if i > 0 {
				c.buf = append(c.buf, ' ')
			}
			c.buf = append(c.buf, v.Str...)
		}
		return Value{Str: c.end(start)}, true
	}
	f.Multi = func(ev *event.Event) int {
		if !hasProc(ev) {
			return 0
		}
		return len(ev.Lineage)
	}
	f.Nth = func(c *Ctx, ev *event.Event, i int) (Value, bool) {
		p := ev.Lineage[i]
		if p == nil {
			return Value{}, false
		}
		return get(c, p)
	}
	return f
}

// procName is Falco's proc.name: the task comm (as libsinsp does), falling
// back to event.Process.Name (basename of argv[0]) when comm is unknown.
// comm survives argv rewriting ("sshd: root@pts/0").
//
// One exception: a program started through a /proc/<pid>/exe magic link
// gets the comm "exe" from the kernel, which names nothing. Busybox's shell
// runs every applet that way (nc, wget, find, ...), so without this a
// busybox container's "nc -e" would be "exe -e". Such a process is named by
// its argv[0] basename, cut to the kernel's 15 bytes: what a direct exec of
// a link of that name would have made its comm. An executable really called
// "exe" keeps its name.
func procName(p *event.Process) string {
	if p.Comm == "" {
		return p.Name()
	}
	if p.Comm != "exe" || !reexecuted(p) {
		return p.Comm
	}
	n := p.Name()
	if len(n) > 15 {
		n = n[:15]
	}
	return n
}

// reexecuted reports whether p's comm "exe" came from exec'ing a
// /proc/<pid>/exe link rather than a file named exe.
func reexecuted(p *event.Process) bool {
	exe := p.ExePath
	if exe == "" {
		return false
	}
	return exe[strings.LastIndexByte(exe, '/')+1:] != "exe"
}

func pName(_ *Ctx, p *event.Process) (string, bool) { return procName(p), true }
func pExe(_ *Ctx, p *event.Process) (string, bool) {
	if len(p.Argv) > 0 {
		return p.Argv[0], true
	}
	return p.Comm, p.Comm != ""
}
func pExePath(_ *Ctx, p *event.Process) (string, bool) { return p.ExePath, p.ExePath != "" }
func pArgs(c *Ctx, p *event.Process) (string, bool) {
	if len(p.Argv) <= 1 {
		return "", true
	}
	if len(p.Argv) == 2 {
		return p.Argv[1], true
	}
	start := c.begin()
	for i, a := range p.Argv[1:] {
		if i > 0 {
			c.buf = append(c.buf, ' ')
		}
		c.buf = append(c.buf, a...)
	}
	return c.end(start), true
}
func pCmdline(c *Ctx, p *event.Process) (string, bool) { return c.joinArgs(procName(p), p.Argv), true }
func pExeline(c *Ctx, p *event.Process) (string, bool) {
	exe, _ := pExe(c, p)
	return c.joinArgs(exe, p.Argv), true
}

// joinArgs renders head followed by argv[1:], space-separated, in c's buffer.
func (c *Ctx) joinArgs(head string, argv []string) string {
	if len(argv) <= 1 {
		return head
	}
	start := c.begin()
	c.buf = append(c.buf, head...)
	for _, a := range argv[1:] {
		c.buf = append(c.buf, ' ')
		c.buf = append(c.buf, a...)
	}
	return c.end(start)
}

func strV(f func(c *Ctx, p *event.Process) (string, bool)) func(c *Ctx, p *event.Process) (Value, bool) {
	return func(c *Ctx, p *event.Process) (Value, bool) {
		s, ok := f(c, p)
		return Value{Str: s}, ok
	}
}

func procNum(get func(p *event.Process) int64) numFn {
	return func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
		if !hasProc(ev) {
			return 0, false
		}
		return get(&ev.Proc), true
	}
}

func parentNum(get func(p *event.Process) int64) numFn {
	return func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
		p := ancestor(ev, 1)
		if p == nil || !hasProc(ev) {
			return 0, false
		}
		return get(p), true
	}
}

func procBool(get func(p *event.Process) bool) boolFn {
	return func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
		if !hasProc(ev) {
			return false, false
		}
		return get(&ev.Proc), true
	}
}

func capsField(name string, get func(p *event.Process) uint64) *Field {
	f := fstr(name, clsProc, "capability set as space-separated CAP_* names", func(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
		if !hasProc(ev) {
			return "", false
		}
		start := c.begin()
		c.buf = AppendCaps(c.buf, get(&ev.Proc))
		return c.end(start), true
	})
	f.CapMask = func(ev *event.Event) (uint64, bool) { return get(&ev.Proc), hasProc(ev) }
	return f
}

func isSock(ev *event.Event) bool {
	c := sockOf(ev)
	return c != nil && (c.Family == event.AFInet || c.Family == event.AFInet6)
}

// Address accessors for connect: the connecting side is the client and the
// local end; the peer is the server and the remote end.
func lip(_ *Ctx, ev *event.Event, _ *Arg) (netip.Addr, bool) {
	return ev.Connect.LocalAddr, isSock(ev)
}
func rip(_ *Ctx, ev *event.Event, _ *Arg) (netip.Addr, bool) {
	return ev.Connect.RemoteAddr, isSock(ev)
}
func lport(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
	return int64(ev.Connect.LocalPort), isSock(ev)
}
func rport(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
	return int64(ev.Connect.RemotePort), isSock(ev)
}

func ipValue(get ipFn) func(c *Ctx, ev *event.Event) (Value, bool) {
	return func(c *Ctx, ev *event.Event) (Value, bool) {
		a, ok := get(c, ev, nil)
		return Value{IP: a}, ok && a.IsValid()
	}
}

func numValue(get numFn) func(c *Ctx, ev *event.Event) (Value, bool) {
	return func(c *Ctx, ev *event.Event) (Value, bool) {
		n, ok := get(c, ev, nil)
		return Value{Num: n}, ok
	}
}

// either makes f match when a or b (the two ends of a connection) does.
func either(f *Field, a, b func(c *Ctx, ev *event.Event) (Value, bool)) *Field {
	f.FilterOnly = true
	f.Multi = func(ev *event.Event) int {
		if isSock(ev) {
			return 2
		}
		return 0
	}
	f.Nth = func(c *Ctx, ev *event.Event, i int) (Value, bool) {
		if i == 0 {
			return a(c, ev)
		}
		return b(c, ev)
	}
	return f
}

func fdName(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
	if isSys(ev) && ev.Sys.FDKind == event.FDFile {
		return ev.Sys.FDPath, ev.Sys.FDPath != ""
	}
	if ev.Type.Class() == event.ClassOpen {
		return ev.Open.Path, ev.Open.Path != ""
	}
	if sockOf(ev) != nil {
		cn := &ev.Connect
		if cn.Family == event.AFUnix {
			return cn.UnixPath, cn.UnixPath != ""
		}
		if !isSock(ev) {
			return "", false
		}
		start := c.begin()
		c.buf = appendEndpoint(c.buf, cn.LocalAddr, cn.LocalPort)
		c.buf = append(c.buf, "->"...)
		c.buf = appendEndpoint(c.buf, cn.RemoteAddr, cn.RemotePort)
		return c.end(start), true
	}
	return "", false
}

func appendEndpoint(dst []byte, a netip.Addr, port uint16) []byte {
	if a.IsValid() {
		dst = a.Unmap().AppendTo(dst)
	} else {
		dst = append(dst, "0.0.0.0"...)
	}
	dst = append(dst, ':')
	return strconv.AppendUint(dst, uint64(port), 10)
}

func fdType(ev *event.Event) (string, string, bool) {
	if isSys(ev) && ev.Sys.FDKind == event.FDFile {
		return "file", "f", true
	}
	switch {
	case ev.Type.Class() == event.ClassOpen:
		if ev.Open.Flags&oDirectory != 0 {
			return "directory", "d", true
		}
		return "file", "f", true
	case sockOf(ev) != nil:
		switch ev.Connect.Family {
		case event.AFInet:
			return "ipv4", "4", true
		case event.AFInet6:
			return "ipv6", "6", true
		case event.AFUnix:
			return "unix", "u", true
		}
	}
	return "", "", false
}

func containerOf(ev *event.Event) *event.Container { return ev.Container }

// cid is container.id: the short id, "host" outside containers.
func cid(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
	if ct := ev.Container; ct != nil {
		if ct.ID != "" {
			return ct.ID, true
		}
		if len(ct.FullID) >= 12 {
			return ct.FullID[:12], true
		}
		return ct.FullID, ct.FullID != ""
	}
	if id := ev.Proc.ContainerID; id != "" && hasProc(ev) {
		if len(id) > 12 {
			return id[:12], true
		}
		return id, true
	}
	return event.HostID, true
}

func ctStr(get func(ct *event.Container) string) strFn {
	return func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
		ct := containerOf(ev)
		if ct == nil {
			return "", false
		}
		s := get(ct)
		return s, s != ""
	}
}

// mountFor finds a mount by index or by destination (a glob pattern).
func mountFor(ct *event.Container, a *Arg) (*event.Mount, bool) {
	if ct == nil || a == nil {
		return nil, false
	}
	if a.IsIndex {
		if a.Index < len(ct.Mounts) {
			return &ct.Mounts[a.Index], true
		}
		return nil, false
	}
	// Falco keys every container.mount.* field by the mount SOURCE glob:
	// container.mount.dest[/var/run/docker.sock] is where the host's docker
	// socket is mounted, if it is.
	for i := range ct.Mounts {
		if Glob(a.Text, ct.Mounts[i].Source, false) {
			return &ct.Mounts[i], true
		}
	}
	return nil, false
}

func mountField(name, desc string, get func(c *Ctx, m *event.Mount) string) *Field {
	return withArg(fstr(name, clsAll, desc, func(c *Ctx, ev *event.Event, a *Arg) (string, bool) {
		m, ok := mountFor(ev.Container, a)
		if !ok {
			return "", false
		}
		return get(c, m), true
	}), ArgIndexOrKey, true, false)
}

func appendMount(dst []byte, m *event.Mount) []byte {
	dst = append(dst, m.Source...)
	dst = append(dst, ':')
	dst = append(dst, m.Dest...)
	dst = append(dst, ':')
	dst = append(dst, m.Mode...)
	dst = append(dst, ':')
	dst = strconv.AppendBool(dst, m.RW)
	dst = append(dst, ':')
	return append(dst, m.Propagation...)
}

func appendLabels(dst []byte, m map[string]string) []byte {
	// Sorted for stable output.
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	for i, k := range keys {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, k...)
		dst = append(dst, ':')
		dst = append(dst, m[k]...)
	}
	return dst
}

func labelField(name, desc string, get func(ct *event.Container) map[string]string) *Field {
	return withArg(fstr(name, clsAll, desc, func(_ *Ctx, ev *event.Event, a *Arg) (string, bool) {
		if ev.Container == nil || a == nil {
			return "", false
		}
		v, ok := get(ev.Container)[a.Text]
		return v, ok
	}), ArgKey, true, true)
}

func evtTimeNs(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) { return ev.Timestamp, true }

func openAccess(ev *event.Event) (read, write bool) {
	if ev.Type.Class() != event.ClassOpen {
		return false, false
	}
	if ev.Type == event.TypeCreat {
		return false, true
	}
	switch ev.Open.Flags & oAccMode {
	case oRDONLY:
		return true, false
	case oWRONLY:
		return false, true
	default:
		return true, true
	}
}

func catalogue() []*Field {
	fs := []*Field{
		// evt.*
		fstr("evt.type", clsAll, "event type (Falco's evt.type)", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			return ev.Type.String(), true
		}),
		fstr("syscall.type", clsAll, "system call name", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			return ev.Type.String(), ev.Type != event.TypeContainer
		}),
		fstr("evt.category", clsAll, "event category", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			switch ev.Type.Class() {
			case event.ClassOpen, event.ClassFile:
				return "file", true
			case event.ClassConnect, event.ClassSocket:
				return "net", true
			case event.ClassContainer:
				return "internal", true
			}
			return "process", true
		}),
		fstr("evt.dir", clsAll, "event direction; always '<' (exit events only)", func(*Ctx, *event.Event, *Arg) (string, bool) { return "<", true }),
		fstr("evt.source", clsAll, "event source", func(*Ctx, *event.Event, *Arg) (string, bool) { return "syscall", true }),
		fnum("evt.cpu", Int, clsAll, "CPU number", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) { return int64(ev.CPU), true }),
		fnum("evt.rawtime", Int, clsAll, "event timestamp in ns since the epoch", evtTimeNs),
		fnum("evt.rawtime.s", Int, clsAll, "seconds part of the timestamp", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			return ev.Timestamp / 1e9, true
		}),
		fnum("evt.rawtime.ns", Int, clsAll, "nanoseconds part of the timestamp", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			return ev.Timestamp % 1e9, true
		}),
		timeField("evt.time", "event time HH:MM:SS.nnnnnnnnn (UTC)", "15:04:05.000000000"),
		timeField("evt.time.s", "event time HH:MM:SS (UTC)", "15:04:05"),
		timeField("evt.time.iso8601", "event time in ISO 8601", "2006-01-02T15:04:05.000000000Z"),
		timeField("evt.datetime", "event date and time", "2006-01-02 15:04:05.000000000"),
		timeField("evt.datetime.s", "event date and time without ns", "2006-01-02 15:04:05"),
		fstr("evt.res", clsArgs, "return value as text: SUCCESS or an errno name", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if c := ev.Type.Class(); c != event.ClassExec && c != event.ClassOpen && c != event.ClassConnect && c != event.ClassFork && !isSys(ev) {
				return "", false
			}
			if ev.Res >= 0 {
				return "SUCCESS", true
			}
			return ErrnoName(-ev.Res), true
		}),
		fnum("evt.rawres", Int, clsArgs, "return value as a number", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			c := ev.Type.Class()
			return ev.Res, c == event.ClassExec || c == event.ClassOpen || c == event.ClassConnect || c == event.ClassFork || isSys(ev)
		}),
		fbool("evt.failed", clsArgs, "the syscall failed", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) { return ev.Res < 0, true }),
		fnum("evt.count", Int, clsAll, "always 1", func(*Ctx, *event.Event, *Arg) (int64, bool) { return 1, true }),
		fbool("evt.is_async", clsAll, "asynchronous event", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			return ev.Type == event.TypeContainer, true
		}),
		fbool("evt.is_open_read", clsOpen, "open for reading", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			r, _ := openAccess(ev)
			return r, ev.Type.Class() == event.ClassOpen
		}),
		fbool("evt.is_open_write", clsOpen, "open for writing", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			_, w := openAccess(ev)
			return w, ev.Type.Class() == event.ClassOpen
		}),
		fbool("evt.is_open_create", clsOpen, "open with O_CREAT", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			return ev.Type == event.TypeCreat || ev.Open.Flags&oCreat != 0, ev.Type.Class() == event.ClassOpen
		}),
		fbool("evt.is_open_exec", clsOpen, "file created with an execute bit", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			cr := ev.Type == event.TypeCreat || ev.Open.Flags&oCreat != 0
			return cr && ev.Open.Mode&0o111 != 0, ev.Type.Class() == event.ClassOpen
		}),
		evtArgField(),
		withArg(fnum("evt.rawarg", Int, clsArgs, "an event parameter as a number, by name (evt.rawarg.flags)", evtRawArg), ArgKey, true, true),
		fstr("evt.args", clsArgs, "all event parameters as text", evtArgs),
		fstr("evt.info", clsArgs, "same as evt.args", evtArgs),
		missing("evt.num", Int, "event number"),
		missing("evt.hostname", String, "host name"),
		missing("evt.buffer", String, "data buffer"),
		missing("evt.buflen", Int, "data buffer length"),
		missing("evt.latency", Int, "deprecated"),
		missing("evt.deltatime", Int, "delta from the previous event"),
		missing("evt.pluginname", String, "plugin name"),
		withArg(missing("evt.abspath", String, "absolute path from dirfd and name"), ArgKey, true, true),

		// proc.* / thread.*
		fstr("proc.name", clsProc, "process name", procStr(pName)),
		fstr("proc.exe", clsProc, "argv[0]", procStr(pExe)),
		fstr("proc.exepath", clsProc, "full executable path", procStr(pExePath)),
		withArg(fstr("proc.args", clsProc, "arguments excluding argv[0]; [I] one argument", func(c *Ctx, ev *event.Event, a *Arg) (string, bool) {
			if !hasProc(ev) {
				return "", false
			}
			if a != nil && a.Set {
				if a.Index+1 < len(ev.Proc.Argv) {
					return ev.Proc.Argv[a.Index+1], true
				}
				return "", false
			}
			return pArgs(c, &ev.Proc)
		}), ArgIndex, false, false),
		fstr("proc.cmdline", clsProc, "proc.name + proc.args", procStr(pCmdline)),
		fstr("proc.exeline", clsProc, "proc.exe + proc.args", procStr(pExeline)),
		fnum("proc.cmdnargs", Int, clsProc, "number of arguments", procNum(func(p *event.Process) int64 {
			if len(p.Argv) == 0 {
				return 0
			}
			return int64(len(p.Argv) - 1)
		})),
		fnum("proc.cmdlenargs", Int, clsProc, "total length of the arguments", procNum(func(p *event.Process) int64 {
			n := 0
			for i, a := range p.Argv {
				if i > 0 {
					n += len(a)
				}
			}
			return int64(n)
		})),
		fstr("proc.cwd", clsProc, "working directory", procStr(func(_ *Ctx, p *event.Process) (string, bool) { return p.Cwd, p.Cwd != "" })),
		fnum("proc.tty", Int, clsProc, "controlling terminal, 0 if none", procNum(func(p *event.Process) int64 { return int64(p.TTY) })),
		fnum("proc.pid", Int, clsProc, "process id", procNum(func(p *event.Process) int64 { return int64(p.PID) })),
		fnum("proc.ppid", Int, clsProc, "parent process id", procNum(func(p *event.Process) int64 { return int64(p.PPID) })),
		fnum("proc.vpid", Int, clsProc, "process id in its pid namespace", procNum(func(p *event.Process) int64 { return int64(p.VPID) })),
		fnum("proc.pvpid", Int, clsProc, "parent's id in its pid namespace", parentNum(func(p *event.Process) int64 { return int64(p.VPID) })),
		fnum("proc.sid", Int, clsProc, "session id", procNum(func(p *event.Process) int64 { return int64(p.SID) })),
		fstr("proc.sname", clsProc, "session leader's name", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if !hasProc(ev) {
				return "", false
			}
			if ev.Proc.SID == ev.Proc.PID {
				return procName(&ev.Proc), true
			}
			for _, p := range ev.Lineage {
				if p != nil && p.PID == ev.Proc.SID {
					return procName(p), true
				}
			}
			return "", false
		}),
		fbool("proc.is_sid_leader", clsProc, "process is its session leader", procBool(func(p *event.Process) bool { return p.SID == p.PID })),
		fstr("proc.pname", clsProc, "parent's name", parentStr(pName)),
		fstr("proc.pexe", clsProc, "parent's argv[0]", parentStr(pExe)),
		fstr("proc.pexepath", clsProc, "parent's executable path", parentStr(pExePath)),
		fstr("proc.pcmdline", clsProc, "parent's command line", parentStr(pCmdline)),
		ancestorField("proc.aname", "name of an ancestor ([0] self, [1] parent, ...)", String, strV(pName)),
		ancestorField("proc.aexe", "argv[0] of an ancestor", String, strV(pExe)),
		ancestorField("proc.aexepath", "executable path of an ancestor", String, strV(pExePath)),
		ancestorField("proc.acmdline", "command line of an ancestor", String, strV(pCmdline)),
		ancestorField("proc.aargs", "arguments of an ancestor", String, strV(pArgs)),
		ancestorField("proc.apid", "pid of an ancestor", Int, func(_ *Ctx, p *event.Process) (Value, bool) { return Value{Num: int64(p.PID)}, true }),
		fnum("proc.duration", Int, clsProc, "ns since the process started", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			return ev.Timestamp - ev.Proc.StartTime, hasProc(ev) && ev.Proc.StartTime != 0
		}),
		fnum("proc.ppid.duration", Int, clsProc, "ns since the parent started", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			p := ancestor(ev, 1)
			if p == nil || p.StartTime == 0 || !hasProc(ev) {
				return 0, false
			}
			return ev.Timestamp - p.StartTime, true
		}),
		fnum("proc.pid.ts", Int, clsProc, "process start time, ns since the epoch", procNum(func(p *event.Process) int64 { return p.StartTime })),
		fnum("proc.ppid.ts", Int, clsProc, "parent start time", parentNum(func(p *event.Process) int64 { return p.StartTime })),
		fbool("proc.is_exe_writable", clsProc, "executable writable by the process's user", procBool(func(p *event.Process) bool { return p.ExeWritable })),
		fbool("proc.is_exe_upper_layer", clsProc, "executable on an overlayfs upper layer", procBool(func(p *event.Process) bool { return p.ExeUpperLayer })),
		fbool("proc.is_exe_lower_layer", clsProc, "executable on an overlayfs lower layer", procBool(func(p *event.Process) bool { return p.ExeLowerLayer })),
		fbool("proc.is_exe_from_memfd", clsProc, "executable is a memfd", procBool(func(p *event.Process) bool { return p.ExeFromMemfd })),
		fnum("thread.tid", Int, clsProc, "thread id", procNum(func(p *event.Process) int64 { return int64(p.TID) })),
		fnum("thread.vtid", Int, clsProc, "thread id in its pid namespace", procNum(func(p *event.Process) int64 { return int64(p.VTID) })),
		fbool("thread.ismain", clsProc, "main thread", procBool(func(p *event.Process) bool { return p.TID == p.PID })),
		capsField("thread.cap_effective", func(p *event.Process) uint64 { return p.CapEffective }),
		capsField("thread.cap_permitted", func(p *event.Process) uint64 { return p.CapPermitted }),
		capsField("thread.cap_inheritable", func(p *event.Process) uint64 { return p.CapInheritable }),
		fstr("thread.cgroups", clsProc, "cgroup path", procStr(func(_ *Ctx, p *event.Process) (string, bool) { return p.CgroupPath, p.CgroupPath != "" })),
		fnum("proc.pidns_init_start_ts", Int, clsNone, "pid namespace start", func(*Ctx, *event.Event, *Arg) (int64, bool) { return 0, false }),
		missing("proc.is_vpgid_leader", Bool, "process group leader"),
		missing("proc.is_pgid_leader", Bool, "process group leader"),
		missing("proc.vpgid", Int, "process group id"),
		missing("proc.vpgid.name", String, "process group leader name"),
		missing("proc.vpgid.exe", String, "process group leader argv[0]"),
		missing("proc.vpgid.exepath", String, "process group leader path"),
		missing("proc.pgid", Int, "process group id"),
		missing("proc.pgid.name", String, "process group leader name"),
		missing("proc.pgid.exe", String, "process group leader argv[0]"),
		missing("proc.pgid.exepath", String, "process group leader path"),
		missing("proc.sid.exe", String, "session leader argv[0]"),
		missing("proc.sid.exepath", String, "session leader path"),
		missing("proc.loginshellid", Int, "oldest shell ancestor pid"),
		missing("proc.exe_ino", Int, "executable inode"),
		missing("proc.exe_ino.ctime", Int, "executable ctime"),
		missing("proc.exe_ino.mtime", Int, "executable mtime"),
		missing("proc.exe_ino.ctime_duration_proc_start", Int, "ns from exe ctime to process start"),
		missing("proc.exe_ino.ctime_duration_pidns_start", Int, "ns from pidns start to exe ctime"),
		missing("proc.fdopencount", Int, "open fds"),
		missing("proc.fdlimit", Int, "fd limit"),
		missing("proc.vmsize", Int, "virtual memory"),
		missing("proc.vmrss", Int, "resident memory"),
		missing("proc.vmswap", Int, "swapped memory"),
		missing("proc.nthreads", Int, "threads"),
		missing("proc.nchilds", Int, "child threads"),
		stdField("proc.stdin.type", 0, "type of fd 0 (ipv4, ipv6, unix, file) as last set by a seen open, socket, connect or dup", false),
		stdField("proc.stdout.type", 1, "type of fd 1", false),
		stdField("proc.stderr.type", 2, "type of fd 2", false),
		stdField("proc.stdin.name", 0, "name of fd 0 (path or connection tuple)", true),
		stdField("proc.stdout.name", 1, "name of fd 1", true),
		stdField("proc.stderr.name", 2, "name of fd 2", true),
		withArg(missing("thread.cgroup", String, "cgroup of a subsystem"), ArgKey, true, false),

		// user.* / group.*
		fnum("user.uid", Int, clsProc, "effective user id", procNum(func(p *event.Process) int64 { return int64(p.EUID) })),
		fstr("user.name", clsProc, "user name, from the passwd file of the process's root (host or container)", procStr(func(_ *Ctx, p *event.Process) (string, bool) {
			if p.User != nil {
				return p.User.Name, true
			}
			return "root", p.EUID == 0
		})),
		fstr("user.homedir", clsProc, "home directory of the user", procStr(func(_ *Ctx, p *event.Process) (string, bool) {
			if p.User != nil {
				return p.User.HomeDir, true
			}
			return "/root", p.EUID == 0
		})),
		fstr("user.shell", clsProc, "login shell of the user", procStr(func(_ *Ctx, p *event.Process) (string, bool) {
			if p.User != nil {
				return p.User.Shell, true
			}
			return "", false
		})),
		fnum("user.loginuid", Int, clsProc, "audit login uid, -1 if unset", procNum(func(p *event.Process) int64 {
			if p.LoginUID == 0xffffffff {
				return -1
			}
			return int64(p.LoginUID)
		})),
		fstr("user.loginname", clsProc, "audit login user name", procStr(func(_ *Ctx, p *event.Process) (string, bool) {
			if p.LoginUser != nil {
				return p.LoginUser.Name, true
			}
			return "root", p.LoginUID == 0
		})),
		fnum("group.gid", Int, clsProc, "effective group id", procNum(func(p *event.Process) int64 { return int64(p.EGID) })),
		fstr("group.name", clsProc, "group name, from the group file of the process's root", procStr(func(_ *Ctx, p *event.Process) (string, bool) {
			if p.Group != nil {
				return p.Group.Name, true
			}
			return "root", p.EGID == 0
		})),

		// fd.*
		fnum("fd.num", Int, clsFD, "file descriptor number; -1 when open failed", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			switch ev.Type.Class() {
			case event.ClassOpen:
				if ev.Res < 0 {
					return -1, true
				}
				return ev.Res, true
			case event.ClassConnect:
				return int64(ev.Connect.FD), true
			}
			if isSys(ev) && ev.Sys.FDKind != event.FDNone {
				return int64(ev.Sys.FD), true
			}
			return 0, false
		}),
		fstr("fd.type", clsFD, "file, directory, ipv4, ipv6, unix", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			t, _, ok := fdType(ev)
			return t, ok
		}),
		fstr("fd.typechar", clsFD, "f, d, 4, 6, u", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			_, t, ok := fdType(ev)
			return t, ok
		}),
		fstr("fd.name", clsFD, "file path, or the connection tuple lip:lport->rip:rport", fdName),
		fstr("fd.nameraw", clsOpen, "path as passed by the process", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			return ev.Open.RawPath, ev.Type.Class() == event.ClassOpen
		}),
		fstr("fd.directory", clsOpen, "directory of the file", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if ev.Type.Class() != event.ClassOpen || ev.Open.Path == "" {
				return "", false
			}
			p := ev.Open.Path
			i := strings.LastIndexByte(p, '/')
			switch {
			case i < 0:
				return ".", true
			case i == 0:
				return "/", true
			}
			return p[:i], true
		}),
		fstr("fd.filename", clsOpen, "file name without the directory", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if ev.Type.Class() != event.ClassOpen || ev.Open.Path == "" {
				return "", false
			}
			p := ev.Open.Path
			return p[strings.LastIndexByte(p, '/')+1:], true
		}),
		fstr("fd.containername", clsFD, "container id + fd.name", func(c *Ctx, ev *event.Event, a *Arg) (string, bool) {
			n, ok := fdName(c, ev, a)
			if !ok {
				return "", false
			}
			id, _ := cid(c, ev, a)
			start := c.begin()
			c.buf = append(c.buf, id...)
			c.buf = append(c.buf, ':')
			c.buf = append(c.buf, n...)
			return c.end(start), true
		}),
		fip("fd.cip", IP, clsNet, "client IP", lip),
		fip("fd.sip", IP, clsNet, "server IP", rip),
		fip("fd.lip", IP, clsNet, "local IP", lip),
		fip("fd.rip", IP, clsNet, "remote IP", rip),
		fip("fd.dip", IP, clsNet, "destination (server) IP; Tripline's alias of fd.sip", rip),
		fnum("fd.cport", Port, clsNet, "client port", lport),
		fnum("fd.sport", Port, clsNet, "server port", rport),
		fnum("fd.lport", Port, clsNet, "local port", lport),
		fnum("fd.rport", Port, clsNet, "remote port", rport),
		fnum("fd.dport", Port, clsNet, "destination (server) port; Tripline's alias of fd.sport", rport),
		either(fip("fd.ip", IP, clsNet, "client or server IP", lip), ipValue(lip), ipValue(rip)),
		either(fnum("fd.port", Port, clsNet, "client or server port", lport), numValue(lport), numValue(rport)),
		either(fip("fd.net", Net, clsNet, "client or server IP network", lip), ipValue(lip), ipValue(rip)),
		filterOnly(fip("fd.cnet", Net, clsNet, "client IP network", lip)),
		filterOnly(fip("fd.snet", Net, clsNet, "server IP network", rip)),
		filterOnly(fip("fd.lnet", Net, clsNet, "local IP network", lip)),
		filterOnly(fip("fd.rnet", Net, clsNet, "remote IP network", rip)),
		fstr("fd.l4proto", clsNet, "tcp, udp, raw, unknown", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if sockOf(ev) == nil {
				return "", false
			}
			switch {
			case ev.Connect.Proto == event.ProtoTCP:
				return "tcp", true
			case ev.Connect.Proto == event.ProtoUDP:
				return "udp", true
			case ev.Connect.Family == event.AFUnix:
				return "unknown", true
			case ev.Connect.SockType == 1:
				return "tcp", true
			case ev.Connect.SockType == 2:
				return "udp", true
			case ev.Connect.SockType == 3:
				return "raw", true
			}
			return "unknown", true
		}),
		fstr("fd.sockfamily", clsNet, "ip or unix", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if sockOf(ev) == nil {
				return "", false
			}
			switch ev.Connect.Family {
			case event.AFInet, event.AFInet6:
				return "ip", true
			case event.AFUnix:
				return "unix", true
			}
			return "", false
		}),
		fbool("fd.connected", clsNet, "socket connected (connect succeeded)", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			return ev.Res >= 0, ev.Type.Class() == event.ClassConnect
		}),
		fbool("fd.name_changed", clsNet, "the event changed the fd name (connect)", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			return ev.Type.Class() == event.ClassConnect, ev.Type.Class() == event.ClassConnect || ev.Type.Class() == event.ClassOpen
		}),
		fbool("fd.is_server", clsNet, "process is the server end", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			return false, ev.Type.Class() == event.ClassConnect
		}),
		fnum("fd.ino", Int, clsOpen, "inode of the file", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			return int64(ev.Open.Ino), ev.Type.Class() == event.ClassOpen && ev.Res >= 0
		}),
		fnum("fd.dev", Int, clsOpen, "device of the file", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			return int64(ev.Open.Dev), ev.Type.Class() == event.ClassOpen && ev.Res >= 0
		}),
		fsPath("fs.path.name", "path of a file system call (unlink, mkdir, chmod, umount2, ...), absolute", func(s *event.Sys) string { return s.Path }, true),
		fsPath("fs.path.nameraw", "path of a file system call as passed", func(s *event.Sys) string { return s.RawPath }, true),
		fsPath("fs.path.source", "source of rename/link/symlink (the symlink target as stored), or the mount source", (*event.Sys).Source, false),
		fsPath("fs.path.sourceraw", "source as passed", func(s *event.Sys) string { return s.RawPath }, false),
		fsPath("fs.path.target", "target of rename/link/symlink (the new name), or the mount point, absolute", func(s *event.Sys) string { return s.Path2 }, false),
		fsPath("fs.path.targetraw", "target as passed", func(s *event.Sys) string { return s.RawPath2 }, false),
		missing("fd.cip.name", String, "client domain name"),
		missing("fd.sip.name", String, "server domain name"),
		missing("fd.lip.name", String, "local domain name"),
		missing("fd.rip.name", String, "remote domain name"),
		missing("fd.is_upper_layer", Bool, "file on an overlayfs upper layer"),
		missing("fd.is_lower_layer", Bool, "file on an overlayfs lower layer"),
		withArg(missing("fd.types", String, "fd types in use"), ArgIndex, false, false),

		// container.* / k8s.*
		fstr("container.id", clsAll, "short container id, \"host\" outside containers", cid),
		fstr("container.full_id", clsAll, "full container id", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if ev.Container != nil {
				return ev.Container.FullID, ev.Container.FullID != ""
			}
			if ev.Proc.ContainerID != "" && hasProc(ev) {
				return ev.Proc.ContainerID, true
			}
			return event.HostID, true
		}),
		fstr("container.name", clsAll, "container name, \"host\" outside containers", func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if ev.Container != nil {
				return ev.Container.Name, ev.Container.Name != ""
			}
			if ev.Proc.ContainerID != "" && hasProc(ev) {
				return "", false
			}
			return event.HostID, true
		}),
		fstr("container.image", clsAll, "image reference", ctStr(func(ct *event.Container) string { return ct.Image })),
		fstr("container.image.repository", clsAll, "image repository", ctStr(func(ct *event.Container) string { return ct.ImageRepository })),
		fstr("container.image.tag", clsAll, "image tag", ctStr(func(ct *event.Container) string { return ct.ImageTag })),
		fstr("container.image.digest", clsAll, "image digest", ctStr(func(ct *event.Container) string { return ct.ImageDigest })),
		fstr("container.type", clsAll, "runtime type", ctStr(func(ct *event.Container) string { return ct.Type })),
		fstr("container.user", clsAll, "user of the container's process", ctStr(func(ct *event.Container) string { return ct.User })),
		fbool("container.privileged", clsAll, "privileged container", func(_ *Ctx, ev *event.Event, _ *Arg) (bool, bool) {
			if ev.Container == nil {
				return false, false
			}
			return ev.Container.Privileged, true
		}),
		fnum("container.start_ts", Int, clsAll, "container start, ns since the epoch", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			if ev.Container == nil || ev.Container.StartTS == 0 {
				return 0, false
			}
			return ev.Container.StartTS, true
		}),
		fnum("container.duration", Int, clsAll, "ns since the container started", func(_ *Ctx, ev *event.Event, _ *Arg) (int64, bool) {
			if ev.Container == nil || ev.Container.StartTS == 0 {
				return 0, false
			}
			return ev.Timestamp - ev.Container.StartTS, true
		}),
		fstr("container.mounts", clsAll, "space-separated source:dest:mode:rw:propagation", func(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if ev.Container == nil {
				return "", false
			}
			start := c.begin()
			for i := range ev.Container.Mounts {
				if i > 0 {
					c.buf = append(c.buf, ' ')
				}
				c.buf = appendMount(c.buf, &ev.Container.Mounts[i])
			}
			return c.end(start), true
		}),
		mountField("container.mount", "one mount by index or source glob", func(c *Ctx, m *event.Mount) string {
			start := c.begin()
			c.buf = appendMount(c.buf, m)
			return c.end(start)
		}),
		mountField("container.mount.source", "mount source by index or source glob", func(_ *Ctx, m *event.Mount) string { return m.Source }),
		mountField("container.mount.dest", "mount destination by index or source glob", func(_ *Ctx, m *event.Mount) string { return m.Dest }),
		mountField("container.mount.mode", "mount options by index or source glob", func(_ *Ctx, m *event.Mount) string { return m.Mode }),
		mountField("container.mount.rdwr", "mount rw flag by index or source glob", func(_ *Ctx, m *event.Mount) string { return strconv.FormatBool(m.RW) }),
		mountField("container.mount.propagation", "mount propagation by index or source glob", func(_ *Ctx, m *event.Mount) string { return m.Propagation }),
		labelField("container.label", "container label by key", func(ct *event.Container) map[string]string { return ct.Labels }),
		fstr("container.labels", clsAll, "comma-separated key:value labels", func(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if ev.Container == nil {
				return "", false
			}
			start := c.begin()
			c.buf = appendLabels(c.buf, ev.Container.Labels)
			return c.end(start), true
		}),
		{Name: "container.capabilities", Type: List, Classes: clsAll,
			Desc:      "effective capabilities of the container as CAP_* names (Tripline extension)",
			Normalize: normalizeCap,
			Extract: func(_ *Ctx, ev *event.Event, _ *Arg) (Value, bool) {
				if ev.Container == nil {
					return Value{}, false
				}
				return Value{List: ev.Container.Capabilities}, true
			}},
		missing("container.image.id", String, "image id"),
		missing("container.ip", String, "container IP"),
		missing("container.host_pid", Bool, "host pid namespace"),
		missing("container.host_network", Bool, "host network namespace"),
		missing("container.host_ipc", Bool, "host ipc namespace"),
		missing("container.healthcheck", String, "deprecated"),
		missing("proc.is_container_healthcheck", Bool, "deprecated"),
		fstr("k8s.pod.name", clsAll, "pod name", ctStr(func(ct *event.Container) string { return ct.PodName })),
		fstr("k8s.ns.name", clsAll, "pod namespace", ctStr(func(ct *event.Container) string { return ct.PodNamespace })),
		fstr("k8s.pod.uid", clsAll, "pod uid", ctStr(func(ct *event.Container) string { return ct.PodUID })),
		fstr("k8s.pod.id", clsAll, "pod uid (legacy name)", ctStr(func(ct *event.Container) string { return ct.PodUID })),
		labelField("k8s.pod.label", "pod label by key", func(ct *event.Container) map[string]string { return ct.PodLabels }),
		fstr("k8s.pod.labels", clsAll, "comma-separated key:value pod labels", func(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
			if ev.Container == nil || ev.Container.PodName == "" {
				return "", false
			}
			start := c.begin()
			c.buf = appendLabels(c.buf, ev.Container.PodLabels)
			return c.end(start), true
		}),
		missing("k8s.pod.sandbox_id", String, "pod sandbox id"),
		missing("k8s.pod.ip", String, "pod IP"),
		missing("k8s.ns.id", String, "deprecated"),
		missing("k8s.rc.name", String, "deprecated"),
		missing("k8s.svc.name", String, "deprecated"),
		missing("k8s.rs.name", String, "deprecated"),
		missing("k8s.deployment.name", String, "deprecated"),
	}
	return append(fs, envFields()...)
}

// fsPath builds the fs.path.* fields: single-path calls have a name, two-path
// calls (rename, link, symlink, mount) a source and a target.
func fsPath(name, desc string, get func(s *event.Sys) string, single bool) *Field {
	return fstr(name, []event.Class{event.ClassFile, event.ClassMount}, desc, func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
		if c := ev.Type.Class(); c != event.ClassFile && c != event.ClassMount {
			return "", false
		}
		name, pair := event.PathArgs(ev.Type)
		if single && !name || !single && !pair {
			return "", false
		}
		v := get(&ev.Sys)
		return v, v != ""
	})
}

// stdField reads the process table's view of fd 0, 1 or 2 (event.Event.Std).
func stdField(name string, fd int, desc string, isName bool) *Field {
	return fstr(name, clsProc, desc, func(_ *Ctx, ev *event.Event, _ *Arg) (string, bool) {
		s := ev.Std[fd]
		if s.Type == "" || !hasProc(ev) {
			return "", false
		}
		if isName {
			return s.Name, true
		}
		return s.Type, true
	})
}

func filterOnly(f *Field) *Field {
	f.FilterOnly = true
	return f
}

func timeField(name, desc, layout string) *Field {
	f := fstr(name, clsAll, desc, func(c *Ctx, ev *event.Event, _ *Arg) (string, bool) {
		start := c.begin()
		c.buf = ev.Time().UTC().AppendFormat(c.buf, layout)
		return c.end(start), true
	})
	f.TimeJSON = true
	return f
}

func normalizeCap(s string) string {
	u := strings.ToUpper(strings.TrimSpace(s))
	if !strings.HasPrefix(u, "CAP_") {
		u = "CAP_" + u
	}
	return u
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
