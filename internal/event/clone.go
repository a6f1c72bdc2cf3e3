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
