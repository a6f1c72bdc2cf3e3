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
func (e *Event) CopyTo(dst *Event) { e.copyWith(dst, heap{}) }

// Clone returns a copy of p that owns its strings.
func (p Process) Clone() Process {
	p.copyStrings(heap{})
	return p
}

// copier copies strings somewhere the producer does not reuse: the heap
// (Clone, CopyTo) or an Arena (CopyInto). The one list of an event's
// strings is copyWith's.
type copier interface {
	str(string) string
	strs([]string) []string
}

type heap struct{}

func (heap) str(s string) string      { return strings.Clone(s) }
func (heap) strs(l []string) []string { return CloneStrings(l) }

func (e *Event) copyWith(dst *Event, c copier) {
	*dst = *e
	dst.Proc.copyStrings(c)
	dst.SetLineage(e.Lineage)
	dst.Open.Path, dst.Open.RawPath = c.str(e.Open.Path), c.str(e.Open.RawPath)
	dst.Connect.UnixPath = c.str(e.Connect.UnixPath)
	s := &dst.Sys
	s.Path, s.RawPath = c.str(s.Path), c.str(s.RawPath)
	s.Path2, s.RawPath2 = c.str(s.Path2), c.str(s.RawPath2)
	s.Aux, s.FDPath = c.str(s.Aux), c.str(s.FDPath)
	// Std names belong to the process table, which never changes them.
}

func (p *Process) copyStrings(c copier) {
	p.Comm, p.ExePath, p.Cwd = c.str(p.Comm), c.str(p.ExePath), c.str(p.Cwd)
	p.CgroupPath, p.ContainerID = c.str(p.CgroupPath), c.str(p.ContainerID)
	p.Argv, p.Env = c.strs(p.Argv), c.strs(p.Env)
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
func (e *Event) CopyInto(dst *Event, a *Arena) { e.copyWith(dst, a) }
