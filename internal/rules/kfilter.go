package rules

import (
	"maps"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/tripline/tripline/internal/event"
)

// Access is what an open must be for to match a term (a bit set).
type Access uint8

// Access bits: evt.is_open_read = true needs AccessRead, evt.is_open_write
// = true needs AccessWrite.
const (
	AccessRead Access = 1 << iota
	AccessWrite
)

// Result says whether a term needs the syscall to succeed or fail.
type Result uint8

// Results.
const (
	ResultAny Result = iota
	ResultSuccess
	ResultFailure
)

func (r Result) String() string {
	switch r {
	case ResultSuccess:
		return "success"
	case ResultFailure:
		return "failure"
	}
	return "any"
}

// Bounds of what is pushed into the kernel. A longer prefix is cut (a
// shorter prefix matches more, so the filter stays sound); a longer file
// name makes its term match any path.
const (
	KernelPrefixMax = 128
	KernelNameMax   = 63
	KernelScanMax   = 256 // contains is tested on paths up to this length
	kernelMaxKeys   = 4096
)

// OpenTerm is a necessary condition of one rule on one open type: an open
// the rule matches passes Access and Result; when it failed, its errno is
// one of Errnos (when there are some); when it succeeded, it has a path
// (fd.name) starting with one of Prefixes, containing one of Contains
// (each begins with '/', so it starts at a path component) or a file name
// (fd.filename) in Names, unless AnyPath.
type OpenTerm struct {
	Rule     string
	Access   Access
	Result   Result
	Errnos   []int // sorted; only with ResultFailure
	AnyPath  bool
	Prefixes []string
	Contains []string
	Names    []string
}

// TypeFilter is the kernel filter of one event type: an event passes when
// it passes one of Terms. PassAll (with the Reason) disables it.
type TypeFilter struct {
	Type    event.Type
	PassAll bool
	Reason  string
	Terms   []OpenTerm
}

// KernelFilter is what the loaded rules let the kernel drop: per event
// type, a disjunction over the rules evaluated on it of conditions that
// every event the rule matches satisfies. It is a sound over-approximation:
// an event it drops matches no enabled rule. Types (the open family) and
// Sock (connect) without an entry pass unfiltered, except that the events
// of the Host types are dropped for processes in the host's mount
// namespace.
type KernelFilter struct {
	Types []TypeFilter
	Sock  []SockFilter
	// Files are the file-change types (unlink, rename, ...) filtered on
	// the file names of their paths.
	Files []FileFilter
	Host  HostDrop
	// FailDrop are the types, other than the opens and connect (filtered
	// above), whose failed syscalls no rule can match: the rules of
	// exec, for instance, test spawned_process (evt.rawres >= 0). A
	// failed syscall changes no process or file descriptor, so nothing
	// else needs it.
	FailDrop []event.Type
}

// Filtered lists the types that have a filter of their own (opens,
// connect, file changes): on, those it filters; off, those a rule makes
// it pass whole.
func (k *KernelFilter) Filtered() (on, off []event.Type) {
	add := func(t event.Type, passAll bool) {
		if passAll {
			off = append(off, t)
		} else {
			on = append(on, t)
		}
	}
	for _, f := range k.Types {
		add(f.Type, f.PassAll)
	}
	for _, f := range k.Sock {
		add(f.Type, f.PassAll)
	}
	for _, f := range k.Files {
		add(f.Type, f.PassAll)
	}
	return on, off
}

// For returns the filter of type t (nil when t is not filtered).
func (k *KernelFilter) For(t event.Type) *TypeFilter {
	for i := range k.Types {
		if k.Types[i].Type == t {
			return &k.Types[i]
		}
	}
	return nil
}

// KernelFilter derives the kernel filter of the enabled rules. Only
// positive checks at the top of a condition (through 'and', and 'or' of
// summarizable operands) are used: negated checks are not necessary
// conditions, and anything the kernel cannot test relaxes to "any".
func (rs *Ruleset) KernelFilter() *KernelFilter {
	kf := &KernelFilter{}
	std := usesStdFDs(rs)
	for _, t := range rs.types {
		if t.Class() != event.ClassOpen {
			continue
		}
		tf := TypeFilter{Type: t}
		if std {
			// An open that returns fd 0, 1 or 2 changes what those fields
			// read, whatever its path.
			tf.PassAll, tf.Reason = true, "a rule reads proc.stdin/stdout/stderr, which an open onto fd 0-2 can change"
			kf.Types = append(kf.Types, tf)
			continue
		}
		keys := 0
		for _, r := range rs.byType[t] {
			f := openFacts(r.cond, t)
			if f.never {
				continue
			}
			term := OpenTerm{Rule: r.Name, Access: f.access, Result: f.result}
			if f.result == ResultFailure && f.errs != nil {
				term.Errnos = slices.Sorted(maps.Keys(f.errs))
			}
			if f.paths == nil {
				term.AnyPath = true
			} else {
				term.Prefixes, term.Contains, term.Names = f.paths.sorted()
			}
			keys += len(term.Prefixes) + len(term.Contains) + len(term.Names)
			if term.AnyPath && term.Access == 0 && term.Result == ResultAny {
				tf.PassAll, tf.Reason = true, "rule "+strconv.Quote(r.Name)+" has no path, access or result condition the kernel can test"
			}
			tf.Terms = append(tf.Terms, term)
		}
		if !tf.PassAll && keys > kernelMaxKeys {
			tf.PassAll, tf.Reason = true, "too many paths and names for the kernel maps"
		}
		if tf.PassAll {
			tf.Terms = nil
		}
		kf.Types = append(kf.Types, tf)
	}
	if len(rs.byType[event.TypeConnect]) > 0 {
		kf.Sock = append(kf.Sock, rs.sockFilter(event.TypeConnect, std))
	}
	kf.Host = rs.hostDrop(std)
	kf.Files = rs.fileFilters(kf.Host.Types)
	kf.FailDrop = rs.failDrop()
	return kf
}

// failDrop returns the rule types whose failures no rule can match.
func (rs *Ruleset) failDrop() []event.Type {
	var out []event.Type
	for _, t := range rs.types {
		switch t.Class() {
		case event.ClassOpen, event.ClassConnect, event.ClassFork, event.ClassExit, event.ClassContainer:
			continue
		}
		fail := false
		for _, r := range rs.byType[t] {
			if f := openFacts(r.cond, t); !f.never && f.result != ResultSuccess {
				fail = true
				break
			}
		}
		if !fail {
			out = append(out, t)
		}
	}
	return out
}

// facts is a necessary condition of a (sub)condition on one event type.
type facts struct {
	never  bool         // cannot match this type
	access Access       // required access bits
	result Result       // required result
	errs   map[int]bool // with ResultFailure: the errnos it fails with (nil: any)
	paths  *pathSet     // nil: any path
}

// pathSet is a disjunction of path facts on a successful open.
type pathSet struct {
	prefixes map[string]bool
	contains map[string]bool
	names    map[string]bool
}

// size ranks path sets for 'and': a contains test costs the kernel a scan.
func (p *pathSet) size() int { return len(p.prefixes) + 8*len(p.contains) + len(p.names) }

func sortedKeys(m map[string]bool) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func (p *pathSet) sorted() (prefixes, contains, names []string) {
	return sortedKeys(p.prefixes), sortedKeys(p.contains), sortedKeys(p.names)
}

func unionPaths(a, b *pathSet) *pathSet {
	out := &pathSet{prefixes: map[string]bool{}, contains: map[string]bool{}, names: map[string]bool{}}
	for _, s := range []*pathSet{a, b} {
		for k := range s.prefixes {
			out.prefixes[k] = true
		}
		for k := range s.contains {
			out.contains[k] = true
		}
		for k := range s.names {
			out.names[k] = true
		}
	}
	return out
}

func andFacts(a, b facts) facts {
	if a.never || b.never {
		return facts{never: true}
	}
	out := facts{access: a.access | b.access, result: a.result}
	switch {
	case b.result == ResultAny:
	case a.result == ResultAny:
		out.result = b.result
	case a.result != b.result:
		return facts{never: true}
	}
	switch {
	case a.errs == nil:
		out.errs = b.errs
	case b.errs == nil:
		out.errs = a.errs
	default:
		out.errs = maps.Clone(a.errs)
		maps.DeleteFunc(out.errs, func(e int, _ bool) bool { return !b.errs[e] })
		if len(out.errs) == 0 {
			return facts{never: true} // fails with none of the errnos of both
		}
	}
	switch {
	case a.paths == nil:
		out.paths = b.paths
	case b.paths == nil:
		out.paths = a.paths
	case b.paths.size() < a.paths.size():
		out.paths = b.paths // either is necessary: keep the smaller
	default:
		out.paths = a.paths
	}
	return out
}

func orFacts(a, b facts) facts {
	if a.never {
		return b
	}
	if b.never {
		return a
	}
	out := facts{access: a.access & b.access}
	if a.result == b.result {
		out.result = a.result
	}
	if out.result == ResultFailure && a.errs != nil && b.errs != nil {
		out.errs = maps.Clone(a.errs)
		maps.Copy(out.errs, b.errs)
	}
	if a.paths != nil && b.paths != nil {
		out.paths = unionPaths(a.paths, b.paths)
	}
	return out
}

// openFacts summarizes the resolved condition n on open type t.
func openFacts(n node, t event.Type) facts {
	return fold(n, andFacts, orFacts, func(c *checkNode) facts { return checkFacts(c, t) }, facts{never: true})
}

// fold summarizes the resolved condition n bottom up: and, or combine the
// summaries of the kids (an 'and' from the zero value, no constraint; an
// 'or' from never), check summarizes one check, and a 'not' or anything
// else gives the zero value: a negation is no necessary condition.
func fold[F any](n node, and, or func(F, F) F, check func(*checkNode) F, never F) F {
	var acc F
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			acc = and(acc, fold(k, and, or, check, never))
		}
	case *orNode:
		acc = never
		for _, k := range n.kids {
			acc = or(acc, fold(k, and, or, check, never))
		}
	case *checkNode:
		acc = check(n)
	}
	return acc
}

func vals(c *checkNode) []string {
	out := make([]string, len(c.vals))
	for i, v := range c.vals {
		out[i] = v.text
	}
	return out
}

// typeRuledOut tells whether the evt.type check c, with operator op ("="
// for "=="), is false for every event of type t.
func typeRuledOut(c *checkNode, op string, t event.Type) bool {
	vs := vals(c)
	in := slices.Contains(vs, t.String())
	switch op {
	case "=", "in":
		return !in
	case "!=":
		return in && len(vs) == 1 && !c.list
	}
	return false
}

// checkFacts summarizes one positive check on open type t.
func checkFacts(c *checkNode, t event.Type) facts {
	if c.lhs.xform != "" || c.rhs != nil || c.lhs.hasArg || len(c.vals) == 0 {
		return facts{}
	}
	op := c.op
	if op == "==" {
		op = "="
	}
	vs := vals(c)
	one := func() (string, bool) { return vs[0], len(vs) == 1 && !c.list }
	switch c.lhs.field {
	case "evt.type":
		if typeRuledOut(c, op, t) {
			return facts{never: true}
		}
	case "evt.is_open_read", "evt.is_open_write":
		if v, ok := one(); ok && op == "=" && strings.EqualFold(v, "true") {
			if c.lhs.field == "evt.is_open_read" {
				return facts{access: AccessRead}
			}
			return facts{access: AccessWrite}
		}
	case "evt.failed":
		if v, ok := one(); ok && op == "=" {
			switch strings.ToLower(v) {
			case "true":
				return facts{result: ResultFailure}
			case "false":
				return facts{result: ResultSuccess}
			}
		}
	case "evt.res":
		if op == "=" || op == "in" {
			for _, v := range vs {
				if v == "SUCCESS" {
					if len(vs) == 1 {
						return facts{result: ResultSuccess}
					}
					return facts{}
				}
			}
			// evt.res names the errno ("EACCES", or "E<n>" for one
			// without a name); a text naming none leaves any errno.
			errs := map[int]bool{}
			for _, v := range vs {
				e, ok := event.ErrnoNumber(v)
				if !ok {
					return facts{result: ResultFailure}
				}
				errs[int(e)] = true
			}
			return facts{result: ResultFailure, errs: errs}
		}
	case "fd.num", "evt.rawres":
		// An open's fd.num is the result on success and -1 on failure;
		// evt.rawres is the result: a bound on either says which of the
		// two it was. Another type's fd.num is an argument.
		v, ok := one()
		if !ok || (c.lhs.field == "fd.num" && t.Class() != event.ClassOpen) {
			return facts{}
		}
		x, err := strconv.ParseInt(v, 0, 64)
		if err != nil {
			return facts{}
		}
		switch {
		case (op == ">=" && x >= 0) || (op == ">" && x >= -1) || (op == "=" && x >= 0):
			return facts{result: ResultSuccess}
		case op == "=" && c.lhs.field == "evt.rawres" && x < 0 && x >= -1<<31:
			return facts{result: ResultFailure, errs: map[int]bool{int(-x): true}}
		case (op == "<" && x <= 0) || (op == "<=" && x <= -1) || (op == "=" && x < 0):
			return facts{result: ResultFailure}
		}
	case "fd.name":
		return facts{paths: namePaths(op, vs)}
	case "fd.directory":
		return facts{paths: dirPaths(op, vs)}
	case "fd.filename":
		if op == "=" || op == "in" {
			p := &pathSet{names: map[string]bool{}}
			for _, v := range vs {
				if len(v) > KernelNameMax {
					return facts{}
				}
				p.names[v] = true
			}
			return facts{paths: p}
		}
	}
	return facts{}
}

func prefixSet(ps []string) *pathSet {
	p := &pathSet{prefixes: map[string]bool{}}
	for _, s := range ps {
		if len(s) > KernelPrefixMax {
			s = s[:KernelPrefixMax]
		}
		if s == "" {
			return nil
		}
		p.prefixes[s] = true
	}
	return p
}

// globPrefix is the literal text before the first glob metacharacter.
func globPrefix(g string) string {
	if i := strings.IndexAny(g, "*?[\\"); i >= 0 {
		return g[:i]
	}
	return g
}

// namePaths summarizes a check on fd.name (nil: any path).
func namePaths(op string, vs []string) *pathSet {
	switch op {
	case "=", "in", "startswith":
		return prefixSet(vs)
	case "glob":
		return prefixSet([]string{globPrefix(vs[0])})
	case "pmatch":
		ps := make([]string, len(vs))
		for i, v := range vs {
			ps[i] = globPrefix(v)
			if len(ps[i]) > 1 {
				ps[i] = strings.TrimRight(ps[i], "/")
			}
		}
		return prefixSet(ps)
	case "contains":
		// Only text starting at a component: the kernel looks for it at
		// each '/' of the path.
		c := vs[0]
		if !strings.HasPrefix(c, "/") || len(c) < 2 {
			return nil
		}
		if len(c) > KernelPrefixMax {
			c = c[:KernelPrefixMax]
		}
		return &pathSet{contains: map[string]bool{c: true}}
	case "endswith":
		// A suffix "/x" names the file: fd.filename is x.
		s := vs[0]
		i := strings.LastIndexByte(s, '/')
		if i < 0 || i == len(s)-1 || len(s)-i-1 > KernelNameMax {
			return nil
		}
		return &pathSet{names: map[string]bool{s[i+1:]: true}}
	}
	return nil
}

// dirPaths summarizes a check on fd.directory: the path is below it.
func dirPaths(op string, vs []string) *pathSet {
	switch op {
	case "=", "in":
		ps := make([]string, len(vs))
		for i, v := range vs {
			if strings.HasSuffix(v, "/") {
				ps[i] = v
			} else {
				ps[i] = v + "/"
			}
		}
		return prefixSet(ps)
	case "startswith":
		return prefixSet(vs)
	}
	return nil
}

// Pass is the filter's decision on ev, as the kernel takes it (the
// reference the BPF code implements): false when no rule can match ev.
// For a successful open, ev.Open.Path is the resolved path the kernel
// compares; a failed open is decided on its access mode and result only.
func (k *KernelFilter) Pass(ev *event.Event) bool {
	tf := k.For(ev.Type)
	if tf == nil || tf.PassAll {
		return true
	}
	read, write := true, true
	switch {
	case ev.Type == event.TypeCreat:
		read = false
	case ev.Open.Flags&3 == 0:
		write = false
	case ev.Open.Flags&3 == 1:
		read = false
	}
	path := ev.Open.Path
	name := path[strings.LastIndexByte(path, '/')+1:]
	for i := range tf.Terms {
		tm := &tf.Terms[i]
		if (tm.Access&AccessRead != 0 && !read) || (tm.Access&AccessWrite != 0 && !write) {
			continue
		}
		if ev.Res < 0 {
			if tm.Result != ResultSuccess && (tm.Errnos == nil || slices.Contains(tm.Errnos, int(-ev.Res))) {
				return true
			}
			continue
		}
		if tm.Result == ResultFailure {
			continue
		}
		if tm.AnyPath || path == "" {
			return true
		}
		for _, p := range tm.Prefixes {
			if strings.HasPrefix(path, p) {
				return true
			}
		}
		for _, c := range tm.Contains {
			if len(path) > KernelScanMax || strings.Contains(path, c) {
				return true
			}
		}
		if len(name) <= KernelNameMax {
			for _, n := range tm.Names {
				if n == name {
					return true
				}
			}
		}
	}
	return false
}
