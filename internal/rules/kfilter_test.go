package rules

import (
	"math/rand/v2"
	"path/filepath"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// kfRuleSets are the rule files the kernel filter is checked against.
var kfRuleSets = map[string][]string{
	"defaults": {"../../rules"},
	"upstream": {filepath.Join(upstream, "falco_rules.yaml"), filepath.Join(upstream, "falco-incubating_rules.yaml")},
	"facts":    {"testdata/kfilter_rules.yaml"},
	"seed":     {"testdata/seed_macros.yaml", filepath.Join(seeds, "checkpoint.yaml"), filepath.Join(seeds, "runtime-monitoring.yaml")},
}

// TestKernelFilterSound is the property that makes the kernel filter safe:
// for generated open events built from the paths, names and programs the
// rule files mention (and random ones), every event a rule matches in
// userspace passes the filter.
func TestKernelFilterSound(t *testing.T) {
	for name, paths := range kfRuleSets {
		t.Run(name, func(t *testing.T) {
			rs, _, err := LoadFiles(paths, Options{Captured: sensorTypes})
			if err != nil {
				t.Fatal(err)
			}
			kf := rs.KernelFilter()
			ev := rs.NewEvaluator()
			words := ruleWords(rs)
			rng := rand.New(rand.NewPCG(11, uint64(len(words))))
			matched, dropped := 0, 0
			var dst []*Rule
			for range 150000 {
				e := randomOpen(rng, words)
				dst = ev.Match(e, dst[:0])
				pass := kf.Pass(e)
				if !pass {
					dropped++
				}
				if len(dst) == 0 {
					continue
				}
				matched++
				// Each matching rule's own terms must let it pass, not just
				// some other rule's.
				for _, r := range dst {
					if !pass || !ruleOnly(kf, r.Name).Pass(e) {
						t.Fatalf("rule %q matches %s %q flags=%#o res=%d proc=%q, but the kernel filter drops it",
							r.Name, e.Type, e.Open.Path, e.Open.Flags, e.Res, e.Proc.Comm)
					}
				}
			}
			t.Logf("%d matched, %d dropped", matched, dropped)
			if matched < 500 || (name != "seed" && dropped < 1000) || (name == "facts" && matched < 5000) {
				t.Errorf("weak test: only %d events matched and %d were dropped", matched, dropped)
			}
		})
	}
}

// ruleOnly is kf restricted to the terms of one rule.
func ruleOnly(kf *KernelFilter, rule string) *KernelFilter {
	out := &KernelFilter{}
	for _, tf := range kf.Types {
		if tf.PassAll {
			out.Types = append(out.Types, tf)
			continue
		}
		one := TypeFilter{Type: tf.Type}
		for _, tm := range tf.Terms {
			if tm.Rule == rule {
				one.Terms = append(one.Terms, tm)
			}
		}
		out.Types = append(out.Types, one)
	}
	return out
}

// ruleWords collects the string values of every check of the rules.
func ruleWords(rs *Ruleset) []string {
	seen := map[string]bool{}
	var out []string
	for _, r := range rs.Rules() {
		if r.cond == nil {
			continue
		}
		walkChecks(r.cond, func(c *checkNode) {
			for _, v := range c.vals {
				if !seen[v.text] && v.text != "" {
					seen[v.text] = true
					out = append(out, v.text)
				}
			}
		})
	}
	return out
}

var kfProcs = []string{"python3", "bash", "nginx", "cat", "evil", "vi", "sh", "node"}

// randomOpen builds an open event from the rule words: the paths as
// written, extended, cut, combined as directory and file name.
func randomOpen(rng *rand.Rand, words []string) *event.Event {
	w := func() string { return words[rng.IntN(len(words))] }
	var path string
	switch rng.IntN(9) {
	case 0:
		path = w()
	case 1:
		path = w() + "/" + w()
	case 2:
		path = w() + w()
	case 3:
		path = "/home/alice/" + w()
	case 4:
		s := w()
		path = s[:rng.IntN(len(s)+1)]
	case 5:
		path = filepath.Join("/", w(), w())
	case 6:
		path = "/tmp/" + strings.Repeat("d/", rng.IntN(4)) + "f.txt"
	case 7:
		path = "/"
	default:
		path = filepath.Join(w(), ".."+"/"+w())
	}
	types := event.ClassOpen.Types()
	e := &event.Event{Type: types[rng.IntN(len(types))], Res: 3}
	flags := []uint32{0, 1, 2, 3, 0o1101, 0o102, 0o200000, 0o1000 | 1, 0o100 | 0o2}
	e.Open = event.Open{Path: path, RawPath: path, Flags: flags[rng.IntN(len(flags))], Mode: []uint32{0o644, 0o755}[rng.IntN(2)]}
	switch rng.IntN(4) {
	case 0:
		e.Res = -2
	case 1:
		e.Res = -13
	}
	comm := kfProcs[rng.IntN(len(kfProcs))]
	if rng.IntN(4) == 0 {
		comm = w()
	}
	e.Proc = *testProc(comm, "/usr/bin/"+comm, 4242, comm, w())
	e.Proc.Cwd = "/root"
	if rng.IntN(2) == 0 {
		e.Container = testContainer
		e.Proc.ContainerID = testContainer.FullID
	}
	e.SetLineage([]*event.Process{testProc(kfProcs[rng.IntN(len(kfProcs))], "/usr/bin/bash", 900, "bash")})
	return e
}

// TestKernelFilterDefaults pins what the default rules push down: writes
// and reads outside the watched places are dropped, the watched
// places pass.
func TestKernelFilterDefaults(t *testing.T) {
	rs, _, err := LoadFiles([]string{"../../rules"}, Options{Captured: sensorTypes})
	if err != nil {
		t.Fatal(err)
	}
	kf := rs.KernelFilter()
	for _, tc := range []struct {
		typ   event.Type
		path  string
		flags uint32
		res   int64
		want  bool
	}{
		{event.TypeOpenat, "/tmp/x", 0o1101, 3, false},
		{event.TypeOpenat, "/tmp/x", 0, 3, false},
		{event.TypeOpenat, "/usr/lib/x86_64-linux-gnu/libc.so.6", 0o2000000, 3, false},
		{event.TypeOpenat, "/home/a/.aws/credentials", 0, 3, true},
		{event.TypeOpenat, "/home/a/.config/gcloud/legacy_credentials/me/adc.json", 0, 3, true},
		{event.TypeOpenat, "/home/a/.ssh/id_rsa", 0, 3, true},
		{event.TypeOpenat, "/proc/1/environ", 0, 3, true},
		{event.TypeCreat, "/tmp/x", 0o1101, 3, false},
		{event.TypeOpenat, "/etc/passwd", 1, 3, true},
		{event.TypeOpenat, "/home/a/.ssh/authorized_keys", 2, 3, true},
		{event.TypeOpenat, "/home/a/.bashrc", 1, 3, true},
		{event.TypeOpenat, "/tmp/missing", 0, -2, true}, // a failure rule: failed opens are not filtered on paths
		{event.TypeOpenat, "/etc/shadow", 0, -13, true},
		{event.TypeOpenat, "/etc/shadow", 0, 3, true},
	} {
		e := &event.Event{Type: tc.typ, Res: tc.res, Open: event.Open{Path: tc.path, Flags: tc.flags}}
		if got := kf.Pass(e); got != tc.want {
			t.Errorf("%s %s flags=%#o res=%d: pass=%v, want %v", tc.typ, tc.path, tc.flags, tc.res, got, tc.want)
		}
	}
}
