package main

import (
	"slices"
	"strings"
	"testing"

	"github.com/tripline/tripline/internal/capture"
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
	f := capture.RulesFilter(ruleFilter(engineConfig{cfg: on, rules: rs}))
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

func TestRulesListKernelConnect(t *testing.T) {
	out, errOut, err := runCLI(t, "rules", "list", "--kernel", "../../rules")
	if err != nil {
		t.Fatalf("rules list --kernel: %v\n%s", err, errOut)
	}
	for _, want := range []string{
		"connect: filtered, 5 rules",
		"  Outbound connection from shell: family ipv4|ipv6; result success|EINPROGRESS; address not in 0.0.0.0/32 | 127.0.0.0/8 | ::/128 | ::1/128\n",
		"  Container runtime socket accessed from container: family unix; in a container\n",
		"unlinkat: filtered, 2 rules (file names are the paths' last components as passed; arguments are the syscall's, from 1)\n",
		"fchmodat: filtered, 2 rules (file names are the paths' last components as passed; arguments are the syscall's, from 1)\n",
		"  Setuid or setgid bit set: argument 3 has a bit of 06000\n",
		"  Shell history tampering: path 1 named .ash_history | .bash_history | .history | .ksh_history | .sh_history | .zsh_history | fish_history\n",
		"  System directory changed in container: process in a container (not in the host's mount namespace)\n",
		"symlink: not filtered (rule \"Link to sensitive file created\" has no file name or flags condition the kernel can test)\n",
		"Only container rules: dropped for processes in the host's mount namespace (--kernel-filter-container=off keeps them): ",
		// The hooks: the rules' syscalls (no close, no fork), and the scheduler.
		"Syscall exits hooked (--syscall-hook=syscall; every other syscall runs no program): execve, execveat, open, openat, openat2, creat, connect, ",
		"Scheduler events hooked, whatever the rules: exec, fork, exit",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
}

// TestCaptureFilterSock checks the conversion of the connect filter and
// of the host drop, and that the rules' family and outcome bits are the
// capture's.
func TestCaptureFilterSock(t *testing.T) {
	if rules.FamOther != capture.SockFamOther || rules.FamUnix != capture.SockFamUnix || rules.FamInet != capture.SockFamInet ||
		rules.FamInet6 != capture.SockFamInet6 || rules.ResOK != capture.SockResOK || rules.ResInProgress != capture.SockResInProgress ||
		rules.ResFailed != capture.SockResFailed {
		t.Fatal("family or outcome bits differ between rules and capture")
	}
	rs, _, err := rules.LoadFiles([]string{"../../rules"}, rules.Options{Captured: capture.Capturable()})
	if err != nil {
		t.Fatal(err)
	}
	kf := rs.KernelFilter()
	f := capture.RulesFilter(kf)
	if len(f.Sock) != 1 || f.Sock[0].Type != event.TypeConnect || len(f.Sock[0].Terms) != len(kf.Sock[0].Terms) {
		t.Fatalf("sock filter %+v", f.Sock)
	}
	for i, ct := range f.Sock[0].Terms {
		rt := kf.Sock[0].Terms[i]
		if ct.Families != uint8(rt.Families) || ct.Results != uint8(rt.Results) || ct.Container != rt.Container ||
			len(ct.Ports) != len(rt.Ports) || (ct.Ports == nil) != (rt.Ports == nil) ||
			!slices.Equal(ct.Addrs, rt.Addrs) || !slices.Equal(ct.NotAddrs, rt.NotAddrs) {
			t.Errorf("term %d: %+v from %+v", i, ct, rt)
		}
	}
	if !slices.Equal(f.HostDrop, kf.Host.Types) || len(f.HostDrop) == 0 || f.HostMntNS != 0 {
		t.Errorf("host drop %v (mntns %d), want %v", f.HostDrop, f.HostMntNS, kf.Host.Types)
	}
}
