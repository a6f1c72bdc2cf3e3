package rules

import (
	"testing"
)

func TestListSubstitution(t *testing.T) {
	rs, rep := loadString(t, `
- list: a
  items: [sh, b]          # b is defined later: expanded by b's pass, as in Falco
- list: b
  items: [bash, "my shell"]
- list: empty
  items: []
- rule: r
  desc: d
  condition: evt.type = execve and proc.name in (a, empty) and proc.name in (empty, bash)
  output: o
  priority: info
`, Options{})
	if rep.Compiled != 1 {
		t.Fatalf("not compiled: %+v", rep)
	}
	e := rs.NewEvaluator()
	ev := execEvent() // comm bash
	if len(e.Match(ev, nil)) != 1 {
		t.Error("bash should match via the forward list reference")
	}
	ev.Proc.Comm = "my shell"
	if len(e.Match(ev, nil)) != 0 {
		t.Error("'my shell' is in a but not in (empty, bash)")
	}
	budget := maxSubstBytes
	src, _ := expandLists(newText("proc.name in (a, empty) and x in (empty)", nil, nil), map[string]*listDef{
		"a":     {name: "a", index: 0, expanded: []string{"sh", "b"}},
		"b":     {name: "b", index: 1, expanded: []string{"bash", "my shell"}},
		"empty": {name: "empty", index: 2},
	}, &budget, nil)
	if want := `proc.name in (sh, bash, "my shell" ) and x in ( )`; src.text != want {
		t.Errorf("expanded %q, want %q", src.text, want)
	}
	if len(src.origin) != len(src.text) {
		t.Error("origin map length")
	}
}
