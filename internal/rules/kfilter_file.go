package rules

import (
	"maps"
	"math/bits"
	"slices"
	"strconv"
	"strings"

	"github.com/tripline/tripline/internal/event"
)

// FileFilter is the kernel filter of one file-change type (unlink,
// rename, link, symlink, mkdir, chmod and their *at forms): an event passes
// when it passes one of Terms. PassAll (with the Reason) disables it.
type FileFilter struct {
	Type    event.Type
	PassAll bool
	Reason  string
	Terms   []FileTerm
}

// FileTerm is a necessary condition of one rule on one file-change type,
// of one of three kinds. With Container, the event passes when its process
// is not in the host's mount namespace. With Flags (not 0), it passes when
// its argument register FlagReg has one of those bits (a flags parameter,
// like chmod's mode, whose text a rule looks for a name in). Otherwise it
// passes when the file name of its first path as passed (the text after
// the last '/') is in Names[0], or that of its second path is in Names[1]
// (a nil list is not looked at), or when a looked-at path's file name is
// empty, "." or "..": the path userspace resolves from those ends in
// another name.
type FileTerm struct {
	Rule      string
	Container bool
	FlagReg   uint8
	Flags     uint64
	Names     [2][]string
}

// fileSlot returns which path of type t (0: the first, 1: the second)
// evt.arg.name renders, and false when it renders no path.
func fileSlot(t event.Type, name string) (int, bool) {
	a, _ := event.LookupSysArg(t, name)
	switch a.Kind {
	case event.ArgPath, event.ArgRaw:
		return 0, true
	case event.ArgPath2:
		return 1, true
	}
	return 0, false
}

// plainName tells whether s can be a path's last component that resolving
// leaves as it is: not empty, ".", ".." or longer than the kernel compares.
func plainName(s string) bool {
	return s != "" && s != "." && s != ".." && len(s) <= KernelNameMax
}

// fileNames is a disjunction: the file name of the first path is in [0]
// or that of the second in [1] (a nil set: that path is not constrained
// by this alternative).
type fileNames [2]map[string]bool

func (n *fileNames) size() int { return len(n[0]) + len(n[1]) }

// flagBits is a necessary condition on a flags parameter: register reg
// has one of the bits of mask.
type flagBits struct {
	reg  uint8
	mask uint64
}

// fileFacts is a necessary condition on a file-change type: both of its
// parts hold.
type fileFacts struct {
	never bool
	names *fileNames // nil: any names
	flags *flagBits  // nil: any flags
}

func andFile(a, b fileFacts) fileFacts {
	if a.never || b.never {
		return fileFacts{never: true}
	}
	out := a
	// Either part of each is necessary: keep the narrower.
	if a.names == nil || (b.names != nil && b.names.size() < a.names.size()) {
		out.names = b.names
	}
	if a.flags == nil || (b.flags != nil && bits.OnesCount64(b.flags.mask) < bits.OnesCount64(a.flags.mask)) {
		out.flags = b.flags
	}
	return out
}

func orFile(a, b fileFacts) fileFacts {
	switch {
	case a.never:
		return b
	case b.never:
		return a
	}
	var out fileFacts
	if a.names != nil && b.names != nil {
		var n fileNames
		for s := range n {
			if a.names[s] == nil && b.names[s] == nil {
				continue
			}
			n[s] = map[string]bool{}
			maps.Copy(n[s], a.names[s])
			maps.Copy(n[s], b.names[s])
		}
		out.names = &n
	}
	if a.flags != nil && b.flags != nil && a.flags.reg == b.flags.reg {
		out.flags = &flagBits{reg: a.flags.reg, mask: a.flags.mask | b.flags.mask}
	}
	return out
}

// fileFactsOf summarizes the resolved condition n on file-change type t.
func fileFactsOf(n node, t event.Type) fileFacts {
	return fold(n, andFile, orFile, func(c *checkNode) fileFacts { return fileCheck(c, t) }, fileFacts{never: true})
}

// fileCheck summarizes one positive check on file-change type t: the type
// itself; the file name of a path through basename(evt.arg.X) = or in,
// evt.arg.X = or in (a path's name is the value's), or evt.arg.X endswith
// a text with a '/' (the name is what follows it); the bits of a flags
// parameter through evt.arg.X contains a text of its names.
func fileCheck(c *checkNode, t event.Type) fileFacts {
	if c.rhs != nil || c.lhs.hasArg || len(c.vals) == 0 {
		return fileFacts{}
	}
	op := c.op
	if op == "==" {
		op = "="
	}
	if c.lhs.xform == "" && c.lhs.field == "evt.type" {
		return fileFacts{never: typeRuledOut(c, op, t)}
	}
	vs := vals(c)
	field := c.lhs
	base := false
	if field.xform == "basename" && field.inner != nil && field.inner.xform == "" && !field.inner.hasArg {
		field, base = field.inner, true
	}
	if field.xform != "" || !strings.HasPrefix(field.field, "evt.arg.") {
		return fileFacts{}
	}
	arg := strings.TrimPrefix(field.field, "evt.arg.")
	if op == "contains" && !base && len(vs) == 1 && !c.list {
		return flagFacts(t, arg, vs[0])
	}
	slot, ok := fileSlot(t, arg)
	if !ok {
		return fileFacts{}
	}
	var names []string
	switch {
	case op == "=" || op == "in":
		for _, v := range vs {
			if !base {
				v = baseName(v)
			}
			names = append(names, v)
		}
	case op == "endswith" && !base && len(vs) == 1:
		i := strings.LastIndexByte(vs[0], '/')
		if i < 0 {
			return fileFacts{}
		}
		names = append(names, vs[0][i+1:])
	default:
		return fileFacts{}
	}
	var fn fileNames
	fn[slot] = map[string]bool{}
	for _, v := range names {
		switch {
		case len(v) > KernelNameMax:
			return fileFacts{} // the kernel does not compare longer names
		case plainName(v) && !strings.ContainsRune(v, '/'):
			fn[slot][v] = true
		}
		// else: no plain name equals it; the kernel passes the others.
	}
	return fileFacts{names: &fn}
}

// flagFacts summarizes evt.arg.name contains text on type t.
func flagFacts(t event.Type, name, text string) fileFacts {
	a, _ := event.LookupSysArg(t, name)
	mask, ok := a.FlagsContaining(text) // not ok unless a flags parameter
	switch {
	case !ok:
		return fileFacts{}
	case mask == 0:
		return fileFacts{never: true} // no rendering contains it
	}
	return fileFacts{flags: &flagBits{reg: a.Reg, mask: mask}}
}

// fileFilters derives the filters of the file-change types of the rules,
// except those the host drop already covers.
func (rs *Ruleset) fileFilters(host []event.Type) []FileFilter {
	var out []FileFilter
	for _, t := range rs.types {
		if t.Class() != event.ClassFile || slices.Contains(host, t) {
			continue
		}
		ff := FileFilter{Type: t}
		keys, flagReg := 0, -1 // the kernel tests one flags register per type
		for _, r := range rs.byType[t] {
			f := fileFactsOf(r.cond, t)
			if f.never {
				continue
			}
			tm := FileTerm{Rule: r.Name}
			switch {
			case f.flags != nil: // a register: no path to read
				if flagReg >= 0 && int(f.flags.reg) != flagReg {
					ff.PassAll, ff.Reason = true, "its rules test the flags of two parameters"
				}
				flagReg = int(f.flags.reg)
				tm.FlagReg, tm.Flags = f.flags.reg, f.flags.mask
			case f.names == nil:
				if !sockFactsOf(r.cond, t, false).ctr {
					ff.PassAll, ff.Reason = true, "rule "+strconv.Quote(r.Name)+" has no file name or flags condition the kernel can test"
				}
				tm.Container = true
			default:
				for s, m := range f.names {
					if m != nil {
						tm.Names[s] = sortedKeys(m)
						if tm.Names[s] == nil {
							tm.Names[s] = []string{}
						}
						keys += len(m)
					}
				}
			}
			if ff.PassAll {
				break
			}
			ff.Terms = append(ff.Terms, tm)
		}
		if !ff.PassAll && keys > kernelMaxKeys {
			ff.PassAll, ff.Reason = true, "too many file names for the kernel map"
		}
		if ff.PassAll {
			ff.Terms = nil
		}
		out = append(out, ff)
	}
	return out
}

// pass is the file filter's decision, as the kernel takes it: from the
// paths as passed (ev.Sys.RawPath, RawPath2).
func (ff *FileFilter) pass(ev *event.Event, hostMnt bool) bool {
	if ff.PassAll {
		return true
	}
	raws := [2]string{ev.Sys.RawPath, ev.Sys.RawPath2}
	for i := range ff.Terms {
		tm := &ff.Terms[i]
		if tm.Container {
			if !hostMnt {
				return true
			}
			continue
		}
		if tm.Flags != 0 {
			if ev.Sys.Args[tm.FlagReg%6]&tm.Flags != 0 {
				return true
			}
			continue
		}
		for s, names := range tm.Names {
			if names == nil {
				continue
			}
			if n := baseName(raws[s]); !plainName(n) || slices.Contains(names, n) {
				return true
			}
		}
	}
	return false
}
