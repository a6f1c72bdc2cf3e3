package proc

import (
	"strings"

	"github.com/tripline/tripline/internal/event"
)

// The fd table keeps, per process, what its fds 0-2 refer to: enough to
// tell a shell whose stdin or stdout is a network socket (Falco's
// proc.stdin.type, "Redirect STDOUT/STDIN to Network Connection"). The fd
// of every other event is resolved by the kernel in the event itself, so
// only these three are remembered: bounded per process by construction and
// in total by Config.MaxEntries. Best effort: close(2) is not captured, so
// a closed std fd keeps its last known value until something else takes
// its number (an open, a socket, a dup); exec drops the ones set with a
// close-on-exec flag; fork copies them; processes seeded from /proc start
// unknown.

// Flags that make an fd close on exec.
const (
	oCloexec      = 0o2000000 // O_CLOEXEC, also SOCK_CLOEXEC and dup3's flag
	fDupfdCloexec = 1030
	oDirectory    = 0o200000
)

// trackStd updates e's std fds from ev. It allocates only when an event
// gives one of fds 0-2 a new name, which is rare.
func trackStd(e *entry, ev *event.Event) {
	fd, cloexec := int64(-1), false
	var ref event.StdFD
	switch ev.Type.Class() {
	case event.ClassExec:
		if !ev.Failed() && e.cloexec != 0 {
			for i := range e.std {
				if e.cloexec&(1<<i) != 0 {
					e.std[i] = event.StdFD{}
				}
			}
			e.cloexec = 0
		}
		return
	case event.ClassOpen:
		if ev.Res < 0 || ev.Res > 2 {
			return
		}
		fd, cloexec = ev.Res, ev.Open.Flags&oCloexec != 0
		ref.Type = "file"
		if ev.Open.Flags&oDirectory != 0 {
			ref.Type = "directory"
		}
		ref.Name = keep(e.std[ev.Res].Name, ev.Open.Path)
	case event.ClassConnect:
		const einprogress = -115
		if fd = int64(ev.Connect.FD); fd < 0 || fd > 2 || (ev.Res != 0 && ev.Res != einprogress) {
			return
		}
		ref = sockRef(&ev.Connect, e.std[fd].Name)
		cloexec = e.cloexec&(1<<fd) != 0 // unchanged
	default:
		s := &ev.Sys
		if s.FDKind == event.FDNone || ev.Res < 0 || s.FD < 0 || s.FD > 2 {
			return
		}
		fd = int64(s.FD)
		switch ev.Type {
		case event.TypeDup3:
			cloexec = s.Args[2]&oCloexec != 0
		case event.TypeFcntl:
			cloexec = s.Args[1] == fDupfdCloexec
		case event.TypeSocket:
			cloexec = s.Args[1]&oCloexec != 0
		case event.TypeAccept4:
			cloexec = s.Args[3]&oCloexec != 0
		case event.TypeDup, event.TypeDup2, event.TypeAccept:
		default: // bind, listen, sends: the fd stays what it was
			cloexec = e.cloexec&(1<<fd) != 0
		}
		if s.FDKind == event.FDFile {
			ref = event.StdFD{Type: "file", Name: keep(e.std[fd].Name, s.FDPath)}
		} else {
			ref = sockRef(&ev.Connect, e.std[fd].Name)
		}
	}
	e.std[fd] = ref
	if cloexec {
		e.cloexec |= 1 << fd
	} else {
		e.cloexec &^= 1 << fd
	}
}

// keep returns old when it equals s, else a copy of s (event strings are
// borrowed).
func keep(old, s string) string {
	if old == s {
		return old
	}
	return strings.Clone(s)
}

// sockRef describes a socket as fd.type and fd.name (old: the fd's name
// so far, reused when unchanged).
func sockRef(c *event.Connect, old string) event.StdFD {
	switch c.Family {
	case event.AFInet, event.AFInet6:
		r := event.StdFD{Type: "ipv4"}
		if c.Family == event.AFInet6 {
			r.Type = "ipv6"
		}
		var buf [128]byte
		if nb := event.AppendSockName(buf[:0], c); old == string(nb) { // no allocation
			r.Name = old
		} else {
			r.Name = string(nb)
		}
		return r
	case event.AFUnix:
		return event.StdFD{Type: "unix", Name: keep(old, c.UnixPath)}
	}
	return event.StdFD{Type: "socket"}
}
