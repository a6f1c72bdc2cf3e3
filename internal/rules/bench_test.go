package rules

import (
	"net/netip"
	"path/filepath"
	"testing"

	"github.com/tripline/tripline/internal/event"
)

// loadDefaults loads the default rules as the sensor does.
func loadDefaults(tb testing.TB) *Ruleset {
	rs, _, err := LoadFiles([]string{"../../rules"}, Options{Captured: sensorTypes})
	if err != nil {
		tb.Fatal(err)
	}
	return rs
}

func loadUpstream(b testing.TB) *Ruleset {
	rs, _, err := LoadFiles([]string{filepath.Join(upstream, "falco_rules.yaml"), filepath.Join(upstream, "falco-incubating_rules.yaml")}, Options{Captured: sensorTypes})
	if err != nil {
		b.Fatal(err)
	}
	return rs
}

// typicalEvents are what a busy host produces most: a shell running ls, ls
// reading the loader cache, curl connecting out.
func typicalEvents() map[string]*event.Event {
	parent := testProc("bash", "/usr/bin/bash", 900, "-bash")
	gparent := testProc("sshd", "/usr/sbin/sshd", 800, "sshd: alice@pts/1")
	lineage := []*event.Process{parent, gparent, testProc("systemd", "/usr/lib/systemd/systemd", 1, "/sbin/init")}

	ex := &event.Event{Type: event.TypeExecve, Timestamp: 1_700_000_000_000_000_000}
	ex.Proc = *testProc("ls", "/usr/bin/ls", 1000, "ls", "-la", "/home/alice")
	ex.Proc.PPID, ex.Proc.UID, ex.Proc.EUID, ex.Proc.LoginUID, ex.Proc.TTY = 900, 1000, 1000, 1000, 34817
	ex.SetLineage(lineage)

	op := &event.Event{Type: event.TypeOpenat, Timestamp: ex.Timestamp + 1000, Res: 3}
	op.Proc = ex.Proc
	op.SetLineage(lineage)
	op.Open = event.Open{Path: "/etc/ld.so.cache", RawPath: "/etc/ld.so.cache", DirFD: -100, Flags: 0o2000000}

	cn := &event.Event{Type: event.TypeConnect, Timestamp: ex.Timestamp + 2000, Res: -115}
	cn.Proc = *testProc("curl", "/usr/bin/curl", 1001, "curl", "-s", "https://example.com/")
	cn.Proc.PPID, cn.Proc.EUID, cn.Proc.LoginUID = 900, 1000, 1000
	cn.SetLineage(lineage)
	cn.Connect = event.Connect{FD: 5, Family: event.AFInet, SockType: 1, Proto: event.ProtoTCP,
		LocalAddr: netip.MustParseAddr("192.168.1.20"), LocalPort: 40000,
		RemoteAddr: netip.MustParseAddr("93.184.216.34"), RemotePort: 443}
	return map[string]*event.Event{"exec": ex, "open": op, "connect": cn}
}

func BenchmarkMatchUpstream(b *testing.B) { benchMatch(b, loadUpstream(b)) }

// BenchmarkMatchDefaults is the rules' share of the pipeline's per-event
// cost with the default rules.
func BenchmarkMatchDefaults(b *testing.B) {
	rs := loadDefaults(b)
	benchMatch(b, rs)
}

func benchMatch(b *testing.B, rs *Ruleset) {
	for _, name := range []string{"exec", "open", "connect"} {
		ev := typicalEvents()[name]
		b.Run(name, func(b *testing.B) {
			e := rs.NewEvaluator()
			dst := make([]*Rule, 0, 16)
			b.ReportAllocs()
			reportCPU(b, func() {
				for i := 0; i < b.N; i++ {
					dst = e.Match(ev, dst[:0])
				}
			})
			b.ReportMetric(float64(len(rs.RulesFor(ev.Type))), "rules/event")
		})
	}
}

func TestMatchUpstreamNoAlloc(t *testing.T) {
	defaults := loadDefaults(t)
	// The default rules take the connect, per-type prefilter and merged
	// read paths the upstream ones barely use.
	for _, set := range []struct {
		name    string
		rs      *Ruleset
		noMatch bool
	}{{"upstream", loadUpstream(t), true}, {"defaults", defaults, false}} {
		e := set.rs.NewEvaluator()
		dst := make([]*Rule, 0, 16)
		for name, ev := range typicalEvents() {
			e.Match(ev, dst[:0]) // warm up the VM and scratch
			if n := testing.AllocsPerRun(100, func() { dst = e.Match(ev, dst[:0]) }); n != 0 {
				t.Errorf("%s rules, %s: %v allocs per event, want 0", set.name, name, n)
			}
			if set.noMatch && len(dst) != 0 {
				t.Errorf("%s: typical event matched %q", name, dst[0].Name)
			}
		}
	}
}

func BenchmarkLoadSmall(b *testing.B) {
	src := []byte("- rule: r\n  desc: d\n  condition: evt.type = execve and proc.name in (a, b)\n  output: o %proc.name\n  priority: info\n")
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		Load([]Source{{Name: "f.yaml", Data: src}}, Options{})
	}
}

func BenchmarkLoadUpstream(b *testing.B) {
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		loadUpstream(b)
	}
}
