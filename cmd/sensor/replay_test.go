package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/event"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	root := newRootCmd()
	var out, errb bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&errb)
	root.SetArgs(args)
	err = root.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

func TestReplay(t *testing.T) {
	out, errOut, err := runCLI(t, "replay", "--rules", "testdata/replay_rules.yaml", "testdata/recording.jsonl")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, errOut)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	// Without --coalesce every match is printed: shadow, shadow, sudoers.
	if len(lines) != 3 || !strings.Contains(lines[0], ": Warning Sensitive file opened (file=/etc/shadow proc=cat pid=10 container=host)") {
		t.Fatalf("replay output:\n%s", out)
	}
	if !strings.Contains(errOut, "skipped_lines=1") || !strings.Contains(errOut, "alerts=3") {
		t.Errorf("replay summary: %s", errOut)
	}

	out, _, err = runCLI(t, "replay", "--json", "--coalesce", "--rules", "testdata/replay_rules.yaml", "testdata/recording.jsonl")
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		var a map[string]any
		if err := json.Unmarshal([]byte(l), &a); err != nil {
			t.Fatalf("not JSON: %q", l)
		}
		n++
	}
	if n != 3 { // shadow, sudoers, and the follow-up counting the repeat
		t.Errorf("coalesced replay printed %d alerts:\n%s", n, out)
	}
}

func TestReplayBadRules(t *testing.T) {
	_, errOut, err := runCLI(t, "replay", "--rules", "testdata/recording.jsonl", "testdata/recording.jsonl")
	if err == nil || !strings.Contains(errOut+err.Error(), "recording.jsonl") {
		t.Fatalf("want a rules error naming the file, got %v\n%s", err, errOut)
	}
}

func TestRulesTestCommand(t *testing.T) {
	out, _, err := runCLI(t, "rules", "test", "../../rules/tests")
	if err != nil {
		t.Fatalf("rules test on the default rules: %v\n%s", err, out)
	}
	if !strings.Contains(out, " passed, 0 failed") {
		t.Errorf("summary: %s", out)
	}
}

// TestRunLoadsEveryDefaultRule guards the wiring: with containerd
// enrichment on (the default), container-start posture rules must load, and
// no default rule may be skipped for an event type this build represents.
// (Rules on syscalls package event has no type for yet load as skipped.)
func TestRunLoadsEveryDefaultRule(t *testing.T) {
	cfg := config.Default()
	cfg.Rules = []string{"../../rules"}
	rs, rep, err := loadRules(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range rep.Skipped {
		_, list, ok := strings.Cut(s.Reason, "not captured by the sensor: ")
		if !ok {
			t.Errorf("default rule skipped: %+v", s)
			continue
		}
		for _, name := range strings.Split(list, ", ") {
			if _, represented := event.ParseType(name); represented {
				t.Errorf("default rule %q skipped although this build has event type %s: %s", s.Rule, name, s.Reason)
			}
		}
	}
	if !slices.Contains(rs.Types(), event.TypeContainer) {
		t.Error("no rule listens to container events")
	}
	cfg.ContainerdSocket = ""
	_, rep, err = loadRules(t.Context(), cfg, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil || len(rep.Skipped) == 0 {
		t.Errorf("without containerd the container rules must be skipped with a reason: %v %+v", err, rep)
	}
}
