package rules

import (
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"

	"github.com/expr-lang/expr"
	"gopkg.in/yaml.v3"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

// env is the typed expr environment: a condition compiles to a boolean
// expression over P(i), the i-th predicate of the ruleset, so no field
// value is ever boxed.
type env struct {
	P func(int) bool
}

type compiledPred struct {
	fn   predFn
	cost int
	key  string
	info predInfo
}

func allCaptured(c []event.Type) []event.Type {
	if c != nil {
		return c
	}
	var out []event.Type
	for t := event.TypeUnknown + 1; t < event.NumTypes; t++ {
		out = append(out, t)
	}
	return out
}

func (l *loader) compile() *Ruleset {
	captured := allCaptured(l.opts.Captured)
	rs := &Ruleset{}
	l.predIdx = map[string]int{}
	l.predByNode = map[*checkNode]int{}

	l.listLoops()
	// Lists: items naming an earlier list are inlined (visibility order).
	for _, d := range l.lorder {
		d.expanded = d.expanded[:0]
		for _, it := range d.items {
			if ref, ok := l.lists[it]; ok && ref.index < d.index {
				ref.used = true
				d.expanded = append(d.expanded, ref.expanded...)
			} else {
				d.expanded = append(d.expanded, it)
			}
			if len(d.expanded) > maxListItems {
				l.errf(d.file, d.node, fmt.Sprintf("list %q", d.name), "list too large after expanding nested lists (more than %d items)", maxListItems)
				d.expanded = d.expanded[:0]
				break
			}
		}
	}
	markUsed := func(d *listDef) { d.used = true }

	// Macros: substitute lists as text, then parse.
	for _, m := range l.morder {
		if l.stopped() {
			return rs
		}
		item := fmt.Sprintf("macro %q", m.name)
		var over bool
		if m.src, over = expandLists(m.cond, l.lists, &l.substBudget, markUsed); over {
			m.failed = true
			l.substOver(m.file, m.node, item)
			continue
		}
		n, err := parseWith(m.src.text, m.src)
		if err != nil {
			m.failed = true
			l.rep.Errors = append(l.rep.Errors, l.parseDiag(m.src, err, item))
			continue
		}
		if !l.checkLists(n, item) || l.overChecks(m.file, m.node, item) {
			m.failed = true
			continue
		}
		m.parsed = n
	}
	for _, m := range l.morder {
		if l.stopped() {
			return rs
		}
		l.resolveMacro(m)
	}

	for _, r := range l.rorder {
		if l.stopped() {
			return rs
		}
		if l.checks > maxTotalChecks {
			break // reported once, where the total went over
		}
		if rule := l.compileRule(r, captured); rule != nil {
			rs.rules = append(rs.rules, rule)
		}
	}

	for _, m := range l.morder {
		if !m.used {
			l.warnf(m.file, m.node, fmt.Sprintf("macro %q", m.name), "macro not referred to by any other rule or macro")
		}
	}
	for _, d := range l.lorder {
		if !d.used {
			l.warnf(d.file, d.node, fmt.Sprintf("list %q", d.name), "list not referred to by any other rule, macro or list")
		}
	}

	l.applyOptions(rs)
	rs.nslots = len(l.slots)
	rs.preds = make([]predFn, len(l.preds))
	for i, p := range l.preds {
		rs.preds[i] = p.fn
	}
	rs.buildIndex()
	return rs
}

// listLoops reports every cycle of list references (an item naming a list,
// earlier or later, or its own list) as an error at the item closing it:
// expansion order would silently turn such an item into a literal value.
func (l *loader) listLoops() {
	// at[d] is 1 + d's index on the path while d is on it, -1 once done.
	at := make(map[*listDef]int, len(l.lorder))
	type frame struct {
		d    *listDef
		next int // next item to follow
	}
	var path []frame // iterative: a chain of lists can be as long as the file
	for _, root := range l.lorder {
		if at[root] != 0 {
			continue
		}
		path = append(path[:0], frame{d: root})
		at[root] = len(path)
		for len(path) > 0 {
			top := &path[len(path)-1]
			d := top.d
			if top.next == len(d.items) {
				at[d] = -1
				path = path[:len(path)-1]
				continue
			}
			i := top.next
			top.next++
			ref, ok := l.lists[d.items[i]]
			if !ok {
				continue
			}
			switch k := at[ref]; {
			case k == 0:
				path = append(path, frame{d: ref})
				at[ref] = len(path)
			case k > 0:
				loop, tail := path[k-1:], []frame(nil)
				if len(loop) > 8 { // one readable line, and constant work per loop
					loop, tail = loop[:4], loop[len(loop)-4:]
				}
				var names []string
				for _, fr := range loop {
					names = append(names, fr.d.name)
				}
				if tail != nil {
					names = append(names, "...")
					for _, fr := range tail {
						names = append(names, fr.d.name)
					}
				}
				names = append(names, ref.name)
				p := srcPos{d.file, d.node}
				if i < len(d.at) {
					p = d.at[i]
				}
				l.errf(p.file, p.node, fmt.Sprintf("list %q", d.name), "reference loop in list %q (%s)", ref.name, strings.Join(names, " -> "))
			}
		}
	}
}

func (l *loader) parseDiag(src *exprSrc, err error, item string) Diag {
	var pe *ParseError
	if errors.As(err, &pe) {
		return src.diag(pe.Pos, item, "syntax error in condition: "+pe.Msg, true)
	}
	return src.diag(0, item, err.Error(), true)
}

func (l *loader) resolveMacro(m *macroDef) {
	if m.state == 2 || m.failed {
		return
	}
	if m.state == 1 {
		return // loop: reported by the caller
	}
	m.state = 1
	item := fmt.Sprintf("macro %q", m.name)
	var diags []Diag
	res, ok := l.resolve(m.parsed, m, item, &diags)
	l.rep.Errors = append(l.rep.Errors, diags...)
	if ok && treeSize(res, map[node]int{}) > maxTreeSize {
		l.errf(m.file, m.node, item, "condition too large after macro expansion (more than %d checks)", maxTreeSize)
		ok = false
	}
	m.resolved, m.resolveOK = res, ok
	if !ok {
		m.failed = true
	}
	m.state = 2
}

// maxConditionLen bounds a condition's text after list substitution.
const maxConditionLen = 4 << 20

// maxListItems bounds a list after inlining nested lists, and the values
// of one check (proc.name in (...)) after list substitution.
const maxListItems = 100000

// maxTotalChecks bounds the work of a whole load: the checks of every rule
// condition after macro expansion plus the values of every list check, as
// they are parsed. Each condition is bounded on its own, but a short file
// can use a large list or macro in many rules.
const maxTotalChecks = 1000000

// maxSubstBytes bounds the condition text a load scans and parses, list
// substitution passes included: YAML aliases, lists and appends let a
// small file name a lot of text.
const maxSubstBytes = 64 << 20

// substOver reports why expandLists stopped: the condition grew too long,
// or the load ran out of substitution budget.
func (l *loader) substOver(f *srcFile, n *yaml.Node, item string) {
	if l.substBudget >= 0 {
		l.errf(f, n, item, "condition too long after list substitution (more than %d bytes)", maxConditionLen)
		return
	}
	l.errOnce(&l.substReported, f, n, item, "rules too large in total: more than %d bytes of condition text after list substitution", maxSubstBytes)
}

// overChecks reports, once, that the load went over maxTotalChecks.
func (l *loader) overChecks(f *srcFile, n *yaml.Node, item string) bool {
	if l.checks <= maxTotalChecks {
		return false
	}
	l.errOnce(&l.checksReported, f, n, item, "rules too large in total: more than %d checks in all conditions after list and macro expansion", maxTotalChecks)
	return true
}

// checkLists reports checks with more than maxListItems values (lists
// written inline, or grown by list substitution) and counts every value
// towards maxTotalChecks.
func (l *loader) checkLists(n node, item string) bool {
	ok := true
	walkChecks(n, func(c *checkNode) {
		l.checks += len(c.vals)
		if len(c.vals) > maxListItems {
			l.rep.Errors = append(l.rep.Errors, c.src.diag(c.at, item, fmt.Sprintf("list too large (more than %d items)", maxListItems), true))
			ok = false
		}
	})
	return ok
}

// maxTreeSize bounds a condition after macro expansion: macros can share
// sub-macros, so a short file could otherwise expand exponentially.
const maxTreeSize = 20000

// treeSize counts the nodes of n, memoized over shared subtrees and
// saturating just above maxTreeSize.
func treeSize(n node, memo map[node]int) int {
	if v, ok := memo[n]; ok {
		return v
	}
	size := 1
	var kids []node
	switch n := n.(type) {
	case *andNode:
		kids = n.kids
	case *orNode:
		kids = n.kids
	case *notNode:
		kids = []node{n.x}
	}
	for _, k := range kids {
		size += treeSize(k, memo)
		if size > maxTreeSize {
			size = maxTreeSize + 1
			break
		}
	}
	memo[n] = size
	return size
}

func (l *loader) resolveAll(ns []node, from *macroDef, item string, diags *[]Diag) ([]node, bool) {
	out := make([]node, 0, len(ns))
	ok := true
	for _, k := range ns {
		r, good := l.resolve(k, from, item, diags)
		ok = ok && good
		out = append(out, r)
	}
	return out, ok
}

// resolve substitutes macro references in n. from is the macro being
// resolved (nil for a rule): a macro only sees macros defined before it.
func (l *loader) resolve(n node, from *macroDef, item string, diags *[]Diag) (node, bool) {
	switch n := n.(type) {
	case *andNode:
		kids, ok := l.resolveAll(n.kids, from, item, diags)
		return &andNode{at: n.at, kids: kids}, ok
	case *orNode:
		kids, ok := l.resolveAll(n.kids, from, item, diags)
		return &orNode{at: n.at, kids: kids}, ok
	case *notNode:
		x, ok := l.resolve(n.x, from, item, diags)
		return &notNode{x: x, at: n.at}, ok
	case *refNode:
		m := l.macros[n.name]
		if m == nil {
			*diags = append(*diags, n.src.diag(n.at, item, fmt.Sprintf("undefined macro %q used in condition", n.name), true))
			return n, false
		}
		m.used = true
		if from != nil && m == from {
			*diags = append(*diags, n.src.diag(n.at, item, fmt.Sprintf("reference loop in macro %q", n.name), true))
			return n, false
		}
		if from != nil && m.index > from.index {
			*diags = append(*diags, n.src.diag(n.at, item, fmt.Sprintf("macro %q is used before it is defined (macros can only use macros defined above them)", n.name), true))
			return n, false
		}
		if m.state == 1 {
			*diags = append(*diags, n.src.diag(n.at, item, fmt.Sprintf("reference loop in macro %q", n.name), true))
			return n, false
		}
		l.resolveMacro(m)
		if m.failed {
			if from == nil {
				*diags = append(*diags, n.src.diag(n.at, item, fmt.Sprintf("uses macro %q, which has errors", n.name), false))
			}
			return n, false
		}
		return m.resolved, true
	}
	return n, true
}

// withExceptions builds the rule condition with Falco's exception text:
// "(" + condition + ")" followed by " and not " + text per exception.
func withExceptions(r *ruleDef) *srcText {
	if len(r.exceptions) == 0 || len(r.cond.parts) == 0 {
		return r.cond
	}
	t := &srcText{}
	first := r.cond.parts[0]
	t.add("(", first.file, first.node, false)
	for _, p := range r.cond.parts {
		t.add(r.cond.text[p.start:p.end], p.file, p.node, p.exact)
	}
	t.add(")", first.file, first.node, false)
	for _, e := range r.exceptions {
		if s := exceptionText(e); s != "" {
			t.add(" and not "+s, e.file, e.node, false)
		}
	}
	return t
}

func (l *loader) compileRule(r *ruleDef, captured []event.Type) *Rule {
	item := fmt.Sprintf("rule %q", r.name)
	rule := &Rule{
		Name: r.name, Desc: r.desc, Output: r.output, Source: r.source, Priority: r.priority,
		Tags: r.tags, Enabled: r.enabled, File: r.file.name, Line: r.node.Line,
	}
	if rule.Tags == nil {
		rule.Tags = []string{}
	}
	skip := func(reason string) *Rule {
		l.warnf(r.file, r.node, item, "rule skipped: %s", reason)
		l.rep.Skipped = append(l.rep.Skipped, Skip{Rule: r.name, Reason: reason})
		rule.Skipped = reason
		rule.Enabled = false
		rule.types = nil
		return rule
	}
	if r.cond != nil {
		rule.Condition = r.cond.text
	}
	if r.source != "syscall" {
		return skip(fmt.Sprintf("unknown source %q (only syscall is supported)", r.source))
	}
	cond := withExceptions(r)
	rule.Condition = cond.text
	l.substBudget -= len(r.output) // parsed below, with the condition
	src, over := expandLists(cond, l.lists, &l.substBudget, func(d *listDef) { d.used = true })
	if over {
		l.substOver(r.file, r.node, item)
		return nil
	}
	parsed, err := parseWith(src.text, src)
	if err != nil {
		l.rep.Errors = append(l.rep.Errors, l.parseDiag(src, err, item))
		return nil
	}
	if !l.checkLists(parsed, item) {
		return nil
	}
	var diags []Diag
	res, ok := l.resolve(parsed, nil, item, &diags)
	if !ok {
		l.rep.Errors = append(l.rep.Errors, diags...)
		return nil
	}
	size := treeSize(res, map[node]int{})
	if size > maxTreeSize {
		l.errf(r.file, r.node, item, "condition too large after macro expansion (more than %d checks)", maxTreeSize)
		return nil
	}
	if l.checks += size; l.overChecks(r.file, r.node, item) {
		return nil
	}

	// Unknown event types are load errors (or a skip).
	var unknown []Diag
	walkChecks(res, func(c *checkNode) {
		if c.lhs.xform != "" || c.lhs.field != "evt.type" || c.rhs != nil {
			return
		}
		for _, v := range c.vals {
			if !l.known[v.text] {
				unknown = append(unknown, c.src.diag(v.at, item, fmt.Sprintf("unknown event type %q", v.text), true))
			}
		}
	})
	if len(unknown) > 0 {
		if r.skipUnknown {
			return skip(unknown[0].Message)
		}
		l.rep.Errors = append(l.rep.Errors, unknown...)
		return nil
	}

	ts := eventTypes(res, false)
	types := capturedTypes(ts, captured)
	if len(types) == 0 {
		if !ts.neg && len(ts.names) == 0 {
			return skip("condition can never match any event type")
		}
		return skip("event types not captured by the sensor: " + strings.Join(missingTypes(ts, captured), ", "))
	}
	rule.types = types
	if ts.neg {
		if r.warnEvttypes {
			l.warnf(r.file, r.node, item, "rule matches too many event types: it has no evt.type restriction and runs on every event")
		}
	} else if miss := missingTypes(ts, captured); len(miss) > 0 {
		l.warnf(r.file, r.node, item, "event types not captured by the sensor, rule only partially effective: %s", strings.Join(miss, ", "))
	}

	// Compile every check, reporting all errors.
	var errs []Diag
	var firstUnknown string
	walkChecks(res, func(c *checkNode) {
		if _, done := l.predByNode[c]; done {
			return
		}
		var info predInfo
		fn, key, err := l.compileCheck(c, &info)
		if err != nil {
			if errors.Is(err, fields.ErrUnknownField) && firstUnknown == "" {
				firstUnknown = err.Error()
			}
			at := c.at
			for _, v := range c.vals { // point at the offending value when there is one
				if strings.Contains(err.Error(), strconv.Quote(v.text)) {
					at = v.at
					break
				}
			}
			errs = append(errs, c.src.diag(at, item, strings.TrimPrefix(err.Error(), "fields: "), true))
			return
		}
		idx, ok := l.predIdx[key]
		if !ok {
			idx = len(l.preds)
			l.preds = append(l.preds, compiledPred{fn: fn, key: key, cost: predCost(c), info: info})
			l.predIdx[key] = idx
		}
		l.predByNode[c] = idx
	})
	segs, oerrs, ounknown := l.compileOutput(r)
	errs = append(errs, oerrs...)
	if firstUnknown == "" {
		firstUnknown = ounknown
	}
	if len(errs) > 0 {
		if r.skipUnknown && firstUnknown != "" {
			return skip(strings.TrimPrefix(firstUnknown, "fields: "))
		}
		l.rep.Errors = append(l.rep.Errors, errs...)
		return nil
	}
	rule.out = segs

	ordered := l.reorder(res)
	var b strings.Builder
	l.exprText(ordered, &b)
	prog, err := expr.Compile(b.String(), expr.Env(env{}), expr.AsBool())
	if err != nil {
		l.errf(r.file, r.node, item, "condition too complex to compile: %v", firstLine(err.Error()))
		return nil
	}
	rule.prog = prog
	pre := l.prefilter(ordered)
	rule.pres = make([]preNode, len(types))
	for i, t := range types {
		rule.pres[i] = l.specialise(pre, t)
	}
	rule.cond = res
	rule.compiled = true
	return rule
}

func firstLine(s string) string {
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		return s[:i]
	}
	return s
}

func walkChecks(n node, fn func(*checkNode)) {
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			walkChecks(k, fn)
		}
	case *orNode:
		for _, k := range n.kids {
			walkChecks(k, fn)
		}
	case *notNode:
		walkChecks(n.x, fn)
	case *checkNode:
		fn(n)
	}
}

// predCost estimates how expensive a check is, to evaluate cheap ones first.
func predCost(c *checkNode) int {
	cost := 2
	o := c.lhs
	for o.inner != nil {
		cost += 2
		o = o.inner
	}
	switch {
	case o.field == "evt.type":
		return 1
	case strings.HasPrefix(o.field, "proc.a") && !o.hasArg:
		cost += 6
	case o.field == "proc.cmdline" || o.field == "proc.args" || o.field == "proc.pcmdline" || o.field == "fd.name" ||
		strings.HasPrefix(o.field, "evt.arg") || strings.HasPrefix(o.field, "thread.cap"):
		cost += 3
	}
	switch c.op {
	case "regex":
		cost += 10
	case "glob", "iglob", "pmatch", "contains", "icontains":
		cost += 2
	}
	return cost
}

func (l *loader) cost(n node) int {
	switch n := n.(type) {
	case *andNode:
		s := 0
		for _, k := range n.kids {
			s += l.cost(k)
		}
		return s
	case *orNode:
		s := 0
		for _, k := range n.kids {
			s += l.cost(k)
		}
		return s
	case *notNode:
		return l.cost(n.x)
	case *checkNode:
		return l.preds[l.predByNode[n]].cost
	}
	return 1
}

// rank guesses how likely n is to be false on a typical event: 0 likely
// false (a positive match of a string field against constants, e.g.
// proc.name in (...), fd.name startswith /etc), 1 unknown, 2 likely true
// (negations, "!=", type and flag checks).
func (l *loader) rank(n node) int {
	switch n := n.(type) {
	case *andNode:
		r := 2
		for _, k := range n.kids {
			r = min(r, l.rank(k))
		}
		return r
	case *orNode:
		r := 0
		for _, k := range n.kids {
			r = max(r, l.rank(k))
		}
		return r
	case *notNode:
		return 2 - l.rank(n.x)
	case *checkNode:
		o := n.lhs
		for o.inner != nil {
			o = o.inner
		}
		switch {
		case n.rhs != nil || n.op == "exists":
			return 1
		case o.field == "evt.type":
			return 1
		case n.op == "!=":
			return 2
		case o.field == "fd.typechar" || o.field == "fd.type" || o.field == "fd.l4proto" || o.field == "fd.sockfamily" ||
			o.field == "container.id" || o.field == "evt.dir" || o.field == "evt.res":
			return 1
		}
		switch n.op {
		case "=", "in", "intersects", "startswith", "endswith", "contains", "icontains", "glob", "iglob", "pmatch",
			"regex", "bcontains", "bstartswith":
			f, ok := l.cat.Lookup(o.field)
			if ok && f.Type == fields.String {
				return 0
			}
			if !ok && o.field != "" { // dotted-arg fields such as evt.arg.flags
				return 0
			}
		}
		return 1
	}
	return 1
}

func (l *loader) sortKey(n node) int { return l.rank(n)*1000 + l.cost(n) }

// reorder sorts the operands of every 'and' so that cheap checks likely to
// be false come first (stable): conditions have no side effects, so the
// order is free and short-circuiting skips the rest.
func (l *loader) reorder(n node) node {
	switch n := n.(type) {
	case *andNode:
		kids := make([]node, len(n.kids))
		for i, k := range n.kids {
			kids[i] = l.reorder(k)
		}
		sort.SliceStable(kids, func(i, j int) bool { return l.sortKey(kids[i]) < l.sortKey(kids[j]) })
		return &andNode{kids: kids, at: n.at}
	case *orNode:
		kids := make([]node, len(n.kids))
		for i, k := range n.kids {
			kids[i] = l.reorder(k)
		}
		// For 'or', likely-true operands first.
		sort.SliceStable(kids, func(i, j int) bool {
			return (2-l.rank(kids[i]))*1000+l.cost(kids[i]) < (2-l.rank(kids[j]))*1000+l.cost(kids[j])
		})
		return &orNode{kids: kids, at: n.at}
	case *notNode:
		return &notNode{x: l.reorder(n.x), at: n.at}
	}
	return n
}

func (l *loader) exprText(n node, b *strings.Builder) {
	switch n := n.(type) {
	case *andNode, *orNode:
		kids, isAnd := junction(n)
		sep := " || "
		if isAnd {
			sep = " && "
		}
		b.WriteByte('(')
		for i, k := range kids {
			if i > 0 {
				b.WriteString(sep)
			}
			l.exprText(k, b)
		}
		b.WriteByte(')')
	case *notNode:
		b.WriteString("!")
		l.exprText(n.x, b)
	case *checkNode:
		b.WriteString("P(")
		b.WriteString(strconv.Itoa(l.predByNode[n]))
		b.WriteByte(')')
	}
}

// preNode is a necessary condition of a rule: the condition with every
// negation and "!=" relaxed to true. It is evaluated in Go before the expr
// program; when it is false the rule cannot match and the VM never starts,
// which is what keeps a typical event under the budget.
type preNode struct {
	kind uint8 // preTrue, preLit, preAnd, preOr, preFalse
	pred int32
	kids []preNode
}

const (
	preTrue uint8 = iota
	preLit
	preAnd
	preOr
	preFalse // the rule cannot match events of this type
)

// prefilter relaxes n into a preNode with at most budget literals.
func (l *loader) prefilter(n node) preNode {
	budget := 48
	return l.relax(n, &budget)
}

func (l *loader) relax(n node, budget *int) preNode {
	switch n := n.(type) {
	case *andNode:
		var kids []preNode
		for _, k := range n.kids {
			if p := l.relax(k, budget); p.kind != preTrue {
				kids = append(kids, p)
			}
		}
		switch len(kids) {
		case 0:
			return preNode{}
		case 1:
			return kids[0]
		}
		return preNode{kind: preAnd, kids: kids}
	case *orNode:
		var kids []preNode
		for _, k := range n.kids {
			p := l.relax(k, budget)
			if p.kind == preTrue {
				return preNode{}
			}
			kids = append(kids, p)
		}
		if len(kids) == 1 {
			return kids[0]
		}
		return preNode{kind: preOr, kids: kids}
	case *checkNode:
		if n.op == "!=" || *budget <= 0 {
			return preNode{}
		}
		*budget--
		return preNode{kind: preLit, pred: int32(l.predByNode[n])}
	}
	return preNode{} // not: relaxed to true
}

// specialise returns the prefilter p for events of type t: evt.type
// checks become constants, and the positive string checks of one operand
// under one 'or' merge into one check that reads the operand once. Both
// are exact: conditions are pure, and "ok && a(s) || ok && b(s)" is
// "ok && (a(s) || b(s))".
func (l *loader) specialise(p preNode, t event.Type) preNode {
	switch p.kind {
	case preLit:
		if in := l.preds[p.pred].info; in.types {
			if (in.typeMask&(1<<t) != 0) != in.typeNeg {
				return preNode{}
			}
			return preNode{kind: preFalse}
		}
		return p
	case preAnd, preOr:
		// A false operand decides an and, a true one an or; the other
		// constant drops out.
		decides, neutral := preFalse, preTrue
		if p.kind == preOr {
			decides, neutral = preTrue, preFalse
		}
		var kids []preNode
		for _, k := range p.kids {
			k = l.specialise(k, t)
			switch k.kind {
			case decides:
				return k
			case neutral:
				continue
			}
			kids = append(kids, k)
		}
		if p.kind == preOr {
			kids = l.mergeReads(kids)
		}
		switch len(kids) {
		case 0:
			return preNode{kind: neutral}
		case 1:
			return kids[0]
		}
		return preNode{kind: p.kind, kids: kids}
	}
	return p
}

// mergeReads replaces the literals of an 'or' that test one string operand
// against constants by one predicate, at the place of the first.
func (l *loader) mergeReads(kids []preNode) []preNode {
	groups := map[string][]int{}
	var order []string
	for i, k := range kids {
		if k.kind != preLit {
			continue
		}
		in := l.preds[k.pred].info
		if in.read == nil {
			continue
		}
		if groups[in.opKey] == nil {
			order = append(order, in.opKey)
		}
		groups[in.opKey] = append(groups[in.opKey], i)
	}
	drop := map[int]bool{}
	for _, op := range order {
		g := groups[op]
		if len(g) < 2 {
			continue
		}
		var kb strings.Builder
		kb.WriteString("or")
		matches := make([]func(string) bool, len(g))
		for j, i := range g {
			cp := l.preds[kids[i].pred]
			kb.WriteByte(0)
			kb.WriteString(cp.key)
			matches[j] = cp.info.match
			if j > 0 {
				drop[i] = true
			}
		}
		key := kb.String()
		idx, ok := l.predIdx[key]
		if !ok {
			read := l.preds[kids[g[0]].pred].info.read
			fn := func(c *scratch, ev *event.Event) bool {
				s, ok := read(c, ev)
				if !ok {
					return false
				}
				for _, m := range matches {
					if m(s) {
						return true
					}
				}
				return false
			}
			idx = len(l.preds)
			l.preds = append(l.preds, compiledPred{fn: fn, key: key})
			l.predIdx[key] = idx
		}
		kids[g[0]] = preNode{kind: preLit, pred: int32(idx)}
	}
	if len(drop) == 0 {
		return kids
	}
	out := kids[:0:0]
	for i, k := range kids {
		if !drop[i] {
			out = append(out, k)
		}
	}
	return out
}

// applyOptions applies MinPriority, then Disable, then Enable, and counts.
func (l *loader) applyOptions(rs *Ruleset) {
	for _, r := range rs.rules {
		if !r.compiled {
			continue
		}
		if l.opts.MinPriority != 0 && r.Priority > l.opts.MinPriority {
			r.Enabled = false
			continue
		}
		for _, p := range l.opts.Disable {
			if selects(p, r) {
				r.Enabled = false
			}
		}
		for _, p := range l.opts.Enable {
			if selects(p, r) {
				r.Enabled = true
			}
		}
	}
	for _, r := range rs.rules {
		if !r.compiled {
			continue
		}
		if r.Enabled {
			l.rep.Compiled++
		} else {
			l.rep.Disabled++
		}
	}
}

// selects reports whether an enable/disable entry picks r: "tag:NAME" or a
// glob on the rule name.
func selects(pattern string, r *Rule) bool {
	if t, ok := strings.CutPrefix(pattern, "tag:"); ok {
		for _, x := range r.Tags {
			if x == t {
				return true
			}
		}
		return false
	}
	return fields.Glob(pattern, r.Name, false)
}
