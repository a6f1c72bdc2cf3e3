package rules

import (
	"path/filepath"
	"strings"
	"testing"
)

const seeds = "../../rules/examples/seed"

func TestSeedRules(t *testing.T) {
	for name, files := range map[string][]string{
		"with macros file": {"testdata/seed_macros.yaml", filepath.Join(seeds, "checkpoint.yaml"), filepath.Join(seeds, "runtime-monitoring.yaml")},
		"after upstream":   {filepath.Join(upstream, "falco-incubating_rules.yaml"), filepath.Join(seeds, "checkpoint.yaml"), filepath.Join(seeds, "runtime-monitoring.yaml")},
	} {
		t.Run(name, func(t *testing.T) {
			rs, rep, err := LoadFiles(files, Options{Captured: sensorTypes})
			if err != nil {
				t.Fatalf("load: %v", err)
			}
			want := map[string]Priority{
				"Unexpected Privileged Container":   Error,
				"Unauthorized Container Access":     Error,
				"Privileged Container":              Critical,
				"Sensitive File Access":             Critical, // redefined by runtime-monitoring.yaml
				"Network Anomaly":                   Warning,
				"Unauthorized Process in Container": Warning,
				"Network Connection from Container": Warning,
			}
			got := map[string]*Rule{}
			for _, r := range rs.Rules() {
				got[r.Name] = r
			}
			for n, p := range want {
				r := got[n]
				if r == nil || !r.Compiled() || !r.Enabled {
					t.Errorf("seed rule %q not compiled and enabled", n)
					continue
				}
				if r.Priority != p {
					t.Errorf("%q priority %v, want %v", n, r.Priority, p)
				}
			}
			aliases := 0
			for _, w := range rep.Warnings {
				if strings.Contains(w.Message, "not a Falco priority") {
					aliases++
				}
			}
			if aliases != 3 {
				t.Errorf("got %d priority alias warnings, want 3 (HIGH, HIGH, MEDIUM)", aliases)
			}
		})
	}
}
