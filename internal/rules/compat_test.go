package rules

import (
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

const upstream = "../../testdata/falco-rules"

// sensorTypes is what the capture layer delivers: exec, open and connect
// (plus process lifecycle and container events).
var sensorTypes = []event.Type{
	event.TypeExecve, event.TypeExecveat, event.TypeOpen, event.TypeOpenat, event.TypeOpenat2, event.TypeCreat,
	event.TypeConnect, event.TypeClone, event.TypeClone3, event.TypeFork, event.TypeVfork, event.TypeProcexit,
	event.TypeContainer,
}

// TestUpstreamCompat loads Falco's upstream rules files unchanged. Every
// item parses; every rule whose event types are all captured (exec, open,
// connect) compiles; rules with some uncaptured types compile with a
// warning; rules with none are skipped with the reason listed here.
//
// The incubating file has 20 fully-captured rules, not 19: "Create files
// below dev" matches creat as well as open/openat/openat2, and creat is an
// open-class type here (event.TypeCreat). Counting only open/openat/openat2
// as "open" gives 19.
func TestUpstreamCompat(t *testing.T) {
	for _, tc := range []struct {
		file    string
		within  int
		partial []string
		skipped map[string]string
	}{
		{"falco_rules.yaml", 17,
			[]string{"Disallowed SSH Connection Non Standard Port"},
			map[string]string{
				"Create Symlink Over Sensitive Files":                      "symlink, symlinkat",
				"Create Hardlink Over Sensitive Files":                     "link, linkat",
				"Packet socket created in container":                       "socket",
				"Redirect STDOUT/STDIN to Network Connection in Container": "dup, dup2, dup3",
				"Linux Kernel Module Injection Detected":                   "finit_module, init_module",
				"PTRACE attached to process":                               "ptrace",
				"PTRACE anti-debug attempt":                                "ptrace",
			}},
		{"falco-incubating_rules.yaml", 20,
			[]string{"System procs network activity", "Unexpected UDP Traffic",
				"Contact EC2 Instance Metadata Service From Container", "Contact cloud metadata service from container",
				"Delete or rename shell history", "Network Connection outside Local Subnet"},
			map[string]string{
				"Change thread namespace":                 "setns",
				"Change namespace privileges via unshare": "unshare",
				"Non sudo setuid":                         "setuid",
				"Set Setuid or Setgid bit":                "chmod, fchmod, fchmodat",
				"BPF Program Not Profiled":                "bpf",
			}},
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
					if c := ty.Class(); c != event.ClassExec && c != event.ClassOpen && c != event.ClassConnect {
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
	if rep.Compiled != 18+26 || len(rep.Skipped) != 12 {
		t.Errorf("compiled %d skipped %d, want 44 and 12", rep.Compiled, len(rep.Skipped))
	}
}
