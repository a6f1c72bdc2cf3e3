package rules

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

const upstream = "../../testdata/falco-rules"

// sensorTypes is what the capture layer delivers on x86-64: every type.
var sensorTypes = func() []event.Type {
	var out []event.Type
	for t := event.TypeUnknown + 1; t < event.NumTypes; t++ {
		out = append(out, t)
	}
	return out
}()

// TestUpstreamCompat loads Falco's upstream rules files unchanged. Every
// item parses and every rule compiles with all its event types captured:
// the sensor sees every syscall the stable and incubating rules name
// (25/25 and 31/31). A rule naming a type the sensor does not capture
// would compile with a warning (partially captured) or be skipped; the
// tables keep the lists for when a rules update brings such a type.
func TestUpstreamCompat(t *testing.T) {
	for _, tc := range []struct {
		file    string
		within  int
		partial []string
		skipped map[string]string
	}{
		{"falco_rules.yaml", 25, nil, nil},
		{"falco-incubating_rules.yaml", 31, nil, nil},
	} {
		t.Run(tc.file, func(t *testing.T) {
			rs, rep, err := LoadFiles([]string{filepath.Join(upstream, tc.file)}, Options{Captured: sensorTypes})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			var within, partial []string
			for _, r := range rs.Rules() {
				if r.Skipped != "" {
					continue
				}
				part := false
				for _, w := range rep.Warnings {
					if w.Item == `rule "`+r.Name+`"` && strings.Contains(w.Message, "partially") {
						part = true
					}
				}
				if part {
					partial = append(partial, r.Name)
				} else {
					within = append(within, r.Name)
				}
			}
			t.Logf("compiled=%d (fully captured %d, partially %d) skipped=%d warnings=%d",
				rep.Compiled, len(within), len(partial), len(rep.Skipped), len(rep.Warnings))
			if len(within) != tc.within {
				t.Errorf("fully captured rules compiled: %d, want %d: %q", len(within), tc.within, within)
			}
			sort.Strings(partial)
			sort.Strings(tc.partial)
			if strings.Join(partial, "|") != strings.Join(tc.partial, "|") {
				t.Errorf("partially captured rules %q, want %q", partial, tc.partial)
			}
			if rep.Compiled != tc.within+len(tc.partial) {
				t.Errorf("compiled %d, want %d", rep.Compiled, tc.within+len(tc.partial))
			}
			if len(rep.Skipped) != len(tc.skipped) {
				t.Errorf("skipped %d rules, want %d: %+v", len(rep.Skipped), len(tc.skipped), rep.Skipped)
			}
			for _, s := range rep.Skipped {
				want, ok := tc.skipped[s.Rule]
				if !ok || s.Reason != "event types not captured by the sensor: "+want {
					t.Errorf("skipped %q: %q, want types %q", s.Rule, s.Reason, want)
				}
			}
			if got := rep.Compiled + len(rep.Skipped); got != len(rs.Rules()) {
				t.Errorf("compiled+skipped = %d, rules = %d", got, len(rs.Rules()))
			}
			for _, r := range rs.Rules() {
				for _, ty := range r.Types() {
					if c := ty.Class(); c == event.ClassUnknown || c == event.ClassContainer {
						t.Errorf("rule %q indexed on %s", r.Name, ty)
					}
				}
			}
		})
	}
}

// TestUpstreamTogether loads both files in order, as Falco would.
func TestUpstreamTogether(t *testing.T) {
	_, rep, err := LoadFiles([]string{filepath.Join(upstream, "falco_rules.yaml"), filepath.Join(upstream, "falco-incubating_rules.yaml")}, Options{Captured: sensorTypes})
	if err != nil {
		t.Fatal(err)
	}
	if rep.Compiled != 25+31 || len(rep.Skipped) != 0 {
		t.Errorf("compiled %d skipped %d, want 56 and 0", rep.Compiled, len(rep.Skipped))
	}
}
