package rules

import (
	"math/rand/v2"
	"testing"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/fields"
)

// refEval evaluates the resolved conditions of a Ruleset directly, every
// check compiled through the generic Value path: no fast paths, no
// reordering, no prefilter, no expr program.
type refEval struct {
	l     *loader
	preds map[*checkNode]predFn
	sc    scratch
}

func newRefEval(t *testing.T, rs *Ruleset) *refEval {
	t.Helper()
	r := &refEval{l: newLoader(t.Context(), Options{}), preds: map[*checkNode]predFn{}}
	r.l.generic = true
	for _, rule := range rs.Rules() {
		if rule.cond == nil {
			continue
		}
		walkChecks(rule.cond, func(c *checkNode) {
			if _, ok := r.preds[c]; ok {
				return
			}
			fn, _, err := r.l.compileCheck(c, nil)
			if err != nil {
				t.Fatalf("rule %q: %v", rule.Name, err)
			}
			r.preds[c] = fn
		})
	}
	r.sc.slots = make([]slotVal, len(r.l.slots))
	return r
}

func (r *refEval) eval(n node, ev *event.Event) bool {
	switch n := n.(type) {
	case *andNode:
		for _, k := range n.kids {
			if !r.eval(k, ev) {
				return false
			}
		}
		return true
	case *orNode:
		for _, k := range n.kids {
			if r.eval(k, ev) {
				return true
			}
		}
		return false
	case *notNode:
		return !r.eval(n.x, ev)
	case *checkNode:
		return r.preds[n](&r.sc, ev)
	}
	panic("unexpected node")
}

// match lists the enabled rules of ev's type whose condition holds.
func (r *refEval) match(rs *Ruleset, ev *event.Event) []*Rule {
	r.sc.Reset()
	r.sc.gen++
	var out []*Rule
	for _, rule := range rs.RulesFor(ev.Type) {
		if r.eval(rule.cond, ev) {
			out = append(out, rule)
		}
	}
	return out
}

// TestFastPathMatchesReference checks, on generated open, connect, exec
// and other events built from the rules' own words, that the evaluator
// (fast checks, per-event value slots, reordered conjuncts, prefilter,
// expr program) matches exactly the rules a plain interpretation of each
// condition through the generic Value path matches.
func TestFastPathMatchesReference(t *testing.T) {
	for name, paths := range kfRuleSets {
		t.Run(name, func(t *testing.T) {
			rs, _, err := LoadFiles(paths, Options{Captured: sensorTypes})
			if err != nil {
				t.Fatal(err)
			}
			ref := newRefEval(t, rs)
			ev := rs.NewEvaluator()
			words := ruleWords(rs)
			rng := rand.New(rand.NewPCG(17, uint64(len(words))))
			addrs, ports := netWords(words)
			others := otherTypes(rs)
			execs := []event.Type{event.TypeExecve, event.TypeExecveat}
			var dst []*Rule
			matched := 0
			for i := range 100000 {
				var e *event.Event
				switch i % 4 {
				case 0:
					e = randomOpen(rng, words)
				case 1:
					e = randomConnect(rng, words, addrs, ports)
				case 2:
					e = randomOther(rng, words, addrs, ports, execs)
				default:
					if len(others) == 0 {
						continue
					}
					e = randomOther(rng, words, addrs, ports, others)
				}
				vary(rng, words, e)
				dst = ev.Match(e, dst[:0])
				want := ref.match(rs, e)
				if len(dst) > 0 {
					matched++
				}
				if !sameRules(dst, want) {
					t.Fatalf("event %s path=%q proc=%q connect=%+v: matched %v, reference %v",
						e.Type, e.Open.Path, e.Proc.Comm, e.Connect, ruleNames(dst), ruleNames(want))
				}
			}
			if matched == 0 {
				t.Errorf("no generated event matched any rule: the test checks nothing")
			}
			t.Logf("%d events matched a rule", matched)
		})
	}
}

// vary widens what the kernel filter's generators produce where missing
// values and numbers matter: zero to three ancestors named from the
// words, a missing executable, arguments or directory, other ids, env.
func vary(rng *rand.Rand, words []string, e *event.Event) {
	w := func() string { return words[rng.IntN(len(words))] }
	var lineage []*event.Process
	for range rng.IntN(4) {
		n := w()
		if rng.IntN(2) == 0 {
			n = kfProcs[rng.IntN(len(kfProcs))]
		}
		lineage = append(lineage, testProc(n, "/usr/bin/"+n, uint32(1+rng.IntN(1000)), n, w()))
	}
	e.SetLineage(lineage)
	p := &e.Proc
	switch rng.IntN(6) {
	case 0:
		p.ExePath = ""
	case 1:
		p.Argv = nil
	case 2:
		p.Cwd = ""
	case 3:
		p.Comm = ""
	}
	ids := []uint32{0, 1, 1000, 65534, 0xffffffff}
	p.UID, p.EUID, p.LoginUID = ids[rng.IntN(len(ids))], ids[rng.IntN(len(ids))], ids[rng.IntN(len(ids))]
	p.PID = uint32(1 + rng.IntN(3))
	p.TTY = uint32(rng.IntN(2) * 34817)
	if rng.IntN(3) == 0 {
		p.Env = []string{"PATH=/usr/bin", w() + "=" + w()}
	}
	p.ExeFromMemfd, p.ExeUpperLayer, p.ExeWritable = rng.IntN(5) == 0, rng.IntN(5) == 0, rng.IntN(5) == 0
	p.CapEffective = uint64(rng.IntN(4)) << 21
}

func sameRules(a, b []*Rule) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func ruleNames(rs []*Rule) []string {
	var out []string
	for _, r := range rs {
		out = append(out, r.Name)
	}
	return out
}

// TestTypedExtractorsAgree checks that every field's Str or Num fast
// extractor returns what its Extract returns, on generated events.
func TestTypedExtractorsAgree(t *testing.T) {
	rs, _, err := LoadFiles(kfRuleSets["upstream"], Options{Captured: sensorTypes})
	if err != nil {
		t.Fatal(err)
	}
	words := ruleWords(rs)
	rng := rand.New(rand.NewPCG(5, 5))
	addrs, ports := netWords(words)
	types := []event.Type{event.TypeExecve}
	for t := event.TypeUnknown + 1; t < event.NumTypes; t++ {
		types = append(types, t)
	}
	args := []*fields.Arg{nil, {Text: "0", Index: 0, IsIndex: true, Set: true}, {Text: "1", Index: 1, IsIndex: true, Set: true}, {Text: "flags", Set: true}, {Text: "PATH", Set: true}}
	var c fields.Ctx
	for i := range 3000 {
		var e *event.Event
		switch i % 3 {
		case 0:
			e = randomOpen(rng, words)
		case 1:
			e = randomConnect(rng, words, addrs, ports)
		default:
			e = randomOther(rng, words, addrs, ports, types)
		}
		for _, f := range fields.Default().All() {
			for _, a := range args {
				if (a == nil && f.ArgRequired) || (a != nil && f.Arg == fields.ArgNone) {
					continue
				}
				c.Reset()
				v, ok := f.Extract(&c, e, a)
				switch {
				case f.Str != nil:
					s, ok2 := f.Str(&c, e, a)
					if s != v.Str || ok2 != ok {
						t.Fatalf("%s %v on %s: Str (%q, %v), Extract (%q, %v)", f.Name, a, e.Type, s, ok2, v.Str, ok)
					}
				case f.Num != nil:
					n, ok2 := f.Num(&c, e, a)
					if n != v.Num || ok2 != ok {
						t.Fatalf("%s %v on %s: Num (%d, %v), Extract (%d, %v)", f.Name, a, e.Type, n, ok2, v.Num, ok)
					}
				}
			}
		}
	}
}

// TestStringSetMatch checks the summarised set test ("in" with many
// values) against a plain loop, on members, near misses and the empty
// string.
func TestStringSetMatch(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 3))
	word := func() string {
		b := make([]byte, rng.IntN(6))
		for i := range b {
			b[i] = "ab/.x"[rng.IntN(5)]
		}
		return string(b)
	}
	for range 200 {
		vals := make([]string, 5+rng.IntN(20))
		for i := range vals {
			vals[i] = word()
		}
		m, err := constMatcher("in", fields.String, vals)
		if err != nil {
			t.Fatal(err)
		}
		for range 200 {
			s := word()
			want := false
			for _, v := range vals {
				want = want || v == s
			}
			if got := m.str(s); got != want {
				t.Fatalf("%q in %q: %v, want %v", s, vals, got, want)
			}
		}
	}
}
