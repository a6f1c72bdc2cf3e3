package rules

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// FuzzLoad feeds arbitrary rules files to the loader: it must never panic
// (the recover in Load would report "internal error", which fails here),
// and every error must carry a message; a ruleset that loads must evaluate
// the test events without trouble.
func FuzzLoad(f *testing.F) {
	for _, pattern := range []string{"testdata/valid/*.yaml", "testdata/invalid/*.yaml", "testdata/*.yaml"} {
		files, _ := filepath.Glob(pattern)
		for _, p := range files {
			if data, err := os.ReadFile(p); err == nil {
				f.Add(data)
			}
		}
	}
	f.Add([]byte("- macro: a\n  condition: b\n- macro: b\n  condition: a\n- rule: r\n  desc: d\n  condition: a\n  output: o\n  priority: info\n"))
	f.Add([]byte("- list: l\n  items: [l]\n- rule: r\n  desc: d\n  condition: proc.name in (l) and evt.type=execve\n  output: '%proc.name %'\n  priority: info\n"))
	evs := []func() *event.Event{execEvent, openEvent, connectEvent}
	f.Fuzz(func(t *testing.T, data []byte) {
		rs, rep, err := Load([]Source{{Name: "f.yaml", Data: data}}, Options{})
		if (err != nil) != (len(rep.Errors) > 0) {
			t.Fatalf("err=%v but %d errors", err, len(rep.Errors))
		}
		for _, d := range rep.Errors {
			if strings.Contains(d.Message, "internal error") || strings.Contains(d.Message, "internal parser error") {
				t.Fatalf("panic inside the loader: %s", d.Message)
			}
			if d.Message == "" {
				t.Fatalf("error without message: %+v", d)
			}
		}
		e := rs.NewEvaluator()
		for _, mk := range evs {
			ev := mk()
			for _, r := range e.Match(ev, nil) {
				r.AppendOutput(nil, ev)
				r.OutputFields(ev)
			}
		}
	})
}

// FuzzParseCondition checks the condition parser never panics and that a
// condition that parses also survives compilation as a rule.
func FuzzParseCondition(f *testing.F) {
	seeds := []string{
		"evt.type = open and proc.name in (bash, sh)",
		"not (proc.aname[2] glob '/usr/*' or fd.name pmatch (/etc, /var/run))",
		`proc.cmdline contains "a \"quoted\" \x41 string" and tolower(proc.name) = val(proc.pname)`,
		"container.mount.dest[/var/run/docker.sock] exists and k8s.pod.label[app.kubernetes.io/name] = x",
		"fd.sport in (80, 443) and fd.snet in ('10.0.0.0/8') and len(container.capabilities) > 0x1",
		"((((a))))", "not not not x", "evt.arg.flags contains O_CREAT", "proc.name=bash)", "(", "",
	}
	for _, s := range seeds {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		_, err := ParseCondition(s)
		if err != nil {
			if strings.Contains(err.Error(), "internal parser error") {
				t.Fatalf("parser panicked: %v", err)
			}
			return
		}
		if len(s) > 2000 || strings.ContainsAny(s, "\x00") {
			return
		}
		src := "- rule: r\n  desc: d\n  condition: " + yamlQuote(s) + "\n  output: o\n  priority: info\n"
		rs, rep, _ := Load([]Source{{Name: "f.yaml", Data: []byte(src)}}, Options{})
		for _, d := range rep.Errors {
			if strings.Contains(d.Message, "internal error") {
				t.Fatalf("panic inside the loader: %s", d.Message)
			}
		}
		e := rs.NewEvaluator()
		e.Match(execEvent(), nil)
		e.Match(openEvent(), nil)
		e.Match(connectEvent(), nil)
	})
}

// yamlQuote writes s as a YAML double-quoted scalar.
func yamlQuote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for _, r := range s {
		switch {
		case r == '"' || r == '\\':
			b.WriteByte('\\')
			b.WriteRune(r)
		case r < 0x20 || r == 0x7f:
			b.WriteString(`\x`)
			const hexd = "0123456789abcdef"
			b.WriteByte(hexd[r>>4])
			b.WriteByte(hexd[r&15])
		default:
			b.WriteRune(r)
		}
	}
	b.WriteByte('"')
	return b.String()
}

// FuzzListExpansion checks list handling against a direct model: spec
// defines lists one per line ("name=item,item"), cond is a condition. The
// one-pass-per-named-list expansion must give exactly the text of Falco's
// substitution of every list in definition order, a reference loop must be
// reported iff the lists have one, and the load must never panic.
func FuzzListExpansion(f *testing.F) {
	f.Add("a=sh,b\nb=bash,my shell\nempty=", "proc.name in (a, empty) and x in (empty)")
	f.Add("a=b\nb=a", "evt.type = execve and proc.name in (a)")
	f.Add("a=a", "a")
	f.Add("a=x\nb=a,a\nc=b,b,d\nd=", "proc.name in (c) or fd.name = (b)")
	f.Add("l1=l2\nl2=l3\nl3=x y", "proc.name in (l1, 'l2', l3)")
	f.Fuzz(func(t *testing.T, spec, cond string) {
		if len(spec) > 300 || len(cond) > 300 {
			return
		}
		var src strings.Builder
		for i, line := range strings.Split(spec, "\n") {
			name, items, _ := strings.Cut(line, "=")
			if i >= 8 || name == "" {
				continue
			}
			its := strings.Split(items, ",")
			if items == "" {
				its = []string{}
			}
			fmt.Fprintf(&src, "- list: %s\n  items: [", yamlQuote(name))
			for j, it := range its {
				if j > 0 {
					src.WriteString(", ")
				}
				src.WriteString(yamlQuote(it))
			}
			src.WriteString("]\n")
		}
		fmt.Fprintf(&src, "- rule: r\n  desc: d\n  condition: %s\n  output: o\n  priority: info\n", yamlQuote(cond))

		l := newLoader(context.Background(), Options{})
		l.loadFile(Source{Name: "f.yaml", Data: []byte(src.String())})
		l.compile()
		loop := false
		for _, d := range l.rep.Errors {
			if strings.Contains(d.Message, "internal error") {
				t.Fatalf("panic inside the loader: %s", d.Message)
			}
			loop = loop || strings.Contains(d.Message, "reference loop in list")
		}
		names := map[string][]string{} // as loaded: YAML may normalise text
		for _, d := range l.lorder {
			names[d.name] = d.items
		}
		if want := hasListLoop(names); loop != want {
			t.Fatalf("loop reported %v, want %v (lists %q)", loop, want, names)
		}

		want := substituteAll(cond, l.lorder)
		if len(want) > maxConditionLen {
			return
		}
		budget := maxSubstBytes
		got, over := expandLists(newText(cond, nil, nil), l.lists, &budget, nil)
		if over || got.text != want {
			t.Fatalf("expanded %q (over=%v), want %q", got.text, over, want)
		}
		if len(got.origin) != len(got.text) {
			t.Fatal("origin map length")
		}
	})
}

// substituteAll is the model of list substitution: every list in
// definition order, each pass over the whole text.
func substituteAll(text string, lists []*listDef) string {
	origin := make([]int32, len(text))
	for _, d := range lists {
		if len(text) > maxConditionLen {
			break
		}
		text, origin, _ = substituteList(text, origin, d)
	}
	return text
}

// hasListLoop reports whether some list reaches itself through items
// naming lists.
func hasListLoop(lists map[string][]string) bool {
	for start := range lists {
		seen := map[string]bool{}
		next := []string{start}
		for len(next) > 0 {
			n := next[len(next)-1]
			next = next[:len(next)-1]
			for _, it := range lists[n] {
				if it == start {
					return true
				}
				if _, ok := lists[it]; ok && !seen[it] {
					seen[it] = true
					next = append(next, it)
				}
			}
		}
	}
	return false
}
