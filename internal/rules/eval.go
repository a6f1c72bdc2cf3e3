package rules

import (
	"github.com/expr-lang/expr/vm"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

// Rule is one loaded rule.
type Rule struct {
	Name, Desc, Condition, Output, Source string
	Priority                              Priority
	Tags                                  []string
	Enabled                               bool
	// File and Line locate the rule's (last) definition.
	File string
	Line int
	// Skipped is why the rule is never evaluated ("" when it compiled).
	Skipped string

	types    []event.Type
	prog     *vm.Program
	pres     []preNode // prefilter per event type, aligned with types
	cond     node      // resolved condition, for KernelFilter
	out      []outSeg
	compiled bool
	redact   *fields.Redactor // nil: fields.DefaultRedactor
}

// Types returns the event types the rule is evaluated on (nil when skipped).
func (r *Rule) Types() []event.Type { return r.types }

// Compiled reports whether the rule compiled (it may still be disabled).
func (r *Rule) Compiled() bool { return r.compiled }

// Ruleset is an immutable set of compiled rules, indexed by event type.
// It is safe for concurrent use; each goroutine needs its own Evaluator.
type Ruleset struct {
	rules  []*Rule
	preds  []predFn
	nslots int
	byType [event.NumTypes][]*Rule
	pres   [event.NumTypes][]preNode // byType's prefilters for the type, contiguous
	types  []event.Type
}

func (rs *Ruleset) buildIndex() {
	for _, r := range rs.rules {
		if !r.compiled || !r.Enabled {
			continue
		}
		for i, t := range r.types {
			if t < event.NumTypes {
				rs.byType[t] = append(rs.byType[t], r)
				rs.pres[t] = append(rs.pres[t], r.pres[i])
			}
		}
	}
	for t := event.Type(0); t < event.NumTypes; t++ {
		if len(rs.byType[t]) > 0 {
			rs.types = append(rs.types, t)
		}
	}
}

// SetRedaction sets which environment values the rules' outputs hide
// (fields.DefaultRedactor unless set; an empty Redactor hides none).
// Conditions still see every value. Call it before evaluating.
func (rs *Ruleset) SetRedaction(r *fields.Redactor) {
	for _, rule := range rs.rules {
		rule.redact = r
	}
}

// Rules returns every rule in load order, enabled or not (skipped rules
// included, with Skipped set).
func (rs *Ruleset) Rules() []*Rule { return rs.rules }

// Types returns the event types at least one enabled rule can match.
func (rs *Ruleset) Types() []event.Type { return rs.types }

// RulesFor returns the enabled rules evaluated on events of type t.
func (rs *Ruleset) RulesFor(t event.Type) []*Rule {
	if t >= event.NumTypes {
		return nil
	}
	return rs.byType[t]
}

// Evaluator matches events against a Ruleset. It holds a reusable expr VM
// and scratch space, so it is not safe for concurrent use: create one per
// goroutine.
type Evaluator struct {
	rs    *Ruleset
	vm    vm.VM
	env   *env
	sc    scratch
	ev    *event.Event
	cgen  []uint32
	cval  []bool
	panic bool
}

// NewEvaluator returns an evaluator for rs.
func (rs *Ruleset) NewEvaluator() *Evaluator {
	e := &Evaluator{rs: rs, cgen: make([]uint32, len(rs.preds)), cval: make([]bool, len(rs.preds))}
	e.sc.slots = make([]slotVal, rs.nslots)
	e.env = &env{P: e.pred}
	return e
}

// pred evaluates predicate i on the current event, once per event.
func (e *Evaluator) pred(i int) bool {
	if i < 0 || i >= len(e.cgen) {
		return false
	}
	if e.cgen[i] == e.sc.gen {
		return e.cval[i]
	}
	v := e.rs.preds[i](&e.sc, e.ev)
	e.cgen[i], e.cval[i] = e.sc.gen, v
	return v
}

// pre evaluates a rule's necessary condition.
func (e *Evaluator) pre(p *preNode) bool {
	switch p.kind {
	case preLit:
		return e.pred(int(p.pred))
	case preAnd:
		for i := range p.kids {
			k := &p.kids[i]
			if k.kind == preLit { // most kids: no recursive call
				if !e.pred(int(k.pred)) {
					return false
				}
			} else if !e.pre(k) {
				return false
			}
		}
		return true
	case preOr:
		for i := range p.kids {
			k := &p.kids[i]
			if k.kind == preLit {
				if e.pred(int(k.pred)) {
					return true
				}
			} else if e.pre(k) {
				return true
			}
		}
		return false
	case preFalse:
		return false
	}
	return true
}

// Match appends the enabled rules matching ev to dst, in load order. It
// does not allocate when dst has enough capacity. Strings of ev are not
// retained.
func (e *Evaluator) Match(ev *event.Event, dst []*Rule) (out []*Rule) {
	if ev == nil || ev.Type >= event.NumTypes {
		return dst
	}
	// Extractors validate what they read, but a malformed event must
	// never take the sensor down: drop the event's remaining rules instead.
	defer func() {
		if r := recover(); r != nil {
			e.ev = nil
			out = dst
		}
	}()
	rules := e.rs.byType[ev.Type]
	if len(rules) == 0 {
		return dst
	}
	e.sc.Reset()
	e.sc.gen++
	if e.sc.gen == 0 { // wrapped: forget every cached result
		clear(e.cgen)
		clear(e.sc.slots)
		e.sc.gen = 1
	}
	e.ev = ev
	pres := e.rs.pres[ev.Type]
	for i, r := range rules {
		if !e.pre(&pres[i]) {
			continue
		}
		out, err := e.vm.Run(r.prog, e.env)
		if err != nil {
			continue
		}
		if b, ok := out.(bool); ok && b {
			dst = append(dst, r)
		}
	}
	e.ev = nil
	return dst
}
