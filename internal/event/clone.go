package event

import "strings"

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
	if p.Argv != nil {
		argv := make([]string, len(p.Argv))
		for i, a := range p.Argv {
			argv[i] = strings.Clone(a)
		}
		p.Argv = argv
	}
	return p
}
