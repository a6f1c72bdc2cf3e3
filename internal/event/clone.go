package event

import (
	"strings"
	"unsafe"
)

// Clone returns a deep copy of e that owns all its strings and slices, safe
// to keep after the producer reuses its buffers. Lineage and Container point
// to immutable snapshots and are shared.
func (e *Event) Clone() *Event {
	c := new(Event)
	e.CopyTo(c)
	return c
}

// CopyTo deep-copies e into dst (see Clone).
func (e *Event) CopyTo(dst *Event) {
	*dst = *e
	dst.Proc = e.Proc.Clone()
	dst.SetLineage(e.Lineage)
	dst.Open.Path = strings.Clone(e.Open.Path)
	dst.Open.RawPath = strings.Clone(e.Open.RawPath)
	dst.Connect.UnixPath = strings.Clone(e.Connect.UnixPath)
	s := &dst.Sys
	s.Path, s.RawPath = strings.Clone(s.Path), strings.Clone(s.RawPath)
	s.Path2, s.RawPath2 = strings.Clone(s.Path2), strings.Clone(s.RawPath2)
	s.Aux, s.FDPath = strings.Clone(s.Aux), strings.Clone(s.FDPath)
	// Std names belong to the process table, which never changes them.
}

// Clone returns a copy of p that owns its strings.
func (p Process) Clone() Process {
	p.Comm = strings.Clone(p.Comm)
	p.ExePath = strings.Clone(p.ExePath)
	p.Cwd = strings.Clone(p.Cwd)
	p.CgroupPath = strings.Clone(p.CgroupPath)
	p.ContainerID = strings.Clone(p.ContainerID)
	p.Argv = CloneStrings(p.Argv)
	p.Env = CloneStrings(p.Env)
	return p
}

// CloneStrings returns a copy of l that owns its strings (nil stays nil),
// all in one backing array: two allocations however long l is.
func CloneStrings(l []string) []string {
	if l == nil {
		return nil
	}
	n := 0
	for _, a := range l {
		n += len(a)
	}
	buf := make([]byte, 0, n)
	for _, a := range l {
		buf = append(buf, a...)
	}
	all := unsafe.String(unsafe.SliceData(buf), n)
	out := make([]string, len(l))
	for i, a := range l {
		out[i], all = all[:len(a)], all[len(a):]
	}
	return out
}

// Arena holds the strings of events copied with CopyInto, so a producer that
// reuses its buffers can hand events to another goroutine without
// allocating per event: Reset makes the memory reusable once every event
// copied into the arena is done with. The zero value is ready.
type Arena struct {
	b []byte
	s []string
}

// arenaKeep bounds the memory an arena keeps across Reset: an exec storm
// (argv and environment of kilobytes each) must not pin it forever.
const arenaKeep = 1 << 20

// Reset forgets the copied strings; events copied before must no longer be
// read.
func (a *Arena) Reset() {
	if cap(a.b) > arenaKeep {
		a.b = nil
	}
	if cap(a.s) > arenaKeep/16 {
		a.s = nil
	}
	a.b, a.s = a.b[:0], a.s[:0]
}

// str copies s into the arena. When the buffer is full a bigger one takes
// over; strings already copied keep the old one alive, so they stay valid.
func (a *Arena) str(s string) string {
	if s == "" {
		return ""
	}
	if len(a.b)+len(s) > cap(a.b) {
		a.b = make([]byte, 0, max(2*cap(a.b), len(s), 4096))
	}
	n := len(a.b)
	a.b = append(a.b, s...)
	return unsafe.String(&a.b[n], len(s))
}

func (a *Arena) strs(l []string) []string {
	if l == nil {
		return nil
	}
	if len(a.s)+len(l) > cap(a.s) {
		a.s = make([]string, 0, max(2*cap(a.s), len(l), 256))
	}
	n := len(a.s)
	for _, x := range l {
		a.s = append(a.s, a.str(x))
	}
	return a.s[n:len(a.s):len(a.s)]
}

// CopyInto deep-copies e into dst like CopyTo, its strings and slices into
// a instead of new allocations: dst is valid until a.Reset.
func (e *Event) CopyInto(dst *Event, a *Arena) {
	*dst = *e
	dst.SetLineage(e.Lineage)
	p := &dst.Proc
	p.Comm, p.ExePath, p.Cwd = a.str(p.Comm), a.str(p.ExePath), a.str(p.Cwd)
	p.CgroupPath, p.ContainerID = a.str(p.CgroupPath), a.str(p.ContainerID)
	p.Argv, p.Env = a.strs(p.Argv), a.strs(p.Env)
	dst.Open.Path, dst.Open.RawPath = a.str(e.Open.Path), a.str(e.Open.RawPath)
	dst.Connect.UnixPath = a.str(e.Connect.UnixPath)
	s := &dst.Sys
	s.Path, s.RawPath = a.str(s.Path), a.str(s.RawPath)
	s.Path2, s.RawPath2 = a.str(s.Path2), a.str(s.RawPath2)
	s.Aux, s.FDPath = a.str(s.Aux), a.str(s.FDPath)
	// Std names belong to the process table, which never changes them.
}
