package capture

import (
	"net/netip"
	"reflect"
	"testing"

	"github.com/tripline/tripline/internal/event"
	"github.com/tripline/tripline/internal/rules"
)

// TestRulesFilter checks that every part of the rules' kernel filter
// reaches the capture's, and that the types passed whole stay out.
func TestRulesFilter(t *testing.T) {
	pfx := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	not := []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	kf := &rules.KernelFilter{
		Types: []rules.TypeFilter{
			{Type: event.TypeOpen, PassAll: true, Reason: "x"},
			{Type: event.TypeOpenat, Terms: []rules.OpenTerm{
				{Rule: "r", Access: rules.AccessRead, Result: rules.ResultSuccess, Prefixes: []string{"/etc/"}, Contains: []string{"/.ssh/"}, Names: []string{"id_rsa"}},
				{Rule: "w", Access: rules.AccessWrite | rules.AccessRead, Result: rules.ResultFailure, Errnos: []int{1, 13}, AnyPath: true},
			}},
		},
		Sock: []rules.SockFilter{
			{Type: event.TypeConnect, Terms: []rules.SockTerm{{Rule: "c", Families: rules.FamInet, Results: rules.ResOK,
				Container: true, Ports: []rules.PortRange{{Lo: 1, Hi: 2}}, Addrs: pfx, NotAddrs: not}}},
		},
		Files: []rules.FileFilter{
			{Type: event.TypeUnlink, PassAll: true, Reason: "x"},
			{Type: event.TypeRenameat2, Terms: []rules.FileTerm{
				{Rule: "h", Names: [2][]string{{".bash_history"}, {".zsh_history"}}},
				{Rule: "c", Container: true},
				{Rule: "m", FlagReg: 3, Flags: 0o6000},
			}},
		},
		Host:     rules.HostDrop{Types: []event.Type{event.TypeMount}},
		FailDrop: []event.Type{event.TypeExecve},
	}
	want := &Filter{
		Open: []OpenFilter{{Type: event.TypeOpenat, Terms: []OpenTerm{
			{Read: true, Success: true, Prefixes: []string{"/etc/"}, Contains: []string{"/.ssh/"}, Names: []string{"id_rsa"}},
			{Read: true, Write: true, Failure: true, Errnos: []int{1, 13}, AnyPath: true},
		}}},
		Sock: []SockFilter{{Type: event.TypeConnect, Terms: []SockTerm{{Families: uint8(rules.FamInet), Results: uint8(rules.ResOK),
			Container: true, Ports: []PortRange{{Lo: 1, Hi: 2}}, Addrs: pfx, NotAddrs: not}}}},
		File: []FileFilter{{Type: event.TypeRenameat2, Terms: []FileTerm{
			{Names: [2][]string{{".bash_history"}, {".zsh_history"}}},
			{Container: true},
			{FlagReg: 3, Flags: 0o6000},
		}}},
		HostDrop: []event.Type{event.TypeMount},
		FailDrop: []event.Type{event.TypeExecve},
	}
	if got := RulesFilter(kf); !reflect.DeepEqual(got, want) {
		t.Errorf("RulesFilter:\n got %+v\nwant %+v", got, want)
	}
}
