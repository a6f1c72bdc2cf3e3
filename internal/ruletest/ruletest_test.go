package ruletest

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/rules"
)

// TestDefaultRules runs every rule test kept beside the default rules and
// checks that each default rule has a firing and a non-firing test.
func TestDefaultRules(t *testing.T) {
	files, err := Collect([]string{"../../rules/tests"})
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no rule tests found in rules/tests")
	}
	var r Runner
	fires := map[string]int{}
	silent := map[string]int{} // tests of the rule's file where the rule must not fire
	for _, p := range files {
		f, err := ParseFile(p)
		if err != nil {
			t.Fatal(err)
		}
		res, err := r.RunFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, x := range res {
			if x.Skipped != "" {
				t.Logf("%s:%d %s: skipped: %s", x.File, x.Line, x.Name, x.Skipped)
			} else if !x.Pass() {
				t.Errorf("%s:%d %s: missing=%v extra=%v fields=%v err=%v", x.File, x.Line, x.Name, x.Missing, x.Extra, x.FieldDiffs, x.Err)
			}
			c := f.Tests[i]
			for _, e := range c.Expect {
				fires[e]++
			}
			// A non-firing test of a rule is one whose event type the rule
			// looks at, yet the rule is not expected to fire.
			ev, err := BuildEvent(c.Event)
			if err != nil {
				continue
			}
			for _, rule := range ruleset(t, &r, f).Rules() {
				if !slices.Contains(c.Expect, rule.Name) && slices.Contains(rule.Types(), ev.Type) {
					silent[rule.Name]++
				}
			}
		}
	}
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for _, rule := range rs.Rules() {
		if !rule.Enabled {
			continue
		}
		if rule.Skipped != "" {
			// Its event types do not exist in this build, so neither do
			// its tests' events; it is checked once they do.
			if fires[rule.Name] == 0 {
				t.Errorf("default rule %q has no firing test", rule.Name)
			}
			continue
		}
		if fires[rule.Name] == 0 {
			t.Errorf("default rule %q has no firing test", rule.Name)
		}
		if silent[rule.Name] == 0 {
			t.Errorf("default rule %q has no non-firing test", rule.Name)
		}
	}
}

func ruleset(t *testing.T, r *Runner, f *File) *rules.Ruleset {
	t.Helper()
	rs, err := r.ruleset(t.Context(), f.Rules)
	if err != nil {
		t.Fatal(err)
	}
	return rs
}

func TestFailuresAreReported(t *testing.T) {
	dir := t.TempDir()
	write := func(name, body string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	write("rules.yaml", `- rule: Shadow read
  desc: d
  condition: evt.type = openat and fd.name = /etc/shadow
  output: "shadow read by %proc.name"
  priority: WARNING
`)
	p := write("t.yaml", `rules: [rules.yaml]
tests:
  - name: fires
    event: {evt.type: openat, fd.name: /etc/shadow, proc.name: cat}
    expect: [Shadow read]
    expect_fields: {Shadow read: {proc.name: cat}}
  - name: wrong expectation
    event: {evt.type: openat, fd.name: /etc/shadow, proc.name: cat}
    expect: []
  - name: missing and field diff
    event: {evt.type: openat, fd.name: /etc/hosts, proc.name: cat}
    expect: [Shadow read]
  - name: bad field
    event: {evt.type: openat, fd.nmae: /etc/shadow}
    expect: []
  - name: Falco event type this build does not represent
    event: {evt.type: kexec_load, proc.name: kexec}
    expect: [Shadow read]
  - name: not a Falco event type
    event: {evt.type: kexec_lod, proc.name: kexec}
    expect: []
  - name: Falco field this build does not supply
    event: {evt.type: execve, proc.name: sh, "proc.vmswap": 1}
    expect: [Shadow read]
`)
	f, err := ParseFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var r Runner
	res, err := r.RunFile(f)
	if err != nil {
		t.Fatal(err)
	}
	if !res[0].Pass() {
		t.Errorf("fires: %+v", res[0])
	}
	if res[1].Pass() || len(res[1].Extra) != 1 || res[1].Line != 7 {
		t.Errorf("wrong expectation: %+v", res[1])
	}
	if res[2].Pass() || len(res[2].Missing) != 1 {
		t.Errorf("missing: %+v", res[2])
	}
	if res[3].Err == nil || !strings.Contains(res[3].Err.Error(), "fd.nmae") {
		t.Errorf("bad field: %+v", res[3])
	}
	if res[4].Err != nil || !strings.Contains(res[4].Skipped, "kexec_load") {
		t.Errorf("unrepresented type: want skipped, got %+v", res[4])
	}
	if res[5].Err == nil || res[5].Skipped != "" {
		t.Errorf("unknown type: want an error, got %+v", res[5])
	}
	if res[6].Err != nil || !strings.Contains(res[6].Skipped, "proc.vmswap") {
		t.Errorf("unsupplied field: want skipped, got %+v", res[6])
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct{ body, want string }{
		{"tests:\n  - event: {evt.type: openat}\n    expect: []\n", "without a name"},
		{"tests:\n  - name: a\n    event: {evt.type: openat}\n", "has no expect"},
		{"tests:\n  - name: a\n    expect: []\n", "has no event"},
		{"tests:\n  - name: a\n    event: {}\n    expect: []\n  - name: a\n    event: {}\n    expect: []\n", "duplicate test name"},
		{"tests:\n  - name: a\n    event: {}\n    expect: []\n    expect_fields: {R: {a: 1}}\n", "not in expect"},
		{"tests:\n  - name: a\n    evnt: {}\n", "evnt"},
		{"- list: l\n  items: [a]\n- rule: r\n  desc: d\n  condition: evt.type=open\n  output: o\n  priority: INFO\n", "is a rules file"},
		{"- required_engine_version: 0.57.0\n", "like rules/tests/*.yaml"},
	}
	for _, tt := range tests {
		p := filepath.Join(t.TempDir(), "t.yaml")
		os.WriteFile(p, []byte(tt.body), 0o644)
		_, err := ParseFile(p)
		if !errors.Is(err, ErrFormat) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%q: got %v, want %q", tt.body, err, tt.want)
		}
	}
}
