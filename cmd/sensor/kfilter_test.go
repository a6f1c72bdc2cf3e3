package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/config"
	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
)

func TestRulesListKernel(t *testing.T) {
	out, errOut, err := runCLI(t, "rules", "list", "--kernel", "testdata/replay_rules.yaml")
	if err != nil {
		t.Fatalf("rules list --kernel: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"openat: filtered, 1 rules\n  Read sensitive file: path starts with /etc/shadow | /etc/sudoers\n",
		"openat2: filtered, 1 rules\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "creat") || strings.Contains(out, "container:") {
		t.Errorf("types without open rules listed:\n%s", out)
	}
}

func TestRuleFilter(t *testing.T) {
	rs, _, err := rules.LoadFiles([]string{"testdata/replay_rules.yaml"}, rules.Options{})
	if err != nil {
		t.Fatal(err)
	}
	on := config.Default()
	off := config.Default()
	off.KernelFilter = "off"
	for _, tc := range []struct {
		name string
		ec   engineConfig
		want bool
	}{
		{"default on", engineConfig{cfg: on, rules: rs}, true},
		{"off", engineConfig{cfg: off, rules: rs}, false},
		{"no rules (trace)", engineConfig{cfg: on}, false},
		{"explicit types", engineConfig{cfg: on, rules: rs, types: []event.Type{event.TypeOpenat}}, false},
	} {
		if got := ruleFilter(tc.ec) != nil; got != tc.want {
			t.Errorf("%s: filter=%v, want %v", tc.name, got, tc.want)
		}
	}
	f := captureFilter(ruleFilter(engineConfig{cfg: on, rules: rs}))
	var types []event.Type
	for _, of := range f.Open {
		types = append(types, of.Type)
		if len(of.Terms) != 1 || !slices.Equal(of.Terms[0].Prefixes, []string{"/etc/shadow", "/etc/sudoers"}) ||
			of.Terms[0].AnyPath || of.Terms[0].Read || of.Terms[0].Success {
			t.Errorf("%s: terms %+v", of.Type, of.Terms)
		}
	}
	if !slices.Equal(types, []event.Type{event.TypeOpen, event.TypeOpenat, event.TypeOpenat2}) {
		t.Errorf("filtered types %v", types)
	}
}
